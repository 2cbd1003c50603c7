//! SQLite backend: one connection (WAL, `synchronous=FULL`), every write an `IMMEDIATE`
//! transaction, times stored as milliseconds since the epoch from SQLite's own clock.
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::{ttl_millis, AllocationStore, CommitRequest, NewReservation};
use crate::model::{decide_commit, AllocationState, CommitAction, CommitRow};
use crate::model::{reserve_may_take_over, Allocation};
use crate::{DnsError, Result};

/// Milliseconds since the epoch by SQLite's clock.
const NOW_MS: &str = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

const COLUMNS: &str = "pool_domain, subdomain, state, reserved_at, expires_at, created_by, \
                       sovereign_fqdn, load_balancer_ip, reservation_token";

const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS pool_allocations (
    pool_domain       TEXT    NOT NULL,
    subdomain         TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('reserved','active','releasing')),
    reserved_at       INTEGER NOT NULL,
    expires_at        INTEGER,
    created_by        TEXT    NOT NULL,
    sovereign_fqdn    TEXT,
    load_balancer_ip  TEXT,
    reservation_token TEXT,
    PRIMARY KEY (pool_domain, subdomain)
);
CREATE INDEX IF NOT EXISTS pool_allocations_expires_idx
    ON pool_allocations (expires_at) WHERE state = 'reserved';
CREATE INDEX IF NOT EXISTS pool_allocations_releasing_idx
    ON pool_allocations (state) WHERE state = 'releasing';
";

fn db(e: rusqlite::Error) -> DnsError {
    DnsError::Store(format!("sqlite: {e}"))
}

fn millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn row_to_allocation(r: &Row<'_>) -> rusqlite::Result<Allocation> {
    let state: String = r.get(2)?;
    Ok(Allocation {
        pool_domain: r.get(0)?,
        subdomain: r.get(1)?,
        state: AllocationState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown state {state:?}").into(),
            )
        })?,
        reserved_at: millis(r.get(3)?),
        expires_at: r.get::<_, Option<i64>>(4)?.map(millis),
        created_by: r.get(5)?,
        sovereign_fqdn: r.get(6)?,
        load_balancer_ip: r.get(7)?,
        reservation_token: r.get(8)?,
    })
}

fn get(conn: &Connection, pool: &str, sub: &str) -> rusqlite::Result<Option<Allocation>> {
    conn.query_row(
        &format!(
            "SELECT {COLUMNS} FROM pool_allocations WHERE pool_domain = ?1 AND subdomain = ?2"
        ),
        params![pool, sub],
        row_to_allocation,
    )
    .optional()
}

/// The SQLite allocation store.
#[derive(Clone)]
pub struct SqliteAllocationStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteAllocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteAllocationStore")
            .finish_non_exhaustive()
    }
}

impl SqliteAllocationStore {
    /// Opens (creating when missing) the database file and its table.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DnsError::Store(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        conn.execute_batch(MIGRATION).map_err(db)?;
        Ok(SqliteAllocationStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| DnsError::Store(format!("sqlite worker: {e}")))?
    }
}

#[async_trait]
impl AllocationStore for SqliteAllocationStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn reserve(&self, r: NewReservation<'_>) -> Result<Allocation> {
        let ttl = ttl_millis(r.ttl)?;
        let (pool, sub, by, token) = (
            r.pool_domain.to_owned(),
            r.subdomain.to_owned(),
            r.created_by.to_owned(),
            r.token.to_owned(),
        );
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let existing: Option<(String, bool)> = tx
                .query_row(
                    &format!(
                        "SELECT state, COALESCE(expires_at <= {NOW_MS}, 0) FROM pool_allocations \
                         WHERE pool_domain = ?1 AND subdomain = ?2"
                    ),
                    params![pool, sub],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            if let Some((state, expired)) = existing {
                let state = AllocationState::parse(&state)
                    .ok_or_else(|| DnsError::Store(format!("unknown state {state:?}")))?;
                if !reserve_may_take_over(state, expired) {
                    return Err(DnsError::Conflict);
                }
                tx.execute(
                    "DELETE FROM pool_allocations WHERE pool_domain = ?1 AND subdomain = ?2",
                    params![pool, sub],
                )
                .map_err(db)?;
            }
            tx.execute(
                &format!(
                    "INSERT INTO pool_allocations (pool_domain, subdomain, state, reserved_at, \
                     expires_at, created_by, reservation_token) \
                     VALUES (?1, ?2, 'reserved', {NOW_MS}, {NOW_MS} + ?3, ?4, ?5)"
                ),
                params![pool, sub, ttl, by, token],
            )
            .map_err(db)?;
            let row = get(&tx, &pool, &sub)
                .map_err(db)?
                .ok_or(DnsError::NotFound)?;
            tx.commit().map_err(db)?;
            Ok(row)
        })
        .await
    }

    async fn get(&self, pool: &str, sub: &str) -> Result<Option<Allocation>> {
        let (pool, sub) = (pool.to_owned(), sub.to_owned());
        self.with(move |conn| get(conn, &pool, &sub).map_err(db))
            .await
    }

    async fn state(&self, pool: &str, sub: &str) -> Result<Option<(AllocationState, bool)>> {
        let (pool, sub) = (pool.to_owned(), sub.to_owned());
        self.with(move |conn| {
            let row: Option<(String, bool)> = conn
                .query_row(
                    &format!(
                        "SELECT state, state = 'reserved' AND COALESCE(expires_at <= {NOW_MS}, 0) \
                         FROM pool_allocations WHERE pool_domain = ?1 AND subdomain = ?2"
                    ),
                    params![pool, sub],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            row.map(|(s, lapsed)| {
                AllocationState::parse(&s)
                    .map(|st| (st, lapsed))
                    .ok_or_else(|| DnsError::Store(format!("unknown state {s:?}")))
            })
            .transpose()
        })
        .await
    }

    async fn list(&self, pool: &str) -> Result<Vec<Allocation>> {
        let pool = pool.to_owned();
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM pool_allocations WHERE pool_domain = ?1 ORDER BY subdomain"
                ))
                .map_err(db)?;
            let rows = stmt
                .query_map(params![pool], row_to_allocation)
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn commit(&self, c: CommitRequest<'_>) -> Result<(CommitAction, Allocation)> {
        let (pool, sub, token, fqdn, ip) = (
            c.pool_domain.to_owned(),
            c.subdomain.to_owned(),
            c.token.to_owned(),
            c.sovereign_fqdn.to_owned(),
            c.load_balancer_ip.to_owned(),
        );
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let row: Option<(String, bool, Option<String>, Option<String>)> = tx
                .query_row(
                    &format!(
                        "SELECT state, COALESCE(expires_at <= {NOW_MS}, 0), reservation_token, \
                         load_balancer_ip FROM pool_allocations \
                         WHERE pool_domain = ?1 AND subdomain = ?2"
                    ),
                    params![pool, sub],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(db)?;
            let state = match &row {
                Some((s, ..)) => Some(
                    AllocationState::parse(s)
                        .ok_or_else(|| DnsError::Store(format!("unknown state {s:?}")))?,
                ),
                None => None,
            };
            let view = row
                .as_ref()
                .zip(state)
                .map(|((_, expired, t, ip), state)| CommitRow {
                    state,
                    expired: *expired,
                    token: t.as_deref(),
                    load_balancer_ip: ip.as_deref(),
                });
            let action = decide_commit(view, &token, &ip).map_err(super::commit_refusal)?;
            if action == CommitAction::Activate {
                tx.execute(
                    "UPDATE pool_allocations SET state = 'active', expires_at = NULL, \
                     sovereign_fqdn = ?3, load_balancer_ip = ?4 \
                     WHERE pool_domain = ?1 AND subdomain = ?2",
                    params![pool, sub, fqdn, ip],
                )
                .map_err(db)?;
            }
            let row = get(&tx, &pool, &sub)
                .map_err(db)?
                .ok_or(DnsError::NotFound)?;
            tx.commit().map_err(db)?;
            Ok((action, row))
        })
        .await
    }

    async fn begin_release(&self, pool: &str, sub: &str) -> Result<Option<Allocation>> {
        let (pool, sub) = (pool.to_owned(), sub.to_owned());
        self.with(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db)?;
            let Some(before) = get(&tx, &pool, &sub).map_err(db)? else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE pool_allocations SET state = 'releasing' \
                 WHERE pool_domain = ?1 AND subdomain = ?2",
                params![pool, sub],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
            Ok(Some(before))
        })
        .await
    }

    async fn finish_release(&self, pool: &str, sub: &str) -> Result<bool> {
        let (pool, sub) = (pool.to_owned(), sub.to_owned());
        self.with(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM pool_allocations \
                     WHERE pool_domain = ?1 AND subdomain = ?2 AND state = 'releasing'",
                    params![pool, sub],
                )
                .map_err(db)?;
            Ok(n > 0)
        })
        .await
    }

    async fn expire(&self) -> Result<Vec<Allocation>> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "UPDATE pool_allocations SET state = 'releasing' \
                     WHERE state = 'reserved' AND expires_at <= {NOW_MS} RETURNING {COLUMNS}"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], row_to_allocation).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn releasing(&self) -> Result<Vec<Allocation>> {
        self.with(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM pool_allocations WHERE state = 'releasing' \
                     ORDER BY pool_domain, subdomain"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([], row_to_allocation).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.with(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(db))
            .await
    }
}
