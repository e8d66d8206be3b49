//! What a supervisor's processes send each other: the [`Message`] trait (one enum per
//! supervisor, derived), its kinds ([`MessageKind`], with parents for listeners of a whole
//! family), where a message goes ([`To`]) and what a process listens to ([`Listen`]).

use std::fmt::Debug;
use std::hash::Hash;

use serde::{Serialize, de::DeserializeOwned};

/// The messages of a supervisor: one enum, its variants the message kinds. Derive it with
/// `#[derive(spychro::Message)]`, which also makes the companion `<Name>Kind` enum; a variant
/// marked `#[message(parent = Other)]` is a kind of `Other` too, so that a process listening
/// to `Other` receives it (multitools' message hierarchy).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spychro::{Message, MessageKind};
///
/// #[derive(Debug, Clone, Serialize, Deserialize, spychro::Message)]
/// enum Note {
///     Text(String),
///     #[message(parent = Text)]
///     Shout(String),
///     Tick,
/// }
///
/// assert_eq!(Note::Shout("hi".into()).kind(), NoteKind::Shout);
/// assert!(Note::Shout("hi".into()).is_a(NoteKind::Text));
/// assert!(!Note::Tick.is_a(NoteKind::Text));
/// assert_eq!(NoteKind::ALL.len(), 3);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a supervisor message enum",
    note = "add `#[derive(spychro::Message)]` to its definition (an enum: one variant per kind)"
)]
pub trait Message: Serialize + DeserializeOwned + Debug + Send + 'static {
    /// The kinds: one per variant.
    type Kind: MessageKind;
    /// This message's kind.
    ///
    /// ```
    /// use spychro::Message;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// assert_eq!(Note::Shout("hi".into()).kind(), NoteKind::Shout);
    /// assert_eq!(Note::Tick.kind(), NoteKind::Tick);
    /// ```
    fn kind(&self) -> Self::Kind;
    /// The registered name of this enum's [`DebugLogger`](crate::DebugLogger) (set by the
    /// derive, which registers it).
    #[doc(hidden)]
    const DEBUG_LOGGER: &'static str = "";
    /// A hash of the enum's definition site (set by the derive).
    #[doc(hidden)]
    const SIGNATURE: u64 = 0;
    /// Whether this message is of `kind`, or of a kind below it.
    ///
    /// ```
    /// use spychro::Message;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// let scream = Note::Scream("HEY".into());
    /// assert!(scream.is_a(NoteKind::Text)); // a kind of Shout, itself a kind of Text
    /// assert!(!Note::Text("hi".into()).is_a(NoteKind::Shout)); // not the other way round
    /// ```
    fn is_a(&self, kind: Self::Kind) -> bool {
        self.kind().is_a(kind)
    }
}

/// The kinds of a [`Message`] enum, made by `#[derive(spychro::Message)]`.
///
/// ```
/// use spychro::MessageKind;
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
/// enum Event { Saved(String), #[message(parent = Saved)] Backed(String) }
///
/// assert_eq!(EventKind::Backed.parent(), Some(EventKind::Saved));
/// assert_eq!(EventKind::Backed.name(), "Backed");
/// assert_eq!(EventKind::from_index(EventKind::Saved.index()), Some(EventKind::Saved));
/// ```
pub trait MessageKind: Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static {
    /// Every kind, in the order of the enum's variants.
    ///
    /// ```
    /// use spychro::MessageKind;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// use NoteKind::*;
    /// assert_eq!(NoteKind::ALL, [Text, Shout, Scream, Tick]);
    /// ```
    const ALL: &'static [Self];
    /// Its place among [`ALL`](MessageKind::ALL).
    ///
    /// ```
    /// use spychro::MessageKind;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// assert_eq!(NoteKind::Text.index(), 0);
    /// assert_eq!(NoteKind::Tick.index(), 3);
    /// ```
    fn index(self) -> u32;
    /// The variant's name.
    ///
    /// ```
    /// use spychro::MessageKind;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// assert_eq!(NoteKind::Scream.name(), "Scream");
    /// ```
    fn name(self) -> &'static str;
    /// The kind it belongs to, if it was declared with `#[message(parent = ...)]`.
    ///
    /// ```
    /// use spychro::MessageKind;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// assert_eq!(NoteKind::Scream.parent(), Some(NoteKind::Shout)); // its direct parent
    /// assert_eq!(NoteKind::Text.parent(), None);
    /// ```
    fn parent(self) -> Option<Self>;
    /// The kind at `index`, if there is one.
    ///
    /// ```
    /// use spychro::MessageKind;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// assert_eq!(NoteKind::from_index(1), Some(NoteKind::Shout));
    /// assert_eq!(NoteKind::from_index(4), None);
    /// ```
    fn from_index(index: u32) -> Option<Self> {
        Self::ALL.get(index as usize).copied()
    }
    /// Whether this kind is `kind` or below it.
    ///
    /// ```
    /// use spychro::MessageKind;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String),
    /// #     #[message(parent = Shout)] Scream(String), Tick }
    /// assert!(NoteKind::Scream.is_a(NoteKind::Text));
    /// assert!(NoteKind::Text.is_a(NoteKind::Text));
    /// assert!(!NoteKind::Tick.is_a(NoteKind::Text));
    /// ```
    fn is_a(self, kind: Self) -> bool {
        let mut at = Some(self);
        while let Some(k) = at {
            if k == kind {
                return true;
            }
            at = k.parent();
        }
        false
    }
}

/// Where a message goes.
///
/// ```
/// use spychro::To;
///
/// assert_eq!(To::Id(3).to_string(), "process 3");
/// assert_eq!(To::Listeners.to_string(), "the listeners of its kind");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum To {
    /// The process with this id.
    Id(u64),
    /// Every process that listens to the message's kind (multitools' `LISTENERS`); when none
    /// does, the message is undeliverable.
    Listeners,
    /// Every other running process (multitools' `BROADCAST`); the sender does not get its
    /// own broadcast.
    Broadcast,
}

impl std::fmt::Display for To {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            To::Id(id) => write!(f, "process {id}"),
            To::Listeners => f.write_str("the listeners of its kind"),
            To::Broadcast => f.write_str("every process"),
        }
    }
}

/// The message kinds a process listens to (multitools' `LISTEN_TYPE`): it receives a copy of
/// every message of those kinds (or kinds below them), whoever it was sent to.
///
/// ```
/// use spychro::Listen;
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
/// enum Event { Saved(String), Tick }
///
/// assert!(Listen::To(vec![EventKind::Saved]).hears(EventKind::Saved));
/// assert!(!Listen::To(vec![EventKind::Saved]).hears(EventKind::Tick));
/// assert!(Listen::<EventKind>::All.hears(EventKind::Tick));
/// assert!(!Listen::<EventKind>::Nothing.hears(EventKind::Tick));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen<K> {
    /// Only messages sent to it.
    Nothing,
    /// Messages of these kinds (and the kinds below them).
    To(Vec<K>),
    /// Every message (a debug logger).
    All,
}

impl<K: MessageKind> Listen<K> {
    /// Whether a message of `kind` reaches a listener like this.
    ///
    /// ```
    /// use spychro::Listen;
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String), #[message(parent = Text)] Shout(String), Tick }
    ///
    /// let texts = Listen::To(vec![NoteKind::Text]);
    /// assert!(texts.hears(NoteKind::Shout)); // a kind below Text
    /// assert!(!texts.hears(NoteKind::Tick));
    /// ```
    pub fn hears(&self, kind: K) -> bool {
        match self {
            Listen::Nothing => false,
            Listen::All => true,
            Listen::To(kinds) => kinds.iter().any(|k| kind.is_a(*k)),
        }
    }
}
