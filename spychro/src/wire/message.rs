//! What travels inside frames: the handshake, job set-up, batches of items, batches of
//! outcomes, and shutdown.
//!
//! Control messages are encoded structs. Batches are laid out by hand around encoded values
//! placed back to back (MessagePack values say where they end, so they need no length of
//! their own): the happy path costs one decoder per batch, and one value that fails to decode
//! fails only its item, because the reader steps over it (`codec::Values`).
//!
//! ```text
//! BATCH    job:u32 first:u64 count:u32 item*count
//! RESULTS  job:u32 first:u64 count:u32 busy_ns:u64 failed:u8 output*(count - failed) failure?
//! ```
//!
//! A worker ends a results frame as soon as an item fails, so a failure, an encoded
//! [`WireFailure`], is only ever the last outcome of a frame (`failed` is 0 or 1).

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::codec;
use super::failure::WireFailure;
use super::frame::{Cursor, MAX_FRAME, begin_frame, end_frame};
use crate::error::WireError;

/// Bumped whenever the layout of any message changes (7: spychro's own MessagePack codec;
/// 8: the wire's own failure record, per-job settings, unload, skipped batches; 9: a `Some`
/// whose value would read as `None` is wrapped in a marker, and values nest at most 128 levels
/// deep; 10: per-worker state, set-up failures by kind, unloaded; 11: plain batches).
pub(crate) const PROTOCOL_VERSION: u32 = 11;

// Caller to worker.
pub(crate) const TAG_SETUP: u8 = 1;
pub(crate) const TAG_BATCH: u8 = 2;
pub(crate) const TAG_SHUTDOWN: u8 = 3;
/// A job is over: drop its set-up; its batches still queued are answered as skipped.
pub(crate) const TAG_UNLOAD: u8 = 4;
// Worker to caller.
pub(crate) const TAG_HELLO: u8 = 10;
pub(crate) const TAG_SETUP_DONE: u8 = 11;
pub(crate) const TAG_RESULTS: u8 = 12;
pub(crate) const TAG_LOG: u8 = 13;
pub(crate) const TAG_MESSAGE: u8 = 14;
pub(crate) const TAG_PROGRESS: u8 = 15;
/// Items of a batch that were not run (their job was cancelled, unloaded or refused).
pub(crate) const TAG_SKIPPED: u8 = 16;
/// A stateful job was unloaded: its state's exit value (or why there is none).
pub(crate) const TAG_UNLOADED: u8 = 17;

/// The largest one item or output may be once encoded: what still fits a frame beside the
/// other values of its batch (a batch stops growing at 4 MiB, far below the margin).
pub(crate) const MAX_VALUE: usize = super::frame::MAX_FRAME - (16 << 20);

/// The worker's first message.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) protocol: u32,
    pub(crate) pid: u32,
}

/// Loads a job, with its extra arguments, under an id local to this pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Setup {
    pub(crate) job: u32,
    pub(crate) name: String,
    pub(crate) signature: u64,
    pub(crate) args: Vec<u8>,
    /// The worker may start pools of its own (non-daemon mode).
    pub(crate) nested: bool,
    /// The most verbose log level to send (`log::LevelFilter` as a number).
    pub(crate) log_level: u8,
    /// Record each item's start time on the status page (the caller enforces a timeout).
    pub(crate) timed: bool,
    /// Set for a [`Process`](crate::Process): its name. The worker runs one batch, then exits
    /// with 0, or 1 if the item failed.
    pub(crate) process: Option<String>,
    /// End the processes the worker's jobs start (its descendants) when it ends.
    pub(crate) kill_descendants: bool,
}

/// A log record from a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireLog {
    /// `log::Level` as a number (1 = error .. 5 = trace).
    pub(crate) level: u8,
    pub(crate) target: String,
    pub(crate) message: String,
    pub(crate) item: Option<u64>,
    /// Milliseconds since the Unix epoch.
    pub(crate) time_ms: u64,
}

/// A `log` level as it travels: its number (`Error` = 1 .. `Trace` = 5; 0 is `Off` for a
/// filter), the same in both directions.
pub(crate) fn level_to_wire(level: log::LevelFilter) -> u8 {
    level as u8
}

/// The filter a [`level_to_wire`] number stands for (anything above 5 is `Trace`).
pub(crate) fn filter_from_wire(n: u8) -> log::LevelFilter {
    use log::LevelFilter::*;
    [Off, Error, Warn, Info, Debug, Trace]
        .get(n as usize)
        .copied()
        .unwrap_or(Trace)
}

/// The level of a record whose [`level_to_wire`] number is `n` (0 reads as `Error`).
pub(crate) fn level_from_wire(n: u8) -> log::Level {
    filter_from_wire(n).to_level().unwrap_or(log::Level::Error)
}

/// How far an item has got.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireProgress {
    pub(crate) item: u64,
    pub(crate) fraction: f64,
}

/// The worker's answer to [`Setup`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SetupDone {
    pub(crate) job: u32,
    pub(crate) result: Result<(), SetupFailure>,
}

/// Why a worker could not load a job.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum SetupFailure {
    /// It does not have the job (or its arguments did not decode): built from other code.
    Refused(String),
    /// The job's per-worker state could not be built.
    State(String),
}

/// Appends a frame holding one encoded value.
pub(crate) fn push_message<T: Serialize>(
    buf: &mut Vec<u8>,
    tag: u8,
    value: &T,
) -> Result<(), WireError> {
    let start = begin_frame(buf, tag);
    if let Err(message) = codec::encode_into(buf, value) {
        buf.truncate(start);
        return Err(WireError::Decode {
            what: "outgoing",
            message,
        });
    }
    end_frame(buf, start)
}

/// Decodes a message body.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], what: &'static str) -> Result<T, WireError> {
    codec::decode(body).map_err(|message| WireError::Decode { what, message })
}

/// Appends a frame carrying a message (already encoded) that item `item` sent through its
/// `Ctx`; refused, leaving `buf` as it was, when it would pass the frame limit.
pub(crate) fn push_item_message(
    buf: &mut Vec<u8>,
    item: u64,
    message: &[u8],
) -> Result<(), WireError> {
    let body = 8 + message.len();
    if body > MAX_FRAME {
        return Err(WireError::TooLarge {
            claimed: body,
            max: MAX_FRAME,
        });
    }
    let start = begin_frame(buf, TAG_MESSAGE);
    buf.extend_from_slice(&item.to_le_bytes());
    buf.extend_from_slice(message);
    end_frame(buf, start)
}

/// Appends a frame of `tag` whose body is one job id (an unload).
pub(crate) fn push_job(buf: &mut Vec<u8>, tag: u8, job: u32) {
    let start = begin_frame(buf, tag);
    buf.extend_from_slice(&job.to_le_bytes());
    // A body of 4 bytes is always within bounds.
    let _ = end_frame(buf, start);
}

/// Reads a body of one job id.
pub(crate) fn parse_job(body: &[u8], what: &'static str) -> Result<u32, WireError> {
    Cursor::new(body, what).u32()
}

/// Appends a frame saying that items `first..first + count` of job `job` were not run.
pub(crate) fn push_skipped(buf: &mut Vec<u8>, job: u32, first: u64, count: u32) {
    let start = begin_frame(buf, TAG_SKIPPED);
    buf.extend_from_slice(&job.to_le_bytes());
    buf.extend_from_slice(&first.to_le_bytes());
    buf.extend_from_slice(&count.to_le_bytes());
    // A body of 16 bytes is always within bounds.
    let _ = end_frame(buf, start);
}

/// Appends a frame with job `job`'s exit value (encoded) or why it has none.
pub(crate) fn push_unloaded(
    buf: &mut Vec<u8>,
    job: u32,
    exit: &Result<Vec<u8>, String>,
) -> Result<(), WireError> {
    push_message(buf, TAG_UNLOADED, &Unloaded { job, exit })
}

/// A stateful job's unloading, as the worker reports it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Unloaded<E> {
    pub(crate) job: u32,
    pub(crate) exit: E,
}

/// Reads a skipped frame: `(job, first, count)`.
pub(crate) fn parse_skipped(body: &[u8]) -> Result<(u32, u64, u32), WireError> {
    let mut c = Cursor::new(body, "skipped");
    Ok((c.u32()?, c.u64()?, c.u32()?))
}

/// Appends an empty frame.
pub(crate) fn push_empty(buf: &mut Vec<u8>, tag: u8) {
    let start = begin_frame(buf, tag);
    // An empty body is always within bounds.
    let _ = end_frame(buf, start);
}

/// Appends the header of a batch frame whose `items_len` bytes of items (encoded values,
/// back to back) are sent right after it.
pub(crate) fn push_batch_header(
    buf: &mut Vec<u8>,
    job: u32,
    first: u64,
    count: u32,
    items_len: usize,
) -> Result<(), WireError> {
    let body = 4 + 8 + 4 + items_len;
    if body > MAX_FRAME {
        return Err(WireError::TooLarge {
            claimed: body,
            max: MAX_FRAME,
        });
    }
    buf.extend_from_slice(&(body as u32).to_le_bytes());
    buf.push(TAG_BATCH);
    buf.extend_from_slice(&job.to_le_bytes());
    buf.extend_from_slice(&first.to_le_bytes());
    buf.extend_from_slice(&count.to_le_bytes());
    Ok(())
}

/// Appends a batch frame around `items` (encoded values, back to back).
pub(crate) fn push_batch(
    buf: &mut Vec<u8>,
    job: u32,
    first: u64,
    count: u32,
    items: &[u8],
) -> Result<(), WireError> {
    push_batch_header(buf, job, first, count, items.len())?;
    buf.extend_from_slice(items);
    Ok(())
}

/// A batch's header; its items follow.
pub(crate) struct BatchHeader {
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) count: u32,
}

pub(crate) fn parse_batch(body: &[u8]) -> Result<(BatchHeader, &[u8]), WireError> {
    let mut c = Cursor::new(body, "batch");
    let header = BatchHeader {
        job: c.u32()?,
        first: c.u64()?,
        count: c.u32()?,
    };
    Ok((header, c.bytes(c.remaining())?))
}

/// Appends `value`'s encoding to `buf`, refusing one above [`MAX_VALUE`]; on failure `buf`
/// is left as it was and the reason is returned.
#[inline(always)]
pub(crate) fn push_value<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<(), String> {
    let at = buf.len();
    codec::encode_into(buf, value)?;
    // A value can pass the limit only in a buffer that does: one compare in the common case.
    if buf.len() > MAX_VALUE {
        return refuse_large(buf, at);
    }
    Ok(())
}

/// Removes the value written at `at` if it is above [`MAX_VALUE`], and says so.
#[cold]
fn refuse_large(buf: &mut Vec<u8>, at: usize) -> Result<(), String> {
    let len = buf.len() - at;
    if len <= MAX_VALUE {
        return Ok(());
    }
    buf.truncate(at);
    Err(format!(
        "it is {len} bytes encoded, above the {MAX_VALUE}-byte limit of one value"
    ))
}

/// The header of a results frame being written.
pub(crate) struct ResultsStart {
    frame: usize,
    pub(crate) count: u32,
    pub(crate) failed: bool,
}

pub(crate) fn begin_results(buf: &mut Vec<u8>, job: u32, first: u64) -> ResultsStart {
    let frame = begin_frame(buf, TAG_RESULTS);
    buf.extend_from_slice(&job.to_le_bytes());
    buf.extend_from_slice(&first.to_le_bytes());
    buf.extend_from_slice(&[0; 13]); // count, busy_ns, failed
    ResultsStart {
        frame,
        count: 0,
        failed: false,
    }
}

pub(crate) fn finish_results(
    buf: &mut Vec<u8>,
    start: ResultsStart,
    busy_ns: u64,
) -> Result<(), WireError> {
    let at = start.frame + super::frame::HEADER + 12;
    buf[at..at + 4].copy_from_slice(&start.count.to_le_bytes());
    buf[at + 4..at + 12].copy_from_slice(&busy_ns.to_le_bytes());
    buf[at + 12] = u8::from(start.failed);
    end_frame(buf, start.frame)
}

/// A results frame's header; its outcomes follow.
pub(crate) struct ResultsHeader {
    pub(crate) job: u32,
    pub(crate) first: u64,
    pub(crate) count: u32,
    pub(crate) busy_ns: u64,
    /// The last outcome is a [`WireFailure`].
    pub(crate) failed: bool,
}

pub(crate) fn parse_results(body: &[u8]) -> Result<(ResultsHeader, &[u8]), WireError> {
    let mut c = Cursor::new(body, "results");
    let header = ResultsHeader {
        job: c.u32()?,
        first: c.u64()?,
        count: c.u32()?,
        busy_ns: c.u64()?,
        failed: match c.u8()? {
            0 => false,
            1 => true,
            other => {
                return Err(WireError::Decode {
                    what: "results",
                    message: format!("the failure flag is {other}, not 0 or 1"),
                });
            }
        },
    };
    if header.failed && header.count == 0 {
        return Err(WireError::Decode {
            what: "results",
            message: "a failure is flagged in a frame with no outcomes".into(),
        });
    }
    Ok((header, c.bytes(c.remaining())?))
}

/// Reads the failure that ends a results frame whose `failed` flag is set, after its
/// outputs.
pub(crate) fn read_failure(values: &mut codec::Values<'_>) -> Result<WireFailure, WireError> {
    match values.next::<WireFailure>() {
        Ok(Ok(failure)) => Ok(failure),
        Ok(Err(message)) | Err(message) => Err(WireError::Decode {
            what: "failure",
            message,
        }),
    }
}

/// Fails unless every value of a frame was read.
pub(crate) fn read_all(values: &codec::Values<'_>, what: &'static str) -> Result<(), WireError> {
    match values.rest().len() {
        0 => Ok(()),
        n => Err(WireError::Decode {
            what,
            message: format!("{n} bytes follow the last value"),
        }),
    }
}

/// Decodes any message fully (used by the fuzz test to drive every decoder).
#[cfg(test)]
pub(crate) fn decode_any(tag: u8, body: &[u8]) -> Result<(), WireError> {
    match tag {
        TAG_SETUP => decode::<Setup>(body, "setup").map(drop),
        TAG_HELLO => decode::<Hello>(body, "hello").map(drop),
        TAG_SETUP_DONE => decode::<SetupDone>(body, "setup done").map(drop),
        TAG_BATCH => {
            let (h, items) = parse_batch(body)?;
            let mut values = codec::Values::new(items);
            for _ in 0..h.count {
                values.skip().map_err(|message| WireError::Decode {
                    what: "batch",
                    message,
                })?;
            }
            Ok(())
        }
        TAG_RESULTS => {
            let (h, outcomes) = parse_results(body)?;
            let mut values = codec::Values::new(outcomes);
            for _ in 0..h.count - u32::from(h.failed) {
                values.skip().map_err(|message| WireError::Decode {
                    what: "results",
                    message,
                })?;
            }
            if h.failed {
                read_failure(&mut values)?;
            }
            read_all(&values, "results")
        }
        TAG_SHUTDOWN => Ok(()),
        super::TAG_PLAIN_BATCH => super::parse_plain_batch(body).map(drop),
        TAG_UNLOAD => parse_job(body, "unload").map(drop),
        TAG_SKIPPED => parse_skipped(body).map(drop),
        TAG_UNLOADED => decode::<Unloaded<Result<Vec<u8>, String>>>(body, "unloaded").map(drop),
        TAG_LOG => decode::<WireLog>(body, "log").map(drop),
        TAG_PROGRESS => decode::<WireProgress>(body, "progress").map(drop),
        TAG_MESSAGE => Cursor::new(body, "message").u64().map(drop),
        other => Err(WireError::UnknownTag(other)),
    }
}
