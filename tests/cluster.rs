//! The cluster backend against a real `nats-server -js` that each test starts (on a free
//! port, with file storage in a fresh directory), with worker hosts as real processes
//! (`spychro-probe cluster-host URL N`, each the leader of its own process group): results
//! in input order, item failures isolated, a host killed mid-job and a broker restarted
//! mid-job losing nothing.
#![cfg(feature = "cluster")]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spychro::Job;
use spychro::cluster::Cluster;
use suite::cluster_jobs::{slow_square, square};

const PROBE: &str = env!("CARGO_BIN_EXE_spychro-probe");

/// A `nats-server -js` on a free port, killed when dropped.
struct Broker {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Broker {
    fn start(name: &str) -> Broker {
        let dir = std::env::temp_dir().join(format!("spychro-nats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut b = Broker {
            child: None,
            port,
            dir,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("nats-server (apt-get install nats-server) must be on PATH");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A worker host: the probe serving the broker with `n` local workers, in its own process
/// group (killed, group and all, when dropped).
struct Host(Child);

impl Host {
    fn start(url: &str, n: usize) -> Host {
        let child = Command::new(PROBE)
            .args(["cluster-host", url, &n.to_string()])
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start a host");
        Host(child)
    }

    fn kill_group(&mut self) {
        // SAFETY: kill(2) on the host's own process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill_group();
    }
}

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

/// Network namespaces made for one test and removed when dropped (even after a failure):
/// `b` holds the broker and a bridge; each other namespace is joined to the bridge by a veth
/// pair, with an address of its own on 10.213.0.0/24.
struct Net {
    prefix: String,
    names: Vec<String>,
}

impl Net {
    fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn must(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Makes the broker namespace and `others`; `None` when namespaces cannot be made here.
    fn make(others: &[&str]) -> Option<Net> {
        let prefix = format!("spy{}", std::process::id());
        let b = format!("{prefix}b");
        if !Net::ip(&["netns", "add", &b]) {
            return None;
        }
        let mut net = Net {
            prefix: prefix.clone(),
            names: vec![b.clone()],
        };
        Net::must(&["-n", &b, "link", "set", "lo", "up"]);
        Net::must(&["-n", &b, "link", "add", "br0", "type", "bridge"]);
        Net::must(&["-n", &b, "addr", "add", "10.213.0.1/24", "dev", "br0"]);
        Net::must(&["-n", &b, "link", "set", "br0", "up"]);
        for (k, other) in others.iter().enumerate() {
            let ns = format!("{prefix}{other}");
            Net::must(&["netns", "add", &ns]);
            net.names.push(ns.clone());
            let veth = format!("v{other}");
            Net::must(&[
                "-n", &b, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ]);
            Net::must(&["-n", &b, "link", "set", &veth, "master", "br0", "up"]);
            let addr = format!("10.213.0.{}/24", k + 2);
            Net::must(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            Net::must(&["-n", &ns, "link", "set", "eth0", "up"]);
            Net::must(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        Some(net)
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `f` on a thread whose network is namespace `name`'s.
    fn inside<T: Send + 'static>(&self, name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.ns(name));
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("the namespace's file");
            use std::os::fd::AsRawFd;
            // SAFETY: setns(2) on this thread only, with a namespace descriptor we hold.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("the thread inside the namespace")
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Net::ip(&["netns", "del", n]);
        }
    }
}

/// `cmd` started inside namespace `ns`, as the leader of its own process group.
fn in_ns(ns: &str, program: &str, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("ip netns exec")
}

fn kill_group(c: &mut Child) {
    // SAFETY: kill(2) on a process group this test started.
    unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
    let _ = c.wait();
}

#[test]
fn hosts_in_their_own_network_namespaces_survive_a_killed_host_a_restarted_broker_and_a_cut_link() {
    let Some(net) = Net::make(&["h1", "h2", "c"]) else {
        eprintln!(
            "network namespaces cannot be made here (not root?): the loopback tests above cover \
             a killed host and a restarted broker; CI runs this test as root"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("spychro-nats-netns-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dirs = dir.to_string_lossy().into_owned();
    let broker_args = [
        "-js",
        "-a",
        "10.213.0.1",
        "-p",
        "4222",
        "-sd",
        dirs.as_str(),
    ];
    let mut broker = in_ns(&net.ns("b"), "nats-server", &broker_args);
    let url = "nats://10.213.0.1:4222".to_string();
    let host = |name: &str| in_ns(&net.ns(name), PROBE, &["cluster-host", &url, "2"]);
    let mut h1 = host("h1");
    let mut h2 = host("h2");
    let job = |net: &Net, url: &str| {
        let url = url.to_owned();
        net.inside("c", move || {
            let cluster = Cluster::connect(&url).map_err(|e| e.to_string())?;
            cluster
                .run(
                    Job::new(slow_square, 0..400u64)
                        .args((5, u64::MAX))
                        .chunk_size(10),
                )
                .map_err(|e| e.to_string())
        })
    };
    let want: Vec<u64> = (0..400u64).map(|x| x * x).collect();

    // Across namespaces, nothing happening.
    assert_eq!(job(&net, &url).unwrap(), want);

    // A host killed mid-job (its whole process group).
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill_group(&mut h1);
    });
    let t = Instant::now();
    assert_eq!(job(&net, &url).unwrap(), want, "a host killed");
    killer.join().unwrap();
    eprintln!("netns: one host killed mid-job: {:?}", t.elapsed());
    let mut h1 = host("h1");

    // The broker restarted mid-job (file storage).
    let b = net.ns("b");
    let broker_args: Vec<String> = broker_args.iter().map(|s| s.to_string()).collect();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        kill_group(&mut broker);
        std::thread::sleep(Duration::from_millis(300));
        let args: Vec<&str> = broker_args.iter().map(String::as_str).collect();
        in_ns(&b, "nats-server", &args)
    });
    let t = Instant::now();
    assert_eq!(job(&net, &url).unwrap(), want, "the broker restarted");
    let mut broker = restarter.join().unwrap();
    eprintln!("netns: broker restarted mid-job: {:?}", t.elapsed());

    // A host's link cut mid-job, and brought back.
    let h2ns = net.ns("h2");
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        Net::must(&["-n", &h2ns, "link", "set", "eth0", "down"]);
        std::thread::sleep(Duration::from_secs(3));
        Net::must(&["-n", &h2ns, "link", "set", "eth0", "up"]);
    });
    let t = Instant::now();
    assert_eq!(job(&net, &url).unwrap(), want, "a host's link cut");
    cutter.join().unwrap();
    eprintln!(
        "netns: a host's link cut for 3 s mid-job: {:?}",
        t.elapsed()
    );

    kill_group(&mut h1);
    kill_group(&mut h2);
    kill_group(&mut broker);
    let _ = std::fs::remove_dir_all(&dir);
}
