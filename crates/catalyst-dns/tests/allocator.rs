//! The allocator against a real PowerDNS (one private server per test) on both stores, and the
//! stores alone. Names are checked over DNS with `dig`: served, signed, delegated, gone.

mod support;

use std::sync::Arc;
use std::time::Duration;

use catalyst_dns::allocator::SweepReport;
use catalyst_dns::model::CommitAction;
use catalyst_dns::{
    AllocationState, AllocationStore, Allocator, DnsError, DnsOutcome, PoolConfig,
    SqliteAllocationStore,
};
use support::{answers, dig_status, Pdns};

type Store = Arc<dyn AllocationStore>;

const POOL: &str = "omani.works";

fn config(ttl: Duration) -> PoolConfig {
    PoolConfig {
        pool_domains: vec!["omani.works".into(), "openova.io".into()],
        nameservers: vec!["ns1.openova.io".into(), "ns2.openova.io".into()],
        reservation_ttl: ttl,
    }
}

async fn with_dns(store: Store, ttl: Duration) -> Option<(Arc<Allocator>, Pdns)> {
    let pdns = Pdns::start()?;
    let alloc = Arc::new(Allocator::new(config(ttl), store, Some(pdns.client())));
    alloc.bootstrap().await.expect("bootstrap parent zones");
    Some((alloc, pdns))
}

fn has(dig: &str, rtype: &str) -> bool {
    answers(dig).iter().any(|(_, t, _)| t == rtype)
}

async fn full_cycle_is_served_signed_delegated_and_removed(store: Store) {
    let Some((a, pdns)) = with_dns(store, Duration::from_secs(600)).await else {
        return;
    };
    assert_eq!(pdns.zones().await, ["omani.works", "openova.io"]);
    assert!(
        has(&pdns.dig("omani.works", "SOA"), "RRSIG"),
        "parent zones are signed"
    );

    let r = a.reserve(POOL, " Omantel ", "test").await.unwrap();
    assert_eq!(
        (r.subdomain.as_str(), r.state),
        ("omantel", AllocationState::Reserved)
    );
    assert!(r.expires_at.is_some() && r.reservation_token.is_some());
    let token = r.reservation_token.clone().unwrap();
    assert!(pdns
        .zones()
        .await
        .contains(&"omantel.omani.works".to_owned()));
    // Delegation: NS and DS at the child's name in the parent, DS signed by the parent.
    let ns = pdns.rrset(POOL, "omantel.omani.works", "NS").await;
    assert_eq!(ns, ["ns1.openova.io.", "ns2.openova.io."]);
    let ds = pdns.dig("omantel.omani.works", "DS");
    assert!(
        has(&ds, "DS") && has(&ds, "RRSIG"),
        "DS published and signed:\n{ds}"
    );
    let check = a.check(POOL, "omantel").await.unwrap();
    assert_eq!(check.reason, Some("reserved-state"));

    let c = a
        .commit(POOL, "omantel", &token, "omantel.omani.works", "10.1.2.3")
        .await
        .unwrap();
    assert_eq!(
        (c.action, c.dns.clone()),
        (CommitAction::Activate, DnsOutcome::Done)
    );
    assert_eq!(c.allocation.state, AllocationState::Active);
    for name in [
        "omantel.omani.works",
        "console.omantel.omani.works",
        "x.omantel.omani.works",
    ] {
        let out = pdns.dig(name, "A");
        let a_records: Vec<_> = answers(&out)
            .into_iter()
            .filter(|(_, t, _)| t == "A")
            .collect();
        assert_eq!(a_records.len(), 1, "{name}:\n{out}");
        assert_eq!(a_records[0].2, "10.1.2.3");
        assert!(has(&out, "RRSIG"), "{name} is signed:\n{out}");
    }
    // Over UDP with a resolver crate as well.
    let resolver = resolver(pdns.dns);
    let ips = resolver
        .ipv4_lookup("api.omantel.omani.works.")
        .await
        .unwrap();
    assert_eq!(
        ips.iter().map(|ip| ip.to_string()).collect::<Vec<_>>(),
        ["10.1.2.3"]
    );

    // Idempotent commit: same token and address.
    let again = a
        .commit(POOL, "omantel", &token, "omantel.omani.works", "10.1.2.3")
        .await
        .unwrap();
    assert_eq!(
        (again.action, again.dns),
        (CommitAction::Republish, DnsOutcome::Done)
    );
    // A repeated commit also restores a zone PowerDNS lost.
    pdns.client()
        .delete_zone("omantel.omani.works")
        .await
        .unwrap();
    let restored = a
        .commit(POOL, "omantel", &token, "omantel.omani.works", "10.1.2.3")
        .await
        .unwrap();
    assert_eq!(restored.dns, DnsOutcome::Done);
    let out = pdns.dig("api.omantel.omani.works", "A");
    assert!(
        has(&out, "A") && has(&out, "RRSIG"),
        "restored and signed:\n{out}"
    );
    let ds = pdns.dig("omantel.omani.works", "DS");
    assert!(has(&ds, "DS"), "the new key's DS is in the parent:\n{ds}");
    assert!(matches!(
        a.commit(POOL, "omantel", &token, "omantel.omani.works", "10.9.9.9")
            .await,
        Err(DnsError::AlreadyActive)
    ));
    assert_eq!(
        a.check(POOL, "omantel").await.unwrap().reason,
        Some("active-state")
    );

    let rel = a.release(POOL, "omantel").await.unwrap();
    assert_eq!(rel.dns, DnsOutcome::Done);
    assert_eq!(rel.freed.state, AllocationState::Active);
    assert_eq!(pdns.zones().await, ["omani.works", "openova.io"]);
    assert!(pdns
        .rrset(POOL, "omantel.omani.works", "NS")
        .await
        .is_empty());
    assert!(pdns
        .rrset(POOL, "omantel.omani.works", "DS")
        .await
        .is_empty());
    let gone = pdns.dig("console.omantel.omani.works", "A");
    assert_eq!(dig_status(&gone), "NXDOMAIN", "{gone}");
    assert!(matches!(
        a.release(POOL, "omantel").await,
        Err(DnsError::NotFound)
    ));
    assert!(a.check(POOL, "omantel").await.unwrap().available);
}

fn resolver(addr: std::net::SocketAddr) -> hickory_resolver::TokioAsyncResolver {
    use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
    let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
    let mut opts = ResolverOpts::default();
    opts.timeout = Duration::from_secs(2);
    opts.cache_size = 0;
    hickory_resolver::TokioAsyncResolver::tokio(
        ResolverConfig::from_parts(None, vec![], group),
        opts,
    )
}

async fn concurrent_reserves_one_winner(store: Store) {
    let Some((a, pdns)) = with_dns(store, Duration::from_secs(600)).await else {
        return;
    };
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move { a.reserve(POOL, "race", &format!("t{i}")).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(DnsError::Conflict) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
    let zones = pdns.zones().await;
    assert_eq!(zones, ["omani.works", "openova.io", "race.omani.works"]);
}

async fn errors_of_every_kind(store: Store) {
    let a = Allocator::new(config(Duration::from_secs(600)), store, None);
    assert!(!a.dns_managed());
    assert!(matches!(
        a.reserve(POOL, "api", "").await,
        Err(DnsError::Reserved(_))
    ));
    assert!(matches!(
        a.reserve(POOL, "1abc", "").await,
        Err(DnsError::InvalidFormat)
    ));
    assert!(matches!(
        a.reserve("example.com", "acme", "").await,
        Err(DnsError::UnsupportedPool(_))
    ));
    let r = a.reserve(POOL, "acme", "").await.unwrap();
    assert_eq!(r.created_by, "catalyst-api");
    assert!(matches!(
        a.reserve(POOL, "acme", "").await,
        Err(DnsError::Conflict)
    ));
    let t = r.reservation_token.unwrap();
    assert!(matches!(
        a.commit(POOL, "acme", &t, "", " ").await,
        Err(DnsError::MissingLbIp)
    ));
    assert!(matches!(
        a.commit(POOL, "acme", &t, "", "10.0.0").await,
        Err(DnsError::InvalidLbIp)
    ));
    assert!(matches!(
        a.commit(POOL, "ghost", &t, "", "10.0.0.1").await,
        Err(DnsError::NotFound)
    ));
    assert!(matches!(
        a.commit(
            POOL,
            "acme",
            "00000000-0000-4000-8000-000000000000",
            "",
            "10.0.0.1"
        )
        .await,
        Err(DnsError::TokenMismatch)
    ));
    let c = a
        .commit(
            POOL,
            "acme",
            &t.to_uppercase(),
            "acme.omani.works",
            "10.0.0.1",
        )
        .await
        .unwrap();
    assert_eq!(c.dns, DnsOutcome::NotManaged);
    assert_eq!(a.list(POOL).await.unwrap().len(), 1);
    assert!(matches!(
        a.list("example.com").await,
        Err(DnsError::UnsupportedPool(_))
    ));
    let rel = a.release(POOL, "acme").await.unwrap();
    assert_eq!(rel.dns, DnsOutcome::NotManaged);
    assert!(a.list(POOL).await.unwrap().is_empty());
}

async fn expiry_by_database_clock_and_takeover(store: Store) {
    let a = Allocator::new(config(Duration::from_millis(1500)), store, None);
    let first = a.reserve(POOL, "lapse", "one").await.unwrap();
    assert!(matches!(
        a.reserve(POOL, "lapse", "two").await,
        Err(DnsError::Conflict)
    ));
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(a.check(POOL, "lapse").await.unwrap().available);
    let t1 = first.reservation_token.unwrap();
    assert!(matches!(
        a.commit(POOL, "lapse", &t1, "", "10.0.0.1").await,
        Err(DnsError::Expired)
    ));
    let second = a.reserve(POOL, "lapse", "two").await.unwrap();
    assert_eq!(second.created_by, "two");
    assert!(matches!(
        a.commit(POOL, "lapse", &t1, "", "10.0.0.1").await,
        Err(DnsError::TokenMismatch)
    ));
}

async fn sweeper_removes_zone_and_delegation(store: Store) {
    let Some((a, pdns)) = with_dns(store.clone(), Duration::from_secs(3)).await else {
        return;
    };
    a.reserve(POOL, "sweepme", "t").await.unwrap();
    a.reserve(POOL, "alsolapses", "t").await.unwrap();
    assert_eq!(
        a.sweep().await.unwrap(),
        SweepReport::default(),
        "nothing lapsed yet"
    );
    tokio::time::sleep(Duration::from_millis(3300)).await;
    // A fresh reservation made after the others lapsed survives the sweep.
    let a2 = Allocator::new(config(Duration::from_secs(600)), store, Some(pdns.client()));
    a2.reserve(POOL, "fresh", "t").await.unwrap();
    let report = a.sweep().await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            expired: 2,
            removed: 2,
            pending: 0
        }
    );
    assert_eq!(
        pdns.zones().await,
        ["fresh.omani.works", "omani.works", "openova.io"]
    );
    assert!(pdns
        .rrset(POOL, "sweepme.omani.works", "NS")
        .await
        .is_empty());
    assert!(pdns
        .rrset(POOL, "sweepme.omani.works", "DS")
        .await
        .is_empty());
    assert_eq!(
        dig_status(&pdns.dig("sweepme.omani.works", "SOA")),
        "NXDOMAIN"
    );
    let left: Vec<_> = a
        .list(POOL)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.subdomain)
        .collect();
    assert_eq!(left, ["fresh"]);
}

async fn powerdns_outage_during_commit_and_release(store: Store) {
    let Some((a, mut pdns)) = with_dns(store.clone(), Duration::from_secs(600)).await else {
        return;
    };
    let r = a.reserve(POOL, "outage", "t").await.unwrap();
    let token = r.reservation_token.unwrap();
    pdns.pause();
    let c = a
        .commit(POOL, "outage", &token, "outage.omani.works", "10.2.3.4")
        .await
        .unwrap();
    assert!(
        matches!(&c.dns, DnsOutcome::Failed(m) if m.contains("powerdns write")),
        "{:?}",
        c.dns
    );
    assert_eq!(c.allocation.state, AllocationState::Active);
    // A reserve while PowerDNS is down fails and leaves nothing held.
    assert!(matches!(
        a.reserve(POOL, "during", "t").await,
        Err(DnsError::PowerDns(_))
    ));
    pdns.resume();
    let again = a
        .commit(POOL, "outage", &token, "outage.omani.works", "10.2.3.4")
        .await
        .unwrap();
    assert_eq!(
        (again.action, again.dns),
        (CommitAction::Republish, DnsOutcome::Done)
    );
    let out = pdns.dig("gitea.outage.omani.works", "A");
    assert!(
        answers(&out)
            .iter()
            .any(|(_, t, d)| t == "A" && d == "10.2.3.4"),
        "{out}"
    );
    // The failed reserve's row was held as releasing; the sweeper finishes it now.
    a.sweep().await.unwrap();
    assert!(a.check(POOL, "during").await.unwrap().available);

    pdns.pause();
    let rel = a.release(POOL, "outage").await.unwrap();
    assert!(matches!(rel.dns, DnsOutcome::Failed(_)), "{:?}", rel.dns);
    assert_eq!(
        a.check(POOL, "outage").await.unwrap().reason,
        Some("releasing-state")
    );
    assert!(matches!(
        a.reserve(POOL, "outage", "t").await,
        Err(DnsError::Conflict)
    ));
    // The sweeper does not delete a row whose DNS it could not remove.
    let report = a.sweep().await.unwrap();
    assert_eq!(report.pending, 1);
    assert_eq!(
        store.get(POOL, "outage").await.unwrap().unwrap().state,
        AllocationState::Releasing
    );
    pdns.resume();
    let rel = a.release(POOL, "outage").await.unwrap();
    assert_eq!(rel.dns, DnsOutcome::Done);
    assert_eq!(rel.freed.state, AllocationState::Releasing);
    assert!(store.get(POOL, "outage").await.unwrap().is_none());
    assert_eq!(pdns.zones().await, ["omani.works", "openova.io"]);
    assert_eq!(dig_status(&pdns.dig("outage.omani.works", "A")), "NXDOMAIN");
}

macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod sqlite_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::SqliteAllocationStore::open(dir.path().join("pool.sqlite3")).unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod postgres_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((store, _guard)) = super::support::pg::store().await else { return };
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

on_every_store!(
    full_cycle_is_served_signed_delegated_and_removed,
    concurrent_reserves_one_winner,
    errors_of_every_kind,
    expiry_by_database_clock_and_takeover,
    sweeper_removes_zone_and_delegation,
    powerdns_outage_during_commit_and_release,
);

#[tokio::test]
async fn bootstrap_is_idempotent_and_needs_nameservers() {
    let Some(pdns) = Pdns::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteAllocationStore::open(dir.path().join("p.sqlite3")).unwrap());
    let a = Allocator::new(
        config(Duration::from_secs(60)),
        store.clone(),
        Some(pdns.client()),
    );
    a.bootstrap().await.unwrap();
    a.bootstrap().await.unwrap();
    let keys = pdns.client().cryptokeys("omani.works").await.unwrap();
    assert_eq!(
        keys.iter().filter(|k| k.active).count(),
        1,
        "one CSK, no extra ZSK: {keys:?}"
    );
    let mut c = config(Duration::from_secs(60));
    c.nameservers.clear();
    let none = Allocator::new(c, store, Some(pdns.client()));
    assert!(none.bootstrap().await.is_err());
}

#[tokio::test]
async fn sqlite_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/pool.sqlite3");
    {
        let s = Arc::new(SqliteAllocationStore::open(&path).unwrap());
        let a = Allocator::new(config(Duration::from_secs(60)), s, None);
        a.reserve(POOL, "kept", "t").await.unwrap();
    }
    let s = SqliteAllocationStore::open(&path).unwrap();
    assert_eq!(
        s.get(POOL, "kept").await.unwrap().unwrap().state,
        AllocationState::Reserved
    );
}
