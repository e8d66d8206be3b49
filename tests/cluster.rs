//! The cluster backend against a real `nats-server -js` that each test starts (on a free
//! port, with file storage in a fresh directory), with worker hosts as real processes
//! (`spychro-probe cluster-host URL N`, each the leader of its own process group): results
//! in input order, item failures isolated, a host killed mid-job and a broker restarted
//! mid-job losing nothing; and the broker, two hosts and the caller apart — each in a network
//! namespace of its own as root, or as separate process groups on loopback otherwise (the
//! test says which) — through a killed host, a restarted broker and a host cut off for 3 s.
#![cfg(feature = "cluster")]

use std::process::Child;
use std::time::{Duration, Instant};

use spychro::Job;
use spychro::cluster::Cluster;
use suite::cluster_jobs::{slow_square, square};

mod cluster_parts;
use cluster_parts::*;

#[test]
fn a_job_runs_on_two_hosts_with_results_in_order_and_failures_isolated() {
    let broker = Broker::start("basic");
    let _a = Host::start(&broker.url(), 2);
    let _b = Host::start(&broker.url(), 2);
    let cluster = Cluster::connect(&broker.url()).unwrap();
    let out = cluster
        .run(Job::new(square, 0..20_000u64).chunk_size(500))
        .unwrap();
    assert_eq!(out, (0..20_000u64).map(|x| x * x).collect::<Vec<_>>());
    // A crash in one item fails that item only.
    let out = cluster
        .run(
            Job::new(slow_square, 0..40u64)
                .args((0, 13))
                .chunk_size(5)
                .keep_going(),
        )
        .unwrap();
    assert_eq!(out.len(), 40);
    for (i, o) in out.iter().enumerate() {
        if i == 13 {
            let e = o.as_ref().unwrap_err();
            assert_eq!(e.index(), 13);
            assert!(
                e.to_string().contains("SIGABRT") || e.to_string().contains("signal 6"),
                "{e}"
            );
        } else {
            assert_eq!(o.as_ref().unwrap(), &(i as u64 * i as u64));
        }
    }
    // Two callers at once on the same broker and hosts see only their own results.
    let url = broker.url();
    let other = std::thread::spawn(move || {
        let cluster = Cluster::connect(&url).unwrap();
        cluster
            .run(Job::new(square, 1_000_000..1_005_000u64).chunk_size(100))
            .unwrap()
    });
    let mine = cluster
        .run(Job::new(square, 0..5_000u64).chunk_size(100))
        .unwrap();
    let theirs = other.join().unwrap();
    assert_eq!(mine, (0..5_000u64).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(
        theirs,
        (1_000_000..1_005_000u64).map(|x| x * x).collect::<Vec<_>>()
    );
    // Options of a local pool, and figures that stay on the hosts, are refused clearly.
    let err = cluster
        .run(Job::new(square, [1u64]).on_insights(|_| {}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("on_insights") && err.contains("cluster"),
        "{err}"
    );
    let err = cluster
        .run(Job::new(square, [1u64]).processes(3))
        .unwrap_err()
        .to_string();
    assert!(err.contains("processes") && err.contains("hosts"), "{err}");
}

#[test]
fn a_host_killed_mid_job_loses_no_item() {
    let broker = Broker::start("kill");
    let mut a = Host::start(&broker.url(), 2);
    let _b = Host::start(&broker.url(), 2);
    let cluster = Cluster::connect(&broker.url()).unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        a.kill_group();
    });
    let t = Instant::now();
    let out = cluster
        .run(
            Job::new(slow_square, 0..600u64)
                .args((5, u64::MAX))
                .chunk_size(10),
        )
        .unwrap();
    killer.join().unwrap();
    eprintln!(
        "600 items of 5 ms on 2 + 2 workers, one host killed at 0.7 s: {:?}",
        t.elapsed()
    );
    assert_eq!(out, (0..600u64).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn a_broker_restarted_mid_job_loses_no_item_and_no_result() {
    let mut broker = Broker::start("restart");
    let url = broker.url();
    let _a = Host::start(&url, 2);
    let _b = Host::start(&url, 2);
    let cluster = Cluster::connect(&url).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        broker.kill();
        std::thread::sleep(Duration::from_millis(300));
        broker.spawn();
        // Keep it running until the job is over.
        let _ = rx.recv();
        drop(broker);
    });
    let out = cluster
        .run(
            Job::new(slow_square, 0..600u64)
                .args((5, u64::MAX))
                .chunk_size(10),
        )
        .unwrap();
    let _ = tx.send(());
    restarter.join().unwrap();
    assert_eq!(out, (0..600u64).map(|x| x * x).collect::<Vec<_>>());
}

/// Where the multi-host test's parts run: network namespaces of their own (as root), or
/// separate process groups on this machine's loopback (otherwise).
enum Place {
    Namespaces(Net),
    Loopback { port: u16 },
}

impl Place {
    fn name(&self) -> &'static str {
        match self {
            Place::Namespaces(_) => "netns",
            Place::Loopback { .. } => "loopback",
        }
    }

    fn url(&self) -> String {
        match self {
            Place::Namespaces(_) => "nats://10.213.0.1:4222".into(),
            Place::Loopback { port } => format!("nats://127.0.0.1:{port}"),
        }
    }

    fn start_broker(&self, dir: &str) -> Child {
        match self {
            Place::Namespaces(net) => in_ns(
                &net.ns("b"),
                "nats-server",
                &["-js", "-a", "10.213.0.1", "-p", "4222", "-sd", dir],
            ),
            Place::Loopback { port } => {
                let port = port.to_string();
                let args = ["-js", "-a", "127.0.0.1", "-p", &port, "-sd", dir];
                let child = in_group("nats-server", &args);
                let t = Instant::now();
                while std::net::TcpStream::connect(("127.0.0.1", self.port())).is_err() {
                    assert!(
                        t.elapsed() < Duration::from_secs(20),
                        "nats-server did not listen"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                child
            }
        }
    }

    fn port(&self) -> u16 {
        match self {
            Place::Namespaces(_) => 4222,
            Place::Loopback { port } => *port,
        }
    }

    fn start_host(&self, name: &str) -> Child {
        let url = self.url();
        let args = ["cluster-host", url.as_str(), "2"];
        match self {
            Place::Namespaces(net) => in_ns(&net.ns(name), PROBE, &args),
            Place::Loopback { .. } => in_group(PROBE, &args),
        }
    }

    /// The test's job, run by a caller in its own namespace (or here).
    fn job(&self) -> Result<Vec<u64>, String> {
        let url = self.url();
        let run = move || {
            let cluster = Cluster::connect(&url).map_err(|e| e.to_string())?;
            cluster
                .run(
                    Job::new(slow_square, 0..400u64)
                        .args((5, u64::MAX))
                        .chunk_size(10),
                )
                .map_err(|e| e.to_string())
        };
        match self {
            Place::Namespaces(net) => net.inside("c", run),
            Place::Loopback { .. } => run(),
        }
    }

    /// Cuts host `name` off for `how_long` mid-job: its link down (namespaces), or its whole
    /// process group stopped (loopback: its connection open and silent, as a cut link's).
    fn cut(&self, name: &str, host: &Child, how_long: Duration) {
        match self {
            Place::Namespaces(net) => {
                let ns = net.ns(name);
                Net::must(&["-n", &ns, "link", "set", "eth0", "down"]);
                std::thread::sleep(how_long);
                Net::must(&["-n", &ns, "link", "set", "eth0", "up"]);
            }
            Place::Loopback { .. } => {
                let group = -(host.id() as i32);
                // SAFETY: kill(2) on a process group this test started.
                unsafe { libc::kill(group, libc::SIGSTOP) };
                std::thread::sleep(how_long);
                // SAFETY: as above.
                unsafe { libc::kill(group, libc::SIGCONT) };
            }
        }
    }
}

/// `program` started here, as the leader of its own process group.
fn in_group(program: &str, args: &[&str]) -> Child {
    use std::os::unix::process::CommandExt;
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start a part of the test")
}

#[test]
fn hosts_apart_from_the_broker_and_caller_survive_a_killed_host_a_restarted_broker_and_a_cut_link()
{
    // SPYCHRO_TEST_NO_NETNS=1 runs the loopback form where namespaces could be made.
    let net = match std::env::var_os("SPYCHRO_TEST_NO_NETNS") {
        Some(_) => None,
        None => Net::make(&["h1", "h2", "c"]),
    };
    let place = match net {
        Some(net) => Place::Namespaces(net),
        None => {
            eprintln!(
                "network namespaces cannot be made here (not root?): running the same faults \
                 with the broker, two hosts and the caller as separate process groups on \
                 loopback (CI runs as root, in namespaces)"
            );
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            Place::Loopback { port }
        }
    };
    let name = place.name();
    let dir = std::env::temp_dir().join(format!("spychro-nats-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dir = dir.to_string_lossy().into_owned();
    let mut broker = place.start_broker(&dir);
    let mut h1 = place.start_host("h1");
    let h2 = place.start_host("h2");
    let want: Vec<u64> = (0..400u64).map(|x| x * x).collect();
    let place = std::sync::Arc::new(place);

    // Apart, nothing happening.
    assert_eq!(place.job().unwrap(), want);

    // A host killed mid-job (its whole process group).
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill_group(&mut h1);
    });
    let t = Instant::now();
    assert_eq!(place.job().unwrap(), want, "{name}: a host killed");
    killer.join().unwrap();
    eprintln!("{name}: one host killed mid-job: {:?}", t.elapsed());
    let mut h1 = place.start_host("h1");

    // The broker restarted mid-job (file storage).
    let (p, d) = (place.clone(), dir.clone());
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill_group(&mut broker);
        std::thread::sleep(Duration::from_millis(300));
        p.start_broker(&d)
    });
    let t = Instant::now();
    assert_eq!(place.job().unwrap(), want, "{name}: the broker restarted");
    let mut broker = restarter.join().unwrap();
    eprintln!("{name}: broker restarted mid-job: {:?}", t.elapsed());

    // A host cut off mid-job, and back 3 s later.
    let p = place.clone();
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        p.cut("h2", &h2, Duration::from_secs(3));
        h2
    });
    let t = Instant::now();
    assert_eq!(place.job().unwrap(), want, "{name}: a host cut off");
    let mut h2 = cutter.join().unwrap();
    eprintln!("{name}: a host cut off for 3 s mid-job: {:?}", t.elapsed());

    kill_group(&mut h1);
    kill_group(&mut h2);
    kill_group(&mut broker);
    let _ = std::fs::remove_dir_all(&dir);
}
