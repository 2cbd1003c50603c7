//! One Catalyst server per PostgreSQL store.
//!
//! Until replicas hold leases (the read-side work), the server that owns a store is the only
//! one that may restore it: restoring marks every in-flight deployment failed, which is right
//! after a crash and wrong while another live server runs it. [`ServerLock::acquire`] takes a
//! session-level advisory lock, keyed by the database and the schema the URL lands in (the
//! store's tables live there), on a connection of its own that stays open as long as the
//! server runs; PostgreSQL drops the lock when that session ends, a `kill -9` included.
//! A second server gets [`ServerLockError::InUse`], naming the holder's session (its
//! `application_name` says `catalyst serve pid=… listen=…`), before it reads or migrates
//! anything.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

/// High 32 bits of the lock key: "catalyst server". The low 32 bits are the CRC-32 of
/// `<database>.<schema>`.
const CLASS: i64 = 0x0ca7_a157;

/// Why the store could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ServerLockError {
    /// Another session holds the lock.
    #[error(
        "the PostgreSQL store (database {database}, schema {schema}) is in use by another Catalyst server ({holder}); nothing was changed. Stop that server first, or give this one another database or schema"
    )]
    InUse {
        /// `current_database()`.
        database: String,
        /// `current_schema()`.
        schema: String,
        /// Who holds it, from `pg_stat_activity`.
        holder: String,
    },
    /// PostgreSQL could not be reached or answered an error.
    #[error("cannot take the PostgreSQL server lock: {0}")]
    Database(String),
}

fn db(context: &str, e: tokio_postgres::Error) -> ServerLockError {
    ServerLockError::Database(crate::postgres::error_chain(context, &e))
}

/// The lock key for a database and schema.
fn key(database: &str, schema: &str) -> i64 {
    let crc = crc32fast::hash(format!("{database}.{schema}").as_bytes());
    (CLASS << 32) | i64::from(crc)
}

/// The held lock; dropping it closes its session, which releases it.
pub struct ServerLock {
    _client: tokio_postgres::Client,
    connection: JoinHandle<()>,
    /// `current_database()` / `current_schema()` the lock is for.
    pub database: String,
    /// See `database`.
    pub schema: String,
}

impl std::fmt::Debug for ServerLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLock")
            .field("database", &self.database)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerLock {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl ServerLock {
    /// Connects to `url` (with `application_name` set to `who`, so a second server can name
    /// this one) and takes the lock without waiting.
    pub async fn acquire(url: &str, who: &str) -> Result<ServerLock, ServerLockError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| db("invalid database URL", e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        // PostgreSQL keeps at most 63 bytes of it.
        let who: String = who.chars().take(63).collect();
        config.application_name(&who);
        config.keepalives(true);
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| db("cannot connect", e))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(error = %e, "the PostgreSQL session holding the server lock ended; another server could now take this store");
            }
        });
        let row = client
            .query_one(
                "SELECT current_database()::text, current_schema()::text",
                &[],
            )
            .await
            .map_err(|e| db("cannot read the current schema", e))?;
        let database: String = row.get(0);
        let schema: Option<String> = row.get(1);
        let schema = schema.unwrap_or_else(|| "(none)".into());
        let key = key(&database, &schema);
        let got: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| db("pg_try_advisory_lock", e))?
            .get(0);
        if !got {
            let holder = holder(&client, key)
                .await
                .unwrap_or_else(|| "holder not visible".into());
            connection.abort();
            return Err(ServerLockError::InUse {
                database,
                schema,
                holder,
            });
        }
        Ok(ServerLock {
            _client: client,
            connection,
            database,
            schema,
        })
    }
}

/// Describes the session that holds the advisory lock `key` in this database.
async fn holder(client: &tokio_postgres::Client, key: i64) -> Option<String> {
    // A one-bigint advisory lock shows in pg_locks as classid = high 32 bits, objid = low 32
    // bits, objsubid = 1.
    let row = client
        .query_opt(
            "SELECT a.application_name, a.pid, coalesce(host(a.client_addr), 'local socket'),
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid
               AND l.objsubid = 1
             LIMIT 1",
            &[&key],
        )
        .await
        .map_err(|e| tracing::warn!(error = %crate::postgres::error_chain("cannot read who holds the server lock", &e), "server lock holder unknown"))
        .ok()??;
    let app: Option<String> = row.get(0);
    let pid: i32 = row.get(1);
    let from: String = row.get(2);
    let since: Option<String> = row.get(3);
    Some(format!(
        "{}, PostgreSQL session {pid} from {from}{}",
        app.filter(|a| !a.is_empty())
            .unwrap_or_else(|| "unnamed session".into()),
        since.map(|s| format!(" since {s}")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_database_and_schema() {
        assert_ne!(key("test", "a"), key("test", "b"));
        assert_ne!(key("test", "a"), key("other", "a"));
        assert_eq!(key("test", "a") >> 32, CLASS);
        assert!(key("test", "a") > 0);
    }
}
