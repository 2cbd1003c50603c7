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
//!   writer reads its own write. An append publishes all its events before awaiting any
//!   acknowledgement (one connection keeps them in order); an acknowledged event that is next in
//!   the stream goes into the mirror at once, and the mirror skips it without decoding.
//! - The durable `projector` consumer materializes KV entries in rounds: the messages ready
//!   now, their events read from the mirror, the last write of each key, all puts at once, then
//!   the acknowledgements; a failed put naks the round for redelivery.
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
    /// Prepended to every KV bucket name (empty in production: `ws-acme-dev-state`,
    /// `sovereign-state`; tests give each stream its own).
    pub kv_prefix: String,
}

impl JetStreamConfig {
    /// The production settings for `url`: stream `catalyst`, no prefix, a 10-minute window.
    pub fn new(url: impl Into<String>) -> JetStreamConfig {
        JetStreamConfig {
            url: url.into(),
            stream: "catalyst".into(),
            subject_prefix: String::new(),
            duplicate_window: Duration::from_secs(600),
            kv_prefix: String::new(),
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
                // This process's own appends are in already (recorded on their acknowledgement).
                if seq <= read(&recorded).head() {
                    continue;
                }
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
        let materializer = Materializer {
            js: js.clone(),
            kv_prefix: self.config.kv_prefix.clone(),
            projector: crate::Projector::new(Arc::new(MirrorView(Memory {
                recorded: self.recorded.clone(),
                head: self.head.clone(),
            }))),
            head: self.head.subscribe(),
            buckets: std::collections::HashMap::new(),
        };
        let durable = stream
            .get_or_create_consumer(
                "projector",
                consumer::pull::Config {
                    durable_name: Some("projector".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    deliver_policy: consumer::DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats_err("projector consumer", e))?;
        let durable = durable
            .messages()
            .await
            .map_err(|e| nats_err("projector consumer", e))?;
        tokio::spawn(materializer.run(durable));
        let mut h = self.head.subscribe();
        tokio::time::timeout(Duration::from_secs(60), h.wait_for(|s| *s >= last))
            .await
            .map_err(|_| nats_err("mirror", "did not catch up with the stream within 60 s"))?
            .map_err(|e| nats_err("mirror", e))?;
        Ok(js)
    }

    /// Publishes the events not recorded yet, all of them before awaiting any acknowledgement
    /// (one connection delivers them in the call's order, so the stream stores them in that
    /// order), then collects the acknowledgements in order and waits until the mirror has them;
    /// their stream sequences.
    async fn publish(
        &self,
        js: &jetstream::Context,
        events: Vec<CloudEvent>,
    ) -> Result<Vec<u64>, String> {
        enum Pending {
            Recorded(u64),
            Sent(Box<CloudEvent>, jetstream::context::PublishAckFuture),
        }
        let mut pending = Vec::with_capacity(events.len());
        for e in events {
            if let Some(stored) = read(&self.recorded).get(&e.id) {
                pending.push(Pending::Recorded(stored.catalystseq));
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
                .map_err(|err| format!("NATS JetStream: publish {}: {err}", e.id))?;
            pending.push(Pending::Sent(Box::new(e), ack));
        }
        let mut seqs = Vec::with_capacity(pending.len());
        for p in pending {
            seqs.push(match p {
                Pending::Recorded(seq) => seq,
                Pending::Sent(mut e, ack) => {
                    let seq = ack
                        .await
                        .map_err(|err| {
                            format!("NATS JetStream: no acknowledgement for {}: {err}", e.id)
                        })?
                        .sequence;
                    // Next in the stream: into the mirror now (the mirror then skips it
                    // without decoding). Anything else waits for the mirror, which keeps the
                    // stream's order when other replicas publish in between.
                    let mut w = self.recorded.write().unwrap_or_else(|p| p.into_inner());
                    if seq == w.head() + 1 && !w.contains(&e.id) {
                        e.catalystseq = seq;
                        w.push(*e);
                        let head = w.head();
                        drop(w);
                        self.head.send_replace(head);
                    }
                    seq
                }
            });
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

/// Checks that NATS at `url` answers and has JetStream enabled for this account, changing
/// nothing; a line for people (`JetStream: 3 streams, 1.2 MB stored`). Asks `$JS.API.INFO`
/// directly (the client's typed account info does not parse older servers' answer).
pub async fn probe(url: &str) -> Result<String, String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        client.request("$JS.API.INFO", Default::default()),
    )
    .await
    .map_err(|_| "JetStream did not answer within 5 s".to_string())?
    .map_err(|e| format!("JetStream is not enabled or not answering: {e}"))?;
    let info: serde_json::Value = serde_json::from_slice(&answer.payload)
        .map_err(|e| format!("JetStream answered something else than JSON: {e}"))?;
    if let Some(err) = info.get("error") {
        return Err(format!(
            "JetStream refused: {}",
            err["description"].as_str().unwrap_or("unknown error")
        ));
    }
    Ok(format!(
        "JetStream: {} streams, {:.1} MB stored",
        info["streams"].as_u64().unwrap_or(0),
        info["storage"].as_f64().unwrap_or(0.0) / 1e6
    ))
}

/// The mirror as a read-only spine, for the materializer's projector.
struct MirrorView(Memory);

impl Spine for MirrorView {
    fn append(&self, _: Vec<CloudEvent>) -> Result<Vec<Arc<CloudEvent>>, SpineError> {
        Err(SpineError::Stopped("the mirror is read-only".into()))
    }
    fn memory(&self) -> &Memory {
        &self.0
    }
    fn backend(&self) -> &'static str {
        "jetstream"
    }
}

/// One KV write: bucket, key, the value (`None`: delete).
pub type KvWrite = (String, String, Option<Vec<u8>>);

/// The KV entries event `e` changes, read from the projection `p` (which has applied `e`):
/// `ws-<org>-<env>-state` `application/<name>` (the App card), `sovereign-state`
/// `organization/<org>`, `deployment/<id>`, `pool/<fqdn>`. A key whose object is gone is deleted.
pub fn kv_writes(p: &crate::Projection, e: &CloudEvent) -> Vec<KvWrite> {
    let mut out = Vec::new();
    let kind = e.short_kind();
    let family = kind.split('.').next().unwrap_or_default();
    let json = |v: &serde_json::Value| serde_json::to_vec(v).ok();
    match (family, &e.catalystorg) {
        ("deployment", _) => out.push((
            "sovereign-state".into(),
            format!("deployment/{}", e.subject),
            json(&e.data),
        )),
        ("pool", _) => {
            let value = (kind != "pool.released").then(|| json(&e.data)).flatten();
            out.push((
                "sovereign-state".into(),
                format!("pool/{}", e.subject),
                value,
            ));
        }
        (_, Some(org)) => {
            let mut apps: Vec<(String, String)> = Vec::new();
            for a in e.data["applications"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(e.data["removed"].as_array().into_iter().flatten())
            {
                if let (Some(n), Some(env)) = (a["name"].as_str(), a["environment"].as_str()) {
                    apps.push((n.to_owned(), env.to_owned()));
                }
            }
            if let (Some(n), Some(env)) = (e.data["application"].as_str(), &e.catalystenv) {
                apps.push((n.to_owned(), env.clone()));
            }
            for (name, env) in apps {
                let card = p
                    .applications(org, Some(&env))
                    .into_iter()
                    .find(|c| c.name == name)
                    .and_then(|c| serde_json::to_vec(c).ok());
                out.push((
                    format!("ws-{env}-state"),
                    format!("application/{name}"),
                    card,
                ));
            }
            if e.data.get("organization").is_some() || family == "organization" {
                let org_view = p.orgs().get(org).map(|v| {
                    serde_json::json!({"organization": v.organization, "environments": v.environments})
                });
                out.push((
                    "sovereign-state".into(),
                    format!("organization/{org}"),
                    org_view.as_ref().and_then(json),
                ));
            }
        }
        _ => {}
    }
    out
}

/// Keeps the KV buckets level with the spine, through the durable consumer `projector`: each
/// message is acknowledged once its entries are written (replicas share the consumer, each
/// writing what its own complete mirror says).
struct Materializer {
    js: jetstream::Context,
    kv_prefix: String,
    projector: crate::Projector,
    head: watch::Receiver<u64>,
    buckets: std::collections::HashMap<String, jetstream::kv::Store>,
}

/// Most messages the materializer takes in one round.
const MATERIALIZE_BATCH: usize = 512;

impl Materializer {
    /// Each round takes the messages ready now (up to [`MATERIALIZE_BATCH`]), reads their
    /// events from the mirror (no second decode), computes the KV entries they change — the last
    /// write of a key wins, the entries being current state — puts them all at once, then
    /// acknowledges the round. A failed write acknowledges nothing: JetStream redelivers the
    /// round, and rewriting current state is harmless.
    async fn run(mut self, mut messages: consumer::pull::Stream) {
        use futures::FutureExt;
        loop {
            let Some(first) = messages.next().await else {
                return;
            };
            let mut round = vec![first];
            while round.len() < MATERIALIZE_BATCH {
                match messages.next().now_or_never() {
                    Some(Some(m)) => round.push(m),
                    _ => break,
                }
            }
            let round: Vec<(jetstream::Message, u64)> = round
                .into_iter()
                .filter_map(Result::ok)
                .filter_map(|m| {
                    let seq = m.info().ok()?.stream_sequence;
                    Some((m, seq))
                })
                .collect();
            let Some(last) = round.iter().map(|(_, s)| *s).max() else {
                continue;
            };
            if self.head.wait_for(|h| *h >= last).await.is_err() {
                return;
            }
            let mut writes = std::collections::BTreeMap::new();
            self.projector.read(|p| {
                let spine = self.projector.spine();
                for (_, seq) in &round {
                    if let Some(e) = spine.read_after(seq - 1, 1).first() {
                        for (bucket, key, value) in kv_writes(p, e) {
                            writes.insert((bucket, key), value);
                        }
                    }
                }
            });
            match self.write_all(writes).await {
                Ok(()) => {
                    for (m, _) in &round {
                        let _ = m.ack().await;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "KV projection: a write failed; the messages are redelivered.");
                    for (m, _) in &round {
                        let _ = m.ack_with(jetstream::AckKind::Nak(None)).await;
                    }
                }
            }
        }
    }

    /// Puts (or deletes) every entry, concurrently.
    async fn write_all(
        &mut self,
        writes: std::collections::BTreeMap<(String, String), Option<Vec<u8>>>,
    ) -> Result<(), String> {
        for (bucket, _) in writes.keys() {
            self.bucket(bucket).await?;
        }
        let buckets = &self.buckets;
        let prefix = &self.kv_prefix;
        let puts = writes.into_iter().map(|((bucket, key), value)| async move {
            let store = &buckets[&format!("{prefix}{bucket}")];
            let done = match value {
                Some(v) => store
                    .put(&key, v.into())
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                None => store.delete(&key).await.map_err(|e| e.to_string()),
            };
            done.map_err(|e| format!("{bucket}/{key}: {e}"))
        });
        futures::future::join_all(puts)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, String>>()
            .map(drop)
    }

    /// Makes sure the bucket exists and its store is at hand.
    async fn bucket(&mut self, bucket: &str) -> Result<(), String> {
        let name = format!("{}{bucket}", self.kv_prefix);
        if !self.buckets.contains_key(&name) {
            // The bucket's stream is made as a KV bucket's is (`KV_<bucket>` over
            // `$KV.<bucket>.>`, one value per key), directly: the client's own bucket creation
            // asks the account for limits in a shape older servers do not answer in.
            self.js
                .get_or_create_stream(stream::Config {
                    name: format!("KV_{name}"),
                    subjects: vec![format!("$KV.{name}.>")],
                    max_messages_per_subject: 1,
                    discard: stream::DiscardPolicy::New,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    storage: stream::StorageType::File,
                    num_replicas: 1,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let store = self
                .js
                .get_key_value(name.clone())
                .await
                .map_err(|e| e.to_string())?;
            self.buckets.insert(name.clone(), store);
        }
        Ok(())
    }
}
