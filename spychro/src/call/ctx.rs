//! [`Ctx`]: what a job may take to talk to its caller while an item runs — typed messages and
//! progress — delivered to the caller's handlers as they happen.

use std::marker::PhantomData;

use serde::Serialize;

/// Where a job's messages go: a worker's socket, a queue in this thread, or a channel to the
/// caller's thread.
pub(crate) trait Sink<M> {
    fn message(&self, index: u64, message: M);
    fn progress(&self, index: u64, fraction: f64);
}

/// What a job sent, on its way to the caller's thread. Messages travel encoded in every mode,
/// so that they behave the same whether they cross a process boundary or not.
pub(crate) enum Event {
    Message(u64, Vec<u8>),
    Progress(u64, f64),
}

/// Encodes a job's message; one that cannot be serialized fails its item.
pub(crate) fn encode_message<M: Serialize>(message: &M) -> Vec<u8> {
    match crate::wire::encode_value(message) {
        Ok(bytes) => bytes,
        Err(e) => panic!("the message could not be serialized: {e}"),
    }
}

/// Keeps what a job sends in this thread until the item ends (single-processed mode).
pub(crate) struct Queue(std::cell::RefCell<Vec<Event>>);

impl Queue {
    pub(crate) fn new() -> Self {
        Queue(std::cell::RefCell::new(Vec::new()))
    }

    pub(crate) fn drain(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

impl<M: Serialize> Sink<M> for Queue {
    fn message(&self, index: u64, message: M) {
        let bytes = encode_message(&message);
        self.0.borrow_mut().push(Event::Message(index, bytes));
    }
    fn progress(&self, index: u64, fraction: f64) {
        self.0.borrow_mut().push(Event::Progress(index, fraction));
    }
}

/// The sink of [`Ctx::detached`]: messages go nowhere.
struct Nowhere;

impl<M> Sink<M> for Nowhere {
    fn message(&self, _: u64, _: M) {}
    fn progress(&self, _: u64, _: f64) {}
}

static NOWHERE: Nowhere = Nowhere;

/// The context of one item: lets a job send typed messages and progress to its caller while the
/// item runs.
///
/// Declare it as a parameter of a `#[job]` function (`ctx: &Ctx<MyMessage>`); the item and
/// extra arguments stay as they are, and the caller receives each message, on its own thread,
/// through [`Job::on_message`](crate::Job::on_message). The message type is checked at compile
/// time against the handler. Messages from one item arrive in the order sent, and all of them
/// before that item's output.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spychro::Ctx;
///
/// #[derive(Serialize, Deserialize)]
/// struct Found { word: String }
///
/// #[spychro::job]
/// fn scan(line: String, ctx: &Ctx<Found>) -> usize {
///     let words: Vec<&str> = line.split_whitespace().collect();
///     for w in &words {
///         if w.starts_with('#') {
///             ctx.send(Found { word: w.to_string() });
///         }
///     }
///     words.len()
/// }
///
/// let mut tags = Vec::new();
/// let counts = spychro::Job::new(scan, ["a #b c".to_string(), "#d".to_string()])
///     .on_message(|_pid, found: Found| tags.push(found.word))
///     .run_multi_processed()?;
/// assert_eq!(counts, [3, 1]);
/// tags.sort();
/// assert_eq!(tags, ["#b", "#d"]);
/// # Ok::<(), spychro::Error>(())
/// ```
pub struct Ctx<'a, M = ()> {
    index: u64,
    sink: &'a dyn Sink<M>,
    _message: PhantomData<fn(M)>,
}

impl<'a, M> Ctx<'a, M> {
    pub(crate) fn new(index: u64, sink: &'a dyn Sink<M>) -> Self {
        Ctx {
            index,
            sink,
            _message: PhantomData,
        }
    }
}

impl<M> Ctx<'static, M> {
    /// A context whose messages go nowhere, to call a job function directly.
    ///
    /// ```
    /// #[spychro::job]
    /// fn count(x: u32, ctx: &spychro::Ctx<String>) -> u32 {
    ///     ctx.send(format!("saw {x}"));
    ///     x + 1
    /// }
    ///
    /// assert_eq!(count(1, &spychro::Ctx::detached()), 2);
    /// ```
    pub fn detached() -> Self {
        Ctx::new(0, &NOWHERE)
    }
}

impl<M: Serialize> Ctx<'_, M> {
    /// Sends `message` to the caller's [`on_message`](crate::Job::on_message) handler. In a
    /// worker it is written to the caller's socket at once; if the caller is slow to read, this
    /// waits (messages are never dropped).
    pub fn send(&self, message: M) {
        self.sink.message(self.index, message);
    }

    /// Reports how far this item has got, from 0.0 to 1.0, to the caller's progress bar and
    /// [`on_progress`](crate::Job::on_progress) handler.
    pub fn progress(&self, fraction: f64) {
        self.sink.progress(self.index, fraction.clamp(0.0, 1.0));
    }
}

impl<M> Ctx<'_, M> {
    /// The index of the item being run.
    pub fn index(&self) -> u64 {
        self.index
    }
}
