//! The cluster backend against a real `nats-server -js` that each test starts (on a free
//! port, with file storage in a fresh directory), with worker hosts as real processes
//! (`spychro-probe cluster-host URL N`, each the leader of its own process group): results
//! in input order, item failures isolated, a host killed mid-job and a broker restarted
//! mid-job losing nothing.
#![cfg(feature = "cluster")]

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
