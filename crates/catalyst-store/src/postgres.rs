//! PostgreSQL backend: a row per deployment (the snapshot as `jsonb`) and a row per event.
//!
//! Tables (created when missing, under an advisory lock so concurrent start-ups do not race):
//! - `catalyst_deployments(id text primary key, created_at, updated_at, record jsonb)`;
//! - `catalyst_deployment_events(deployment_id, seq, event jsonb, primary key(deployment_id, seq))`,
//!   cascading on delete;
//! - `catalyst_heartbeat(id, beat_at)`: the row `/readyz` updates;
//! - `catalyst_deployment_leases(deployment_id, owner, holder, expires_at)`: who runs what when
//!   several servers share the store ([`crate::shared`]).
//!
//! Every write also sends a `NOTIFY` on the store's channel, so other servers follow it.
//!
//! An append is one transaction: lock the deployment row, compare the first `seq` with the
//! stored maximum, insert every event in one statement, commit. A duplicate `seq` is an error.

use std::time::Duration;

use async_trait::async_trait;
use catalyst_core::{DeploymentId, DeploymentRecord, Event};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde_json::Value;
use tokio_postgres::NoTls;

use crate::shared::Change;
use crate::{DeploymentStore, LoadWarning, Loaded, StoreError};

/// Arbitrary constant key of the advisory lock that serialises schema creation.
const MIGRATION_LOCK: i64 = 0x00ca_7a15_7000_0001;

const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS catalyst_deployments (
    id          text PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    record      jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS catalyst_deployment_events (
    deployment_id text NOT NULL REFERENCES catalyst_deployments(id) ON DELETE CASCADE,
    seq           bigint NOT NULL CHECK (seq > 0),
    event         jsonb NOT NULL,
    PRIMARY KEY (deployment_id, seq)
);
CREATE TABLE IF NOT EXISTS catalyst_heartbeat (
    id      integer PRIMARY KEY,
    beat_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS catalyst_deployment_leases (
    deployment_id text PRIMARY KEY,
    owner         text NOT NULL,
    holder        text NOT NULL,
    expires_at    timestamptz NOT NULL
);
";

/// A database error with its whole cause chain (tokio-postgres puts the useful part, such as
/// "connection refused", in the sources).
pub(crate) fn db_err(context: &str, e: impl std::error::Error) -> StoreError {
    StoreError::Database(error_chain(context, &e))
}

/// `context: error: cause: …`, each cause once (tokio-postgres repeats its causes' text in
/// its own message, and puts the useful part in the sources).
pub fn error_chain(context: &str, e: &dyn std::error::Error) -> String {
    let mut message = format!("{context}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Encoding(format!("{what} {v} is out of range")))
}

/// True for a schema name we are willing to put in SQL: `[a-z_][a-z0-9_]{0,62}`.
pub fn valid_schema(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// The PostgreSQL store (pooled connections, no TLS).
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: Pool,
    /// How to open a connection of its own (the change listener's).
    pub(crate) config: tokio_postgres::Config,
    /// The `NOTIFY` channel of this database and schema (see [`crate::shared`]).
    pub(crate) channel: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (a libpq-style URL or key=value string) and creates the tables when
    /// missing, in the connection's default schema.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        Self::build(url, None).await
    }

    /// Like [`PgStore::connect`], but creates `schema` when missing and uses it (every pooled
    /// connection starts with `search_path` set to it). The name must match
    /// `[a-z_][a-z0-9_]{0,62}`.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<PgStore, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Database(format!(
                "invalid schema name {schema:?}: expected [a-z_][a-z0-9_]{{0,62}}"
            )));
        }
        Self::build(url, Some(schema)).await
    }

    async fn build(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let settings = PgSettings {
            url,
            schema,
            application_name: "catalyst",
            max_size: 16,
            migration_lock: MIGRATION_LOCK,
            migration: MIGRATION,
        };
        let pool = connect_and_migrate(&settings).await?;
        let config = pg_config(&settings)?;
        let client = pool
            .get()
            .await
            .map_err(|e| db_err("cannot get a database connection", e))?;
        let row = client
            .query_one(
                "SELECT current_database()::text, coalesce(current_schema()::text, '')",
                &[],
            )
            .await
            .map_err(|e| db_err("read the current schema", e))?;
        let (database, current): (String, String) = (row.get(0), row.get(1));
        // Channels are per database; the schema's CRC keeps stores in other schemas apart
        // (and the name short: identifiers stop at 63 bytes).
        let channel = format!(
            "catalyst_deployments_{:08x}",
            crc32fast::hash(format!("{database}.{current}").as_bytes())
        );
        tracing::info!(
            schema = %current,
            "postgres store connected"
        );
        Ok(PgStore {
            pool,
            config,
            channel,
        })
    }

    /// Sends `change` on the store's channel through `client` (inside the caller's
    /// transaction when there is one: PostgreSQL delivers it on commit).
    pub(crate) async fn notify(
        &self,
        client: &impl tokio_postgres::GenericClient,
        change: &crate::shared::Change,
    ) -> Result<(), StoreError> {
        let Some(payload) = change.payload() else {
            return Ok(());
        };
        client
            .execute("SELECT pg_notify($1, $2)", &[&self.channel, &payload])
            .await
            .map_err(|e| db_err("notify", e))?;
        Ok(())
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| db_err("cannot get a database connection", e))
    }
}

/// How a Catalyst adapter connects to PostgreSQL: one place for pooling, timeouts, the schema
/// and the start-up migration, shared by every PostgreSQL-backed store.
#[derive(Debug, Clone, Copy)]
pub struct PgSettings<'a> {
    /// libpq-style URL or key=value string.
    pub url: &'a str,
    /// Schema to create and use (checked with [`valid_schema`]); `None` = the default.
    pub schema: Option<&'a str>,
    /// `application_name` unless the URL sets one.
    pub application_name: &'static str,
    /// Most pooled connections.
    pub max_size: usize,
    /// Advisory lock key that serialises concurrent migrations of this store.
    pub migration_lock: i64,
    /// Idempotent SQL (`CREATE TABLE IF NOT EXISTS …`) run at connect.
    pub migration: &'a str,
}

/// The connection settings (5 s connect timeout, the application name, the schema as
/// `search_path`), checked.
pub fn pg_config(settings: &PgSettings<'_>) -> Result<tokio_postgres::Config, StoreError> {
    if let Some(schema) = settings.schema {
        if !valid_schema(schema) {
            return Err(StoreError::Database(format!(
                "invalid schema name {schema:?}: expected [a-z_][a-z0-9_]{{0,62}}"
            )));
        }
    }
    let mut config: tokio_postgres::Config = settings
        .url
        .parse()
        .map_err(|e| db_err("invalid database URL", e))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_application_name().is_none() {
        config.application_name(settings.application_name);
    }
    if let Some(schema) = settings.schema {
        config.options(format!("-c search_path={schema}"));
    }
    Ok(config)
}

/// Builds a connection pool (no TLS; 5 s connect, 10 s wait/create timeouts) and runs the
/// migration in one transaction under the advisory lock, creating the schema first.
pub async fn connect_and_migrate(settings: &PgSettings<'_>) -> Result<Pool, StoreError> {
    let config = pg_config(settings)?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(settings.max_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(10)))
        .build()
        .map_err(|e| db_err("cannot build connection pool", e))?;
    let mut client = pool
        .get()
        .await
        .map_err(|e| db_err("cannot get a database connection", e))?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| db_err("begin migration", e))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&settings.migration_lock],
    )
    .await
    .map_err(|e| db_err("migration lock", e))?;
    if let Some(schema) = settings.schema {
        // `schema` was checked by `valid_schema`, so it is a plain identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(|e| db_err("create schema", e))?;
    }
    tx.batch_execute(settings.migration)
        .await
        .map_err(|e| db_err("create tables", e))?;
    tx.commit()
        .await
        .map_err(|e| db_err("commit migration", e))?;
    drop(client);
    Ok(pool)
}

/// Checks that PostgreSQL at `url` answers (5 s), changing nothing; a line for people (the
/// server version, database and schema).
pub async fn probe(url: &str) -> Result<String, StoreError> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| db_err("invalid database URL", e))?;
    config.connect_timeout(Duration::from_secs(5));
    config.application_name("catalyst doctor");
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| db_err("cannot connect", e))?;
    let conn = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_database()::text, \
                    coalesce(current_schema()::text, '(none)')",
            &[],
        )
        .await
        .map_err(|e| db_err("query", e));
    conn.abort();
    let row = row?;
    let (version, database, schema): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    Ok(format!(
        "PostgreSQL {version}, database {database}, schema {schema}"
    ))
}

/// A stored row as a record whose `last_seq` is the log's; `Err` says why it is skipped.
pub(crate) fn decode_record(
    raw_id: &str,
    record: Value,
    last: i64,
) -> Result<DeploymentRecord, String> {
    let mut record: DeploymentRecord =
        serde_json::from_value(record).map_err(|e| format!("undecodable record: {e}; skipped"))?;
    if record.id.as_str() != raw_id {
        return Err(format!("record is for deployment {}; skipped", record.id));
    }
    record.last_seq = u64::try_from(last).unwrap_or(0);
    Ok(record)
}

fn encode_record(record: &DeploymentRecord) -> Result<Value, StoreError> {
    serde_json::to_value(record).map_err(|e| StoreError::Encoding(e.to_string()))
}

#[async_trait]
impl DeploymentStore for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn create(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        let value = encode_record(record)?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO catalyst_deployments (id, created_at, record) VALUES ($1, $2, $3)",
                &[&record.id.as_str(), &record.started_at, &value],
            )
            .await
            .map_err(|e| db_err("create deployment", e))?;
        self.notify(&**client, &Change::Snapshot(record.id.clone()))
            .await?;
        tracing::debug!(deployment = %record.id, "deployment created in postgres store");
        Ok(())
    }

    async fn save_snapshot(&self, record: &DeploymentRecord) -> Result<(), StoreError> {
        let value = encode_record(record)?;
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE catalyst_deployments SET record = $2, updated_at = now() WHERE id = $1",
                &[&record.id.as_str(), &value],
            )
            .await
            .map_err(|e| db_err("save snapshot", e))?;
        if n == 0 {
            return Err(StoreError::NotFound(record.id.clone()));
        }
        self.notify(&**client, &Change::Snapshot(record.id.clone()))
            .await
    }

    async fn append_events(&self, id: &DeploymentId, events: &[Event]) -> Result<(), StoreError> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let mut seqs = Vec::with_capacity(events.len());
        let mut values = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            if i > 0 && events[i - 1].seq.checked_add(1) != Some(e.seq) {
                return Err(StoreError::SequenceGap {
                    id: id.clone(),
                    last: events[i - 1].seq,
                    got: e.seq,
                });
            }
            seqs.push(to_i64(e.seq, "sequence number")?);
            values.push(serde_json::to_value(e).map_err(|e| StoreError::Encoding(e.to_string()))?);
        }
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("begin append", e))?;
        let locked = tx
            .query_opt(
                "SELECT 1 FROM catalyst_deployments WHERE id = $1 FOR UPDATE",
                &[&id.as_str()],
            )
            .await
            .map_err(|e| db_err("lock deployment", e))?;
        if locked.is_none() {
            return Err(StoreError::NotFound(id.clone()));
        }
        let row = tx
            .query_one(
                "SELECT COALESCE(MAX(seq), 0) FROM catalyst_deployment_events \
                 WHERE deployment_id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(|e| db_err("read last sequence", e))?;
        let last: i64 = row
            .try_get(0)
            .map_err(|e| db_err("read last sequence", e))?;
        let last = u64::try_from(last).unwrap_or(0);
        if last.checked_add(1) != Some(first.seq) {
            return Err(StoreError::SequenceGap {
                id: id.clone(),
                last,
                got: first.seq,
            });
        }
        tx.execute(
            "INSERT INTO catalyst_deployment_events (deployment_id, seq, event) \
             SELECT $1, s, e FROM unnest($2::bigint[], $3::jsonb[]) AS t(s, e)",
            &[&id.as_str(), &seqs, &values],
        )
        .await
        .map_err(|e| db_err("insert events", e))?;
        let last_seq = events.last().map_or(first.seq, |e| e.seq);
        self.notify(
            &*tx,
            &Change::Events {
                id: id.clone(),
                last_seq,
            },
        )
        .await?;
        tx.commit().await.map_err(|e| db_err("commit events", e))
    }

    async fn events_after(
        &self,
        id: &DeploymentId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let client = self.client().await?;
        let exists = client
            .query_opt(
                "SELECT 1 FROM catalyst_deployments WHERE id = $1",
                &[&id.as_str()],
            )
            .await
            .map_err(|e| db_err("find deployment", e))?;
        if exists.is_none() {
            return Err(StoreError::NotFound(id.clone()));
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT event FROM catalyst_deployment_events \
                 WHERE deployment_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&id.as_str(), &after, &limit],
            )
            .await
            .map_err(|e| db_err("read events", e))?;
        rows.into_iter()
            .map(|row| {
                let v: Value = row.try_get(0).map_err(|e| db_err("read event", e))?;
                serde_json::from_value(v).map_err(|e| {
                    StoreError::Encoding(format!("undecodable stored event of {id}: {e}"))
                })
            })
            .collect()
    }

    async fn load_all(&self) -> Result<Loaded, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT d.id, d.record, \
                   (SELECT COALESCE(MAX(e.seq), 0) FROM catalyst_deployment_events e \
                     WHERE e.deployment_id = d.id) \
                 FROM catalyst_deployments d ORDER BY d.created_at, d.id",
                &[],
            )
            .await
            .map_err(|e| db_err("load deployments", e))?;
        let mut loaded = Loaded::default();
        for row in rows {
            let raw_id: String = row.try_get(0).map_err(|e| db_err("read id", e))?;
            let location = format!("catalyst_deployments[{raw_id}]");
            let record: Value = row.try_get(1).map_err(|e| db_err("read record", e))?;
            let last: i64 = row
                .try_get(2)
                .map_err(|e| db_err("read last sequence", e))?;
            match decode_record(&raw_id, record, last) {
                Ok(record) => loaded.records.push(record),
                Err(message) => loaded.warnings.push(LoadWarning { location, message }),
            }
        }
        for w in &loaded.warnings {
            tracing::warn!(location = %w.location, problem = %w.message, "store load warning");
        }
        tracing::info!(
            records = loaded.records.len(),
            warnings = loaded.warnings.len(),
            "postgres store loaded"
        );
        Ok(loaded)
    }

    async fn delete(&self, id: &DeploymentId) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| db_err("begin delete", e))?;
        for table in ["catalyst_deployments", "catalyst_deployment_leases"] {
            let column = if table == "catalyst_deployments" {
                "id"
            } else {
                "deployment_id"
            };
            tx.execute(
                &format!("DELETE FROM {table} WHERE {column} = $1"),
                &[&id.as_str()],
            )
            .await
            .map_err(|e| db_err("delete deployment", e))?;
        }
        self.notify(&*tx, &Change::Deleted(id.clone())).await?;
        tx.commit().await.map_err(|e| db_err("commit delete", e))?;
        tracing::debug!(deployment = %id, "deployment deleted from postgres store");
        Ok(())
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO catalyst_heartbeat (id, beat_at) VALUES (1, now()) \
                 ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
                &[],
            )
            .await
            .map_err(|e| db_err("heartbeat", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_schema;

    #[test]
    fn schema_names() {
        assert!(valid_schema("catalyst_test_0a1b"));
        assert!(!valid_schema(""));
        assert!(!valid_schema("a; drop table x"));
        assert!(!valid_schema("Upper"));
        assert!(!valid_schema("1abc"));
    }
}
