//! The pool-domain manager: who holds which subdomain of a pool domain, and the PowerDNS zones,
//! delegations and DNSSEC keys that make the name resolve.
//!
//! Layers: [`model`] (pure rules and the commit state machine) ← [`store`] (the allocation table
//! on SQLite or PostgreSQL; expiry judged by the database clock) ← [`allocator`] (reserve,
//! commit, release, sweep; drives [`pdns`]); [`registrar`] holds the registrar adapters that
//! flip a BYO domain's name servers. Nothing here knows wire JSON except the adapters' own
//! upstream formats.
//!
//! Invariants: a row leaves the table only after PowerDNS confirmed its zone and delegation are
//! gone (the `releasing` state holds it until then); the PowerDNS API key and registrar tokens
//! are never logged, stored or returned.
#![forbid(unsafe_code)]

pub mod allocator;
pub mod model;
pub mod pdns;
pub mod registrar;
pub mod store;

pub use allocator::{Allocator, CheckResult, DnsOutcome, PoolConfig};
pub use model::{Allocation, AllocationState};
pub use pdns::PowerDns;
pub use store::{AllocationStore, PgAllocationStore, SqliteAllocationStore};

/// What can go wrong with an allocation. Each variant maps to one answer of the API.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The label is not a valid subdomain.
    #[error("{}", model::LABEL_DETAIL)]
    InvalidFormat,
    /// The pool domain is not managed here.
    #[error("pool domain {0} is not managed by this control plane")]
    UnsupportedPool(String),
    /// The label is reserved for the control plane.
    #[error("{0:?} is reserved for the Sovereign control plane — pick a different name")]
    Reserved(String),
    /// The name is held (reserved, active or being released).
    #[error("this subdomain is already reserved or active")]
    Conflict,
    /// No allocation for this name.
    #[error("no allocation exists for this (poolDomain, subdomain)")]
    NotFound,
    /// The allocation is already active with another token or address.
    #[error("this allocation is already active")]
    AlreadyActive,
    /// The allocation is being released.
    #[error("this allocation is being released; release it again to finish, then reserve")]
    Releasing,
    /// The reservation lapsed before commit.
    #[error("the reservation TTL elapsed before commit; reserve again")]
    Expired,
    /// The token does not match.
    #[error("reservation token does not match the held reservation")]
    TokenMismatch,
    /// The load-balancer address is missing.
    #[error("loadBalancerIP is required for commit")]
    MissingLbIp,
    /// The load-balancer address is not an IPv4 address.
    #[error("loadBalancerIP must be an IPv4 address")]
    InvalidLbIp,
    /// The allocation store failed.
    #[error("allocation store: {0}")]
    Store(String),
    /// PowerDNS refused or could not be reached.
    #[error("{0}")]
    PowerDns(String),
}

/// Result alias of this crate.
pub type Result<T, E = DnsError> = std::result::Result<T, E>;
