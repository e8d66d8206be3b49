//! A small program for the integration tests: a spychro binary built from different code than
//! the tests, and a parent whose workers the tests can observe (and signal) from outside.
//!
//! ```text
//! spychro-probe run N PROCESSES   run `square` over 0..N multi-processed, print the sum
//! spychro-probe hang DIR P        P workers, each writes DIR/worker-<pid> and sleeps 60 s;
//!                                 on `Interrupted` print what this process sees of its
//!                                 children and workers, and exit 130 (1 on another error)
//! spychro-probe nested DIR P Q    a non-daemon pool of P workers, each writes DIR/outer-<pid>
//!                                 and runs a pool of Q `hang` workers (DIR/inner-<pid>);
//!                                 exits as `hang` does
//! spychro-probe release DIR P     P workers, each writes DIR/worker-<pid> and waits for
//!                                 DIR/release; then writes the run's outcome to DIR/after
//!                                 ("ok SUM", "interrupted SIGNAL", "error ...") and waits
//!                                 for DIR/exit (at most 60 s) before exiting 0
//! spychro-probe chatty N LINES    N items on 4 workers, each prints LINES long lines to
//!                                 stdout and to stderr (in pieces), returns a checksum;
//!                                 prints `result ITEM CHECKSUM` for each item
//! spychro-probe held DIR          holds a stream of quick items (workers announced as
//!                                 DIR/worker-PID) after one output, writes DIR/ready and
//!                                 sleeps 60 s outside spychro, SIGINT left as it was
//! spychro-probe handled DIR       the same with a SIGINT handler of its own; once it ran,
//!                                 reports the workers' states, then what `next` returns
//! spychro-probe descendants DIR M items start `sleep 60` (DIR/sleep-PID) and a detached
//!                                 grandchild in a session of its own (DIR/orphan-PID);
//!                                 M: `return` (items end), `keep` (the same with
//!                                 kill_descendants(false)), `hang` (items then sleep 60 s)
//! spychro-probe longline BYTES    one item prints a line of BYTES letters
//! spychro-probe nofile            runs a pool with almost no descriptors left; prints the error
//! spychro-probe storm RUNS        runs tiny jobs RUNS times while another thread sends SIGTERM
//!                                 to this process; its own SIGTERM handler counts them;
//!                                 prints `sent S handled H`
//! spychro-probe pool DIR          a `Pool` of 2 workers (DIR/worker-PID; the caller is
//!                                 DIR/caller-PID) and two jobs spawned on it, one item each
//!                                 that announces its worker (DIR/a-PID, DIR/b-PID) and sleeps
//!                                 60 s; writes DIR/waiting and waits on both handles, then
//!                                 prints `job a: OUTCOME`, `job b: OUTCOME` (`interrupted
//!                                 SIGNAL`, `finished`, `error ...`), its children, the pool's
//!                                 workers and whether it takes another job; exits 0
//! spychro-probe supervisor DIR    a `Supervisor` of 3 actors and a resident: each actor
//!                                 finds the resident and greets it (the resident announces
//!                                 itself as DIR/resident-PID on the first greeting),
//!                                 announces itself as DIR/actor-PID and serves 60 s; the
//!                                 caller is DIR/caller-PID, writes DIR/waiting and
//!                                 supervises, then prints `supervise: OUTCOME`, its
//!                                 children, `pids: [..]` (the supervisor's last pids) and the
//!                                 state of each announced pid; exits 0
//! spychro-probe supervisor-handler DIR
//!                                 `supervisor DIR`, but the first actor also sends its pid to
//!                                 the caller, whose object handler announces DIR/handling-PID
//!                                 and stays busy (on the routing thread) until every process
//!                                 is killed and reaped, and at least 150 ms; prints
//!                                 `supervise: OUTCOME`, its children and `pids: [..]`
//! spychro-probe supervisor-stale DIR
//!                                 supervises one short actor, then starts `sleep 60` in a
//!                                 group of its own with the actor's pid (root only: through
//!                                 /proc/sys/kernel/ns_last_pid; `other: pid not reused`
//!                                 otherwise), then runs a `hang` worker (DIR/worker-PID);
//!                                 prints `run: OUTCOME` and `other: running` or `other:
//!                                 ended STATUS`
//! spychro-probe supervisor-input  a `Supervisor` of two actors that each ask two questions
//!                                 on the caller's stdin (`asker A question Q? `) and one
//!                                 that sends 20 objects meanwhile; prints `answer A Q TEXT`
//!                                 and `chat I` for each, then `done` (or `supervise: error
//!                                 ...`), its children and `pids: [..]`; exits 0
//! spychro-probe cluster-caller URL
//!                                 (`cluster` feature) streams `slow_square` over 0..400 (200 ms
//!                                 each, 10 items a batch) on the cluster at URL; prints `first`
//!                                 after the first output, then `sum S`; on an error prints
//!                                 it to stderr and exits 3
//! ```

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[spychro::job]
fn square(x: u64) -> u64 {
    x * x
}

/// Creates `prefix<pid>` (the file's name is this process's pid), atomically.
fn announce(prefix: &str) {
    announce_pid(prefix, std::process::id());
}

/// Creates `prefix<pid>` for another process's `pid`, atomically.
fn announce_pid(prefix: &str, pid: u32) {
    let path = format!("{prefix}{pid}");
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, b"").expect("write the pid file");
    std::fs::rename(&tmp, &path).expect("publish the pid file");
}

/// Announces this worker, then sleeps far longer than any test waits.
#[spychro::job]
fn hang_item(prefix: String) -> u32 {
    announce(&prefix);
    std::thread::sleep(Duration::from_secs(60));
    std::process::id()
}

/// Announces this worker, waits for `DIR/close`, closes every descriptor above stderr (its
/// socket among them), announces that as `DIR/closed-PID`, then sleeps far longer than any
/// test waits.
#[spychro::job]
fn close_then_hang(dir: String) -> u32 {
    announce(&format!("{dir}/worker-"));
    if !wait_for(&Path::new(&dir).join("close")) {
        return 0;
    }
    for fd in 3..1024 {
        // SAFETY: none needed: closing descriptors this job does not own is the misbehaviour
        // under test.
        unsafe { libc::close(fd) };
    }
    announce(&format!("{dir}/closed-"));
    std::thread::sleep(Duration::from_secs(60));
    std::process::id()
}

/// Announces this (non-daemonic) worker, then runs a pool of `q` hanging workers.
#[spychro::job]
fn nest_outer(dir: String, q: usize) -> u32 {
    announce(&format!("{dir}/outer-"));
    let prefix = format!("{dir}/inner-");
    let out = spychro::Job::new(hang_item, vec![prefix; q])
        .processes(q)
        .chunk_size(1)
        .run_multi_processed()
        .expect("the inner job runs");
    out.len() as u32
}

/// Waits (at most 60 s) for `path` to exist.
fn wait_for(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Announces this worker and waits for `DIR/release`.
#[spychro::job]
fn release_item(dir: String) -> u64 {
    announce(&format!("{dir}/worker-"));
    assert!(
        wait_for(&Path::new(&dir).join("release")),
        "release never came"
    );
    1
}

use suite::chatty_payload as payload;

/// Prints `lines` long lines to stdout and to stderr, each written in several pieces, and
/// returns a checksum of what it printed.
#[spychro::job]
fn chatty_item(item: u64, lines: &u64) -> u64 {
    let pid = std::process::id();
    let mut sum = 0u64;
    for line in 0..*lines {
        let text = payload(item, line);
        sum = sum.wrapping_mul(31).wrapping_add(text.len() as u64 + line);
        let (head, tail) = text.split_at(text.len() / 2);
        {
            let mut out = std::io::stdout().lock();
            write!(out, "out item={item} pid={pid} line={line} {head}").unwrap();
            out.flush().unwrap();
            writeln!(out, "{tail} end").unwrap();
        }
        {
            let mut err = std::io::stderr().lock();
            write!(err, "err item={item} pid={pid} line={line} ").unwrap();
            write!(err, "{head}").unwrap();
            writeln!(err, "{tail} end").unwrap();
        }
    }
    sum
}

/// The state of process `pid` from `/proc/PID/stat` ("R", "S", "Z", ...), or "gone".
fn proc_state(pid: u32) -> String {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?")
            .to_owned(),
        Err(_) => "gone".to_owned(),
    }
}

/// The pids announced in `dir` with `prefix`.
fn announced(dir: &Path, prefix: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_prefix(prefix)?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// Prints this process's children now (`children: [PID:STATE ...]`).
fn print_children() {
    let children = suite::children(std::process::id());
    println!(
        "children: [{}]",
        children
            .iter()
            .map(|p| format!("{p}:{}", proc_state(*p)))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// How a job ended, in a word or two: `finished`, `interrupted SIGNAL` or `error ...`.
fn outcome<T>(result: Result<T, spychro::Error>) -> String {
    match result {
        Ok(_) => "finished".to_owned(),
        Err(spychro::Error::Interrupted { signal }) => format!("interrupted {signal}"),
        Err(e) => format!("error {e}"),
    }
}

/// Ends a run that was expected to be interrupted: on `Interrupted`, prints what this process
/// sees right after the run returned (its children, the state of each announced worker) and
/// exits 130; exits 1 on anything else.
fn end_interrupted<T>(result: Result<T, spychro::Error>, dir: &Path, prefixes: &[&str]) -> ! {
    match result {
        Err(spychro::Error::Interrupted { signal }) => {
            println!("interrupted by signal {signal}");
            print_children();
            for prefix in prefixes {
                for pid in announced(dir, prefix) {
                    println!("{prefix}{pid}: {}", proc_state(pid));
                }
            }
            std::io::stdout().flush().unwrap();
            std::process::exit(130);
        }
        Err(e) => {
            println!("error: {e}");
            std::process::exit(1);
        }
        Ok(_) => {
            println!("finished without being interrupted");
            std::process::exit(1);
        }
    }
}

/// The mark of SIGINT (signal 2, bit 1) in the masks of `/proc/self/status`: "ignored",
/// "caught" or "default".
fn sigint_disposition() -> &'static str {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    if mask("SigIgn:") & 2 != 0 {
        "ignored"
    } else if mask("SigCgt:") & 2 != 0 {
        "caught"
    } else {
        "default"
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: spychro-probe run N PROCESSES | hang DIR P | hang-closed DIR | nested DIR P Q | release DIR P \
         | chatty N LINES | held DIR | handled DIR | descendants DIR MODE | longline BYTES \
         | nofile | storm RUNS | pool DIR | supervisor DIR | supervisor-handler DIR \
         | supervisor-stale DIR | supervisor-input"
    );
    std::process::exit(2);
}

/// Announces this worker once (as `DIR/worker-PID`) and returns `x`.
#[spychro::job]
fn quick(x: u64, dir: &str) -> u64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    static ANNOUNCED: AtomicBool = AtomicBool::new(false);
    if !ANNOUNCED.swap(true, Ordering::Relaxed) {
        announce(&format!("{dir}/worker-"));
    }
    x
}

/// A stream whose first output was read and whose workers are announced.
fn held_stream(dir: &str) -> spychro::Results<'static, quick, std::ops::Range<u64>> {
    let mut stream = spychro::Job::new(quick, 0..10_000_000u64)
        .args(dir.to_string())
        .processes(2)
        .stream_multi_processed()
        .expect("the stream starts");
    assert_eq!(stream.next().map(|r| r.ok()), Some(Some(0)));
    stream
}

static SIGNALS_SEEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS_SEEN.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Installs [`count_signal`] for `signal`.
fn count_signals(signal: libc::c_int) {
    // SAFETY: the handler only increments an atomic, which is async-signal-safe.
    unsafe { libc::signal(signal, count_signal as *const () as libc::sighandler_t) };
}

/// Starts `sleep 60` (DIR/sleep-PID) and a grandchild in a session of its own whose parent
/// exits at once (DIR/orphan-PID), then returns `x`.
#[spychro::job]
fn start_descendants(x: u64, dir: &str, hang: &bool) -> u64 {
    let sleep = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start sleep");
    std::fs::write(format!("{dir}/sleep-{}", sleep.id()), b"").unwrap();
    std::mem::forget(sleep);
    // The grandchild runs a shell that records its pid and becomes `sleep 60`; everything it
    // needs is made before forking, so the children only call setsid, fork, execv and _exit
    // (async-signal-safe).
    let sh = std::ffi::CString::new("/bin/sh").unwrap();
    let flag = std::ffi::CString::new("-c").unwrap();
    let script = std::ffi::CString::new(format!(
        "touch {dir}/orphan-$$ {dir}/item-{x}-orphan; exec sleep 60"
    ))
    .unwrap();
    let argv = [
        sh.as_ptr(),
        flag.as_ptr(),
        script.as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: see above; `argv` is a null-terminated array of C strings that outlive the call.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            libc::setsid();
            if libc::fork() == 0 {
                libc::execv(sh.as_ptr(), argv.as_ptr());
            }
            libc::_exit(0);
        }
    }
    // SAFETY: waits for our own child, which exits at once.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    assert!(
        wait_for(&Path::new(dir).join(format!("item-{x}-orphan"))),
        "the orphan never started"
    );
    if *hang {
        announce(&format!("{dir}/worker-"));
        std::thread::sleep(Duration::from_secs(60));
    }
    x
}

/// Prints a line of `bytes` letters.
#[spychro::job]
fn long_line(bytes: usize) -> usize {
    let line: String = (0..bytes)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    println!("{line}");
    bytes
}

/// The supervisor modes' messages.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, spychro::Message)]
enum ProbeMsg {
    Hello,
}

/// A resident that announces itself (as `DIR/resident-PID`) on the first greeting.
#[derive(serde::Serialize, serde::Deserialize)]
struct Keeper {
    dir: String,
    announced: bool,
}

#[spychro::actor]
impl spychro::Actor for Keeper {
    type Message = ProbeMsg;
    const RESIDENT: bool = true;
    fn handle(
        &mut self,
        _: spychro::Letter<ProbeMsg>,
        _: &mut spychro::Link<ProbeMsg>,
    ) -> Result<spychro::Flow, spychro::Fail> {
        if !self.announced {
            self.announced = true;
            announce(&format!("{}/resident-", self.dir));
        }
        Ok(spychro::Flow::Continue)
    }
}

/// Greets the resident, announces itself (as `DIR/actor-PID`) and serves for 60 s. Its
/// announcement comes after a round trip through the supervisor (the ids of `Keeper`), so
/// the caller is inside `supervise`, routing, once it is there.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sleeper {
    dir: String,
    /// Sends its pid to the caller once announced.
    report: bool,
}

#[spychro::actor]
impl spychro::Actor for Sleeper {
    type Message = ProbeMsg;
    fn run(&mut self, link: &mut spychro::Link<ProbeMsg>) -> Result<(), spychro::Fail> {
        let keeper = link.get_ids("Keeper")?;
        link.send_each(&keeper, ProbeMsg::Hello)?;
        announce(&format!("{}/actor-", self.dir));
        if self.report {
            link.send_object(&std::process::id())?;
        }
        link.serve_for(self, Duration::from_secs(60))?;
        Ok(())
    }
}

/// What the input mode's actors send the caller.
#[derive(serde::Serialize, serde::Deserialize)]
enum Note {
    Answer {
        asker: u32,
        question: u32,
        text: String,
    },
    Chat(u32),
}

/// Asks two questions on the caller's stdin and sends each answer as it comes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Asker(u32);

#[spychro::actor]
impl spychro::Actor for Asker {
    type Message = ProbeMsg;
    fn run(&mut self, link: &mut spychro::Link<ProbeMsg>) -> Result<(), spychro::Fail> {
        for question in 1..=2 {
            let text = link.inpt(format!("asker {} question {question}? ", self.0))?;
            link.send_object(&Note::Answer {
                asker: self.0,
                question,
                text,
            })?;
        }
        Ok(())
    }
}

/// Sends 20 objects while the askers wait for their answers.
#[derive(serde::Serialize, serde::Deserialize)]
struct Chatter;

#[spychro::actor]
impl spychro::Actor for Chatter {
    type Message = ProbeMsg;
    fn run(&mut self, link: &mut spychro::Link<ProbeMsg>) -> Result<(), spychro::Fail> {
        for i in 0..20 {
            link.send_object(&Note::Chat(i))?;
        }
        Ok(())
    }
}

/// Prints the supervisor's last pids (`pids: [..]`).
fn print_supervisor_pids(s: &spychro::Supervisor<'_, ProbeMsg>) {
    let pids: Vec<u32> = s.pids().iter().filter_map(|(_, p)| *p).collect();
    println!("pids: {pids:?}");
}

/// Its parent's pid, and whether its process started as a fork server (whose environment,
/// as the kernel keeps it from `execve`, a copy shares).
#[spychro::job]
fn parent_and_origin(_: u32) -> (u32, bool) {
    let environ = std::fs::read("/proc/self/environ").unwrap_or_default();
    let copied = environ
        .split(|&b| b == 0)
        .any(|e| e.starts_with(b"SPYCHRO_FORK_SERVER="));
    (std::os::unix::process::parent_id(), copied)
}

/// Writes a line to stdout; returns whether its process is a fork server's copy, and what
/// its stdout is (`/proc/self/fd/1`).
#[spychro::job]
fn shout_and_origin(x: u64) -> (bool, String) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "shout {x}");
    let target = std::fs::read_link("/proc/self/fd/1")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("none ({e})"));
    (parent_and_origin(0).1, target)
}

/// Prints a line to stdout and one to stderr; returns its pid.
#[spychro::job]
fn shout(x: u64) -> u32 {
    println!("shout {x}");
    eprintln!("whisper {x}");
    std::process::id()
}

fn more(args: &[&str]) {
    match args {
        // Workers from a fork server: their output forwarded, nothing left once it is dropped.
        ["fork-server-output"] => {
            let server = spychro::ForkServer::start().unwrap();
            println!("server {}", server.pid());
            let pids = spychro::Job::new(shout, 1..=2u64)
                .processes(2)
                .chunk_size(1)
                .run_multi_processed()
                .unwrap();
            println!("workers {pids:?}");
            drop(server);
            print_children();
        }
        // A process forked from one with a fork server: its workers are its own children
        // (executed), and the server still serves the process that started it.
        ["fork-server-fork"] => {
            let server = spychro::ForkServer::start().unwrap();
            let run = || {
                let out = spychro::Job::new(parent_and_origin, 0..2u32)
                    .processes(2)
                    .run_multi_processed()
                    .unwrap();
                let me = std::process::id();
                let parents_ok = out.iter().all(|o| o.0 == me);
                let copied: Vec<bool> = out.iter().map(|o| o.1).collect();
                format!("parents ok {parents_ok} copied {copied:?}")
            };
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            // SAFETY: this process is single-threaded here (no run is under way).
            let child = unsafe { libc::fork() };
            if child == 0 {
                println!("child: {}", run());
                drop(server);
                std::io::Write::flush(&mut std::io::stdout()).unwrap();
                // SAFETY: ends the forked child at once.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for the child forked above.
            unsafe { libc::waitpid(child, &mut status, 0) };
            println!("child exited {status}");
            println!("parent: {}", run());
            println!("server alive {}", suite::alive(server.pid()));
        }
        // A caller whose stdout is closed: its workers, copied from a fork server or
        // executed, write theirs to /dev/null.
        ["closed-stdout", how] => {
            let server = (*how == "fork-server").then(|| spychro::ForkServer::start().unwrap());
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            // SAFETY: closes this process's stdout; nothing here writes to it after this.
            unsafe { libc::close(1) };
            let out = spychro::Job::new(shout_and_origin, 0..2u64)
                .processes(2)
                .forward_output(false)
                .run_multi_processed();
            match out {
                Ok(copied) => eprintln!("ran: copied {copied:?}"),
                Err(e) => eprintln!("error: {e}"),
            }
            drop(server);
        }
        // A caller that lets go of its stdout while it goes on (as a daemon does): the pipe's
        // reader must see its end, though the fork server still runs.
        ["fork-server-release"] => {
            // An inheritable pipe the server would inherit: its reader must see the end too.
            let mut ends = [0; 2];
            // SAFETY: pipe writes two descriptors into `ends`.
            assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
            let server = spychro::ForkServer::start().unwrap();
            // SAFETY: closes this process's write end; reads from its read end, which becomes
            // readable (at its end) once no process holds the write end.
            let seen = unsafe {
                libc::close(ends[1]);
                let mut fds = [libc::pollfd {
                    fd: ends[0],
                    events: libc::POLLIN,
                    revents: 0,
                }];
                libc::poll(fds.as_mut_ptr(), 1, 10_000) == 1
            };
            println!("inherited pipe ended: {seen}");
            let out = spychro::Job::new(square, 1..=2u64)
                .run_multi_processed()
                .unwrap();
            println!("server {} squares {out:?}", server.pid());
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            let null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap();
            // SAFETY: replaces this process's stdout; nothing writes to it meanwhile.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 1) };
            std::thread::sleep(Duration::from_secs(60));
        }
        // A fork server whose caller is then killed (by the test).
        ["fork-server-orphan"] => {
            let server = spychro::ForkServer::start().unwrap();
            let out = spychro::Job::new(square, 1..=3u64)
                .run_multi_processed()
                .unwrap();
            println!("server {} squares {out:?}", server.pid());
            std::io::Write::flush(&mut std::io::stdout()).unwrap();
            std::thread::sleep(Duration::from_secs(60));
            println!("still running after 60 s");
        }
        ["held", dir] => {
            let _stream = held_stream(dir);
            std::fs::write(Path::new(dir).join("ready"), b"").unwrap();
            std::thread::sleep(Duration::from_secs(60));
            println!("still running after 60 s");
        }
        ["handled", dir] => {
            count_signals(libc::SIGINT);
            let mut stream = held_stream(dir);
            std::fs::write(Path::new(dir).join("ready"), b"").unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while SIGNALS_SEEN.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                assert!(Instant::now() < deadline, "no SIGINT came");
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(300));
            let workers = suite::children(std::process::id());
            println!("workers: {}", workers.len());
            for pid in workers {
                println!("worker-{pid}: {}", proc_state(pid));
            }
            match stream.next() {
                Some(Err(spychro::Error::Interrupted { signal })) => {
                    println!("next: interrupted {signal}")
                }
                Some(Ok(x)) => println!("next: output {x}"),
                Some(Err(e)) => println!("next: error {e}"),
                None => println!("next: end"),
            }
            println!("next again: {}", stream.next().is_none());
            println!(
                "handled {}",
                SIGNALS_SEEN.load(std::sync::atomic::Ordering::SeqCst)
            );
        }
        ["descendants", dir, mode] => {
            let hang = *mode == "hang";
            let result = spychro::Job::new(start_descendants, 0..2u64)
                .args((dir.to_string(), hang))
                .processes(2)
                .chunk_size(1)
                .kill_descendants(*mode != "keep")
                .run_multi_processed();
            println!("ran: {:?}", result.map(|v| v.len()));
        }
        ["longline", bytes] => {
            let bytes: usize = bytes.parse().unwrap_or_else(|_| usage());
            let out = spychro::Job::new(long_line, [bytes])
                .processes(1)
                .run_multi_processed()
                .expect("the job runs");
            assert_eq!(out, [bytes]);
        }
        ["nofile"] => {
            let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
            let limit = libc::rlimit {
                rlim_cur: open + 3,
                rlim_max: open + 3,
            };
            // SAFETY: setrlimit reads the struct we own.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
            match spychro::Job::new(square, 0..10u64)
                .processes(4)
                .run_multi_processed()
            {
                Ok(_) => println!("ran"),
                Err(e) => println!("error: {e}"),
            }
        }
        ["storm", runs] => {
            let runs: u64 = runs.parse().unwrap_or_else(|_| usage());
            count_signals(libc::SIGTERM);
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            // Each signal is sent once the one before was handled: pending signals of one
            // kind merge, so only an unhandled signal can make the counts differ.
            let sender = {
                let done = done.clone();
                std::thread::spawn(move || {
                    let mut sent = 0usize;
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        // SAFETY: kill(2) on this process.
                        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                        sent += 1;
                        let deadline = Instant::now() + Duration::from_secs(1);
                        while SIGNALS_SEEN.load(std::sync::atomic::Ordering::SeqCst) < sent
                            && Instant::now() < deadline
                        {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        std::thread::sleep(Duration::from_micros(300));
                    }
                    sent
                })
            };
            let mut interrupted = 0;
            for _ in 0..runs {
                match spychro::Job::new(square, 0..8u64)
                    .processes(1)
                    .run_multi_processed()
                {
                    Ok(_) => {}
                    Err(spychro::Error::Interrupted { .. }) => interrupted += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            let sent = sender.join().unwrap();
            // Let the last signals be delivered.
            std::thread::sleep(Duration::from_millis(100));
            println!(
                "sent {sent} handled {} interrupted {interrupted}",
                SIGNALS_SEEN.load(std::sync::atomic::Ordering::SeqCst)
            );
        }
        ["pool", dir] => {
            let pool = spychro::Pool::builder()
                .processes(2)
                .start()
                .expect("the pool starts");
            let job = |name: &str| {
                spychro::Job::new(hang_item, [format!("{dir}/{name}-")])
                    .on(&pool)
                    .spawn()
                    .expect("the job starts")
            };
            let (a, b) = (job("a"), job("b"));
            for pid in pool.pids() {
                announce_pid(&format!("{dir}/worker-"), pid);
            }
            announce(&format!("{dir}/caller-"));
            std::fs::write(Path::new(dir).join("waiting"), b"").unwrap();
            println!("job a: {}", outcome(a.wait()));
            println!("job b: {}", outcome(b.wait()));
            print_children();
            println!("pool workers: {:?}", pool.pids());
            match pool.submit(square, 3) {
                Ok(call) => println!("submit after: taken, {}", outcome(call.wait())),
                Err(e) => println!("submit after: refused: {e}"),
            }
        }
        ["supervisor", dir] => {
            let mut s = spychro::Supervisor::<ProbeMsg>::new();
            s.add(Keeper {
                dir: dir.to_string(),
                announced: false,
            });
            for _ in 0..3 {
                s.add(Sleeper {
                    dir: dir.to_string(),
                    report: false,
                });
            }
            announce(&format!("{dir}/caller-"));
            std::fs::write(Path::new(dir).join("waiting"), b"").unwrap();
            println!("supervise: {}", outcome(s.supervise()));
            print_children();
            print_supervisor_pids(&s);
            for prefix in ["actor-", "resident-"] {
                for pid in announced(Path::new(dir), prefix) {
                    println!("{prefix}{pid}: {}", proc_state(pid));
                }
            }
        }
        ["supervisor-handler", dir] => {
            let mut s = spychro::Supervisor::<ProbeMsg>::new();
            s.add(Keeper {
                dir: dir.to_string(),
                announced: false,
            });
            for report in [true, false, false] {
                s.add(Sleeper {
                    dir: dir.to_string(),
                    report,
                });
            }
            s.on_object(|_, _: u32| {
                // Busy in the handler, on the routing thread, while the signal comes: until
                // every process has been killed and reaped, and at least 150 ms.
                announce(&format!("{dir}/handling-"));
                let start = Instant::now();
                while !(suite::children(std::process::id()).is_empty()
                    && start.elapsed() >= Duration::from_millis(150))
                {
                    if start.elapsed() > Duration::from_secs(20) {
                        println!("handler: the processes still run after 20 s");
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            println!("supervise: {}", outcome(s.supervise()));
            print_children();
            print_supervisor_pids(&s);
        }
        ["supervisor-stale", dir] => {
            let mut s = spychro::Supervisor::<ProbeMsg>::new();
            s.add(Chatter);
            s.on_object(|_, _: Note| {});
            println!("supervise: {}", outcome(s.supervise()));
            let member = s.pids()[0].1.expect("the member's pid");
            drop(s);
            println!("member {member}: {}", proc_state(member));
            // The next process this program starts gets the member's pid (root only): an
            // unrelated `sleep 60`, leader of a process group of its own.
            let reuse = std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", member - 1));
            let mut other = std::process::Command::new("sleep")
                .arg("60")
                .process_group(0)
                .spawn()
                .expect("start sleep");
            if reuse.is_err() || other.id() != member {
                println!("other: pid not reused ({reuse:?}, {})", other.id());
                let _ = other.kill();
                let _ = other.wait();
                return;
            }
            println!("other {}: the member's pid", other.id());
            // A later, unrelated run: interrupted by the test's SIGINT.
            let result = spychro::Job::new(hang_item, [format!("{dir}/worker-")])
                .processes(1)
                .run_multi_processed();
            println!("run: {}", outcome(result));
            std::thread::sleep(Duration::from_millis(100));
            match other.try_wait() {
                Ok(Some(status)) => println!("other: ended {status}"),
                _ => println!("other: running"),
            }
            let _ = other.kill();
            let _ = other.wait();
        }
        ["supervisor-input"] => {
            let mut s = spychro::Supervisor::<ProbeMsg>::new();
            s.add(Asker(1));
            s.add(Asker(2));
            s.add(Chatter);
            s.on_object(|_, note: Note| {
                let mut out = std::io::stdout().lock();
                match note {
                    Note::Answer {
                        asker,
                        question,
                        text,
                    } => writeln!(out, "answer {asker} {question} {text}"),
                    Note::Chat(i) => writeln!(out, "chat {i}"),
                }
                .unwrap();
                out.flush().unwrap();
            });
            match s.supervise() {
                Ok(_) => println!("done"),
                Err(e) => println!("supervise: error {e}"),
            }
            print_children();
            print_supervisor_pids(&s);
        }
        #[cfg(feature = "cluster")]
        ["cluster-host", url, n] => {
            if let Err(e) =
                spychro::cluster::serve(url, Some(n.parse().expect("a number of processes")))
            {
                eprintln!("cluster host: {e}");
                std::process::exit(1);
            }
        }
        #[cfg(feature = "cluster")]
        ["cluster-caller", url, rest @ ..] => {
            let gone_after = rest.first().map(|s| s.parse::<u64>().expect("seconds"));
            let run = || -> Result<u64, spychro::Error> {
                let mut cluster = spychro::cluster::Cluster::connect(url)?;
                if let Some(secs) = gone_after {
                    cluster = cluster.gone_after(std::time::Duration::from_secs(secs));
                }
                let job = spychro::Job::new(suite::cluster_jobs::slow_square, 0..400u64)
                    .args((200, u64::MAX))
                    .chunk_size(10);
                let mut outputs = cluster.stream(job)?;
                let mut sum = outputs.next().transpose()?.unwrap_or(0);
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "first").unwrap();
                stdout.flush().unwrap();
                for out in outputs {
                    sum += out?;
                }
                Ok(sum)
            };
            match run() {
                Ok(sum) => println!("sum {sum}"),
                Err(e) => {
                    eprintln!("cluster caller: {e}");
                    std::process::exit(3);
                }
            }
        }
        _ => usage(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |s: &str| -> u64 { s.parse().unwrap_or_else(|_| usage()) };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["run", n, p] => {
            let n: u64 = n.parse().expect("N");
            let p: usize = p.parse().expect("PROCESSES");
            let out = spychro::Job::new(square, 0..n)
                .processes(p)
                .run_multi_processed()
                .expect("the job runs");
            println!("{}", out.iter().sum::<u64>());
        }
        ["hang", dir, p] => {
            let p = num(p) as usize;
            let prefix = format!("{dir}/worker-");
            let result = spychro::Job::new(hang_item, vec![prefix; p])
                .processes(p)
                .chunk_size(1)
                .run_multi_processed();
            end_interrupted(result, Path::new(dir), &["worker-"]);
        }
        ["hang-closed", dir] => {
            let result = spychro::Job::new(close_then_hang, [dir.to_string()])
                .processes(1)
                .run_multi_processed();
            println!("ran: {:?}", result.map(|v| v.len()));
        }
        ["nested", dir, p, q] => {
            let (p, q) = (num(p) as usize, num(q) as usize);
            let result = spychro::Job::new(nest_outer, vec![dir.to_string(); p])
                .args(q)
                .processes(p)
                .chunk_size(1)
                .daemon(false)
                .run_multi_processed();
            end_interrupted(result, Path::new(dir), &["outer-", "inner-"]);
        }
        ["release", dir, p] => {
            let p = num(p) as usize;
            let dir = PathBuf::from(dir);
            let result = spychro::Job::new(release_item, vec![dir.display().to_string(); p])
                .processes(p)
                .chunk_size(1)
                .run_multi_processed();
            let outcome = match result {
                Ok(out) => format!("ok {}", out.iter().sum::<u64>()),
                Err(spychro::Error::Interrupted { signal }) => format!("interrupted {signal}"),
                Err(e) => format!("error {e}"),
            };
            let text = format!("{outcome}\nsigint {}\n", sigint_disposition());
            std::fs::write(dir.join("after.tmp"), text).unwrap();
            std::fs::rename(dir.join("after.tmp"), dir.join("after")).unwrap();
            if !wait_for(&dir.join("exit")) {
                std::process::exit(3);
            }
        }
        ["chatty", n, lines] => {
            let (n, lines) = (num(n), num(lines));
            let out = spychro::Job::new(chatty_item, 0..n)
                .args(lines)
                .processes(4)
                .run_multi_processed()
                .expect("the job runs");
            let mut stdout = std::io::stdout().lock();
            for (item, sum) in out.iter().enumerate() {
                writeln!(stdout, "result {item} {sum}").unwrap();
            }
        }
        other => more(other),
    }
}
