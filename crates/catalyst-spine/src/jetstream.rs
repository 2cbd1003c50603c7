//! The shared spine: NATS JetStream (`catalyst serve --nats-url`), so that several replicas see
//! one sequence of events.
//!
//! - One file-backed stream (default name `catalyst`) for the subjects `ws.>` and `sovereign.>`
//!   (each event on its [`CloudEvent::route`]), with de-duplication by event id (`Nats-Msg-Id`):
//!   two replicas publishing the same change inside the duplicate window store it once; outside
//!   it, this process's index of recorded ids keeps it out.
//! - `catalystseq` is the stream sequence: the one order every replica reads.
//! - Every process mirrors the stream in memory through an ordered consumer from the first
//!   message, so reads ([`Spine::read_after`], the projector) never wait on the network; an
//!   append returns once JetStream acknowledged it (stored on disk) and the mirror has it, so a
//!   writer reads its own write.
//!
//! The NATS client runs on a thread of its own with its own runtime: the [`Spine`] methods block
//! like the embedded log's do, whatever context calls them.

use std::sync::{mpsc, Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use tokio::sync::watch;

use crate::event::CloudEvent;
use crate::log::{read, Memory, Recorded, Spine};
use crate::SpineError;

/// How to reach the stream.
#[derive(Debug, Clone)]
pub struct JetStreamConfig {
    /// `nats://127.0.0.1:4222`.
    pub url: String,
    /// The stream's name (`catalyst`).
    pub stream: String,
    /// Prepended to every subject (empty in production; tests sharing a server give each stream
    /// its own, since two streams may not claim the same subjects).
    pub subject_prefix: String,
    /// JetStream's de-duplication window.
    pub duplicate_window: Duration,
}

impl JetStreamConfig {
    /// The production settings for `url`: stream `catalyst`, no prefix, a 10-minute window.
    pub fn new(url: impl Into<String>) -> JetStreamConfig {
        JetStreamConfig {
            url: url.into(),
            stream: "catalyst".into(),
            subject_prefix: String::new(),
            duplicate_window: Duration::from_secs(600),
        }
    }
}

type Reply = mpsc::SyncSender<Result<Vec<u64>, String>>;

/// The JetStream spine (see the module documentation).
pub struct JetStreamLog {
    config: JetStreamConfig,
    memory: Memory,
    tx: mpsc::Sender<(Vec<CloudEvent>, Reply)>,
}

impl std::fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLog")
            .field("url", &self.config.url)
            .field("stream", &self.config.stream)
            .finish()
    }
}

fn nats_err(what: &str, e: impl std::fmt::Display) -> SpineError {
    SpineError::Stopped(format!("NATS JetStream: {what}: {e}"))
}

impl JetStreamLog {
    /// Connects, creates the stream when it is missing, and mirrors it up to its current last
    /// message before returning.
    pub fn open(config: JetStreamConfig) -> Result<JetStreamLog, SpineError> {
        let memory = Memory::new(Recorded::default());
        let (recorded, head) = (memory.recorded.clone(), memory.head.clone());
        let (tx, rx) = mpsc::channel::<(Vec<CloudEvent>, Reply)>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), SpineError>>(1);
        let thread = Worker {
            config: config.clone(),
            recorded: recorded.clone(),
            head: head.clone(),
        };
        std::thread::Builder::new()
            .name("jetstream-spine".into())
            .spawn(move || thread.run(rx, ready_tx))
            .map_err(|e| nats_err("cannot start its thread", e))?;
        ready_rx
            .recv()
            .map_err(|_| nats_err("connect", "the client thread stopped"))??;
        Ok(JetStreamLog { config, memory, tx })
    }

    /// The settings.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }
}

impl Spine for JetStreamLog {
    fn append(&self, events: Vec<CloudEvent>) -> Result<Vec<Arc<CloudEvent>>, SpineError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx
            .send((events, reply))
            .map_err(|_| nats_err("append", "the client thread stopped"))?;
        rx.recv()
            .map_err(|_| nats_err("append", "the client thread stopped"))?
            .map_err(SpineError::Stopped)?;
        let r = read(&self.memory.recorded);
        ids.iter()
            .map(|id| {
                r.get(id).ok_or_else(|| {
                    nats_err(
                        "append",
                        format!("event {id} acknowledged but not mirrored"),
                    )
                })
            })
            .collect()
    }

    fn memory(&self) -> &Memory {
        &self.memory
    }

    fn backend(&self) -> &'static str {
        "jetstream"
    }
}

struct Worker {
    config: JetStreamConfig,
    recorded: Arc<RwLock<Recorded>>,
    head: watch::Sender<u64>,
}

impl Worker {
    fn run(
        self,
        rx: mpsc::Receiver<(Vec<CloudEvent>, Reply)>,
        ready: mpsc::SyncSender<Result<(), SpineError>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(nats_err("runtime", e)));
                return;
            }
        };
        runtime.block_on(async move {
            let js = match self.connect().await {
                Ok(js) => js,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            // Appends arrive on a std channel; a blocking thread forwards them into this runtime.
            let (atx, mut arx) = tokio::sync::mpsc::unbounded_channel();
            std::thread::spawn(move || {
                while let Ok(item) = rx.recv() {
                    if atx.send(item).is_err() {
                        return;
                    }
                }
            });
            while let Some((events, reply)) = arx.recv().await {
                let _ = reply.send(self.publish(&js, events).await);
            }
        });
    }

    /// Connects, ensures the stream, starts the mirror and waits until it has every message
    /// the stream held at start.
    async fn connect(&self) -> Result<jetstream::Context, SpineError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(self.config.url.as_str())
            .await
            .map_err(|e| nats_err(&format!("cannot connect to {}", self.config.url), e))?;
        let js = jetstream::new(client);
        let p = &self.config.subject_prefix;
        let mut stream = js
            .get_or_create_stream(stream::Config {
                name: self.config.stream.clone(),
                subjects: vec![format!("{p}ws.>"), format!("{p}sovereign.>")],
                storage: stream::StorageType::File,
                duplicate_window: self.config.duplicate_window,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_err(&format!("stream {}", self.config.stream), e))?;
        let last = stream
            .info()
            .await
            .map_err(|e| nats_err("stream info", e))?
            .state
            .last_sequence;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_err("mirror consumer", e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| nats_err("mirror consumer", e))?;
        let recorded = self.recorded.clone();
        let head = self.head.clone();
        tokio::spawn(async move {
            while let Some(msg) = messages.next().await {
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(error = %e, "JetStream mirror: a message could not be read; the ordered consumer resumes.");
                        continue;
                    }
                };
                let Ok(seq) = msg.info().map(|i| i.stream_sequence) else {
                    continue;
                };
                match serde_json::from_slice::<CloudEvent>(&msg.payload) {
                    Ok(mut e) => {
                        e.catalystseq = seq;
                        let mut w = recorded.write().unwrap_or_else(|p| p.into_inner());
                        if seq > w.head() && !w.contains(&e.id) {
                            w.push(e);
                        }
                        let h = w.head().max(seq);
                        drop(w);
                        head.send_replace(h);
                    }
                    Err(e) => {
                        tracing::warn!(seq, error = %e, "JetStream mirror: a message is not a CloudEvent; skipped.");
                        head.send_replace((*head.borrow()).max(seq));
                    }
                }
            }
        });
        let mut h = self.head.subscribe();
        tokio::time::timeout(Duration::from_secs(60), h.wait_for(|s| *s >= last))
            .await
            .map_err(|_| nats_err("mirror", "did not catch up with the stream within 60 s"))?
            .map_err(|e| nats_err("mirror", e))?;
        Ok(js)
    }

    /// Publishes the events not recorded yet, each acknowledged before the next (so their order
    /// is the call's), then waits until the mirror has them; their stream sequences.
    async fn publish(
        &self,
        js: &jetstream::Context,
        events: Vec<CloudEvent>,
    ) -> Result<Vec<u64>, String> {
        let mut seqs = Vec::with_capacity(events.len());
        for e in events {
            if let Some(stored) = read(&self.recorded).get(&e.id) {
                seqs.push(stored.catalystseq);
                continue;
            }
            let subject = format!("{}{}", self.config.subject_prefix, e.route());
            let payload = serde_json::to_vec(&e)
                .map_err(|err| format!("cannot encode event {}: {err}", e.id))?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", e.id.as_str());
            let ack = js
                .publish_with_headers(subject, headers, payload.into())
                .await
                .map_err(|err| format!("NATS JetStream: publish {}: {err}", e.id))?
                .await
                .map_err(|err| format!("NATS JetStream: no acknowledgement for {}: {err}", e.id))?;
            seqs.push(ack.sequence);
        }
        let want = seqs.iter().copied().max().unwrap_or(0);
        let mut h = self.head.subscribe();
        tokio::time::timeout(Duration::from_secs(30), h.wait_for(|s| *s >= want))
            .await
            .map_err(|_| {
                "NATS JetStream: the mirror did not receive an acknowledged event within 30 s"
                    .to_string()
            })?
            .map_err(|e| format!("NATS JetStream: mirror: {e}"))?;
        Ok(seqs)
    }
}
