//! [`Logger`]: a resident that listens and records (multitools' `ipc.logger.Logger`), and
//! the ready [`DebugLogger`], which logs every message through the `log` crate.

use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::DeserializeOwned};

use super::actor::{Actor, ActorJob, Fail, Flow, Letter, short_type_name};
use super::link::Link;
use super::message::{Listen, Message};

/// A resident process that listens to message kinds and records what it hears — to a file,
/// the screen, a progress display — and does nothing else (multitools' `Logger`). Every
/// `Logger` is an [`Actor`] (a resident); register it with `#[spychro::actor]` on its
/// `impl Logger` block.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use spychro::{Fail, Letter, Link, Listen, Logger};
///
/// #[derive(Debug, Serialize, Deserialize, spychro::Message)]
/// enum Msg { Text(String), Tick }
///
/// #[derive(Serialize, Deserialize)]
/// struct TextLog;
///
/// #[spychro::actor]
/// impl Logger for TextLog {
///     type Message = Msg;
///     fn listens(&self) -> Listen<MsgKind> { Listen::To(vec![MsgKind::Text]) }
///     fn log(&mut self, letter: &Letter<Msg>, link: &mut Link<Msg>) -> Result<(), Fail> {
///         link.prnt(format!("heard {:?}", letter.message))?;
///         Ok(())
///     }
/// }
/// ```
pub trait Logger: Serialize + DeserializeOwned + Send + 'static {
    /// The supervisor's message enum.
    type Message: Message;
    /// Its name: the type's name unless overridden.
    fn name(&self) -> String {
        short_type_name::<Self>().to_owned()
    }
    /// What it listens to: every message unless overridden.
    fn listens(&self) -> Listen<<Self::Message as Message>::Kind> {
        Listen::All
    }
    /// Records one message.
    fn log(
        &mut self,
        letter: &Letter<Self::Message>,
        link: &mut Link<Self::Message>,
    ) -> Result<(), Fail>;
}

impl<L: Logger> Actor for L {
    type Message = L::Message;
    const RESIDENT: bool = true;
    fn name(&self) -> String {
        Logger::name(self)
    }
    fn listens(&self) -> Listen<<Self::Message as Message>::Kind> {
        Logger::listens(self)
    }
    fn handle(
        &mut self,
        letter: Letter<Self::Message>,
        link: &mut Link<Self::Message>,
    ) -> Result<Flow, Fail> {
        self.log(&letter, link)?;
        Ok(Flow::Continue)
    }
}

/// A ready [`Logger`] that hears every message and logs it through the `log` crate (target
/// `spychro::debug`, level `info`): add it while developing to see messages flow, remove it
/// before release (multitools' `DebugLogger`). `#[derive(spychro::Message)]` registers it for
/// the enum.
///
/// ```
/// # #[derive(Debug, serde::Serialize, serde::Deserialize, spychro::Message)]
/// # enum Msg { Tick }
/// let mut s = spychro::Supervisor::<Msg>::new();
/// s.add(spychro::DebugLogger::<Msg>::new());
/// ```
pub struct DebugLogger<M>(PhantomData<fn(M)>);

impl<M> DebugLogger<M> {
    /// A debug logger.
    pub fn new() -> Self {
        DebugLogger(PhantomData)
    }
}

impl<M> Default for DebugLogger<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> Serialize for DebugLogger<M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de, M> Deserialize<'de> for DebugLogger<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| DebugLogger(PhantomData))
    }
}

impl<M: Message> Logger for DebugLogger<M> {
    type Message = M;
    fn name(&self) -> String {
        "DebugLogger".into()
    }
    fn log(&mut self, letter: &Letter<M>, _: &mut Link<M>) -> Result<(), Fail> {
        log::info!(
            target: "spychro::debug",
            "{:?} from {} to {}",
            letter.message,
            letter.from,
            letter.to
        );
        Ok(())
    }
}

impl<M: Message> ActorJob for DebugLogger<M> {
    const NAME: &'static str = M::DEBUG_LOGGER;
    const SIGNATURE: u64 = M::SIGNATURE;
}
