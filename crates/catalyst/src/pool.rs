//! Wiring of the pool-domain manager: its flags, store and PowerDNS client.
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use catalyst_dns::registrar::{RegistrarUrls, Registry};
use catalyst_dns::{
    AllocationStore, Allocator, PgAllocationStore, PoolConfig, PowerDns, SqliteAllocationStore,
};
use tracing::{info, warn};

/// Flags of the pool-domain manager (flattened into `catalyst serve`).
#[derive(Debug, clap::Args)]
pub struct PoolArgs {
    /// Name servers (comma-separated) of every pool zone and Sovereign zone.
    #[arg(
        long,
        env = "CATALYST_NAMESERVERS",
        default_value = "ns1.openova.io,ns2.openova.io,ns3.openova.io"
    )]
    pub nameservers: String,

    /// How long a pool subdomain stays reserved without a commit (e.g. 10m).
    #[arg(long, env = "CATALYST_RESERVATION_TTL", default_value = "10m", value_parser = crate::parse_duration)]
    pub reservation_ttl: Duration,

    /// PowerDNS API base URL (e.g. http://127.0.0.1:8081). Without it, allocations are kept
    /// but no DNS is published (the pool API says `dnsManaged: false`).
    #[arg(long, env = "CATALYST_PDNS_URL")]
    pub pdns_url: Option<String>,

    /// PowerDNS API key (sent as X-API-Key; never logged).
    #[arg(long, env = "CATALYST_PDNS_API_KEY", hide_env_values = true)]
    pub pdns_api_key: Option<String>,

    /// PowerDNS server id.
    #[arg(long, env = "CATALYST_PDNS_SERVER_ID", default_value = "localhost")]
    pub pdns_server_id: String,
}

/// Opens the allocation store (PostgreSQL with `--database-url`, else SQLite under the data
/// dir), connects PowerDNS and creates and signs the pool zones.
pub async fn start(
    args: &PoolArgs,
    pool_domains: Vec<String>,
    data_dir: &Path,
    database_url: Option<&str>,
) -> Result<Arc<Allocator>> {
    let nameservers = catalyst_dns::model::parse_name_list(&args.nameservers);
    anyhow::ensure!(
        !nameservers.is_empty(),
        "--nameservers must name at least one name server"
    );
    let store: Arc<dyn AllocationStore> = match database_url {
        Some(url) => Arc::new(
            PgAllocationStore::connect(url)
                .await
                .context("cannot open the PostgreSQL allocation store")?,
        ),
        None => {
            let path = data_dir.join("pool").join("allocations.sqlite3");
            Arc::new(
                SqliteAllocationStore::open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        }
    };
    let dns = match &args.pdns_url {
        Some(url) if !url.trim().is_empty() => Some(
            PowerDns::new(
                url,
                args.pdns_api_key.as_deref().unwrap_or_default(),
                &args.pdns_server_id,
            )
            .context("invalid --pdns-url or --pdns-api-key")?,
        ),
        _ => {
            warn!("No --pdns-url: pool allocations are recorded but no DNS is published.");
            None
        }
    };
    let allocator = Arc::new(Allocator::new(
        PoolConfig {
            pool_domains,
            nameservers,
            reservation_ttl: args.reservation_ttl,
        },
        store,
        dns,
    ));
    allocator
        .bootstrap()
        .await
        .context("cannot create or sign the pool zones in PowerDNS")?;
    info!(
        store = allocator.store().backend(),
        dns_managed = allocator.dns_managed(),
        "Pool-domain manager ready."
    );
    Ok(allocator)
}

/// The registrar adapters at their public endpoints.
pub fn registrars() -> Registry {
    Registry::with_all(&RegistrarUrls::default())
}
