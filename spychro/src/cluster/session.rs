//! One job on the cluster, from the caller's side: reads the input lazily and publishes it in
//! batches while the job's window has room (every batch stored by the broker, published again
//! until it is), reads what the hosts report back, keeps the first outcome of each item (a
//! batch delivered twice is run twice), calls the job's handlers, and hands outcomes over in
//! input order (or as they arrive). When it ends — done, failed, interrupted or dropped — the
//! job is withdrawn: hosts drop its running batches, and its batches and reports are purged
//! from the broker.
//!
//! It is the [`Remote`] behind a cluster job's [`Results`](crate::Results).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use futures::stream::FuturesUnordered;

use super::broker::Broker;
use super::messages::{
    Batch, Done, Event, ITEMS_STREAM, REPORTS_STREAM, Report, Wants, WireOutcome, caller_consumer,
    cancel_subject, items_subject, reports_subject,
};
use crate::backend::remote::Remote;
use crate::call::job_fn::JobFn;
use crate::engine::hooks::{Hooks, WorkerLog};
use crate::engine::insights::Insights;
use crate::engine::job::{Indexed, Outcome};
use crate::error::{Error, FailureKind, ItemError};
use crate::sys::signals::{Guard, Inside};
use crate::wire;

/// Batches published and not yet stored, at most.
const STORING: usize = 64;
/// How long to wait for the broker before looking at the signals and the deadline again.
const LOOK: Duration = Duration::from_millis(100);
/// How long a batch may go unstored (the broker away) before the job fails.
const STORE_PATIENCE: Duration = Duration::from_secs(60);

/// What every batch of the job carries besides its items.
pub(crate) struct Template {
    pub(crate) name: &'static str,
    pub(crate) signature: u64,
    pub(crate) args: Vec<u8>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) retries: u32,
    pub(crate) wants: Wants,
}

/// An item's place between the first not handed over and the last published.
enum Slot<O> {
    Waiting,
    Ready(Outcome<O>),
    /// Handed over (out of order).
    Taken,
}

/// A batch's store, as it came back: its first index, its body, when it was first sent, and
/// its sequence in the items stream (or why the broker did not store it).
type Stored = (u64, Bytes, Instant, Result<u64, String>);

/// A cluster job in progress.
pub(crate) struct Session<'h, F: JobFn, It> {
    broker: Arc<Broker>,
    id: String,
    template: Template,
    items: It,
    input_done: bool,
    per_batch: usize,
    /// Items published and not handed over, at most.
    window: u64,
    /// The first item not handed over, and the first not published.
    head: u64,
    next_index: u64,
    slots: VecDeque<Slot<F::Output>>,
    unordered: bool,
    arrived: VecDeque<Indexed<F::Output>>,
    storing: FuturesUnordered<LocalBoxFuture<'static, Stored>>,
    /// The stored batches whose outcomes have not come, by first index: their sequences.
    unfinished: HashMap<u64, u64>,
    /// The job's reports, until it ends.
    reports: Option<pull::Stream>,
    hooks: Hooks<'h>,
    keep_going: bool,
    ended: bool,
    withdrawn: bool,
    guard: Option<Guard>,
    deadline: Option<(Duration, Instant)>,
    started: Instant,
}

impl<'h, F, It> Session<'h, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    /// Starts reading the job's reports; nothing is published before the first call for an
    /// outcome.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        broker: Arc<Broker>,
        id: String,
        template: Template,
        items: It,
        per_batch: usize,
        window: u64,
        hooks: Hooks<'h>,
        keep_going: bool,
        deadline: Option<Duration>,
        gone_after: Duration,
    ) -> Result<Self, Error> {
        let guard = Guard::new().ok();
        let reports = broker.rt.block_on(async {
            let stream = broker
                .js
                .get_stream(REPORTS_STREAM)
                .await
                .map_err(|e| broker.error("no results stream", e))?;
            let consumer = stream
                .create_consumer(pull::Config {
                    durable_name: Some(caller_consumer(&id)),
                    filter_subject: reports_subject(&id),
                    deliver_policy: async_nats::jetstream::consumer::DeliverPolicy::All,
                    ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
                    // If this process dies, the broker drops the consumer (and, the stream
                    // keeping reports only for their reader, the reports) once nothing has
                    // pulled for this long; hosts then drop the job's batches.
                    inactive_threshold: gone_after,
                    ..Default::default()
                })
                .await
                .map_err(|e| broker.error("could not read results", e))?;
            consumer
                .messages()
                .await
                .map_err(|e| broker.error("could not read results", e))
        })?;
        Ok(Session {
            broker,
            id,
            template,
            items,
            input_done: false,
            per_batch: per_batch.max(1),
            window: window.max(per_batch as u64),
            head: 0,
            next_index: 0,
            slots: VecDeque::new(),
            unordered: false,
            arrived: VecDeque::new(),
            storing: FuturesUnordered::new(),
            unfinished: HashMap::new(),
            reports: Some(reports),
            hooks,
            keep_going,
            ended: false,
            withdrawn: false,
            guard,
            deadline: deadline.map(|d| (d, Instant::now() + d)),
            started: Instant::now(),
        })
    }

    /// Waits until something happens (a batch stored, a report read) or a little while.
    fn pump(&mut self) -> Result<(), Error> {
        if let Some(signal) = self.guard.as_ref().and_then(|g| g.fired()) {
            return Err(Error::Interrupted { signal });
        }
        if let Some((limit, at)) = self.deadline
            && Instant::now() >= at
        {
            return Err(Error::DeadlineExceeded {
                limit,
                completed: self.head,
            });
        }
        let broker = self.broker.clone();
        broker.rt.block_on(async {
            self.publish_more().await?;
            tokio::select! {
                stored = self.storing.next(), if !self.storing.is_empty() => {
                    if let Some(stored) = stored {
                        self.stored(stored).await?;
                    }
                }
                report = async { self.reports.as_mut()?.next().await } => match report {
                    None => return Err(self.broker.error("the results ended", "no more messages")),
                    Some(Err(e)) => {
                        log::warn!(target: "spychro::cluster", "reading results: {e}");
                    }
                    Some(Ok(message)) => {
                        let _ = message.ack().await;
                        match wire::decode_value::<Report>(&message.payload) {
                            Ok(report) => self.report(report)?,
                            Err(e) => log::warn!(target: "spychro::cluster", "an unreadable report: {e}"),
                        }
                    }
                },
                _ = tokio::time::sleep(LOOK) => {}
            }
            Ok(())
        })
    }

    /// Reads and publishes batches while the window and the broker have room.
    async fn publish_more(&mut self) -> Result<(), Error> {
        while !self.input_done
            && self.storing.len() < STORING
            && self.next_index - self.head < self.window
        {
            let first = self.next_index;
            let mut encoded = Vec::with_capacity(self.per_batch);
            for item in self.items.by_ref().take(self.per_batch) {
                match wire::encode_value(&item) {
                    Ok(b) => {
                        encoded.push(b);
                        self.slots.push_back(Slot::Waiting);
                    }
                    // The item fails alone; the host's outcome for its empty place is dropped.
                    Err(message) => {
                        let index = first + encoded.len() as u64;
                        let failure = ItemError::new(
                            F::NAME,
                            index,
                            None,
                            std::process::id(),
                            FailureKind::SerializeItem { message },
                        );
                        self.hooks.failure(&failure);
                        encoded.push(Vec::new());
                        self.slots.push_back(Slot::Ready(Err(Box::new(failure))));
                    }
                }
            }
            if encoded.len() < self.per_batch {
                self.input_done = true;
            }
            if encoded.is_empty() {
                break;
            }
            self.next_index += encoded.len() as u64;
            let t = &self.template;
            let batch = Batch {
                job: self.id.clone(),
                name: t.name.into(),
                signature: t.signature,
                args: t.args.clone(),
                first,
                items: encoded,
                timeout_ms: t.timeout_ms,
                retries: t.retries,
                wants: t.wants,
            };
            let body = Bytes::from(wire::encode_value(&batch).map_err(Error::internal)?);
            self.send(first, body, Instant::now()).await;
        }
        Ok(())
    }

    /// Publishes a batch (again), with an id that lets the broker drop a second copy.
    async fn send(&mut self, first: u64, body: Bytes, since: Instant) {
        let message = PublishMessage::build()
            .payload(body.clone())
            .message_id(format!("{}.{first}", self.id));
        let sent = self
            .broker
            .js
            .send_publish(items_subject(&self.id), message)
            .await;
        self.storing.push(Box::pin(async move {
            let stored = match sent {
                Ok(ack) => ack.await.map(|a| a.sequence).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            (first, body, since, stored)
        }));
    }

    /// A batch's store came back: done, or published again (the broker may be restarting).
    async fn stored(&mut self, (first, body, since, stored): Stored) -> Result<(), Error> {
        let why = match stored {
            Ok(sequence) => {
                self.unfinished.insert(first, sequence);
                return Ok(());
            }
            Err(why) => why,
        };
        if since.elapsed() > STORE_PATIENCE {
            return Err(self.broker.error(
                &format!(
                    "the broker did not store the batch from item {first} in {}s",
                    STORE_PATIENCE.as_secs()
                ),
                why,
            ));
        }
        log::debug!(target: "spychro::cluster", "publishing the batch from item {first} again: {why}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.send(first, body, since).await;
        Ok(())
    }

    /// What a host reported.
    fn report(&mut self, report: Report) -> Result<(), Error> {
        match report {
            Report::Events { host, events } => {
                for event in events {
                    self.event(&host, event);
                }
                Ok(())
            }
            Report::Done(Done {
                refused: Some(why),
                host,
                ..
            }) => Err(Error::Misuse(format!(
                "cluster host {host} refused job `{}`: {why}",
                F::NAME
            ))),
            Report::Done(done) => {
                self.unfinished.remove(&done.first);
                for (k, outcome) in done.outcomes.into_iter().enumerate() {
                    self.outcome(done.first + k as u64, outcome, &done.host);
                }
                Ok(())
            }
        }
    }

    /// Calls the handler for what a host's worker sent.
    fn event(&mut self, host: &str, event: Event) {
        let h = &mut self.hooks;
        match event {
            Event::Message { pid, body } => h.message(pid, None, &body),
            Event::Progress {
                pid,
                item,
                fraction,
            } => h.progress(pid, item, fraction),
            Event::WorkerExit { pid, body } => h.worker_exit(pid, &body),
            Event::Log {
                pid,
                level,
                target,
                message,
                item,
                time_ms,
            } => h.log(WorkerLog {
                pid,
                time: std::time::UNIX_EPOCH + Duration::from_millis(time_ms),
                level: wire::level_from_wire(level),
                target,
                message,
                item,
                host: Some(host.to_owned()),
            }),
        }
    }

    /// Item `index`'s outcome from `host`: kept if it is the first.
    fn outcome(&mut self, index: u64, outcome: WireOutcome, host: &str) {
        let Some(slot) = index
            .checked_sub(self.head)
            .and_then(|k| self.slots.get_mut(k as usize))
        else {
            return;
        };
        if !matches!(slot, Slot::Waiting) {
            return; // a batch run twice: the first outcome stays
        }
        let failed = |pid, kind| {
            let e = ItemError::new(F::NAME, index, None, pid, kind).on_host(host.to_owned());
            Box::new(e)
        };
        let outcome = match outcome {
            Ok(bytes) => wire::decode_value::<F::Output>(&bytes).map_err(|message| {
                failed(
                    std::process::id(),
                    FailureKind::DeserializeOutput { message },
                )
            }),
            Err((kind, pid)) => Err(failed(pid, kind)),
        };
        if let Err(e) = &outcome {
            self.hooks.failure(e);
        }
        if self.unordered {
            *slot = Slot::Taken;
            self.arrived.push_back((index, outcome));
            while let Some(Slot::Taken) = self.slots.front() {
                self.slots.pop_front();
                self.head += 1;
            }
        } else {
            *slot = Slot::Ready(outcome);
        }
    }

    /// No more outcomes: the job is withdrawn.
    fn end(&mut self) {
        self.ended = true;
        self.withdraw();
    }

    /// Stops reading reports and publishing, tells hosts to drop the job's running batches,
    /// and purges its batches and reports from the broker; once.
    fn withdraw(&mut self) {
        if std::mem::replace(&mut self.withdrawn, true) {
            return;
        }
        {
            // The client's parts unsubscribe on a task of the runtime as they drop.
            let _in_runtime = self.broker.rt.enter();
            self.reports = None;
            self.storing.clear();
        }
        let unfinished = std::mem::take(&mut self.unfinished);
        let (broker, id) = (&self.broker, &self.id);
        broker
            .rt
            .block_on(withdraw(broker, id, unfinished.into_values()));
    }

    /// Runs `take` until it has something, pumping in between; ends the job at an error or
    /// at the end of the outcomes.
    fn drive<T>(
        &mut self,
        mut take: impl FnMut(&mut Self) -> Option<T>,
    ) -> Result<Option<T>, Error> {
        // A signal while this waits is the job's to handle (it returns `Interrupted` and
        // withdraws the job); at other times it takes its previous disposition.
        let _inside = Inside::enter();
        loop {
            if self.ended {
                return Ok(None);
            }
            if let Some(e) = self.hooks.broken.take() {
                self.end();
                return Err(e);
            }
            if let Some(got) = take(self) {
                return Ok(Some(got));
            }
            if self.input_done && self.slots.is_empty() && self.arrived.is_empty() {
                self.end();
                return Ok(None);
            }
            if let Err(e) = self.pump() {
                self.end();
                return Err(e);
            }
        }
    }

    /// A failure handed over ends the job unless it keeps going.
    fn handed(&mut self, failed: bool) {
        self.hooks.delivered();
        if failed && !self.keep_going {
            self.end();
        }
    }
}

/// Tells hosts to drop job `id`'s running batches, deletes its unfinished batches (by their
/// sequences) and its consumer of reports (and with it, in an interest stream, the reports
/// it has not read). Not a purge by subject: see the broker module.
async fn withdraw(broker: &Broker, id: &str, unfinished: impl Iterator<Item = u64>) {
    let _ = broker
        .client
        .publish(cancel_subject(id), Bytes::new())
        .await;
    let _ = broker.client.flush().await;
    if let Ok(s) = broker.js.get_stream(ITEMS_STREAM).await {
        for sequence in unfinished {
            let _ = s.delete_message(sequence).await;
        }
    }
    if let Ok(s) = broker.js.get_stream(REPORTS_STREAM).await {
        let _ = s.delete_consumer(&caller_consumer(id)).await;
    }
}

impl<F, It> Remote<F::Output> for Session<'_, F, It>
where
    F: JobFn,
    It: Iterator<Item = F::Item>,
{
    fn next(&mut self) -> Result<Option<Outcome<F::Output>>, Error> {
        let got = self.drive(|s| {
            if !matches!(s.slots.front(), Some(Slot::Ready(_))) {
                return None;
            }
            s.head += 1;
            match s.slots.pop_front() {
                Some(Slot::Ready(o)) => Some(o),
                _ => None,
            }
        })?;
        if let Some(o) = &got {
            self.handed(o.is_err());
        }
        Ok(got)
    }

    fn set_unordered(&mut self) {
        self.unordered = true;
        // What is ready in order comes first, then the rest as it arrives.
        for k in 0..self.slots.len() {
            if matches!(self.slots[k], Slot::Ready(_))
                && let Slot::Ready(o) = std::mem::replace(&mut self.slots[k], Slot::Taken)
            {
                self.arrived.push_back((self.head + k as u64, o));
            }
        }
        while let Some(Slot::Taken) = self.slots.front() {
            self.slots.pop_front();
            self.head += 1;
        }
    }

    fn next_unordered(&mut self) -> Result<Option<Indexed<F::Output>>, Error> {
        let got = self.drive(|s| s.arrived.pop_front())?;
        if let Some((_, o)) = &got {
            self.handed(o.is_err());
        }
        Ok(got)
    }

    fn insights(&self) -> Insights {
        Insights {
            elapsed: self.started.elapsed(),
            workers: Vec::new(),
        }
    }
}

impl<F: JobFn, It> Drop for Session<'_, F, It> {
    fn drop(&mut self) {
        let _in_runtime = self.broker.rt.enter();
        self.reports = None;
        self.storing.clear();
        drop(_in_runtime);
        if !std::mem::replace(&mut self.withdrawn, true) {
            let unfinished = std::mem::take(&mut self.unfinished);
            let (broker, id) = (&self.broker, &self.id);
            broker
                .rt
                .block_on(withdraw(broker, id, unfinished.into_values()));
        }
    }
}
