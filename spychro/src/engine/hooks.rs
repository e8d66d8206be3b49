//! The caller's handlers — failures, messages, logs, panic reports, progress, insights — and the
//! progress bar. Handlers run on the caller's thread, while the job runs; one that panics ends
//! the job with [`Error::Handler`](crate::Error::Handler).

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};

use super::insights::Insights;
use crate::call::ctx::Event;
use crate::error::{Error, FailureKind, ItemError};
use crate::wire;

/// A `log` record written by a job in a worker, as [`Job::on_log`](crate::Job::on_log)
/// receives it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerLog {
    /// The worker's pid.
    pub pid: u32,
    /// When it was logged.
    pub time: SystemTime,
    /// Its level.
    pub level: log::Level,
    /// Its target (by default the module that logged it).
    pub target: String,
    /// The text.
    pub message: String,
    /// The item the worker was running, if any.
    pub item: Option<u64>,
    /// For a job on a cluster (the `cluster` feature), the host whose worker logged
    /// (`hostname:pid`); `None` for a job on this machine.
    pub host: Option<String>,
}

impl WorkerLog {
    /// The record as it came off the wire from worker `pid`.
    pub(crate) fn from_wire(pid: u32, log: wire::WireLog) -> WorkerLog {
        WorkerLog {
            pid,
            time: std::time::UNIX_EPOCH + Duration::from_millis(log.time_ms),
            level: wire::level_from_wire(log.level),
            target: log.target,
            message: log.message,
            item: log.item,
            host: None,
        }
    }
}

/// A panic in a job, as [`Job::on_panic`](crate::Job::on_panic) receives it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PanicReport {
    /// The pid of the process that ran the item.
    pub pid: u32,
    /// When the caller learned of it.
    pub time: SystemTime,
    /// The item's index.
    pub index: u64,
    /// The panic message.
    pub message: String,
    /// Where it panicked, `file:line:column`.
    pub location: Option<String>,
    /// The backtrace, when `RUST_BACKTRACE` asked for one.
    pub backtrace: Option<String>,
}

impl std::fmt::Display for PanicReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "item {} panicked in process {}", self.index, self.pid)?;
        if let Some(at) = &self.location {
            write!(f, " at {at}")?;
        }
        write!(f, ":\n  {}", self.message.replace('\n', "\n  "))?;
        if let Some(bt) = &self.backtrace {
            write!(
                f,
                "\n  backtrace:\n  {}",
                bt.trim_end().replace('\n', "\n  ")
            )?;
        }
        Ok(())
    }
}

/// A caller's handler, boxed.
type Handler<F> = Option<Box<F>>;
/// The user's message handler behind the decoding of its message type.
type MessageHandler<'h> = dyn FnMut(u32, &[u8]) -> Result<(), String> + 'h;

/// The handlers of one run.
#[derive(Default)]
pub(crate) struct Hooks<'h> {
    pub(crate) on_failure: Handler<dyn FnMut(&ItemError) + 'h>,
    /// Decodes a message and calls the user's handler with it.
    pub(crate) on_message: Handler<MessageHandler<'h>>,
    pub(crate) on_log: Handler<dyn FnMut(&WorkerLog) + 'h>,
    pub(crate) on_panic: Handler<dyn FnMut(&PanicReport) + 'h>,
    pub(crate) on_progress: Handler<dyn FnMut(u32, u64, f64) + 'h>,
    /// Decodes a per-worker state's exit value and calls the user's handler with it.
    pub(crate) on_worker_exit: Handler<MessageHandler<'h>>,
    pub(crate) on_insights: Handler<dyn FnMut(&Insights) + 'h>,
    /// Print a report of each panic to stderr when no `on_panic` is set.
    pub(crate) report_panics: bool,
    pub(crate) bar: Option<ProgressBar>,
    /// A handler panicked: the run must end with this.
    pub(crate) broken: Option<Error>,
}

/// Runs a handler, above the progress bar if one is drawn (so that what it prints does not
/// tear the bar); a panic in it is kept as the run's error.
fn guarded(broken: &mut Option<Error>, handler: &'static str, f: impl FnOnce()) {
    if broken.is_some() {
        return;
    }
    let mut result = Ok(());
    write_above(|| result = catch_unwind(AssertUnwindSafe(f)));
    if let Err(payload) = result {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        *broken = Some(Error::Handler { handler, message });
    }
}

impl Hooks<'_> {
    /// An item failed.
    pub(crate) fn failure(&mut self, failure: &ItemError) {
        if let Some(h) = self.on_failure.as_mut() {
            guarded(&mut self.broken, "on_failure", || h(failure));
        }
        if let FailureKind::Panicked {
            message,
            location,
            backtrace,
        } = failure.kind()
        {
            let report = PanicReport {
                pid: failure.pid(),
                time: SystemTime::now(),
                index: failure.index(),
                message: message.clone(),
                location: location.clone(),
                backtrace: backtrace.clone(),
            };
            if let Some(h) = self.on_panic.as_mut() {
                guarded(&mut self.broken, "on_panic", || h(&report));
            } else if self.report_panics {
                let line = format!("spychro: job `{}`: {report}\n", failure.job());
                write_above(|| eprint!("{line}"));
            }
        }
    }

    /// Delivers what a job sent from this process (single-processed and multi-threaded).
    pub(crate) fn event(&mut self, event: Event) {
        let pid = std::process::id();
        match event {
            Event::Message(item, m) => self.message(pid, Some(item), &m),
            Event::Progress(item, f) => self.progress(pid, item, f),
        }
    }

    /// Item `item` of a job sent an (encoded) message (`None`: which item is not known, as
    /// for a message from a cluster host).
    pub(crate) fn message(&mut self, pid: u32, item: Option<u64>, message: &[u8]) {
        let Some(h) = self.on_message.as_mut() else {
            return;
        };
        let mut decoded = Ok(());
        guarded(&mut self.broken, "on_message", || decoded = h(pid, message));
        if let Err(e) = decoded
            && self.broken.is_none()
        {
            self.broken = Some(Error::Handler {
                handler: "on_message",
                message: match item {
                    Some(item) => {
                        format!("the message from item {item} could not be deserialized: {e}")
                    }
                    None => format!("a message from process {pid} could not be deserialized: {e}"),
                },
            });
        }
    }

    /// The job ended; this is how its workers spent their time. The progress bar, if one is
    /// drawn, ends with it as its last line.
    pub(crate) fn insights(&mut self, insights: &Insights) {
        if let Some(bar) = &self.bar {
            if let Ok(style) = ProgressStyle::with_template("{pos} items  {msg}") {
                bar.set_style(style);
            }
            bar.finish_with_message(insights.to_string());
        }
        if let Some(h) = self.on_insights.as_mut() {
            guarded(&mut self.broken, "on_insights", || h(insights));
        }
    }

    /// Worker `pid` ended the job's per-worker state, whose exit value is `exit` (encoded).
    pub(crate) fn worker_exit(&mut self, pid: u32, exit: &[u8]) {
        let Some(h) = self.on_worker_exit.as_mut() else {
            return;
        };
        let mut decoded = Ok(());
        guarded(&mut self.broken, "on_worker_exit", || {
            decoded = h(pid, exit)
        });
        if let Err(e) = decoded
            && self.broken.is_none()
        {
            self.broken = Some(Error::Handler {
                handler: "on_worker_exit",
                message: format!(
                    "the exit value of worker {pid}'s state could not be deserialized: {e}"
                ),
            });
        }
    }

    /// A worker logged.
    pub(crate) fn log(&mut self, record: WorkerLog) {
        match self.on_log.as_mut() {
            Some(h) => guarded(&mut self.broken, "on_log", || h(&record)),
            None => reemit(&record),
        }
    }

    /// An item reported progress.
    pub(crate) fn progress(&mut self, pid: u32, item: u64, fraction: f64) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("item {item}: {:.0}%", fraction * 100.0));
        }
        if let Some(h) = self.on_progress.as_mut() {
            guarded(&mut self.broken, "on_progress", || h(pid, item, fraction));
        }
    }

    /// An item's outcome was delivered.
    pub(crate) fn delivered(&self) {
        self.delivered_many(1);
    }

    /// `n` outcomes were delivered.
    pub(crate) fn delivered_many(&self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    /// Starts the progress bar, drawn on stderr only when it is a terminal.
    pub(crate) fn start_bar(&mut self, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{bar:40.cyan/blue} {pos}/{len} items  {per_sec}  ETA {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {pos} items  {per_sec}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        ACTIVE_BAR.with(|b| *b.borrow_mut() = Some(bar.clone()));
        self.bar = Some(bar);
    }
}

impl Drop for Hooks<'_> {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            // A bar that ended with the job's insights stays; one cut short goes.
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
            ACTIVE_BAR.with(|b| *b.borrow_mut() = None);
        }
    }
}

thread_local! {
    static ACTIVE_BAR: RefCell<Option<ProgressBar>> = const { RefCell::new(None) };
}

/// Writes to the terminal without tearing the progress bar, if one is drawn.
pub(crate) fn write_above(f: impl FnOnce()) {
    let bar = ACTIVE_BAR.with(|b| b.borrow().clone());
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// Re-emits a worker's record through this process's logger, tagged with the worker.
pub(crate) fn reemit(record: &WorkerLog) {
    let logger = log::logger();
    let metadata = log::Metadata::builder()
        .level(record.level)
        .target(&record.target)
        .build();
    if !logger.enabled(&metadata) {
        return;
    }
    let host = match &record.host {
        Some(host) => format!("host {host} "),
        None => String::new(),
    };
    let tag = match record.item {
        Some(item) => format!("[{host}worker {} item {item}]", record.pid),
        None => format!("[{host}worker {}]", record.pid),
    };
    write_above(|| {
        logger.log(
            &log::Record::builder()
                .metadata(metadata)
                .args(format_args!("{tag} {}", record.message))
                .build(),
        )
    });
}
