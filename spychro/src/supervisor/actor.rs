//! [`Actor`]: a supervised process written as a type (multitools' `ipc.client.Process`):
//! its state, a run phase (`op`), a message handler, the kinds it listens to, and whether it
//! is a resident; and the hidden job that serves one in a child process.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::link::Link;
use super::message::{Listen, Message, To};
use crate::call::ctx::Ctx;
use crate::call::job_fn::{AsJob, JobFn, Sealed};

/// What a run phase or a handler may fail with: any error (`?` works on most), or a
/// `String` with `.into()`.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Link, Supervisor};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
///
/// #[derive(Serialize, Deserialize)]
/// struct Parse(String);
///
/// #[spychro::actor]
/// impl Actor for Parse {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         let n: u32 = self.0.parse()?; // a ParseIntError, with `?`
///         if n == 0 {
///             return Err("zero is not allowed".into()); // a message, with `.into()`
///         }
///         link.send_object(&n)?;
///         Ok(())
///     }
/// }
///
/// let mut s = Supervisor::<Msg>::new();
/// s.add(Parse("x1".into()));
/// let err = s.supervise().unwrap_err();
/// assert!(err.to_string().contains("invalid digit found in string"), "{err}");
/// ```
pub type Fail = Box<dyn std::error::Error + Send + Sync>;

/// What a handler wants next.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Ended, Fail, Flow, Letter, Link, Supervisor, To};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Tick }
///
/// #[derive(Serialize, Deserialize)]
/// struct TwoTicks { seen: u32 }
///
/// #[spychro::actor]
/// impl Actor for TwoTicks {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         link.serve_for(self, std::time::Duration::from_secs(10))?; // until it stops
///         Ok(())
///     }
///     fn handle(&mut self, _: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
///         self.seen += 1;
///         Ok(if self.seen == 2 { Flow::Stop } else { Flow::Continue })
///     }
/// }
///
/// let mut refused = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// let id = s.add(TwoTicks { seen: 0 });
/// for _ in 0..3 {
///     s.handle().send(To::Id(id), Msg::Tick)?;
/// }
/// s.on_undeliverable(|u| refused.push(u.reason.clone()));
/// let outcomes = s.supervise()?;
/// drop(s);
/// assert_eq!(outcomes[0].ended, Ended::Stopped);
/// // The third tick came after the stop: it is reported, not dropped.
/// assert_eq!(refused, ["it stopped (a handler returned Flow::Stop)"]);
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// End this process (multitools' "return False"), leaving the others running: it
    /// handles no more messages (those still coming are reported undeliverable) and ends
    /// once its run phase returns.
    Stop,
}

/// A message as a process receives it: who sent it, where it was sent, and the message.
///
/// A listener gets a copy of a message addressed to another process:
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Flow, Letter, Link, Listen, Supervisor, To};
/// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// # enum Msg { Text(String) }
///
/// #[derive(Serialize, Deserialize)]
/// struct Inbox;
///
/// #[spychro::actor]
/// impl Actor for Inbox {
///     type Message = Msg;
///     const RESIDENT: bool = true;
///     fn handle(&mut self, _: Letter<Msg>, _: &mut Link<Msg>) -> Result<Flow, Fail> {
///         Ok(Flow::Continue)
///     }
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Spy;
///
/// #[spychro::actor]
/// impl Actor for Spy {
///     type Message = Msg;
///     const RESIDENT: bool = true;
///     fn listens(&self) -> Listen<MsgKind> { Listen::To(vec![MsgKind::Text]) }
///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
///         let Msg::Text(text) = letter.message;
///         link.send_object(&(letter.from, letter.to.to_string(), text))?;
///         Ok(Flow::Continue)
///     }
/// }
///
/// let mut seen = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// let inbox = s.add(Inbox);
/// s.add(Spy);
/// s.handle().send(To::Id(inbox), Msg::Text("hi".into()))?; // from the supervisor: id 0
/// s.on_object(|_, v: (u64, String, String)| seen.push(v));
/// s.supervise()?;
/// drop(s);
/// assert_eq!(seen, [(0, format!("process {inbox}"), "hi".to_string())]);
/// # Ok::<(), spychro::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Letter<M: Message> {
    /// The sender's id (0: the supervisor itself, through its handle).
    pub from: u64,
    /// Where the sender addressed it (a listener gets copies addressed to others).
    pub to: To,
    /// The message.
    pub message: M,
}

impl<M: Message> Letter<M> {
    /// The message's kind.
    ///
    /// ```
    /// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
    /// # enum Note { Text(String) }
    /// let letter = spychro::Letter { from: 1, to: spychro::To::Id(2), message: Note::Text("hi".into()) };
    /// assert_eq!(letter.kind(), NoteKind::Text);
    /// ```
    pub fn kind(&self) -> M::Kind {
        self.message.kind()
    }
}

/// A process that a [`Supervisor`](crate::Supervisor) runs: a type with state, serialized to
/// its child, where [`run`](Actor::run) does its work (multitools' `op`) and
/// [`handle`](Actor::handle) reacts to the messages sent to it. Put `#[spychro::actor]` on
/// the `impl` so that children can find it.
///
/// Messages that arrive while `run` works wait in the process's mailbox until `run` hands
/// control over with [`Link::serve_for`] (the counterpart of the seed's `time.sleep` in
/// `op`, during which messages are handled) or returns; after `run` returns, the process
/// handles everything sent to it before the supervisor saw it finish, then ends. A resident
/// ([`RESIDENT`](Actor::RESIDENT)) has no run phase: it handles messages until every
/// non-resident process has ended.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spychro::{Actor, Fail, Link, Supervisor};
///
/// #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// enum Msg { Text(String) }
///
/// #[derive(Serialize, Deserialize)]
/// struct Multiply { a: u64, b: u64 }
///
/// #[spychro::actor]
/// impl Actor for Multiply {
///     type Message = Msg;
///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
///         link.send_object(&(self.a * self.b))?;
///         Ok(())
///     }
/// }
///
/// let mut seen = Vec::new();
/// let mut s = Supervisor::<Msg>::new();
/// s.add(Multiply { a: 1234, b: 5678 });
/// s.on_object(|_, product: u64| seen.push(product));
/// s.supervise()?;
/// drop(s);
/// assert_eq!(seen, [7006652]);
/// # Ok::<(), spychro::Error>(())
/// ```
pub trait Actor: Serialize + DeserializeOwned + 'static {
    /// The supervisor's message enum.
    type Message: Message;

    /// Residents only react to messages, and end by themselves once every non-resident
    /// process has ended (multitools' `Resident`).
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Ended, Fail, Flow, Letter, Link, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Add(u64) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Total(u64);
    ///
    /// #[spychro::actor]
    /// impl Actor for Total {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true; // no run phase: it lives while the others do
    ///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         let Msg::Add(n) = letter.message;
    ///         self.0 += n;
    ///         link.send_object(&self.0)?;
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Adder { total: u64 }
    ///
    /// #[spychro::actor]
    /// impl Actor for Adder {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         for n in 1..=3 {
    ///             link.send_to(self.total, Msg::Add(n))?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut totals = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// let total = s.add(Total(0));
    /// s.add(Adder { total });
    /// s.on_object(|_, t: u64| totals.push(t));
    /// let outcomes = s.supervise()?;
    /// drop(s);
    /// assert_eq!(totals, [1, 3, 6]); // everything sent to it was handled before it closed
    /// assert_eq!((outcomes[0].ended, outcomes[1].ended), (Ended::Closed, Ended::Finished));
    /// # Ok::<(), spychro::Error>(())
    /// ```
    const RESIDENT: bool = false;

    /// Its name (multitools' `M_NAME`), by which others find its id: the type's name unless
    /// overridden.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Shard(u32);
    ///
    /// #[spychro::actor]
    /// impl Actor for Shard {
    ///     type Message = Msg;
    ///     fn name(&self) -> String { format!("shard-{}", self.0) }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Plain;
    ///
    /// #[spychro::actor]
    /// impl Actor for Plain {
    ///     type Message = Msg;
    /// }
    ///
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Shard(7));
    /// s.add(Plain);
    /// let names: Vec<String> = s.supervise()?.into_iter().map(|o| o.name).collect();
    /// assert_eq!(names, ["shard-7", "Plain"]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    fn name(&self) -> String {
        short_type_name::<Self>().to_owned()
    }

    /// The message kinds it receives whoever they were sent to (multitools' `LISTEN_TYPE`).
    ///
    /// A kind declared below another (`#[message(parent = ...)]`) is heard by the parent's
    /// listeners too:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Flow, Letter, Link, Listen, Supervisor, To};
    ///
    /// #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// enum Msg { Text(String), #[message(parent = Text)] Shout(String), Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Reader;
    ///
    /// #[spychro::actor]
    /// impl Actor for Reader {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true;
    ///     fn listens(&self) -> Listen<MsgKind> { Listen::To(vec![MsgKind::Text]) }
    ///     fn handle(&mut self, letter: Letter<Msg>, link: &mut Link<Msg>) -> Result<Flow, Fail> {
    ///         link.send_object(&format!("{:?}", letter.message))?;
    ///         Ok(Flow::Continue)
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Talker;
    ///
    /// #[spychro::actor]
    /// impl Actor for Talker {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send(To::Listeners, Msg::Text("hi".into()))?;
    ///         link.send(To::Listeners, Msg::Shout("HEY".into()))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut heard = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Reader);
    /// s.add(Talker);
    /// s.on_object(|_, m: String| heard.push(m));
    /// s.supervise()?;
    /// drop(s);
    /// assert_eq!(heard, [r#"Text("hi")"#, r#"Shout("HEY")"#]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    fn listens(&self) -> Listen<<Self::Message as Message>::Kind> {
        Listen::Nothing
    }

    /// Its work (multitools' `op`): when it returns, the process ends (after handling what
    /// was sent to it meanwhile). An `Err` (or a panic) fails it, and ends every other
    /// process of the supervisor unless a restart policy says otherwise. See the example on
    /// [`Actor`]; for a failure, the one on [`Fail`].
    fn run(&mut self, link: &mut Link<Self::Message>) -> Result<(), Fail> {
        let _ = link;
        Ok(())
    }

    /// Reacts to a message sent to it (or heard as a listener). Without an implementation,
    /// every message sent to it is reported to the supervisor as undeliverable ("it has no
    /// handler"). `Ok(Flow::Stop)` ends this process only; an `Err` fails it. A handler that
    /// answers is in the example on [`Supervisor`](crate::Supervisor); one that stops, on
    /// [`Flow`]. Without one:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Deaf;
    ///
    /// #[spychro::actor]
    /// impl Actor for Deaf {
    ///     type Message = Msg;
    ///     const RESIDENT: bool = true;
    /// }
    ///
    /// let mut s = Supervisor::<Msg>::new();
    /// let id = s.add(Deaf);
    /// s.handle().send(To::Id(id), Msg::Tick)?;
    /// let err = s.supervise().unwrap_err();
    /// let why = "it has no message handler (implement Actor::handle)";
    /// assert!(err.to_string().ends_with(why), "{err}");
    /// # Ok::<(), spychro::Error>(())
    /// ```
    fn handle(
        &mut self,
        letter: Letter<Self::Message>,
        link: &mut Link<Self::Message>,
    ) -> Result<Flow, Fail> {
        link.refuse(
            &letter,
            "it has no message handler (implement Actor::handle)",
        );
        Ok(Flow::Continue)
    }
}

/// The last segment of a type's name: `Counter` for `my_crate::Counter`.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// Names an [`Actor`] for the children that run it; implemented by `#[spychro::actor]`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a registered actor",
    note = "put `#[spychro::actor]` on its `impl spychro::Actor for {Self}` block (or its \
            `impl spychro::Logger for {Self}` block)"
)]
pub trait ActorJob: Actor {
    /// The registered name.
    const NAME: &'static str;
    /// A hash of the type's definition site, checked when the child loads it.
    const SIGNATURE: u64;
}

/// What a child is started with: the actor, its end of the link, its id and name.
#[doc(hidden)]
#[derive(Serialize, Deserialize)]
pub struct Start<A> {
    pub(crate) actor: A,
    pub(crate) link: super::link::LinkFd,
    pub(crate) id: u64,
    pub(crate) name: String,
}

/// How a supervised process ended, as it reports it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Ending {
    /// Its run phase returned (or, a resident, it was closed).
    Finished,
    /// A handler returned `Flow::Stop`.
    Stopped,
}

/// The job that serves an [`Actor`] in a child.
#[doc(hidden)]
pub struct ActorRunner<A>(PhantomData<fn(A)>);

impl<A> ActorRunner<A> {
    pub(crate) fn new() -> Self {
        ActorRunner(PhantomData)
    }
}

impl<A> Clone for ActorRunner<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A> Copy for ActorRunner<A> {}

impl<A> Sealed for ActorRunner<A> {}

impl<A: ActorJob> JobFn for ActorRunner<A> {
    type Item = Start<A>;
    type Args = ();
    type Output = Ending;
    type Message = ();
    const NAME: &'static str = A::NAME;
    const SIGNATURE: u64 = A::SIGNATURE;

    type State = ();
    const STATEFUL: bool = false;

    fn call(start: Start<A>, _: &(), _: &mut (), _: &Ctx<'_, ()>) -> Result<Ending, String> {
        super::serve::serve(start)
    }

    fn describe(_: &Start<A>) -> Option<String> {
        None
    }
}

impl<A: ActorJob> AsJob for ActorRunner<A> {
    type Job = Self;
    fn as_job(self) -> Self {
        self
    }
}
