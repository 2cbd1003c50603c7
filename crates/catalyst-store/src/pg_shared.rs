//! [`SharedStore`] on PostgreSQL: leases in `catalyst_deployment_leases` (PostgreSQL's clock
//! decides expiry, so the servers' clocks never have to agree) and `LISTEN`/`NOTIFY` on the
//! store's channel.

use std::time::Duration;

use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentRecord};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::postgres::{db_err, decode_record, PgStore};
use crate::shared::{ttl_ms, Change, LeaseOwner, SharedStore};
use crate::StoreError;

/// Statuses of a finished deployment, as stored (`DeploymentStatus` in kebab case).
const FINISHED: &str = "('ready', 'failed', 'cancelled')";

fn parse_ids(rows: Vec<tokio_postgres::Row>) -> Vec<DeploymentId> {
    rows.into_iter()
        .filter_map(|r| DeploymentId::parse(r.get::<_, &str>(0)).ok())
        .collect()
}

#[async_trait]
impl SharedStore for PgStore {
    async fn take_lease(
        &self,
        id: &DeploymentId,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "INSERT INTO catalyst_deployment_leases AS l (deployment_id, owner, holder, expires_at) \
                 VALUES ($1, $2, $3, now() + $4::float8 * interval '1 millisecond') \
                 ON CONFLICT (deployment_id) DO UPDATE \
                   SET owner = excluded.owner, holder = excluded.holder, expires_at = excluded.expires_at \
                   WHERE l.owner = excluded.owner OR l.expires_at < now() \
                 RETURNING 1",
                &[&id.as_str(), &owner.id, &owner.about, &ttl_ms(ttl)],
            )
            .await
            .map_err(|e| db_err("take lease", e))?;
        Ok(row.is_some())
    }

    async fn renew_leases(
        &self,
        owner: &LeaseOwner,
        ttl: Duration,
    ) -> Result<Vec<DeploymentId>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE catalyst_deployment_leases \
                 SET expires_at = now() + $2::float8 * interval '1 millisecond', holder = $3 \
                 WHERE owner = $1 RETURNING deployment_id",
                &[&owner.id, &ttl_ms(ttl), &owner.about],
            )
            .await
            .map_err(|e| db_err("renew leases", e))?;
        Ok(parse_ids(rows))
    }

    async fn release_lease(&self, id: &DeploymentId, owner: &LeaseOwner) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM catalyst_deployment_leases WHERE deployment_id = $1 AND owner = $2",
                &[&id.as_str(), &owner.id],
            )
            .await
            .map_err(|e| db_err("release lease", e))?;
        Ok(())
    }

    async fn unleased(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT d.id FROM catalyst_deployments d \
                     LEFT JOIN catalyst_deployment_leases l ON l.deployment_id = d.id \
                     WHERE d.record->>'status' NOT IN {FINISHED} \
                       AND (l.deployment_id IS NULL OR l.expires_at < now()) \
                     ORDER BY d.created_at, d.id"
                ),
                &[],
            )
            .await
            .map_err(|e| db_err("find unleased deployments", e))?;
        Ok(parse_ids(rows))
    }

    async fn lease_holder(&self, id: &DeploymentId) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT holder FROM catalyst_deployment_leases \
                 WHERE deployment_id = $1 AND expires_at >= now()",
                &[&id.as_str()],
            )
            .await
            .map_err(|e| db_err("read lease", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn load(&self, id: &DeploymentId) -> Result<Option<DeploymentRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT d.record, \
                   (SELECT COALESCE(MAX(e.seq), 0) FROM catalyst_deployment_events e \
                     WHERE e.deployment_id = d.id) \
                 FROM catalyst_deployments d WHERE d.id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(|e| db_err("load deployment", e))?;
        let Some(row) = row else { return Ok(None) };
        let record: Value = row.try_get(0).map_err(|e| db_err("read record", e))?;
        let last: i64 = row
            .try_get(1)
            .map_err(|e| db_err("read last sequence", e))?;
        decode_record(id.as_str(), record, last)
            .map(Some)
            .map_err(StoreError::Encoding)
    }

    async fn request_cancel(&self, id: &DeploymentId) -> Result<(), StoreError> {
        let client = self.client().await?;
        self.notify(&**client, &Change::CancelRequested(id.clone()))
            .await
    }

    fn changes(&self) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(listen(self.config.clone(), self.channel.clone(), tx));
        rx
    }
}

/// Listens on `channel` until `tx` is closed, reconnecting (every second) when the connection
/// drops; each connection starts with a `Resync`.
async fn listen(config: tokio_postgres::Config, channel: String, tx: mpsc::Sender<Change>) {
    let mut failing = false;
    while !tx.is_closed() {
        match listen_once(&config, &channel, &tx).await {
            Ok(()) => return,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "The store's change listener lost PostgreSQL; reconnecting every second.");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tx.closed() => return,
        }
    }
}

/// One connection's worth of listening. `Ok` when the receiver went away.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    tx: &mpsc::Sender<Change>,
) -> Result<(), StoreError> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| db_err("connect the change listener", e))?;
    let (ntx, mut nrx) = mpsc::unbounded_channel::<Result<String, tokio_postgres::Error>>();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            let item = match message {
                Ok(AsyncMessage::Notification(n)) => Ok(n.payload().to_owned()),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            if ntx.send(item).is_err() || failed {
                return;
            }
        }
    });
    let result = async {
        // `channel` is `catalyst_deployments_<hex>`: a plain identifier.
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .map_err(|e| db_err("LISTEN", e))?;
        if tx.send(Change::Resync).await.is_err() {
            return Ok(());
        }
        loop {
            tokio::select! {
                item = nrx.recv() => match item {
                    Some(Ok(payload)) => match Change::parse(&payload) {
                        Some(change) => {
                            if tx.send(change).await.is_err() {
                                return Ok(());
                            }
                        }
                        None => tracing::warn!(%payload, "Ignored a notification on the store's channel that is not a change."),
                    },
                    Some(Err(e)) => return Err(db_err("change listener", e)),
                    None => return Err(StoreError::Database("the change listener's connection closed".into())),
                },
                _ = tx.closed() => return Ok(()),
            }
        }
    }
    .await;
    driver.abort();
    result
}
