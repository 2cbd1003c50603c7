//! Domain events: every change emits one typed event carrying the CloudEvents attributes
//! (`id`, `source`, `type`, `subject`, `time`) on an in-process bus. Subscribers get every event
//! published after they subscribed, in publication order; the event-spine work can bridge the
//! bus to NATS JetStream without touching the write path.
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// One domain event (CloudEvents 1.0 attributes plus `data`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainEvent {
    /// CloudEvents spec version (`1.0`).
    pub specversion: &'static str,
    /// Unique id.
    pub id: String,
    /// Where it happened (`/catalyst/orgs/acme`).
    pub source: String,
    /// What happened (`io.openova.catalyst.application.installed`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The object (`acme/web`).
    pub subject: String,
    /// When (RFC 3339).
    pub time: String,
    /// Details: the commits written, the actor and request id.
    pub data: Value,
}

/// The in-process bus.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<DomainEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(1024)
    }
}

impl EventBus {
    /// A bus keeping up to `capacity` undelivered events per slow subscriber.
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity.max(1));
        EventBus { tx }
    }

    /// Subscribes to every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.tx.subscribe()
    }

    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, kind: &str, org: &str, subject: &str, data: Value) -> DomainEvent {
        let event = DomainEvent {
            specversion: "1.0",
            id: hex::encode(rand::random::<[u8; 16]>()),
            source: format!("/catalyst/orgs/{org}"),
            kind: format!("io.openova.catalyst.{kind}"),
            subject: subject.to_string(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            data,
        };
        let _ = self.tx.send(event.clone());
        event
    }
}
