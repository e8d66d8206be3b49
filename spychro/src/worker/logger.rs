//! What a job says while an item runs, on its way to the caller: its `log` records (tagged
//! with the item running) and what it sends through its [`Ctx`](crate::Ctx) (messages and
//! progress). Each is one frame, written to the socket as it is made.

use std::marker::PhantomData;

use serde::Serialize;

use super::link;
use crate::call::ctx::{Sink, encode_message};
use crate::wire;

/// Sends the job's `log` records to the caller, tagged with the item running.
pub(crate) struct WorkerLogger;

pub(crate) static LOGGER: WorkerLogger = WorkerLogger;

impl log::Log for WorkerLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Some(link) = link::get() else { return };
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let log = wire::WireLog {
            level: wire::level_to_wire(record.level().to_level_filter()),
            target: record.target().to_owned(),
            message: record.args().to_string(),
            item: link.status.current().map(|r| r.index),
            time_ms,
        };
        let mut frame = Vec::new();
        if wire::push_message(&mut frame, wire::TAG_LOG, &log).is_ok() {
            // A caller that is gone ends this process through the watchdog.
            let _ = link.send(&frame);
        }
    }

    fn flush(&self) {}
}

/// Sends a job's [`Ctx`](crate::Ctx) messages and progress to the caller.
pub(crate) struct WorkerSink<M>(PhantomData<fn(M)>);

impl<M> WorkerSink<M> {
    pub(crate) fn new() -> Self {
        WorkerSink(PhantomData)
    }
}

impl<M: Serialize> Sink<M> for WorkerSink<M> {
    fn message(&self, index: u64, message: M) {
        let Some(link) = link::get() else { return };
        let encoded = encode_message(&message);
        let mut frame = Vec::new();
        if let Err(e) = wire::push_item_message(&mut frame, index, &encoded) {
            // The item fails with this (a panic in `send` is the item's failure).
            panic!("Ctx::send: the message cannot be sent: {e}; send smaller messages");
        }
        let _ = link.send(&frame);
    }

    fn progress(&self, item: u64, fraction: f64) {
        let Some(link) = link::get() else { return };
        let mut frame = Vec::new();
        let p = wire::WireProgress { item, fraction };
        if wire::push_message(&mut frame, wire::TAG_PROGRESS, &p).is_ok() {
            let _ = link.send(&frame);
        }
    }
}
