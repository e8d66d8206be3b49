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
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{DebugLogger, Fail, Letter, Link, Logger, Supervisor};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Audit;
    ///
    /// #[spychro::actor]
    /// impl Logger for Audit {
    ///     type Message = Msg;
    ///     fn name(&self) -> String { "audit-trail".into() }
    ///     fn log(&mut self, _: &Letter<Msg>, _: &mut Link<Msg>) -> Result<(), Fail> { Ok(()) }
    /// }
    ///
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Audit);
    /// s.add(DebugLogger::<Msg>::new());
    /// let names: Vec<String> = s.supervise()?.into_iter().map(|o| o.name).collect();
    /// assert_eq!(names, ["audit-trail", "DebugLogger"]);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    fn name(&self) -> String {
        short_type_name::<Self>().to_owned()
    }
    /// What it listens to: every message unless overridden.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, Fail, Letter, Link, Listen, Logger, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Text(String), Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Everything; // listens to every kind: the default
    ///
    /// #[spychro::actor]
    /// impl Logger for Everything {
    ///     type Message = Msg;
    ///     fn log(&mut self, letter: &Letter<Msg>, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prnt(format!("everything: {:?}", letter.message))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Texts;
    ///
    /// #[spychro::actor]
    /// impl Logger for Texts {
    ///     type Message = Msg;
    ///     fn listens(&self) -> Listen<MsgKind> { Listen::To(vec![MsgKind::Text]) }
    ///     fn log(&mut self, letter: &Letter<Msg>, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.prnt(format!("texts: {:?}", letter.message))?;
    ///         Ok(())
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
    ///         link.send(To::Listeners, Msg::Tick)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut lines = Vec::new();
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Everything);
    /// s.add(Texts);
    /// s.add(Talker);
    /// s.on_print(|_, line| lines.push(line.to_owned()));
    /// s.supervise()?;
    /// drop(s);
    /// lines.sort();
    /// let want = [r#"everything: Text("hi")"#, "everything: Tick", r#"texts: Text("hi")"#];
    /// assert_eq!(lines, want);
    /// # Ok::<(), spychro::Error>(())
    /// ```
    fn listens(&self) -> Listen<<Self::Message as Message>::Kind> {
        Listen::All
    }
    /// Records one message.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use std::io::Write;
    /// use spychro::{Actor, Fail, Letter, Link, Logger, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Saved(String) }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct FileLog { path: std::path::PathBuf }
    ///
    /// #[spychro::actor]
    /// impl Logger for FileLog {
    ///     type Message = Msg;
    ///     fn log(&mut self, letter: &Letter<Msg>, _: &mut Link<Msg>) -> Result<(), Fail> {
    ///         let mut file = std::fs::File::options().create(true).append(true).open(&self.path)?;
    ///         writeln!(file, "{} to {}: {:?}", letter.from, letter.to, letter.message)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Saver;
    ///
    /// #[spychro::actor]
    /// impl Actor for Saver {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send(To::Listeners, Msg::Saved("a.txt".into()))?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # let path = std::env::temp_dir().join(format!("spychro-doc-log-{}", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(FileLog { path: path.clone() });
    /// let saver = s.add(Saver);
    /// s.supervise()?;
    /// let logged = std::fs::read_to_string(&path).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// assert_eq!(logged, format!("{saver} to the listeners of its kind: Saved(\"a.txt\")\n"));
    /// # Ok::<(), spychro::Error>(())
    /// ```
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
    /// A debug logger. It hears every message, so a message sent to
    /// [`To::Listeners`](crate::To::Listeners) always has a listener while it runs:
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// use spychro::{Actor, DebugLogger, Fail, Link, Supervisor, To};
    /// # #[derive(Debug, Serialize, Deserialize, spychro::Message)]
    /// # enum Msg { Tick }
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Ticker;
    ///
    /// #[spychro::actor]
    /// impl Actor for Ticker {
    ///     type Message = Msg;
    ///     fn run(&mut self, link: &mut Link<Msg>) -> Result<(), Fail> {
    ///         link.send(To::Listeners, Msg::Tick)?;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Ticker);
    /// assert!(s.supervise().is_err()); // nobody listens to Tick: undeliverable
    ///
    /// let mut s = Supervisor::<Msg>::new();
    /// s.add(Ticker);
    /// s.add(DebugLogger::<Msg>::new()); // logs "Tick from 1 to the listeners of its kind"
    /// s.supervise()?;
    /// # Ok::<(), spychro::Error>(())
    /// ```
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
