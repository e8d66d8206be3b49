//! The connection to the broker: a NATS client on a tokio runtime of spychro's own (one
//! thread of its own, plus the calls that wait on it), and the two JetStream streams every caller
//! and host share — the items (a work queue: each batch is delivered to one host at a time,
//! again if that host does not acknowledge it) and the reports (kept until their caller has
//! read them), both on file storage so that a restarted broker loses neither.
//!
//! Nothing here purges by subject: nats-server before 2.9.15 (Debian ships 2.9.10) moves
//! every consumer of a stream past a filtered purge, which would lose other callers' batches
//! and reports. A withdrawn job's batches are deleted one by one (by sequence), and its
//! reports go with its consumer.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use super::messages::{HOSTS_CONSUMER, ITEMS_STREAM, REPORTS_STREAM, caller_consumer};
use crate::error::Error;

/// How long a host may hold a batch without a word before the broker gives it to another
/// (hosts send progress acknowledgements while a batch runs).
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(10);
/// How long the broker keeps a caller's consumer of reports once nothing reads it (the caller
/// is gone) unless [`Cluster::gone_after`](super::Cluster::gone_after) says otherwise; hosts
/// then drop the job's batches.
pub(crate) const CALLER_GONE: Duration = Duration::from_secs(30);
/// How many times a batch is delivered before the broker gives up on it.
pub(crate) const MAX_DELIVER: i64 = 20;

/// A connected client and its JetStream context.
pub(crate) struct Broker {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) js: jetstream::Context,
    /// The plain client, for what needs no storing (a job's withdrawal).
    pub(crate) client: async_nats::Client,
    pub(crate) url: String,
}

fn broker_error(url: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Misuse(format!(
        "the NATS broker at {url}: {what}: {e} (is `nats-server -js` running there?)"
    ))
}

impl Broker {
    /// Connects to `url` and makes sure the streams exist.
    pub(crate) fn connect(url: &str) -> Result<Broker, Error> {
        // One thread of its own: the client keeps talking to the broker (pulling a job's
        // reports, so that the broker sees its caller alive) while the caller's thread is in
        // its own code.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("spychro-cluster")
            .enable_all()
            .build()
            .map_err(|e| Error::io("could not start the cluster client's runtime", e))?;
        let (client, js) = rt.block_on(async {
            let client = async_nats::ConnectOptions::new()
                .retry_on_initial_connect()
                .connection_timeout(Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(|e| broker_error(url, "could not connect", e))?;
            let js = jetstream::new(client.clone());
            let items = stream::Config {
                name: ITEMS_STREAM.into(),
                subjects: vec!["spychro.items.*".into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                ..Default::default()
            };
            let reports = stream::Config {
                name: REPORTS_STREAM.into(),
                subjects: vec!["spychro.reports.*".into()],
                // A report stays until its caller has read it (or is gone: a caller's
                // consumer, deleted, takes its unread reports with it).
                retention: stream::RetentionPolicy::Interest,
                storage: stream::StorageType::File,
                max_age: Duration::from_secs(24 * 3600),
                ..Default::default()
            };
            for (config, what) in [
                (items, "could not make the items stream"),
                (reports, "could not make the reports stream"),
            ] {
                // Hosts and callers starting together race to make the streams: the loser's
                // error passes once the winner's stream is there.
                let mut tries = 0;
                while let Err(e) = js.get_or_create_stream(config.clone()).await {
                    tries += 1;
                    if tries == 10 {
                        return Err(broker_error(url, what, e));
                    }
                    tokio::time::sleep(Duration::from_millis(50 * tries)).await;
                }
            }
            Ok::<_, Error>((client, js))
        })?;
        Ok(Broker {
            rt,
            js,
            client,
            url: url.to_owned(),
        })
    }

    /// The hosts' shared pull consumer of the items stream.
    pub(crate) async fn hosts_consumer(
        &self,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, Error> {
        let stream = self
            .js
            .get_stream(ITEMS_STREAM)
            .await
            .map_err(|e| broker_error(&self.url, "no items stream", e))?;
        let config = consumer::pull::Config {
            durable_name: Some(HOSTS_CONSUMER.into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_deliver: MAX_DELIVER,
            max_ack_pending: 100_000,
            ..Default::default()
        };
        // Hosts starting together race to make it, as for the streams.
        let mut tries = 0;
        loop {
            match stream
                .get_or_create_consumer(HOSTS_CONSUMER, config.clone())
                .await
            {
                Ok(c) => return Ok(c),
                Err(e) if tries == 9 => {
                    return Err(broker_error(
                        &self.url,
                        "could not make the hosts' consumer",
                        e,
                    ));
                }
                Err(_) => tries += 1,
            }
            tokio::time::sleep(Duration::from_millis(50 * tries)).await;
        }
    }

    /// Whether the caller of job `id` is gone: its consumer of reports no longer exists (it
    /// ended, or the broker removed it after the caller stopped reading). `false` when the
    /// broker cannot say.
    pub(crate) async fn caller_gone(&self, id: &str) -> bool {
        use async_nats::jetstream::context::ConsumerInfoErrorKind;
        let Ok(stream) = self.js.get_stream(REPORTS_STREAM).await else {
            return false;
        };
        match stream.consumer_info(caller_consumer(id)).await {
            Ok(_) => false,
            Err(e) => match e.kind() {
                ConsumerInfoErrorKind::NotFound => true,
                ConsumerInfoErrorKind::JetStream(j) => {
                    j.error_code() == async_nats::jetstream::ErrorCode::CONSUMER_NOT_FOUND
                }
                _ => false,
            },
        }
    }

    pub(crate) fn error(&self, what: &str, e: impl std::fmt::Display) -> Error {
        broker_error(&self.url, what, e)
    }
}
