//! The allocation table behind one trait, on SQLite (default, a file under `--data-dir`) or
//! PostgreSQL. Both judge expiry with the database's clock, never the process's.
//!
//! Uniqueness is the primary key `(pool_domain, subdomain)`. A reserve takes over a row only
//! when it is a lapsed reservation; the sweeper moves lapsed reservations to `releasing` in one
//! statement and deletes only rows it moved and whose DNS it removed.
use std::time::Duration;

use async_trait::async_trait;

use crate::model::{Allocation, AllocationState, CommitAction};
use crate::Result;

mod postgres;
mod sqlite;

pub use postgres::PgAllocationStore;
pub use sqlite::SqliteAllocationStore;

/// A new reservation.
#[derive(Debug, Clone)]
pub struct NewReservation<'a> {
    /// Pool apex (normalised).
    pub pool_domain: &'a str,
    /// Label (normalised, valid).
    pub subdomain: &'a str,
    /// Who reserves.
    pub created_by: &'a str,
    /// The new token.
    pub token: &'a str,
    /// How long it holds without a commit.
    pub ttl: Duration,
}

/// The commit request as the store sees it.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    /// Pool apex.
    pub pool_domain: &'a str,
    /// Label.
    pub subdomain: &'a str,
    /// Presented token.
    pub token: &'a str,
    /// Sovereign FQDN.
    pub sovereign_fqdn: &'a str,
    /// Load-balancer IPv4 (validated).
    pub load_balancer_ip: &'a str,
}

/// Durable allocation storage.
#[async_trait]
pub trait AllocationStore: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Inserts a reservation, or takes over a lapsed one; [`crate::DnsError::Conflict`] otherwise.
    async fn reserve(&self, r: NewReservation<'_>) -> Result<Allocation>;
    /// One row.
    async fn get(&self, pool: &str, sub: &str) -> Result<Option<Allocation>>;
    /// The state of a row and whether it is a lapsed reservation (database clock).
    async fn state(&self, pool: &str, sub: &str) -> Result<Option<(AllocationState, bool)>>;
    /// Every row of a pool, ordered by subdomain.
    async fn list(&self, pool: &str) -> Result<Vec<Allocation>>;
    /// Checks and applies a commit atomically (see [`crate::model::decide_commit`]).
    async fn commit(&self, c: CommitRequest<'_>) -> Result<(CommitAction, Allocation)>;
    /// Moves a row (any state) to `releasing`; returns it as it was before, `None` if absent.
    async fn begin_release(&self, pool: &str, sub: &str) -> Result<Option<Allocation>>;
    /// Deletes a `releasing` row (after its DNS is gone). True when a row was deleted.
    async fn finish_release(&self, pool: &str, sub: &str) -> Result<bool>;
    /// Moves every lapsed reservation to `releasing` (one statement) and returns them.
    async fn expire(&self) -> Result<Vec<Allocation>>;
    /// Every `releasing` row.
    async fn releasing(&self) -> Result<Vec<Allocation>>;
    /// The store answers.
    async fn ping(&self) -> Result<()>;
}

pub(crate) fn ttl_millis(ttl: Duration) -> Result<i64> {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    if ms <= 0 {
        return Err(crate::DnsError::Store(
            "reservation TTL must be positive".into(),
        ));
    }
    Ok(ms)
}

pub(crate) fn commit_refusal(r: crate::model::CommitRefusal) -> crate::DnsError {
    match r {
        crate::model::CommitRefusal::NotFound => crate::DnsError::NotFound,
        crate::model::CommitRefusal::AlreadyActive => crate::DnsError::AlreadyActive,
        crate::model::CommitRefusal::Releasing => crate::DnsError::Releasing,
        crate::model::CommitRefusal::Expired => crate::DnsError::Expired,
        crate::model::CommitRefusal::TokenMismatch => crate::DnsError::TokenMismatch,
    }
}
