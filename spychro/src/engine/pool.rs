//! A set of worker processes, each behind a non-blocking socket with its own send and receive
//! buffers. The pool owns the processes: whatever happens, dropping it kills and reaps every
//! worker that is still there.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::error::{Error, ExitStatus, WorkerError, WorkerErrorKind};
use crate::spawn::spawn_worker;
use crate::wire::{self, FrameBuf};

/// How to start the workers.
#[derive(Clone, Debug)]
pub(crate) struct PoolOptions {
    pub(crate) processes: usize,
    /// The program shown in messages and given as `argv[0]`.
    pub(crate) program: PathBuf,
    /// Execute this process's own binary through `/proc/self/exe`, which stays right even if
    /// the file on disk was replaced since this process started.
    pub(crate) exec_self: bool,
    pub(crate) start_timeout: Duration,
}

/// Where a worker is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Started; its handshake has not arrived.
    Starting { deadline: Instant },
    /// Handshake done; the run's job is being loaded.
    Loading { deadline: Instant },
    /// Ready for batches.
    Ready,
    /// Its socket closed or it was killed.
    Gone,
}

/// A batch sent to a worker and not yet fully answered.
pub(crate) struct InFlight {
    pub(crate) first: u64,
    pub(crate) count: u32,
    /// Outcomes received so far.
    pub(crate) done: u32,
    /// The items' length-prefixed records, kept to describe a failed item.
    pub(crate) records: Vec<u8>,
}

/// One worker process.
pub(crate) struct Worker {
    pub(crate) pid: u32,
    child: Option<Child>,
    pub(crate) sock: UnixStream,
    pub(crate) rx: FrameBuf,
    tx: Vec<u8>,
    tx_pos: usize,
    pub(crate) state: State,
    pub(crate) inflight: VecDeque<InFlight>,
}

impl Worker {
    /// Queues bytes (whole frames) to send.
    pub(crate) fn queue(&mut self) -> &mut Vec<u8> {
        &mut self.tx
    }

    /// Whether bytes are waiting to be sent.
    pub(crate) fn wants_write(&self) -> bool {
        self.tx_pos < self.tx.len()
    }

    /// Sends what the socket takes without blocking.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while self.tx_pos < self.tx.len() {
            match (&self.sock).write(&self.tx[self.tx_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.tx_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.tx_pos == self.tx.len() {
            self.tx.clear();
            self.tx_pos = 0;
        } else if self.tx_pos > (1 << 20) {
            self.tx.drain(..self.tx_pos);
            self.tx_pos = 0;
        }
        Ok(())
    }

    /// Kills the process (SIGKILL) if it is still ours, without waiting for it.
    pub(crate) fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
        }
        self.state = State::Gone;
    }

    /// Waits for the process to end (killing it if it does not within `grace`) and returns how
    /// it ended. Returns `Unknown` when it was already reaped.
    pub(crate) fn reap(&mut self, grace: Duration) -> ExitStatus {
        self.state = State::Gone;
        let Some(mut child) = self.child.take() else {
            return ExitStatus::Unknown;
        };
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return ExitStatus::from_std(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    return child
                        .wait()
                        .map(ExitStatus::from_std)
                        .unwrap_or(ExitStatus::Unknown);
                }
            }
        }
    }

    /// The head batch's next unanswered item, if any.
    pub(crate) fn current_item(&self) -> Option<u64> {
        self.inflight.front().map(|b| b.first + b.done as u64)
    }
}

/// The worker processes of one pool.
pub(crate) struct Pool {
    pub(crate) options: PoolOptions,
    pub(crate) workers: Vec<Worker>,
}

impl Pool {
    /// Starts every worker. The handshakes complete later, in the run's event loop.
    pub(crate) fn start(options: PoolOptions) -> Result<Pool, Error> {
        if crate::worker::is_worker() {
            return Err(Error::NestedPool {
                pid: std::process::id(),
            });
        }
        let mut pool = Pool {
            workers: Vec::with_capacity(options.processes),
            options,
        };
        for _ in 0..pool.options.processes {
            pool.spawn_one()?;
        }
        Ok(pool)
    }

    fn spawn_one(&mut self) -> Result<(), Error> {
        let program = &self.options.program;
        let spawned = spawn_worker(program, self.options.exec_self).map_err(|e| WorkerError {
            pid: None,
            program: program.clone(),
            kind: WorkerErrorKind::Spawn(e),
        })?;
        spawned
            .sock
            .set_nonblocking(true)
            .map_err(|e| Error::io("could not make a worker socket non-blocking", e))?;
        self.workers.push(Worker {
            pid: spawned.child.id(),
            child: Some(spawned.child),
            sock: spawned.sock,
            rx: FrameBuf::default(),
            tx: Vec::new(),
            tx_pos: 0,
            state: State::Starting {
                deadline: Instant::now() + self.options.start_timeout,
            },
            inflight: VecDeque::new(),
        });
        Ok(())
    }

    /// A [`WorkerError`] about worker `i`.
    pub(crate) fn worker_error(&self, i: usize, kind: WorkerErrorKind) -> Error {
        WorkerError {
            pid: Some(self.workers[i].pid),
            program: self.options.program.clone(),
            kind,
        }
        .into()
    }

    /// Asks every worker to exit, waits a moment for them, then kills and reaps the rest.
    pub(crate) fn shutdown(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for w in &mut self.workers {
            if w.state != State::Gone {
                wire::push_empty(w.queue(), wire::TAG_SHUTDOWN);
                let _ = w.flush();
            }
        }
        // A worker that got its shutdown closes its socket as it exits.
        for w in &mut self.workers {
            if w.state == State::Gone {
                continue;
            }
            let _ = w.sock.set_nonblocking(false);
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = w
                .sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))));
            let _ = w
                .sock
                .set_write_timeout(Some(left.max(Duration::from_millis(1))));
            if w.wants_write() {
                let _ = w.flush();
            }
            let mut sink = [0u8; 4096];
            loop {
                match io::Read::read(&mut w.sock, &mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            w.reap(Duration::from_millis(200));
        }
    }

    /// Kills every worker at once and reaps them.
    pub(crate) fn kill_all(&mut self) {
        for w in &mut self.workers {
            w.kill();
        }
        for w in &mut self.workers {
            w.reap(Duration::ZERO);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.kill_all();
    }
}
