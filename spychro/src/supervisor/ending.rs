//! How a supervised process's end is handled: how it ended (its outcome), a failure and what
//! the restart policy makes of it, and ending every process at once (a failure, a signal, a
//! drop). Every process leaves the signal handler's kill table before it is reaped.

use std::time::Instant;

use super::actor::Ending;
use super::api::{Ended, Restart, Supervisor};
use super::member::Phase;
use super::message::Message;
use crate::error::{Error, SupervisorError};

impl<M: Message> Supervisor<'_, M> {
    /// Stops having member `i`'s process killed on a signal; call it before reaping it (after,
    /// its pid may belong to another process).
    pub(super) fn unwatch(&self, i: usize) {
        if let (Some(g), Some(pid)) = (self.signals.as_ref(), self.members[i].pid()) {
            g.unwatch(pid);
        }
    }

    /// Member `i`'s process ended (its link closed, or it is gone): how, and what follows.
    pub(super) fn member_ended(&mut self, i: usize) {
        if !self.members[i].live() {
            return;
        }
        self.unwatch(i);
        let m = &mut self.members[i];
        m.sock = None;
        m.phase = Phase::Ended;
        let joined = match m.process.as_mut() {
            Some(p) => p.join_value(),
            None => Err(Error::internal("a supervised process without a process")),
        };
        let name = m.name.clone();
        let id = m.id;
        let resident = m.resident;
        let removed = m.removed;
        let ending = joined.and_then(|v| {
            v.downcast::<Ending>()
                .map(|e| *e)
                .map_err(|_| Error::internal("a supervised process returned something else"))
        });
        self.names_changed(&name);
        let ended = match ending {
            _ if removed => Ended::Removed,
            Ok(Ending::Stopped) => Ended::Stopped,
            Ok(Ending::Finished) if resident => Ended::Closed,
            Ok(Ending::Finished) => Ended::Finished,
            // Killed by the signal's handler: the loop reports the signal.
            Err(_) if self.interrupted().is_some() => Ended::Removed,
            Err(error) => {
                self.failed(i, error);
                return;
            }
        };
        self.outcomes.insert(id, ended);
    }

    /// Member `i` failed: restart it (or everyone) as the policy says, or end everything.
    pub(super) fn failed(&mut self, i: usize, error: Error) {
        let m = &self.members[i];
        let (name, id, pid) = (m.name.clone(), m.id, m.pid());
        let (max, within, all) = match self.restart {
            Restart::Never => {
                self.fatal
                    .get_or_insert(Error::Supervisor(Box::new(SupervisorError::Failed {
                        name,
                        id,
                        pid,
                        error: Box::new(error),
                    })));
                return;
            }
            Restart::OneForOne { max, within } => (max, within, false),
            Restart::OneForAll { max, within } => (max, within, true),
        };
        let now = Instant::now();
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > within)
        {
            self.failures.pop_front();
        }
        if self.failures.len() as u32 >= max {
            self.fatal.get_or_insert(Error::Supervisor(Box::new(
                SupervisorError::RestartsExhausted {
                    name,
                    id,
                    failures: self.failures.len() as u32 + 1,
                    max,
                    within,
                    error: Box::new(error),
                },
            )));
            return;
        }
        self.failures.push_back(now);
        log::warn!(target: "spychro::supervisor", "process {name} (id {id}) failed, restarting: {error}");
        let mut again = vec![i];
        if all {
            for t in 0..self.members.len() {
                if t != i && self.members[t].receives() {
                    self.members[t].kill();
                    self.unwatch(t);
                    if let Some(p) = self.members[t].process.as_mut() {
                        let _ = p.join_value();
                    }
                    self.members[t].phase = Phase::Ended;
                    self.members[t].sock = None;
                    again.push(t);
                }
            }
        }
        for t in again {
            self.members[t].restarts += 1;
            if let Err(e) = self.start_member(t) {
                self.fatal.get_or_insert(e);
                return;
            }
        }
    }

    /// Kills every process that still runs and waits for them.
    pub(super) fn end_all(&mut self) {
        for m in &mut self.members {
            if m.live() {
                m.kill();
            }
        }
        for i in 0..self.members.len() {
            if self.members[i].live() {
                self.unwatch(i);
            }
        }
        for m in &mut self.members {
            if m.live() {
                self.outcomes.entry(m.id).or_insert(Ended::Removed);
                if let Some(p) = m.process.as_mut() {
                    let _ = p.join_value();
                }
                m.phase = Phase::Ended;
                m.sock = None;
            }
        }
        self.refresh_directory();
    }
}
