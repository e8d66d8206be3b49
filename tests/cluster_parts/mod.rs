//! What the cluster tests share: a real `nats-server -js` on free ports (with its HTTP
//! monitor, to read what the broker holds), worker hosts as real processes (`spychro-probe
//! cluster-host URL N`, each the leader of its own process group), and network namespaces
//! for hosts cut off from the broker.
#![allow(dead_code)] // each test file uses its own part of these

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PROBE: &str = env!("CARGO_BIN_EXE_spychro-probe");

/// The items stream and the hosts' consumer of it (spychro/src/cluster/messages.rs).
pub const ITEMS_STREAM: &str = "SPYCHRO_ITEMS";
pub const HOSTS_CONSUMER: &str = "spychro-hosts";

/// A `nats-server -js` on a free port (and its HTTP monitor on another), killed when dropped.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    monitor: u16,
    dir: std::path::PathBuf,
}

/// What the broker's monitor (`/jsz`) says of the items stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Items {
    /// Messages (batches) the items stream holds.
    pub messages: u64,
    /// Batches delivered to hosts and not yet acknowledged (the hosts' consumer; 0 before
    /// any host made it).
    pub ack_pending: u64,
}

impl Broker {
    pub fn start(name: &str) -> Broker {
        let dir = std::env::temp_dir().join(format!("spychro-nats-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Both listeners held at once, so that the two ports differ.
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        let monitor = b.local_addr().unwrap().port();
        drop((a, b));
        let mut broker = Broker {
            child: None,
            port,
            monitor,
            dir,
        };
        broker.spawn();
        broker
    }

    pub fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor.to_string(),
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
        for port in [self.port, self.monitor] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "nats-server did not listen on {port}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The monitor's `/jsz` with every stream and consumer (plain HTTP/1.0).
    pub fn jsz(&self) -> serde_json::Value {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.monitor))
            .expect("connect to the broker's monitor");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /jsz?streams=true&consumers=true HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply)
            .expect("read the monitor's reply");
        let (head, body) = reply
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP reply: {reply:?}"));
        assert!(head.contains(" 200 "), "the monitor answered {head:?}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("/jsz is not JSON ({e}): {body}"))
    }

    /// The streams `/jsz` lists (every account's).
    fn streams(jsz: &serde_json::Value) -> Vec<&serde_json::Value> {
        jsz["account_details"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["stream_detail"].as_array().into_iter().flatten())
            .collect()
    }

    /// How many messages stream `name` holds (`None`: no such stream).
    pub fn stream_messages(&self, name: &str) -> Option<u64> {
        let jsz = self.jsz();
        Broker::streams(&jsz)
            .into_iter()
            .find(|s| s["name"] == name)
            .map(|s| s["state"]["messages"].as_u64().unwrap_or(0))
    }

    /// The names of stream `name`'s consumers (none when there is no such stream).
    pub fn consumers(&self, name: &str) -> Vec<String> {
        let jsz = self.jsz();
        Broker::streams(&jsz)
            .into_iter()
            .filter(|s| s["name"] == name)
            .flat_map(|s| s["consumer_detail"].as_array().into_iter().flatten())
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect()
    }

    /// The items stream's messages and the hosts' consumer's `num_ack_pending` (`None`: the
    /// items stream is not there yet).
    pub fn items(&self) -> Option<Items> {
        let jsz = self.jsz();
        let stream = Broker::streams(&jsz)
            .into_iter()
            .find(|s| s["name"] == ITEMS_STREAM)?;
        let ack_pending = stream["consumer_detail"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == HOSTS_CONSUMER)
            .map(|c| c["num_ack_pending"].as_u64().unwrap_or(0))
            .unwrap_or(0);
        Some(Items {
            messages: stream["state"]["messages"].as_u64().unwrap_or(0),
            ack_pending,
        })
    }

    /// Polls the monitor until the items stream holds no batch and the hosts hold none
    /// unacknowledged: how long that took, or what was last seen when `limit` ran out.
    pub fn wait_items_drained(&self, limit: Duration) -> Result<Duration, Option<Items>> {
        let t = Instant::now();
        let empty = Items {
            messages: 0,
            ack_pending: 0,
        };
        loop {
            let now = self.items();
            if now == Some(empty) {
                return Ok(t.elapsed());
            }
            if t.elapsed() > limit {
                return Err(now);
            }
            std::thread::sleep(Duration::from_millis(50));
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
pub struct Host(Child);

impl Host {
    pub fn start(url: &str, n: usize) -> Host {
        let child = Command::new(PROBE)
            .args(["cluster-host", url, &n.to_string()])
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start a host");
        Host(child)
    }

    pub fn kill_group(&mut self) {
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

/// Network namespaces made for one test and removed when dropped (even after a failure):
/// `b` holds the broker and a bridge; each other namespace is joined to the bridge by a veth
/// pair, with an address of its own on 10.213.0.0/24.
pub struct Net {
    prefix: String,
    names: Vec<String>,
}

impl Net {
    pub fn ip(args: &[&str]) -> bool {
        Command::new("ip")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn must(args: &[&str]) {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Makes the broker namespace and `others`; `None` when namespaces cannot be made here.
    pub fn make(others: &[&str]) -> Option<Net> {
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

    pub fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `f` on a thread whose network is namespace `name`'s.
    pub fn inside<T: Send + 'static>(
        &self,
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
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
pub fn in_ns(ns: &str, program: &str, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("ip netns exec")
}

pub fn kill_group(c: &mut Child) {
    // SAFETY: kill(2) on a process group this test started.
    unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
    let _ = c.wait();
}
