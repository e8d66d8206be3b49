//! One job as the engine sees it, whatever its types: [`JobCore`] (its id and set-up frame,
//! its options, the batch sizer, what is left to send — the input's position and the
//! requeue — and whether the machinery failed it), and [`JobIo`], the typed side that reads
//! items from the input and takes in outcomes. The engine serves any number of jobs through
//! these two; a job run from the caller's thread (`run`) and a job in a persistent pool are
//! two implementations of `JobIo`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::batch::{InFlight, ItemBytes};
use super::hooks::WorkerLog;
use super::insights::{Insights, JobTally};
use super::sizer::Sizer;
use crate::call::plain::PlainSizes;
use crate::error::{Error, ItemError, WireError};
use crate::wire::ResultsHeader;

/// Where a plain job's outputs for one results frame are: the first one's address in the
/// worker's region (mapped while the worker lives), and each one's size.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlainOutputs {
    pub(crate) first: *const u8,
    pub(crate) size: usize,
}

/// One item's outcome.
pub(crate) type Outcome<O> = Result<O, Box<ItemError>>;

/// An outcome with its item's index (unordered delivery).
pub(crate) type Indexed<O> = (u64, Outcome<O>);

/// How to run one job.
#[derive(Clone, Debug)]
pub(crate) struct JobOptions {
    pub(crate) chunk_size: Option<usize>,
    /// Keep the items between the consumer and the newest dispatched item bounded (streams);
    /// unbounded when the caller collects everything anyway.
    pub(crate) bounded: bool,
    /// Failed items are outcomes like any other; the job goes on.
    pub(crate) keep_going: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) deadline: Option<Duration>,
    pub(crate) retries: u32,
    /// The most verbose level of worker logs to send.
    pub(crate) log_level: log::LevelFilter,
}

/// The engine's side of one job.
pub(crate) struct JobCore {
    /// The job's id in its pool (a worker keys its set-up by it).
    pub(crate) id: u32,
    /// The job's registered name.
    pub(crate) name: &'static str,
    pub(crate) options: JobOptions,
    /// The set-up frame, sent to each worker before the job's first batch there.
    pub(crate) setup: Vec<u8>,
    /// The job's item and output types are plain: its items and outputs travel through its
    /// workers' regions (see `call/plain.rs`).
    pub(crate) plain: Option<PlainSizes>,
    pub(crate) sizer: Sizer,
    /// Items to send again (their worker died before answering), by first index.
    pub(crate) requeue: BTreeMap<u64, InFlight>,
    /// Runs of each item that lost its worker.
    pub(crate) attempts: HashMap<u64, u32>,
    /// The index the next item read from the input gets.
    pub(crate) next_index: u64,
    pub(crate) input_done: bool,
    pub(crate) started: Instant,
    /// Buffers of answered batches, to encode the next batches into.
    pub(crate) spare_items: Vec<Vec<u8>>,
    /// Batches of this job in workers, not fully answered.
    pub(crate) in_flight: usize,
    /// The machinery failed this job (a worker refused it, it ran past its deadline, a
    /// worker broke the protocol while holding its items): it is over, with this error.
    pub(crate) error: Option<Error>,
    /// Nothing more is sent for this job, and what it still has in workers is dropped.
    pub(crate) cancelled: bool,
    /// The job takes a per-worker state: once its items are done, its workers are asked to
    /// end it (and send its exit value) before the job is complete.
    pub(crate) stateful: bool,
    /// The workers were asked to end the job's state.
    pub(crate) unload_sent: bool,
    /// Workers asked to end the job's state that have not answered.
    pub(crate) unloading: usize,
    /// What it did in each worker slot, for its insights.
    pub(crate) tally: JobTally,
}

impl JobCore {
    pub(crate) fn new(
        id: u32,
        name: &'static str,
        stateful: bool,
        options: JobOptions,
        setup: Vec<u8>,
    ) -> JobCore {
        JobCore {
            id,
            name,
            sizer: Sizer::new(options.chunk_size),
            options,
            setup,
            plain: None,
            requeue: BTreeMap::new(),
            attempts: HashMap::new(),
            next_index: 0,
            input_done: false,
            started: Instant::now(),
            spare_items: Vec::new(),
            in_flight: 0,
            error: None,
            cancelled: false,
            stateful,
            unload_sent: false,
            unloading: 0,
            tally: JobTally::default(),
        }
    }

    /// The core of a job of `F`: plain when its item and output types are.
    pub(crate) fn of<F: crate::call::job_fn::JobFn>(
        id: u32,
        options: JobOptions,
        setup: Vec<u8>,
    ) -> JobCore {
        let mut core = JobCore::new(id, F::NAME, F::STATEFUL, options, setup);
        let (item, output) = F::plain_sizes();
        core.plain = PlainSizes::of(item, output);
        core
    }

    /// Every item was read, sent and answered.
    pub(crate) fn items_done(&self) -> bool {
        self.input_done && self.requeue.is_empty() && self.in_flight == 0
    }

    /// Every item was read, sent and answered, and (for a job with a per-worker state) every
    /// worker ended its state.
    pub(crate) fn complete(&self) -> bool {
        self.items_done() && (!self.stateful || (self.unload_sent && self.unloading == 0))
    }

    /// Whether the job is over for the engine: complete, failed or cancelled.
    pub(crate) fn over(&self) -> bool {
        self.complete() || self.ended()
    }

    /// Whether the job was ended before completing: failed by the machinery, or cancelled.
    /// What it still has in workers is dropped, not sent again.
    pub(crate) fn ended(&self) -> bool {
        self.error.is_some() || self.cancelled
    }

    /// Records that the machinery failed this job (the first error stays).
    pub(crate) fn fail_with(&mut self, error: Error) {
        self.error.get_or_insert(error);
    }
}

/// The typed side of a job: its input and its outcomes.
pub(crate) trait JobIo {
    fn core(&self) -> &JobCore;
    fn core_mut(&mut self) -> &mut JobCore;

    /// Reads up to `size` items from the input (fewer once `items` passes `max_bytes`) and
    /// appends their encodings to `items` (their raw bytes when `raw` is set and the job is
    /// plain); returns how many, and advances the core's `next_index` (past an item that
    /// could not be serialized too: that item failed, was reported, and ends the batch). Sets
    /// `input_done` at the input's end.
    fn read_items(&mut self, size: usize, max_bytes: usize, items: &mut Vec<u8>, raw: bool) -> u32;

    /// Items the input still holds, when it knows exactly.
    fn remaining(&self) -> Option<usize>;

    /// How many outcomes the job has handed over, in order (the stream's position).
    fn delivered(&self) -> u64;

    /// The engine holds back the job's next batch until its consumer takes more outcomes (a
    /// bounded stream): whoever takes them must wake the engine.
    fn starved(&mut self) {}

    /// Takes in the outcomes a results frame carries for `batch` (already checked against
    /// it): outputs, then the failure that ended the frame, if one did. A plain job's outputs
    /// are not in the frame but at `plain` (the first one the frame answers, in its worker's
    /// region).
    fn take_results(
        &mut self,
        pid: u32,
        batch: &InFlight,
        header: &ResultsHeader,
        outcomes: &[u8],
        plain: Option<PlainOutputs>,
    ) -> Result<(), WireError>;

    /// An item failed outside its worker's results (a crash, a timeout, its serialization).
    fn fail(&mut self, failure: Box<ItemError>);

    /// A failure stops this job (it does not keep going): nothing more is sent.
    fn stopped(&self) -> bool;

    /// A worker logged while running this job.
    fn log(&mut self, record: WorkerLog);

    /// Item `item` sent an (encoded) message.
    fn message(&mut self, pid: u32, item: u64, message: &[u8]);

    /// Item `item` reported progress.
    fn progress(&mut self, pid: u32, item: u64, fraction: f64);

    /// A short `Debug` of an item from its bytes, for error messages.
    fn describe(&self, item: Option<ItemBytes<'_>>) -> Option<String>;

    /// A handler of the caller's panicked: the job must end with this.
    fn take_broken(&mut self) -> Option<Error>;

    /// Worker `pid` ended the job's per-worker state, whose exit value is `exit` (encoded).
    fn worker_exit(&mut self, pid: u32, exit: &[u8]);

    /// The job ended; this is how its workers spent their time.
    fn ended(&mut self, insights: &Insights);
}
