//! The routing loop of a [`Supervisor`](super::Supervisor), on the thread that joins: one
//! poll over every process's link, the wake socket (handles, the input thread) and the
//! signal pipe; messages are routed by their header, copied from the sender's frame into the
//! receivers' send buffers, which are written once a round.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::api::{Command, Supervisor};
use super::frames::{self, *};
use super::member::{Member, Phase};
use super::message::{Message, MessageKind, To};
use crate::error::{Error, SupervisorError, Undelivered};
use crate::sys::signals::{Guard, Inside};
use crate::wire;

/// How long the loop polls without sleeping when nothing came (see `link.rs`).
const SPIN: Duration = Duration::from_micros(100);
/// How often the loop looks at processes that might have ended without closing their link
/// (a forked copy holding it).
const CHECK: Duration = Duration::from_millis(100);

impl<M: Message> Supervisor<'_, M> {
    /// Routes until every non-resident has ended; the error that ended it otherwise.
    pub(super) fn run_hub(&mut self) -> Result<(), Error> {
        self.signals = Guard::new().ok();
        if let Some(g) = &self.signals {
            for m in self.members.iter().filter(|m| m.live()) {
                if let Some(pid) = m.pid() {
                    g.watch(pid);
                }
            }
        }
        let _inside = Inside::enter();
        let result = self.route_loop();
        // Every process it watched is reaped (and unwatched) by now.
        self.signals = None;
        result
    }

    /// The signal that arrived while routing, if one did: the processes are being killed.
    pub(super) fn interrupted(&self) -> Option<i32> {
        self.signals.as_ref().and_then(|g| g.fired())
    }

    fn route_loop(&mut self) -> Result<(), Error> {
        let mut last_check = Instant::now();
        loop {
            self.take_commands();
            self.close_residents();
            self.next_input();
            // A signal first: what it killed must not read as failures.
            if let Some(signal) = self.interrupted() {
                self.end_all();
                return Err(Error::Interrupted { signal });
            }
            if let Some(e) = self.fatal.take() {
                self.end_all();
                return Err(e);
            }
            if !self.members.iter().any(|m| m.live()) {
                return Ok(());
            }
            self.flush_all();
            let readable = self.poll();
            if let Some(signal) = self.interrupted() {
                self.end_all();
                return Err(Error::Interrupted { signal });
            }
            for i in readable {
                self.read_member(i);
            }
            if let Some((id, answer)) = self.input.answer()
                && let Some(&i) = self.by_id.get(&id)
                && self.members[i].live()
            {
                let _ = frames::push_value(&mut self.members[i].tx, DOWN_INPUT, &answer);
            }
            if last_check.elapsed() >= CHECK {
                last_check = Instant::now();
                for i in 0..self.members.len() {
                    let m = &self.members[i];
                    if m.live() && !m.process.as_ref().is_some_and(|p| p.is_alive()) {
                        self.member_ended(i);
                    }
                }
            }
        }
    }

    /// Polls the links, the wake socket and the signal pipe; returns the members readable.
    fn poll(&mut self) -> Vec<usize> {
        let start = Instant::now();
        let guard = self.signals.as_ref();
        loop {
            let spinning = start.elapsed() < SPIN;
            let mut fds = Vec::with_capacity(self.members.len() + 2);
            let mut owners = Vec::with_capacity(self.members.len());
            fds.push(PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN));
            if let Some(g) = guard {
                fds.push(PollFd::new(g.fd(), PollFlags::POLLIN));
            }
            let fixed = fds.len();
            for (i, m) in self.members.iter().enumerate() {
                if let Some(sock) = m.sock.as_ref()
                    && m.live()
                {
                    let mut flags = PollFlags::POLLIN;
                    if !m.tx.is_empty() {
                        flags |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(sock.as_fd(), flags));
                    owners.push(i);
                }
            }
            let timeout = if spinning {
                PollTimeout::ZERO
            } else {
                PollTimeout::from(CHECK.as_millis() as u16)
            };
            let n = poll(&mut fds, timeout).unwrap_or(0);
            if n == 0 && spinning {
                // Let a process that has work run on this CPU meanwhile.
                std::thread::yield_now();
                continue;
            }
            let woken = fds[0].revents().is_some_and(|r| !r.is_empty());
            let mut ready = Vec::new();
            for (k, fd) in fds[fixed..].iter().enumerate() {
                if fd.revents().is_some_and(|r| {
                    r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                }) {
                    ready.push(owners[k]);
                }
            }
            drop(fds);
            if woken {
                let mut sink = [0u8; 64];
                while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
            }
            return ready;
        }
    }

    /// Reads member `i`'s link and handles its frames; an end of stream means it ended.
    fn read_member(&mut self, i: usize) {
        let open = {
            let m = &mut self.members[i];
            let Some(sock) = m.sock.as_ref() else { return };
            m.rx.fill(&mut &*sock).unwrap_or(false)
        };
        let mut rx = std::mem::take(&mut self.members[i].rx);
        loop {
            match rx.next_frame() {
                Ok(Some((tag, body))) => {
                    if let Err(e) = self.on_frame(i, tag, body) {
                        let m = &self.members[i];
                        self.fatal.get_or_insert(Error::Supervisor(Box::new(
                            SupervisorError::Failed {
                                name: m.name.clone(),
                                id: m.id,
                                pid: m.pid(),
                                error: Box::new(Error::internal(format!(
                                    "it broke the supervisor's protocol: {e}"
                                ))),
                            },
                        )));
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.fatal.get_or_insert(Error::internal(format!(
                        "a supervised process sent a malformed frame: {e}"
                    )));
                    break;
                }
            }
        }
        self.members[i].rx = rx;
        if !open {
            self.member_ended(i);
        }
    }

    fn on_frame(&mut self, i: usize, tag: u8, body: &[u8]) -> Result<(), crate::error::WireError> {
        match tag {
            UP_SEND => {
                let (to, kind, bytes) = frames::parse_send(body)?;
                let from = self.members[i].id;
                self.route(Some(i), from, to, kind, bytes);
            }
            UP_OBJECT => {
                let (type_name, bytes): (String, Vec<u8>) = wire::decode(body, "object")?;
                let origin = self.origin(i);
                match self.handlers.object.as_mut() {
                    Some(h) => {
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            h(&origin, &type_name, &bytes)
                        })) {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                self.fatal.get_or_insert(Error::Supervisor(Box::new(e)));
                            }
                            Err(p) => self.fail_handler("object", p),
                        }
                    }
                    None => {
                        self.fatal.get_or_insert(Error::Supervisor(Box::new(
                            SupervisorError::UnknownObject {
                                name: origin.name,
                                id: origin.id,
                                type_name,
                            },
                        )));
                    }
                }
            }
            UP_PRINT => {
                let line: String = wire::decode(body, "line")?;
                let origin = self.origin(i);
                match self.handlers.print.as_mut() {
                    Some(h) => {
                        if let Err(p) =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                h(&origin, &line)
                            }))
                        {
                            self.fail_handler("print", p);
                        }
                    }
                    None => Self::print_line(&line),
                }
            }
            UP_INPUT => {
                let prompt: String = wire::decode(body, "prompt")?;
                let id = self.members[i].id;
                self.input.push(id, prompt);
            }
            UP_IDS => {
                let name: String = wire::decode(body, "name")?;
                let id = self.members[i].id;
                self.watchers.entry(name.clone()).or_default().insert(id);
                let ids = self.get_ids(&name);
                let _ = frames::push_value(&mut self.members[i].tx, DOWN_IDS, &(name, ids));
            }
            UP_FINISHED | UP_STOPPED => {
                let m = &mut self.members[i];
                if m.phase == Phase::Running {
                    m.phase = Phase::Closing;
                    m.stopped = tag == UP_STOPPED;
                    frames::push_empty(&mut m.tx, DOWN_CLOSE);
                    let name = m.name.clone();
                    self.names_changed(&name);
                }
            }
            UP_REFUSED => {
                let (from, kind, reason) = frames::parse_refused(body)?;
                let m = &self.members[i];
                let to = format!("process {} (id {})", m.name, m.id);
                let u = Undelivered {
                    from,
                    from_name: self.name_of(from),
                    to,
                    kind: kind_name::<M>(kind),
                    reason,
                };
                self.undeliverable(u);
            }
            other => {
                return Err(crate::error::WireError::Decode {
                    what: "supervised process frame",
                    message: format!("unknown tag {other}"),
                });
            }
        }
        Ok(())
    }

    /// Routes an encoded message from `from` (member `src`; `None` for the supervisor).
    pub(super) fn route(&mut self, src: Option<usize>, from: u64, to: To, kind: u32, bytes: &[u8]) {
        let mut sent = 0usize;
        let mut direct = None;
        let mut refusal = None;
        match to {
            To::Id(x) => match self.by_id.get(&x).copied() {
                Some(t) if self.members[t].receives() => {
                    frames::push_deliver(&mut self.members[t].tx, from, to, kind, bytes);
                    direct = Some(t);
                }
                Some(t) => {
                    let m = &self.members[t];
                    refusal = Some(format!(
                        "process {} (id {x}) has ended (its run phase returned, it stopped, or \
                         it was removed)",
                        m.name
                    ));
                }
                None => {
                    refusal = Some(format!("no process has id {x} (it never existed)"));
                }
            },
            To::Broadcast => {
                for t in 0..self.members.len() {
                    if Some(t) != src && self.members[t].receives() {
                        frames::push_deliver(&mut self.members[t].tx, from, to, kind, bytes);
                        sent += 1;
                    }
                }
                if sent == 0 {
                    refusal = Some("no other process is running".into());
                }
            }
            To::Listeners => {}
        }
        // Listeners hear every message of their kinds, whoever it was sent to.
        let hearers = self
            .hearers
            .get_mut(kind as usize)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut heard = 0usize;
        if to != To::Broadcast {
            for &t in &hearers {
                if Some(t) != src && Some(t) != direct && self.members[t].receives() {
                    frames::push_deliver(&mut self.members[t].tx, from, to, kind, bytes);
                    heard += 1;
                }
            }
        }
        if let Some(slot) = self.hearers.get_mut(kind as usize) {
            *slot = hearers;
        }
        if to == To::Listeners && heard == 0 {
            refusal = Some(format!(
                "no running process listens to {} messages",
                kind_name::<M>(kind)
            ));
        }
        if let Some(reason) = refusal {
            let to = match to {
                To::Id(x) => match self.by_id.get(&x) {
                    Some(&t) => format!("process {} (id {x})", self.members[t].name),
                    None => format!("id {x}"),
                },
                other => other.to_string(),
            };
            let u = Undelivered {
                from,
                from_name: self.name_of(from),
                to,
                kind: kind_name::<M>(kind),
                reason,
            };
            self.undeliverable(u);
        }
    }

    fn name_of(&self, id: u64) -> String {
        if id == 0 {
            return "the supervisor".into();
        }
        self.by_id
            .get(&id)
            .map(|&i| self.members[i].name.clone())
            .unwrap_or_else(|| format!("process {id}"))
    }

    /// Writes what each link has waiting, without blocking.
    fn flush_all(&mut self) {
        for m in &mut self.members {
            if m.tx.is_empty() {
                continue;
            }
            let Some(sock) = m.sock.as_ref() else {
                m.tx.clear();
                continue;
            };
            let mut done = 0;
            while done < m.tx.len() {
                match (&*sock).write(&m.tx[done..]) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // It is gone: its end of stream says so.
                    Err(_) => {
                        done = m.tx.len();
                    }
                }
            }
            m.tx.drain(..done);
        }
    }

    /// Once every non-resident has ended, closes the residents.
    fn close_residents(&mut self) {
        if self.members.iter().any(|m| !m.resident && m.live())
            || !self
                .members
                .iter()
                .any(|m| m.resident && m.phase == Phase::Running)
        {
            return;
        }
        let mut names = Vec::new();
        for m in &mut self.members {
            if m.resident && m.phase == Phase::Running {
                m.phase = Phase::Closing;
                frames::push_empty(&mut m.tx, DOWN_CLOSE);
                names.push(m.name.clone());
            }
        }
        for name in names {
            self.names_changed(&name);
        }
    }

    /// Asks the next prompt, if none is being answered.
    fn next_input(&mut self) {
        while let Some((id, prompt)) = self.input.next() {
            if self.by_id.get(&id).is_some_and(|&i| self.members[i].live()) {
                let wake = std::sync::Arc::clone(&self.wake_tx);
                self.input.ask(id, &prompt, &wake);
                return;
            }
        }
    }

    /// The processes named `name` changed: tells those that asked for its ids.
    pub(super) fn names_changed(&mut self, name: &str) {
        self.refresh_directory();
        let Some(watchers) = self.watchers.get(name) else {
            return;
        };
        let ids: BTreeSet<u64> = self.get_ids(name);
        let answer = (name.to_owned(), ids);
        for w in watchers.clone() {
            if let Some(&t) = self.by_id.get(&w)
                && self.members[t].receives()
            {
                let _ = frames::push_value(&mut self.members[t].tx, DOWN_IDS, &answer);
            }
        }
    }

    /// Carries out what handles asked.
    fn take_commands(&mut self) {
        while let Ok(c) = self.commands.try_recv() {
            match c {
                Command::Add {
                    id,
                    name,
                    listens,
                    resident,
                    spawn,
                } => {
                    self.insert(Member::new(id, name, listens, resident, spawn));
                }
                Command::Remove(id) => {
                    if let Some(&i) = self.by_id.get(&id)
                        && self.members[i].live()
                    {
                        self.members[i].removed = true;
                        self.members[i].phase = Phase::Closing;
                        self.members[i].kill();
                        let name = self.members[i].name.clone();
                        self.names_changed(&name);
                        // Its link closes as it dies: `member_ended` records it.
                    }
                }
                Command::Send(to, message) => {
                    let kind = message.kind().index();
                    match wire::encode_value(&message) {
                        Ok(bytes) => self.route(None, 0, to, kind, &bytes),
                        Err(e) => {
                            self.fatal.get_or_insert(Error::Misuse(format!(
                                "a message sent through a supervisor handle did not encode: {e}"
                            )));
                        }
                    }
                }
            }
        }
    }
}

fn kind_name<M: Message>(kind: u32) -> &'static str {
    M::Kind::from_index(kind).map_or("(unknown kind)", |k| k.name())
}
