//! The allocator: reserve, commit, release and sweep, keeping the allocation table and PowerDNS
//! in step.
//!
//! Order of effects, chosen so a crash or a PowerDNS outage never loses track of DNS:
//! - reserve: row first (the primary key decides races), then zone, keys, NS + DS in the parent.
//!   If DNS fails the row becomes `releasing` and is deleted only once the partial zone is gone.
//! - commit: row first, then the A records; a failed write answers "published: false" and a
//!   retried commit with the same token and address publishes again.
//! - release and sweep: row to `releasing`, then the zone and the delegation, then the row.
use std::sync::Arc;
use std::time::Duration;

use catalyst_spine::{CloudEvent, EventDraft as SpineDraft, Spine};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::model::{self, Allocation, AllocationState, CommitAction};
use crate::pdns::{PowerDns, RrSet};
use crate::store::{AllocationStore, CommitRequest, NewReservation};
use crate::{DnsError, Result};

/// What the allocator manages.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Pool apex domains (normalised, no trailing dot).
    pub pool_domains: Vec<String>,
    /// Name servers of every zone (no trailing dot).
    pub nameservers: Vec<String>,
    /// How long a reservation holds without a commit.
    pub reservation_ttl: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            pool_domains: vec!["omani.works".into(), "openova.io".into()],
            nameservers: vec![
                "ns1.openova.io".into(),
                "ns2.openova.io".into(),
                "ns3.openova.io".into(),
            ],
            reservation_ttl: Duration::from_secs(600),
        }
    }
}

/// What happened in DNS as part of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsOutcome {
    /// PowerDNS confirmed the change.
    Done,
    /// No PowerDNS is configured; only the table changed.
    NotManaged,
    /// PowerDNS failed; the operation can be repeated to finish it.
    Failed(String),
}

/// The answer of a name check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// True when a reserve would succeed.
    pub available: bool,
    /// Machine-readable reason when not available.
    pub reason: Option<&'static str>,
    /// Human detail when not available.
    pub detail: Option<String>,
    /// `sub.pool` (absent for an invalid label).
    pub fqdn: Option<String>,
}

/// A commit's result.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The row after commit.
    pub allocation: Allocation,
    /// First commit or a repeat.
    pub action: CommitAction,
    /// Whether the records are published.
    pub dns: DnsOutcome,
}

/// A release's result.
#[derive(Debug, Clone)]
pub struct Released {
    /// The row as it was before the release.
    pub freed: Allocation,
    /// Whether the zone and delegation are gone (`Failed`: the row stays `releasing`).
    pub dns: DnsOutcome,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Lapsed reservations moved to `releasing`.
    pub expired: usize,
    /// Rows whose DNS was removed and which were deleted.
    pub removed: usize,
    /// Rows left `releasing` because PowerDNS failed.
    pub pending: usize,
}

/// The pool-domain allocator.
pub struct Allocator {
    config: PoolConfig,
    store: Arc<dyn AllocationStore>,
    dns: Option<PowerDns>,
    /// Serialises this process's PowerDNS writes: concurrent zone transactions contend inside
    /// PowerDNS (its SQLite backend answers 500 under contention), and one writer is as fast.
    dns_writes: tokio::sync::Mutex<()>,
    /// The event spine reservations, commits and releases are recorded on, when set.
    spine: std::sync::OnceLock<Arc<dyn Spine>>,
}

impl std::fmt::Debug for Allocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allocator")
            .field("config", &self.config)
            .field("store", &self.store.backend())
            .field("dns", &self.dns)
            .finish()
    }
}

/// A valid, normalised (pool, label) pair.
struct Name {
    pool: String,
    sub: String,
}

impl Allocator {
    /// An allocator over `store`, driving `dns` when set.
    pub fn new(config: PoolConfig, store: Arc<dyn AllocationStore>, dns: Option<PowerDns>) -> Self {
        Allocator {
            config,
            store,
            dns,
            dns_writes: tokio::sync::Mutex::new(()),
            spine: std::sync::OnceLock::new(),
        }
    }

    /// Records every reservation, commit and release on `spine` from now on (once), after
    /// making sure the spine has what the allocation store holds (the store is the outbox: a
    /// change stored but not recorded when the process stopped is recorded now, once — event
    /// ids name the allocation by its name and reservation time, never its token).
    pub async fn set_spine(&self, spine: Arc<dyn Spine>) -> Result<()> {
        if self.spine.set(spine.clone()).is_err() {
            return Ok(());
        }
        let mut missing = Vec::new();
        for pool in self.managed_domains() {
            for a in self.store.list(&pool).await? {
                missing.push(pool_event("reserved", &a, None));
                match a.state {
                    AllocationState::Active => missing.push(pool_event("committed", &a, None)),
                    AllocationState::Releasing => {
                        missing.push(pool_event("released", &a, None));
                    }
                    AllocationState::Reserved => {}
                }
            }
        }
        missing.retain(|e| !spine.contains(&e.id));
        if !missing.is_empty() {
            info!(
                events = missing.len(),
                "Recording pool-name changes the event spine does not have yet."
            );
            self.record(missing).await;
        }
        Ok(())
    }

    /// Records `events` on the spine (when set); a failure is logged: the store holds the
    /// change and the next start-up records it.
    async fn record(&self, events: Vec<CloudEvent>) {
        let Some(spine) = self.spine.get().cloned() else {
            return;
        };
        match tokio::task::spawn_blocking(move || spine.append(events)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(error = %e, "Recording a pool-name change on the event spine failed; the next start-up records it.")
            }
            Err(_) => warn!("The task recording a pool-name change stopped."),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn AllocationStore> {
        &self.store
    }

    /// True when a PowerDNS is configured.
    pub fn dns_managed(&self) -> bool {
        self.dns.is_some()
    }

    /// True when `pool` is one of the managed pool domains.
    pub fn is_managed(&self, pool: &str) -> bool {
        let pool = model::normalise(pool);
        !pool.is_empty() && self.config.pool_domains.contains(&pool)
    }

    /// Managed pool domains, sorted.
    pub fn managed_domains(&self) -> Vec<String> {
        let mut d = self.config.pool_domains.clone();
        d.sort();
        d
    }

    fn name(&self, pool: &str, sub: &str) -> Result<Name> {
        let sub = model::normalise(sub);
        let pool = model::normalise(pool);
        if !model::is_valid_label(&sub) {
            return Err(DnsError::InvalidFormat);
        }
        if !self.is_managed(&pool) {
            return Err(DnsError::UnsupportedPool(pool));
        }
        Ok(Name { pool, sub })
    }

    /// Creates and signs every pool zone that is missing (start-up). Without PowerDNS, nothing.
    pub async fn bootstrap(&self) -> Result<()> {
        let Some(dns) = &self.dns else { return Ok(()) };
        if self.config.nameservers.is_empty() {
            return Err(DnsError::PowerDns(
                "no name servers configured for the pool zones".into(),
            ));
        }
        for pool in &self.config.pool_domains {
            dns.ensure_signed_zone(pool, &self.config.nameservers)
                .await?;
            info!(zone = %pool, "Pool zone present and signed.");
        }
        Ok(())
    }

    /// Whether a reserve of `sub` under `pool` would succeed now.
    pub async fn check(&self, pool: &str, sub: &str) -> Result<CheckResult> {
        let unavailable = |reason, detail: String, fqdn: Option<String>| CheckResult {
            available: false,
            reason: Some(reason),
            detail: Some(detail),
            fqdn,
        };
        let name = match self.name(pool, sub) {
            Ok(n) => n,
            Err(DnsError::InvalidFormat) => {
                return Ok(unavailable(
                    "invalid-format",
                    model::LABEL_DETAIL.into(),
                    None,
                ))
            }
            Err(DnsError::UnsupportedPool(p)) => {
                return Ok(unavailable(
                    "unsupported-pool",
                    format!(
                        "pool domain {p} is not managed here — pick a different pool or use BYO"
                    ),
                    None,
                ))
            }
            Err(e) => return Err(e),
        };
        let fqdn = Some(format!("{}.{}", name.sub, name.pool));
        if model::is_reserved(&name.sub) {
            return Ok(unavailable(
                "reserved",
                "this subdomain is reserved for the Sovereign control plane — pick a different name".into(),
                fqdn,
            ));
        }
        Ok(match self.store.state(&name.pool, &name.sub).await? {
            None | Some((AllocationState::Reserved, true)) => CheckResult {
                available: true,
                reason: None,
                detail: None,
                fqdn,
            },
            Some((AllocationState::Reserved, false)) => unavailable(
                "reserved-state",
                "this subdomain has been reserved by another deployment in progress — try again in a few minutes".into(),
                fqdn,
            ),
            Some((AllocationState::Active, _)) => unavailable(
                "active-state",
                "this subdomain is already taken by a live Sovereign — pick a different name".into(),
                fqdn,
            ),
            Some((AllocationState::Releasing, _)) => unavailable(
                "releasing-state",
                "this subdomain is being released — try again in a minute".into(),
                fqdn,
            ),
        })
    }

    /// Reserves `sub` under `pool` for the reservation TTL and creates its signed zone and
    /// delegation.
    pub async fn reserve(&self, pool: &str, sub: &str, created_by: &str) -> Result<Allocation> {
        let name = self.name(pool, sub)?;
        if model::is_reserved(&name.sub) {
            return Err(DnsError::Reserved(name.sub));
        }
        let created_by = match created_by.trim() {
            "" => "catalyst-api",
            s => s,
        };
        let token = model::token_from_bytes(rand::random());
        let allocation = self
            .store
            .reserve(NewReservation {
                pool_domain: &name.pool,
                subdomain: &name.sub,
                created_by,
                token: &token,
                ttl: self.config.reservation_ttl,
            })
            .await?;
        let Some(dns) = &self.dns else {
            self.record(vec![pool_event("reserved", &allocation, None)])
                .await;
            return Ok(allocation);
        };
        let zone = allocation.zone();
        if let Err(e) = self.publish_zone(dns, &name.pool, &zone).await {
            warn!(zone = %zone, error = %e, "Creating the child zone failed; rolling the reservation back.");
            if self
                .store
                .begin_release(&name.pool, &name.sub)
                .await?
                .is_some()
            {
                self.finish_release(dns, &name.pool, &name.sub).await;
            }
            return Err(e);
        }
        info!(zone = %zone, created_by, "Reserved.");
        self.record(vec![pool_event("reserved", &allocation, None)])
            .await;
        Ok(allocation)
    }

    async fn publish_zone(&self, dns: &PowerDns, pool: &str, zone: &str) -> Result<()> {
        let _one_writer = self.dns_writes.lock().await;
        let ns = &self.config.nameservers;
        dns.create_zone(zone, ns)
            .await
            .map_err(|e| DnsError::PowerDns(format!("create child zone: {e}")))?;
        let keys = dns
            .ensure_signed(zone)
            .await
            .map_err(|e| DnsError::PowerDns(format!("enable DNSSEC on {zone}: {e}")))?;
        let ds = crate::pdns::ds_of(&keys);
        let ns: Vec<String> = ns.iter().map(|n| crate::pdns::canonical(n)).collect();
        let mut changes = vec![RrSet::replace(zone, "NS", model::DELEGATION_TTL, &ns)];
        if !ds.is_empty() {
            changes.push(RrSet::replace(zone, "DS", model::DELEGATION_TTL, &ds));
        }
        dns.patch(pool, &changes)
            .await
            .map_err(|e| DnsError::PowerDns(format!("add delegation: {e}")))?;
        dns.rectify(pool).await
    }

    /// Removes a zone and its delegation; both are attempted even when the first fails.
    async fn teardown(&self, dns: &PowerDns, pool: &str, zone: &str) -> Result<()> {
        let _one_writer = self.dns_writes.lock().await;
        let zone_result = dns.delete_zone(zone).await;
        let delegation = dns
            .patch(
                pool,
                &[RrSet::delete(zone, "NS"), RrSet::delete(zone, "DS")],
            )
            .await;
        let delegation = match delegation {
            Ok(()) => dns.rectify(pool).await,
            Err(e) => Err(e),
        };
        match (zone_result, delegation) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), _) => Err(DnsError::PowerDns(format!("powerdns delete zone: {e}"))),
            (_, Err(e)) => Err(DnsError::PowerDns(format!(
                "powerdns remove delegation: {e}"
            ))),
        }
    }

    /// Tears DNS down for a `releasing` row and deletes it when that worked.
    async fn finish_release(&self, dns: &PowerDns, pool: &str, sub: &str) -> DnsOutcome {
        let zone = model::child_zone(pool, sub);
        match self.teardown(dns, pool, &zone).await {
            Ok(()) => match self.store.finish_release(pool, sub).await {
                Ok(_) => DnsOutcome::Done,
                Err(e) => DnsOutcome::Failed(e.to_string()),
            },
            Err(e) => {
                warn!(zone = %zone, error = %e, "DNS teardown failed; the allocation stays releasing.");
                DnsOutcome::Failed(e.to_string())
            }
        }
    }

    /// Commits a reservation: the row becomes active and the six A records are published.
    /// Repeating it with the same token and address publishes the records again.
    pub async fn commit(
        &self,
        pool: &str,
        sub: &str,
        token: &str,
        sovereign_fqdn: &str,
        lb_ip: &str,
    ) -> Result<Committed> {
        let name = self.name(pool, sub)?;
        if lb_ip.trim().is_empty() {
            return Err(DnsError::MissingLbIp);
        }
        let ip = model::parse_lb_ip(lb_ip)
            .ok_or(DnsError::InvalidLbIp)?
            .to_string();
        let (action, allocation) = self
            .store
            .commit(CommitRequest {
                pool_domain: &name.pool,
                subdomain: &name.sub,
                token,
                sovereign_fqdn: sovereign_fqdn.trim(),
                load_balancer_ip: &ip,
            })
            .await?;
        let dns = match &self.dns {
            None => DnsOutcome::NotManaged,
            Some(dns) => {
                let zone = allocation.zone();
                let records = [ip.clone()];
                let changes: Vec<RrSet> = model::canonical_names(&zone)
                    .iter()
                    .map(|n| RrSet::replace(n, "A", model::A_TTL, &records))
                    .collect();
                // A repeated commit is the recovery path: make sure the zone and its delegation
                // are there too before the records go in.
                let ensured = match action {
                    CommitAction::Republish => self.publish_zone(dns, &name.pool, &zone).await,
                    CommitAction::Activate => Ok(()),
                };
                let written = match ensured {
                    Ok(()) => {
                        let _one_writer = self.dns_writes.lock().await;
                        dns.patch(&zone, &changes).await
                    }
                    Err(e) => Err(e),
                };
                match written {
                    Ok(()) => DnsOutcome::Done,
                    Err(e) => {
                        warn!(zone = %zone, error = %e, "Publishing the records failed; a retried commit publishes them.");
                        DnsOutcome::Failed(format!("powerdns write: {e}"))
                    }
                }
            }
        };
        info!(pool = %name.pool, sub = %name.sub, ?action, published = dns == DnsOutcome::Done, "Committed.");
        self.record(vec![pool_event("committed", &allocation, None)])
            .await;
        Ok(Committed {
            allocation,
            action,
            dns,
        })
    }

    /// Releases a name in any state. The row stays `releasing` until PowerDNS confirms the zone
    /// and delegation are gone; releasing it again finishes the job.
    pub async fn release(&self, pool: &str, sub: &str) -> Result<Released> {
        let name = self.name(pool, sub)?;
        let freed = self
            .store
            .begin_release(&name.pool, &name.sub)
            .await?
            .ok_or(DnsError::NotFound)?;
        self.record(vec![pool_event("released", &freed, Some("released"))])
            .await;
        let dns = match &self.dns {
            None => match self.store.finish_release(&name.pool, &name.sub).await {
                Ok(_) => DnsOutcome::NotManaged,
                Err(e) => return Err(e),
            },
            Some(dns) => self.finish_release(dns, &name.pool, &name.sub).await,
        };
        info!(pool = %name.pool, sub = %name.sub, done = matches!(dns, DnsOutcome::Done | DnsOutcome::NotManaged), "Released.");
        Ok(Released { freed, dns })
    }

    /// Every allocation of a pool, ordered by subdomain.
    pub async fn list(&self, pool: &str) -> Result<Vec<Allocation>> {
        let pool = model::normalise(pool);
        if !self.is_managed(&pool) {
            return Err(DnsError::UnsupportedPool(pool));
        }
        self.store.list(&pool).await
    }

    /// One sweep: lapsed reservations become `releasing`; every `releasing` row has its DNS
    /// removed and is deleted once that succeeded.
    pub async fn sweep(&self) -> Result<SweepReport> {
        let lapsed = self.store.expire().await?;
        let expired = lapsed.len();
        if !lapsed.is_empty() {
            let events = lapsed
                .iter()
                .map(|a| pool_event("released", a, Some("expired")))
                .collect();
            self.record(events).await;
        }
        let mut report = SweepReport {
            expired,
            ..SweepReport::default()
        };
        for row in self.store.releasing().await? {
            let outcome = match &self.dns {
                None => {
                    self.store
                        .finish_release(&row.pool_domain, &row.subdomain)
                        .await?;
                    DnsOutcome::NotManaged
                }
                Some(dns) => {
                    self.finish_release(dns, &row.pool_domain, &row.subdomain)
                        .await
                }
            };
            match outcome {
                DnsOutcome::Failed(_) => report.pending += 1,
                _ => report.removed += 1,
            }
        }
        if report != SweepReport::default() {
            info!(
                expired = report.expired,
                removed = report.removed,
                pending = report.pending,
                "Swept allocations."
            );
        }
        Ok(report)
    }

    /// Runs [`Allocator::sweep`] every `interval` until `stop` is cancelled.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        interval: Duration,
        stop: CancellationToken,
    ) -> JoinHandle<()> {
        let this = self.clone();
        let interval = if interval.is_zero() {
            Duration::from_secs(30)
        } else {
            interval
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                if let Err(e) = this.sweep().await {
                    warn!(error = %e, "Sweep failed; trying again next interval.");
                }
            }
        })
    }
}

/// `pool.reserved|committed|released` for allocation `a` (`pool-<fqdn>-<reserved at, µs>-<verb>`:
/// one reservation of a name is one id, so recording it again is a no-op). The token is never in
/// the event.
fn pool_event(verb: &str, a: &Allocation, reason: Option<&str>) -> CloudEvent {
    let fqdn = format!("{}.{}", a.subdomain, a.pool_domain);
    SpineDraft {
        id: format!("pool-{fqdn}-{}-{verb}", a.reserved_at.timestamp_micros()),
        kind: format!("pool.{verb}"),
        org: None,
        env: None,
        subject: fqdn,
        time: chrono::Utc::now(),
        data: serde_json::json!({
            "poolDomain": a.pool_domain,
            "subdomain": a.subdomain,
            "state": a.state.as_str(),
            "createdBy": a.created_by,
            "sovereignFQDN": a.sovereign_fqdn,
            "loadBalancerIP": a.load_balancer_ip,
            "reason": reason,
        }),
    }
    .into_event()
}
