//! A persistent pool's own thread: it owns the engine (the workers) and the jobs submitted to
//! it, takes commands (submit, cancel, close, terminate) from any thread through a queue that
//! wakes its poll loop, turns the engine, and finishes each job as it ends — telling the job's
//! handle, and telling the workers to drop it (and, for a job that stopped or was cancelled,
//! to skip what they still hold of it). It remembers what each function's jobs measured of
//! their items (time and size), so that the next job of the same function starts with
//! batches of the right size instead of growing them from one item again.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};

use super::conductor::Engine;
use super::insights::Insights;
use super::job::JobIo;
use super::sizer::Learned;
use super::worker::State;
use crate::error::Error;
use crate::wire;

/// What the pool's thread is asked to do.
pub(crate) enum Command {
    /// Serve a job (its id was given by [`Control::next_id`]), and call `finished` when the
    /// pool is done with it.
    Submit {
        job: Box<dyn JobIo + Send>,
        finished: Box<dyn FnOnce(Option<Error>) + Send>,
    },
    /// Stop job `id`: nothing more is sent, and workers skip what they hold of it.
    Cancel(u32),
    /// Take no more jobs; stop once the jobs there are have ended.
    Close,
    /// Stop now: end every job, kill the workers.
    Terminate,
    /// Send the insights of job `id` (of the pool, for `None`) now.
    Insights {
        job: Option<u32>,
        reply: mpsc::Sender<Insights>,
    },
}

/// What the pool's handles share with its thread.
pub(crate) struct Control {
    queue: Mutex<Queue>,
    /// Written to wake the thread's poll; read (emptied) by the thread.
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

/// The command queue and what the thread tells the handles.
pub(crate) struct Queue {
    pub(crate) commands: VecDeque<Command>,
    next_id: u32,
    /// No more jobs are taken (closed, terminated, or broken).
    pub(crate) closed: bool,
    /// Why the pool stopped on its own (a signal, a failure of the machinery).
    pub(crate) broken: Option<String>,
    /// The workers' pids, as of the thread's last turn.
    pub(crate) pids: Vec<u32>,
    /// The thread has ended.
    pub(crate) ended: bool,
    /// The pool's insights as its thread ended.
    pub(crate) last_insights: Option<Insights>,
}

impl Control {
    pub(crate) fn new() -> std::io::Result<Arc<Control>> {
        use nix::fcntl::OFlag;
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        Ok(Arc::new(Control {
            queue: Mutex::new(Queue {
                commands: VecDeque::new(),
                next_id: 1,
                closed: false,
                broken: None,
                pids: Vec::new(),
                ended: false,
                last_insights: None,
            }),
            wake_read,
            wake_write,
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh job id.
    pub(crate) fn next_id(&self) -> u32 {
        let mut q = self.lock();
        let id = q.next_id;
        q.next_id = q.next_id.wrapping_add(1).max(1);
        id
    }

    /// Queues `command` and wakes the thread. A job submitted to a pool that takes no more
    /// is refused: the error says why.
    pub(crate) fn send(&self, command: Command) -> Result<(), Error> {
        {
            let mut q = self.lock();
            if let Command::Submit { .. } = command
                && q.closed
            {
                return Err(Error::Misuse(match &q.broken {
                    Some(why) => format!("the pool stopped ({why}); start a new one"),
                    None => "the pool was closed or terminated; it takes no more jobs".into(),
                }));
            }
            q.commands.push_back(command);
        }
        self.wake();
        Ok(())
    }

    /// The insights of job `job` (of the pool, for `None`), from the pool's thread; `None`
    /// once the thread has ended (or the job has left it).
    pub(crate) fn insights(&self, job: Option<u32>) -> Option<Insights> {
        let (reply, answer) = mpsc::channel();
        {
            let mut q = self.lock();
            if q.ended {
                return None;
            }
            // The thread takes its commands under this lock, and drops those that come after
            // its last turn (with their reply), so the answer comes or the channel closes.
            q.commands.push_back(Command::Insights { job, reply });
        }
        self.wake();
        answer.recv().ok()
    }

    /// Wakes the thread's poll.
    pub(crate) fn wake(&self) {
        let _ = nix::unistd::write(&self.wake_write, &[1]);
    }

    fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake_read.as_fd()
    }

    fn drain_wake(&self) {
        let mut buf = [0u8; 64];
        while let Ok(n @ 1..) = nix::unistd::read(&self.wake_read, &mut buf) {
            let _ = n;
        }
    }
}

/// A job being served, and what to call when it ends.
struct Served {
    job: Box<dyn JobIo + Send>,
    finished: Option<Box<dyn FnOnce(Option<Error>) + Send>>,
}

/// The pool's thread: serves commands and jobs until closed (and drained) or terminated.
pub(crate) fn serve(mut engine: Engine, control: Arc<Control>) {
    let mut jobs: Vec<Served> = Vec::new();
    let mut learned: HashMap<&'static str, Learned> = HashMap::new();
    let mut closing = false;
    let outcome: Option<Error> = loop {
        control.drain_wake();
        let commands: Vec<Command> = control.lock().commands.drain(..).collect();
        let mut terminate = false;
        for command in commands {
            match command {
                Command::Submit { mut job, finished } => {
                    let core = job.core_mut();
                    if let Some(l) = learned.get(core.name) {
                        core.sizer.seed(*l);
                    }
                    jobs.push(Served {
                        job,
                        finished: Some(finished),
                    });
                }
                Command::Cancel(id) => {
                    if let Some(s) = jobs.iter_mut().find(|s| s.job.core().id == id) {
                        s.job.core_mut().cancelled = true;
                    }
                }
                Command::Close => closing = true,
                Command::Terminate => terminate = true,
                Command::Insights { job, reply } => {
                    let insights = match job {
                        None => Some(engine.workers.insights()),
                        Some(id) => jobs
                            .iter()
                            .find(|s| s.job.core().id == id)
                            .map(|s| engine.job_insights(s.job.core())),
                    };
                    if let Some(i) = insights {
                        let _ = reply.send(i);
                    }
                }
            }
        }
        if terminate {
            break Some(Error::Misuse(
                "the pool was terminated before the job ended".into(),
            ));
        }
        finish_ended(&mut engine, &mut jobs, &mut learned);
        if closing && jobs.is_empty() {
            engine.shutdown();
            break None;
        }
        let mut refs: Vec<&mut dyn JobIo> = jobs
            .iter_mut()
            .map(|s| &mut *s.job as &mut dyn JobIo)
            .collect();
        let stepped = engine.step(&mut refs, Some(control.wake_fd()));
        drop(refs);
        {
            let mut q = control.lock();
            q.pids = engine
                .workers
                .workers
                .iter()
                .filter(|w| w.state != State::Gone)
                .map(|w| w.pid)
                .collect();
        }
        if let Err(e) = stepped {
            break Some(e);
        }
        finish_ended(&mut engine, &mut jobs, &mut learned);
    };
    // Ending: every job left ends with why, and the workers go.
    if let Some(e) = &outcome {
        let mut q = control.lock();
        q.closed = true;
        if !matches!(e, Error::Misuse(_)) {
            q.broken = Some(e.to_string());
        }
    }
    let last = engine.workers.insights();
    for s in &mut jobs {
        let insights = engine.job_insights(s.job.core());
        s.job.ended(&insights);
    }
    engine.kill_all();
    {
        // The workers are gone before any handle hears that its job ended.
        let mut q = control.lock();
        q.last_insights = Some(last);
        q.pids.clear();
    }
    let reason = outcome;
    for mut s in jobs {
        if let Some(f) = s.finished.take() {
            f(Some(match &reason {
                Some(Error::Interrupted { signal }) => Error::Interrupted { signal: *signal },
                Some(e) => Error::Misuse(format!("the pool stopped: {e}")),
                None => Error::Misuse("the pool stopped before the job ended".into()),
            }));
        }
    }
    // Commands that came too late.
    let late: Vec<Command> = {
        let mut q = control.lock();
        q.closed = true;
        q.ended = true;
        q.pids.clear();
        q.commands.drain(..).collect()
    };
    for command in late {
        if let Command::Submit { finished, .. } = command {
            finished(Some(Error::Misuse(
                "the pool stopped before the job started".into(),
            )));
        }
    }
}

/// Finishes the jobs that ended: tells their handles, has the workers drop them (and skip
/// what they still hold of a job that stopped or was cancelled), and keeps what each measured.
fn finish_ended(
    engine: &mut Engine,
    jobs: &mut Vec<Served>,
    learned: &mut HashMap<&'static str, Learned>,
) {
    let mut k = 0;
    while k < jobs.len() {
        let job = &mut jobs[k].job;
        let core = job.core();
        let ended = core.over() || job.stopped();
        if !ended {
            k += 1;
            continue;
        }
        let id = core.id;
        if let Some(l) = core.sizer.learned() {
            learned.insert(core.name, l);
        }
        let abandon = !core.complete();
        for w in &mut engine.workers.workers {
            if w.state == State::Gone {
                continue;
            }
            if abandon && w.holds(id) {
                w.status.cancel(id);
            }
            if w.load(id).is_some() {
                wire::push_job(w.queue(), wire::TAG_UNLOAD, id);
                w.loaded.retain(|(j, _)| *j != id);
            }
        }
        let insights = engine.job_insights(job.core());
        job.ended(&insights);
        let mut served = jobs.swap_remove(k);
        let error = served
            .job
            .core_mut()
            .error
            .take()
            .or_else(|| served.job.core().cancelled.then_some(Error::Cancelled));
        if let Some(f) = served.finished.take() {
            f(error);
        }
    }
}
