//! PostgreSQL backend: the same table, `timestamptz` columns, `now()` as the only clock.
//! A reserve is one `INSERT … ON CONFLICT DO UPDATE … WHERE <lapsed>` statement, so concurrent
//! reserves of one name are decided by the primary key; a commit locks its row (`FOR UPDATE`).

use async_trait::async_trait;
use catalyst_store::postgres::{connect_and_migrate, PgSettings};
use deadpool_postgres::Pool;
use tokio_postgres::Row;

use super::commit_refusal;
use super::{ttl_millis, AllocationStore, CommitRequest, NewReservation};
use crate::model::{decide_commit, Allocation, AllocationState, CommitAction, CommitRow};
use crate::{DnsError, Result};

const COLUMNS: &str = "pool_domain, subdomain, state, reserved_at, expires_at, created_by, \
                       sovereign_fqdn, load_balancer_ip, reservation_token";

/// Arbitrary constant key of the advisory lock that serialises table creation.
const MIGRATION_LOCK: i64 = 0x00ca_7a15_7000_0d45;

const MIGRATION: &str = "
CREATE TABLE IF NOT EXISTS pool_allocations (
    pool_domain       text        NOT NULL,
    subdomain         text        NOT NULL,
    state             text        NOT NULL CHECK (state IN ('reserved','active','releasing')),
    reserved_at       timestamptz NOT NULL,
    expires_at        timestamptz,
    created_by        text        NOT NULL,
    sovereign_fqdn    text,
    load_balancer_ip  text,
    reservation_token text,
    PRIMARY KEY (pool_domain, subdomain)
);
CREATE INDEX IF NOT EXISTS pool_allocations_expires_idx
    ON pool_allocations (expires_at) WHERE state = 'reserved';
CREATE INDEX IF NOT EXISTS pool_allocations_releasing_idx
    ON pool_allocations (state) WHERE state = 'releasing';
";

fn db(context: &str, e: impl std::error::Error) -> DnsError {
    DnsError::Store(catalyst_store::postgres::error_chain(
        &format!("postgres {context}"),
        &e,
    ))
}

fn to_allocation(r: &Row) -> Result<Allocation> {
    let state: String = r.get(2);
    Ok(Allocation {
        pool_domain: r.get(0),
        subdomain: r.get(1),
        state: AllocationState::parse(&state)
            .ok_or_else(|| DnsError::Store(format!("unknown state {state:?}")))?,
        reserved_at: r.get(3),
        expires_at: r.get(4),
        created_by: r.get(5),
        sovereign_fqdn: r.get(6),
        load_balancer_ip: r.get(7),
        reservation_token: r.get(8),
    })
}

/// The PostgreSQL allocation store (pooled connections, no TLS).
#[derive(Clone)]
pub struct PgAllocationStore {
    pool: Pool,
}

impl std::fmt::Debug for PgAllocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAllocationStore").finish_non_exhaustive()
    }
}

impl PgAllocationStore {
    /// Connects and creates the table when missing, in the connection's default schema.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::build(url, None).await
    }

    /// Like [`PgAllocationStore::connect`] in `schema` (created when missing;
    /// `[a-z_][a-z0-9_]{0,62}`).
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self> {
        Self::build(url, Some(schema)).await
    }

    async fn build(url: &str, schema: Option<&str>) -> Result<Self> {
        let pool = connect_and_migrate(&PgSettings {
            url,
            schema,
            application_name: "catalyst-dns",
            max_size: 8,
            migration_lock: MIGRATION_LOCK,
            migration: MIGRATION,
        })
        .await
        .map_err(|e| DnsError::Store(e.to_string()))?;
        Ok(PgAllocationStore { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| db("connect", e))
    }
}

#[async_trait]
impl AllocationStore for PgAllocationStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn reserve(&self, r: NewReservation<'_>) -> Result<Allocation> {
        let ttl_ms = ttl_millis(r.ttl)?;
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO pool_allocations AS a (pool_domain, subdomain, state, reserved_at, \
             expires_at, created_by, reservation_token) \
             VALUES ($1, $2, 'reserved', now(), now() + $3::bigint * interval '1 millisecond', $4, $5) \
             ON CONFLICT (pool_domain, subdomain) DO UPDATE SET \
               state = 'reserved', reserved_at = EXCLUDED.reserved_at, \
               expires_at = EXCLUDED.expires_at, created_by = EXCLUDED.created_by, \
               reservation_token = EXCLUDED.reservation_token, \
               sovereign_fqdn = NULL, load_balancer_ip = NULL \
             WHERE a.state = 'reserved' AND a.expires_at <= now() \
             RETURNING {COLUMNS}"
        );
        let row = client
            .query_opt(
                &sql,
                &[
                    &r.pool_domain,
                    &r.subdomain,
                    &ttl_ms,
                    &r.created_by,
                    &r.token,
                ],
            )
            .await
            .map_err(|e| db("reserve", e))?;
        match row {
            Some(row) => to_allocation(&row),
            None => Err(DnsError::Conflict),
        }
    }

    async fn get(&self, pool: &str, sub: &str) -> Result<Option<Allocation>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM pool_allocations WHERE pool_domain = $1 AND subdomain = $2"
                ),
                &[&pool, &sub],
            )
            .await
            .map_err(|e| db("get", e))?;
        row.as_ref().map(to_allocation).transpose()
    }

    async fn state(&self, pool: &str, sub: &str) -> Result<Option<(AllocationState, bool)>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT state, state = 'reserved' AND COALESCE(expires_at <= now(), false) \
                 FROM pool_allocations WHERE pool_domain = $1 AND subdomain = $2",
                &[&pool, &sub],
            )
            .await
            .map_err(|e| db("state", e))?;
        row.map(|r| {
            let s: String = r.get(0);
            AllocationState::parse(&s)
                .map(|st| (st, r.get::<_, bool>(1)))
                .ok_or_else(|| DnsError::Store(format!("unknown state {s:?}")))
        })
        .transpose()
    }

    async fn list(&self, pool: &str) -> Result<Vec<Allocation>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM pool_allocations WHERE pool_domain = $1 ORDER BY subdomain"
                ),
                &[&pool],
            )
            .await
            .map_err(|e| db("list", e))?;
        rows.iter().map(to_allocation).collect()
    }

    async fn commit(&self, c: CommitRequest<'_>) -> Result<(CommitAction, Allocation)> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db("commit", e))?;
        let row = tx
            .query_opt(
                "SELECT state, COALESCE(expires_at <= now(), false), reservation_token, \
                 load_balancer_ip FROM pool_allocations \
                 WHERE pool_domain = $1 AND subdomain = $2 FOR UPDATE",
                &[&c.pool_domain, &c.subdomain],
            )
            .await
            .map_err(|e| db("commit", e))?;
        let fields = row.as_ref().map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, bool>(1),
                r.get::<_, Option<String>>(2),
                r.get::<_, Option<String>>(3),
            )
        });
        let view = match &fields {
            Some((s, expired, token, ip)) => Some(CommitRow {
                state: AllocationState::parse(s)
                    .ok_or_else(|| DnsError::Store(format!("unknown state {s:?}")))?,
                expired: *expired,
                token: token.as_deref(),
                load_balancer_ip: ip.as_deref(),
            }),
            None => None,
        };
        let action = decide_commit(view, c.token, c.load_balancer_ip).map_err(commit_refusal)?;
        let row = if action == CommitAction::Activate {
            tx.query_one(
                &format!(
                    "UPDATE pool_allocations SET state = 'active', expires_at = NULL, \
                     sovereign_fqdn = $3, load_balancer_ip = $4 \
                     WHERE pool_domain = $1 AND subdomain = $2 RETURNING {COLUMNS}"
                ),
                &[&c.pool_domain, &c.subdomain, &c.sovereign_fqdn, &c.load_balancer_ip],
            )
            .await
        } else {
            tx.query_one(
                &format!(
                    "SELECT {COLUMNS} FROM pool_allocations WHERE pool_domain = $1 AND subdomain = $2"
                ),
                &[&c.pool_domain, &c.subdomain],
            )
            .await
        }
        .map_err(|e| db("commit", e))?;
        tx.commit().await.map_err(|e| db("commit", e))?;
        Ok((action, to_allocation(&row)?))
    }

    async fn begin_release(&self, pool: &str, sub: &str) -> Result<Option<Allocation>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db("release", e))?;
        let before = tx
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM pool_allocations \
                     WHERE pool_domain = $1 AND subdomain = $2 FOR UPDATE"
                ),
                &[&pool, &sub],
            )
            .await
            .map_err(|e| db("release", e))?;
        let Some(before) = before else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE pool_allocations SET state = 'releasing' WHERE pool_domain = $1 AND subdomain = $2",
            &[&pool, &sub],
        )
        .await
        .map_err(|e| db("release", e))?;
        tx.commit().await.map_err(|e| db("release", e))?;
        to_allocation(&before).map(Some)
    }

    async fn finish_release(&self, pool: &str, sub: &str) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "DELETE FROM pool_allocations \
                 WHERE pool_domain = $1 AND subdomain = $2 AND state = 'releasing'",
                &[&pool, &sub],
            )
            .await
            .map_err(|e| db("release", e))?;
        Ok(n > 0)
    }

    async fn expire(&self) -> Result<Vec<Allocation>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "UPDATE pool_allocations SET state = 'releasing' \
                     WHERE state = 'reserved' AND expires_at <= now() RETURNING {COLUMNS}"
                ),
                &[],
            )
            .await
            .map_err(|e| db("expire", e))?;
        rows.iter().map(to_allocation).collect()
    }

    async fn releasing(&self) -> Result<Vec<Allocation>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM pool_allocations WHERE state = 'releasing' \
                     ORDER BY pool_domain, subdomain"
                ),
                &[],
            )
            .await
            .map_err(|e| db("releasing", e))?;
        rows.iter().map(to_allocation).collect()
    }

    async fn ping(&self) -> Result<()> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| db("ping", e))?;
        Ok(())
    }
}
