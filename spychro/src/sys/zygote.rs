//! Being a fork server (the protocol: `fork_server.rs`): before `main`, it reads requests
//! and answers each with a copy of itself made with `clone(CLONE_PARENT)`; in the copy, this
//! module's [`serve_if_server`] returns the worker's socket and status page, and the process
//! goes on to be a worker exactly as an executed one does.
//!
//! Why the copy is sound: the server is single-threaded and does nothing but this loop before
//! `main`, so the copy holds no lock and shares nothing. The raw `clone` skips glibc's `fork`
//! bookkeeping, of which only one piece matters here: the thread id glibc keeps for the main
//! thread, which the kernel rewrites in the copy (`CLONE_CHILD_SETTID` at the address glibc
//! registered, found with `PR_GET_TID_ADDRESS` and checked against `gettid`). Where that
//! address cannot be found, the server refuses to start.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::MsgFlags;

use super::fdpass::receive_with_fds;
use super::fork_server::{
    ENV_SERVER, HELLO_MAGIC, REQUEST_FDS, REQUEST_HEAD, REQUEST_MAGIC, REQUEST_MAX, VERSION,
};

/// Exit code of a fork server that cannot serve.
const EXIT_CANNOT_SERVE: i32 = 103;

/// In a fork server: serves until the caller goes, then exits; returns only in a copy made
/// for a worker, with that worker's socket and status page (or why the copy could not take
/// them). `None` in any other process.
///
/// Before it serves, it runs `warm` and does once what every copy would otherwise do for
/// itself (see [`warm_up`]).
///
/// Call it only before the program starts threads (before `main`).
pub(crate) fn serve_if_server(warm: fn()) -> Option<io::Result<(UnixStream, OwnedFd)>> {
    std::env::var_os(ENV_SERVER)?;
    // SAFETY: the variable is set only on fork servers, where this runs before `main`, before
    // the program starts threads. LD_BIND_NOW did its work (see `fork_server::start`): the
    // environment is the caller's again, as copies usually find it.
    unsafe {
        std::env::remove_var(ENV_SERVER);
        std::env::remove_var("LD_BIND_NOW");
    }
    let fail = |what: &str, e: io::Error| -> ! {
        eprintln!(
            "spychro fork server {}: cannot {what}: {e}",
            std::process::id()
        );
        std::process::exit(EXIT_CANNOT_SERVE)
    };
    let sock = super::spawn::socket_off_stdin().unwrap_or_else(|e| fail("take its socket", e));
    let tid = tid_address().unwrap_or_else(|e| fail("find its thread id's address", e));
    if let Err(e) = single_threaded() {
        fail("copy itself safely", e);
    }
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        let e = io::Error::new(io::ErrorKind::Unsupported, "not on this architecture");
        fail("copy itself", e);
    }
    warm();
    warm_up();
    let mut hello = Vec::with_capacity(10);
    hello.extend_from_slice(&HELLO_MAGIC.to_le_bytes());
    hello.extend_from_slice(&VERSION.to_le_bytes());
    hello.extend_from_slice(&std::process::id().to_le_bytes());
    if let Err(e) = send(&sock, &hello) {
        fail("say hello", e);
    }
    // From here on the server writes nothing, and its copies get stdout and stderr with each
    // request: it lets go of the caller's own (a pipe whose reader waits for its end must not
    // wait for the server).
    release_stdout_and_stderr();
    release_the_rest(&sock);
    let mut buf = vec![0u8; REQUEST_MAX + 1];
    loop {
        let request = match receive(&sock, &mut buf) {
            Ok(Some(request)) => request,
            // The caller closed its end (it stopped the server, or it is gone).
            Ok(None) => std::process::exit(0),
            Err(e) => fail("read a request", e),
        };
        let request = match request {
            Ok(request) => request,
            Err(errno) => {
                if send(&sock, &(-i64::from(errno)).to_le_bytes()).is_err() {
                    std::process::exit(0);
                }
                continue;
            }
        };
        match clone_parent(tid) {
            Ok(0) => {
                drop(sock);
                return Some(request.become_worker());
            }
            Ok(pid) => {
                if send(&sock, &i64::from(pid).to_le_bytes()).is_err() {
                    std::process::exit(0);
                }
            }
            Err(errno) => {
                if send(&sock, &(-i64::from(errno)).to_le_bytes()).is_err() {
                    std::process::exit(0);
                }
            }
        }
        // The request's descriptors close here, in the server.
    }
}

/// Does once, in the server, what each copy would otherwise do for itself: start (and end) a
/// thread, which has the C library look up symbols, switch stdio to locking and make a second
/// malloc arena, all found ready by the copy's first thread (its watchdog), ~40 µs a copy.
/// The thread is joined: the server is single-threaded again when it copies itself.
fn warm_up() {
    let started = std::thread::Builder::new()
        .name("spychro-warm".into())
        .spawn(|| drop(std::hint::black_box(vec![0u8; 64])));
    if let Ok(thread) = started {
        let _ = thread.join();
    }
}

/// Points stdout and stderr at `/dev/null`.
fn release_stdout_and_stderr() {
    use nix::fcntl::{OFlag, open};
    if let Ok(null) = open(
        "/dev/null",
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        // SAFETY: dup2 onto this process's own stdout and stderr, which nothing else here
        // uses; `null` stays open until both are done.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
    }
}

/// Closes every descriptor but 0, 1, 2 and `sock` (what the caller could inherit when the
/// server started: copies get theirs with each request), and leaves the working directory
/// (copies go to the caller's): the server holds nothing of the caller's open.
fn release_the_rest(sock: &OwnedFd) {
    let keep = sock.as_raw_fd() as libc::c_uint;
    // SAFETY: close_range closes descriptor numbers of this process; none of those closed is
    // owned by anything here (the server holds only `sock` and 0, 1, 2).
    unsafe {
        if keep > 3 {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                keep - 1,
                0 as libc::c_uint,
            );
        }
        libc::syscall(
            libc::SYS_close_range,
            keep + 1,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        );
    }
    let _ = std::env::set_current_dir("/");
}

/// Fails unless this process has one thread: a copy of a process with others would hold
/// whatever locks they held (a program's own constructor may have started one).
fn single_threaded() -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The 20th field, counted after the command name (which may hold spaces), in parentheses.
    let threads = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(17))
        .and_then(|t| t.parse::<u64>().ok());
    match threads {
        Some(1) => Ok(()),
        Some(n) => Err(io::Error::other(format!(
            "{n} threads run before main (started by a constructor?); a fork server must be \
             single-threaded"
        ))),
        None => Err(io::Error::other("cannot read /proc/self/stat")),
    }
}

/// One request: its descriptors and what the copy applies.
struct Request {
    sock: OwnedFd,
    status: OwnedFd,
    cwd: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    memory_limit: u64,
    env: Vec<u8>,
}

impl Request {
    /// In the copy: its own process group, the caller's stdout/stderr, working directory,
    /// environment and memory limit, an empty signal mask; then the worker's ends.
    fn become_worker(self) -> io::Result<(UnixStream, OwnedFd)> {
        // SAFETY: setpgid and sigprocmask take values and a local set; dup2 and fchdir take
        // descriptors this copy owns.
        unsafe {
            libc::setpgid(0, 0);
            if libc::dup2(self.stdout.as_raw_fd(), 1) < 0
                || libc::dup2(self.stderr.as_raw_fd(), 2) < 0
                || libc::fchdir(self.cwd.as_raw_fd()) < 0
            {
                return Err(io::Error::last_os_error());
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        }
        drop((self.stdout, self.stderr, self.cwd));
        set_environment(&self.env);
        if self.memory_limit > 0 {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_AS, self.memory_limit, self.memory_limit)?;
        }
        Ok((UnixStream::from(self.sock), self.status))
    }
}

/// Replaces this process's environment with `KEY=VALUE\0` entries (skipping any that is not
/// one). Usually the caller's environment is the one the server started with: then nothing
/// is done (setting each variable again costs ~30 µs).
fn set_environment(env: &[u8]) {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let old: Vec<_> = std::env::vars_os().collect();
    // Compared in key order: the server's environment was sorted when it was started.
    let mut have: Vec<(&[u8], &[u8])> = old
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    let mut want: Vec<(&[u8], &[u8])> = entries(env).collect();
    have.sort_unstable();
    want.sort_unstable();
    if have == want {
        return;
    }
    // A key with '=' (one that starts with it: the C library allows it) can be neither set
    // nor removed through `std::env`, which would panic: it is left as it is.
    for (key, _) in old.iter().filter(|(k, _)| !k.as_bytes().contains(&b'=')) {
        // SAFETY: single-threaded (a fresh copy of the server, before `main`).
        unsafe { std::env::remove_var(key) };
    }
    for (key, value) in entries(env).filter(|(k, _)| !k.contains(&b'=')) {
        // SAFETY: as above; the key is not empty and has no '=' and no NUL, the value no NUL.
        unsafe { std::env::set_var(OsStr::from_bytes(key), OsStr::from_bytes(value)) };
    }
}

/// The `KEY=VALUE` entries of an environment block, skipping any without a key.
fn entries(env: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    env.split(|&b| b == 0).filter_map(|entry| {
        let eq = entry.iter().skip(1).position(|&b| b == b'=')? + 1;
        Some((&entry[..eq], &entry[eq + 1..]))
    })
}

/// Reads one request. `Ok(None)`: the caller closed its end. `Ok(Some(Err(errno)))`: a
/// message that is not a whole request (its descriptors are closed).
fn receive(sock: &OwnedFd, buf: &mut [u8]) -> io::Result<Option<Result<Request, i32>>> {
    let mut space = nix::cmsg_space!([RawFd; REQUEST_FDS]);
    let (bytes, flags, mut fds) = receive_with_fds(sock.as_fd(), buf, &mut space)?;
    if bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    if flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC) {
        return Ok(Some(Err(libc::EMSGSIZE)));
    }
    let head = &buf[..bytes.min(buf.len())];
    let word = |at: usize, n: usize| -> u64 {
        head[at..at + n]
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    };
    if bytes < REQUEST_HEAD
        || fds.len() != REQUEST_FDS
        || word(0, 4) != u64::from(REQUEST_MAGIC)
        || word(4, 2) != u64::from(VERSION)
    {
        return Ok(Some(Err(libc::EPROTO)));
    }
    let memory_limit = word(8, 8);
    let env = head[REQUEST_HEAD..].to_vec();
    let mut take = fds.drain(..);
    let mut next = || take.next().ok_or(libc::EPROTO);
    let request = (|| {
        Ok(Request {
            sock: next()?,
            status: next()?,
            cwd: next()?,
            stdout: next()?,
            stderr: next()?,
            memory_limit,
            env,
        })
    })();
    Ok(Some(request))
}

fn send(sock: &OwnedFd, bytes: &[u8]) -> io::Result<()> {
    loop {
        match nix::sys::socket::send(sock.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Where the C library keeps this (only) thread's id, as the kernel was told at start-up
/// (`set_tid_address`), checked to hold the id.
fn tid_address() -> io::Result<*mut libc::pid_t> {
    let mut address: *mut libc::pid_t = std::ptr::null_mut();
    // SAFETY: PR_GET_TID_ADDRESS writes one pointer into `address`.
    let r = unsafe {
        libc::prctl(
            libc::PR_GET_TID_ADDRESS,
            &mut address as *mut *mut libc::pid_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: gettid takes nothing.
    let tid = unsafe { libc::gettid() };
    let aligned =
        !address.is_null() && address.align_offset(std::mem::align_of::<libc::pid_t>()) == 0;
    // SAFETY: read only when not null and aligned; the address was registered by the C
    // library for this thread (set_tid_address) and points into its thread control block,
    // which lives as long as the thread (the whole server).
    if !aligned || unsafe { address.read_volatile() } != tid {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the C library does not keep the thread id where the kernel was told (not glibc?)",
        ));
    }
    Ok(address)
}

/// Makes a copy of this process whose parent is this process's parent; returns 0 in the copy,
/// its pid here, or the errno.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn clone_parent(tid: *mut libc::pid_t) -> Result<libc::pid_t, i32> {
    let flags = (libc::CLONE_PARENT | libc::CLONE_CHILD_SETTID | libc::SIGCHLD) as libc::c_ulong;
    // The child-tid pointer goes in both the fourth and the fifth argument: their order differs
    // between architectures, and the other one (tls) is ignored without CLONE_SETTLS.
    // SAFETY: like fork: no new stack (the copy continues on its copy of ours), no shared
    // memory; this process is single-threaded, so the copy holds no lock. The kernel writes
    // the copy's id at `tid`, in the copy's memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0usize,
            std::ptr::null_mut::<libc::pid_t>(),
            tid,
            tid,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    Ok(r as libc::pid_t)
}

/// Elsewhere the order of `clone`'s arguments differs: no copies (the caller executes its
/// workers).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn clone_parent(_: *mut libc::pid_t) -> Result<libc::pid_t, i32> {
    Err(libc::ENOSYS)
}

#[cfg(test)]
mod tests {
    use super::entries;

    #[test]
    fn environment_entries_split_at_the_first_equals_sign_and_skip_keyless_ones() {
        let env = b"A=1\0=bad\0noequals\0B=x=y\0\0C=\0";
        let parsed: Vec<(&[u8], &[u8])> = entries(env).collect();
        assert_eq!(
            parsed,
            vec![
                (&b"A"[..], &b"1"[..]),
                (&b"B"[..], &b"x=y"[..]),
                (&b"C"[..], &b""[..])
            ]
        );
    }
}
