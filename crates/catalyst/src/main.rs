//! `catalyst` — the Catalyst control plane and its CLI.
#![forbid(unsafe_code)]
// stdout goes through `out!`/`outln!` (cli_out), which end quietly when the reader has gone.
#![deny(clippy::print_stdout)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use catalyst_api::AppState;
use catalyst_provision::dry_run::DryRunProvisioner;
use catalyst_provision::hetzner::{HetznerClient, DEFAULT_BASE_URL};
use catalyst_provision::render::TofuSettings;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_provision::tofu::TofuProvisioner;
use catalyst_provision::Provisioner;
use catalyst_store::file::FileStore;
use catalyst_store::postgres::PgStore;
use catalyst_store::DeploymentStore;
use clap::{Parser, Subcommand, ValueEnum};
use tracing::{info, warn};

#[macro_use]
mod cli_out;
mod artifact_cli;
mod blueprint_cli;
mod bootstrap_catalog;
mod config;
mod datadir;
mod deployment_cli;
mod doctor;
mod listen;
mod module;
mod org_cli;
mod pool;
mod progress;
mod projection_cli;
mod sovereign_cli;
mod table;

/// Catalyst: a self-hosted platform control plane.
#[derive(Debug, Parser)]
#[command(name = "catalyst", version, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: the provisioning API, SSE streams, the web console, /healthz,
    /// /readyz and /metrics.
    Serve(Box<ServeArgs>),
    /// Blueprints: lint, fmt, validate-values, list, resolve, render, plan-upgrade, plan-uninstall,
    /// package, push, pull, sign, verify, mirror, inspect.
    Blueprint(blueprint_cli::BlueprintArgs),
    /// Signing keys for Blueprint artifacts: generate.
    Key(artifact_cli::KeyArgs),
    /// API tokens: create, list, revoke (offline, against --data-dir; stored hashed).
    Token(org_cli::TokenArgs),
    /// The read side's projection: rebuild (offline, from the event log under --data-dir).
    Projection(projection_cli::ProjectionArgs),
    /// Organizations: create, list, get, delete, members, add-member, remove-member (through the
    /// API).
    Org(org_cli::OrgArgs),
    /// Environments of an Organization: create, list, get, delete (through the API).
    Env(org_cli::EnvArgs),
    /// Applications: install, list, get, set-values, upgrade, uninstall, rollback, approve, promote.
    App(org_cli::AppArgs),
    /// Sovereigns: render (the bootstrap tree `clusters/<fqdn>/` into a folder; offline).
    Sovereign(sovereign_cli::SovereignArgs),
    /// Deployments (Sovereigns): create, get, list, watch, cancel, retry, delete (through the API).
    Deployment(deployment_cli::DeploymentArgs),
    /// Checks what `catalyst serve` with the same flags, variables and --config would need (data
    /// directory, PostgreSQL, NATS, registry, PowerDNS, OpenTofu, catalog) and says what to fix.
    Doctor(Box<ServeArgs>),
    /// Prints a shell completion script: `catalyst completion bash > /etc/bash_completion.d/catalyst`,
    /// `catalyst completion zsh > "${fpath[1]}/_catalyst"`, `catalyst completion fish >
    /// ~/.config/fish/completions/catalyst.fish`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the API's OpenAPI 3.1 description (JSON; the same as `GET /api/v1/openapi.json`).
    Openapi,
    /// Prints Catalyst's CustomResourceDefinitions (catalyst.openova.io: Sovereign, Organization,
    /// Environment, EnvironmentPolicy, PromotionApprovals, Application, Blueprint), generated
    /// from its Rust types: `catalyst crds | kubectl apply -f -`.
    Crds {
        /// `yaml` (one multi-document stream) or `json` (a `v1` `List`).
        #[arg(short, long, value_enum, default_value = "yaml")]
        output: CrdsOutput,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CrdsOutput {
    /// One YAML document per CRD, separated by `---`.
    Yaml,
    /// A `v1` `List` of the CRDs.
    Json,
}

/// The CRDs as `catalyst crds` prints them (stable: same text every run).
fn crds_text(output: CrdsOutput) -> String {
    let docs = catalyst_crds::documents();
    match output {
        CrdsOutput::Yaml => docs
            .iter()
            .map(catalyst_blueprint::yaml::to_string)
            .collect::<Vec<_>>()
            .join("---\n"),
        CrdsOutput::Json => format!(
            "{:#}\n",
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs})
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProvisionerKind {
    /// Run OpenTofu (`--tofu-bin`) against the Hetzner module.
    Tofu,
    /// Run every phase, render what would be applied, apply nothing.
    DryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// A YAML file of settings: keys are these flags' long names (`listen`, `data-dir`,
    /// `pool-domains: [a, b]`, …). A flag or its CATALYST_* variable overrides the file.
    #[arg(long, env = "CATALYST_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on (host:port).
    #[arg(long, env = "CATALYST_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Directory for everything kept on local disk: deployment records and event logs
    /// (unless --database-url is set), OpenTofu working directories.
    #[arg(long, env = "CATALYST_DATA_DIR", default_value = "./catalyst-data")]
    data_dir: PathBuf,

    /// PostgreSQL URL (e.g. postgres://user@127.0.0.1:5432/db). When set, deployments and their
    /// events are stored there instead of under --data-dir.
    #[arg(long, env = "CATALYST_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// With --database-url, several servers may share the store: each deployment is run by the
    /// server holding its lease, renewed every third of this. When a server dies, another one
    /// fails its in-flight deployments (orphaned-resources message) once their lease expired.
    #[arg(long, env = "CATALYST_DEPLOYMENT_LEASE_TTL", default_value = "15s", value_parser = parse_lease_ttl)]
    deployment_lease_ttl: Duration,

    /// NATS URL (e.g. nats://127.0.0.1:4222). When set, the event spine is a JetStream stream
    /// there (shared by every replica) instead of the log under --data-dir/events.
    #[arg(long, env = "CATALYST_NATS_URL")]
    nats_url: Option<String>,

    /// The JetStream stream of the spine (with --nats-url).
    #[arg(long, env = "CATALYST_NATS_STREAM", default_value = "catalyst")]
    nats_stream: String,

    /// Prepended to every spine subject (with --nats-url), for several Sovereigns on one NATS
    /// account: `acme.` gives `acme.ws.>` and `acme.sovereign.>`.
    #[arg(long, env = "CATALYST_NATS_SUBJECT_PREFIX", default_value = "")]
    nats_subject_prefix: String,

    /// Which provisioner runs deployments. Default: `tofu` when the --tofu-bin binary is found,
    /// else `dry-run`.
    #[arg(long, env = "CATALYST_PROVISIONER", value_enum)]
    provisioner: Option<ProvisionerKind>,

    /// OpenTofu binary (a name looked up on PATH, or a path).
    #[arg(long, env = "CATALYST_TOFU_BIN", default_value = "tofu")]
    tofu_bin: PathBuf,

    /// OpenTofu module to apply. Default: the Hetzner module built into this binary, written
    /// to <data-dir>/tofu/module at start-up.
    #[arg(long, env = "CATALYST_TOFU_MODULE")]
    tofu_module: Option<PathBuf>,

    /// A deployment still running after this long is cancelled and fails (e.g. 30m, 90s, 2h).
    #[arg(long, env = "CATALYST_PROVISION_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    provision_timeout: Duration,

    /// Pool domains (comma-separated) under which pool-mode Sovereigns get their subdomain.
    #[arg(
        long,
        env = "CATALYST_POOL_DOMAINS",
        default_value = "omani.works,openova.io",
        value_delimiter = ','
    )]
    pool_domains: Vec<String>,

    #[command(flatten)]
    pool: pool::PoolArgs,

    /// Base URL of the Hetzner Cloud API, used by /api/v1/credentials/validate.
    #[arg(long, env = "CATALYST_HETZNER_API_URL", default_value = DEFAULT_BASE_URL)]
    hetzner_api_url: String,

    /// Git repository Flux on a new Sovereign reconciles from (written to the OpenTofu variables).
    #[arg(
        long,
        env = "CATALYST_GITOPS_REPO_URL",
        default_value = "https://github.com/openova-io/openova"
    )]
    gitops_repo_url: String,

    /// Branch of --gitops-repo-url.
    #[arg(long, env = "CATALYST_GITOPS_BRANCH", default_value = "main")]
    gitops_branch: String,

    /// Log format.
    #[arg(long, env = "CATALYST_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,

    /// A client that has not sent its request headers within this long is disconnected (slow
    /// clients cannot hold connections open).
    #[arg(long, env = "CATALYST_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,

    /// How long a graceful shutdown (SIGTERM/SIGINT) waits for running deployments to record
    /// their end.
    #[arg(long, env = "CATALYST_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    shutdown_grace: Duration,

    /// Blueprint catalog root for the console's marketplace, the wizard's Components step and
    /// Application installs (a folder of Blueprint folders or of *.blueprint.yaml files). Repeatable; the
    /// environment variable takes a comma-separated list.
    #[arg(long, env = "CATALYST_CATALOG", value_delimiter = ',')]
    catalog: Vec<PathBuf>,

    /// Blueprint artifacts: an OCI distribution registry, `host[:port][/namespace]` (Blueprint
    /// bp-x 1.2.0 is `<registry>/bp-x:1.2.0`, as `catalyst blueprint push` writes it, and Flux
    /// pulls from there). Default: the OCI image-layout directory <data-dir>/oci.
    #[arg(long, env = "CATALYST_REGISTRY")]
    registry: Option<String>,

    /// User name for --registry (password from CATALYST_REGISTRY_PASSWORD). Without it,
    /// credentials saved by `docker login` or `helm registry login` are used.
    #[arg(long, env = "CATALYST_REGISTRY_USERNAME")]
    registry_username: Option<String>,

    /// Password (or token) for --registry; prefer the environment variable. Never printed.
    #[arg(
        long,
        env = "CATALYST_REGISTRY_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    registry_password: Option<artifact_cli::Password>,

    /// Speak plain HTTP to --registry (loopback registries always do).
    #[arg(long, env = "CATALYST_REGISTRY_PLAIN_HTTP")]
    registry_plain_http: bool,

    /// A trusted public key for Blueprint artifacts (PEM, as `catalyst key generate` writes
    /// PREFIX.pub). Repeatable; the environment variable takes a comma-separated list. With
    /// any, every Blueprint an install, upgrade or promotion pins must be signed by one of them.
    #[arg(
        long = "trusted-key",
        env = "CATALYST_TRUSTED_KEYS",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    trusted_keys: Vec<PathBuf>,

    /// A signed bundle (`catalyst blueprint sign --bundle-out`) whose listed artifact digests are
    /// trusted without a signature of their own — for air-gapped Sovereigns that mirror
    /// artifacts without their `.sig` tags. Verified against --trusted-key at start-up (a bundle
    /// that does not verify stops start-up). Repeatable; the variable is comma-separated.
    #[arg(
        long = "trusted-bundle",
        env = "CATALYST_TRUSTED_BUNDLES",
        value_delimiter = ',',
        value_name = "PATH"
    )]
    trusted_bundles: Vec<PathBuf>,

    /// The Kubernetes Secret Flux uses to pull Blueprint artifacts (`secretRef` of every
    /// rendered OCIRepository). An empty value renders none (a registry Flux reads without
    /// credentials).
    #[arg(long, env = "CATALYST_PULL_SECRET", default_value = "ghcr-pull")]
    pull_secret: String,

    /// The HMAC key Flux's notifications to POST /api/v1/hooks/flux are signed with: a file
    /// holding the `token` of the generic-hmac Provider's Secret. Default:
    /// <data-dir>/auth/flux-webhook.key, created (mode 0600, random) when missing.
    #[arg(long, env = "CATALYST_FLUX_WEBHOOK_KEY_FILE", value_name = "PATH")]
    flux_webhook_key_file: Option<PathBuf>,

    /// The token Flux fetches this Sovereign's Git with: a file holding the `password` of the
    /// `catalyst-git` Secret the Environments' GitRepository sources use (read-only:
    /// system/catalyst-config and every Application repository; no push, no API). Default:
    /// <data-dir>/auth/flux-git.token, created (mode 0600, random) when missing.
    #[arg(long, env = "CATALYST_FLUX_GIT_TOKEN_FILE", value_name = "PATH")]
    flux_git_token_file: Option<PathBuf>,

    /// The key the read tokens of the provisioned Sovereigns' bootstrap repositories
    /// (`/git/system/sovereign-<deployment id>.git`) are derived from. Default:
    /// <data-dir>/auth/sovereign-git.key, created (mode 0600, random) when missing; replicas
    /// share one. A new key revokes every token.
    #[arg(long, env = "CATALYST_SOVEREIGN_GIT_KEY_FILE", value_name = "PATH")]
    sovereign_git_key_file: Option<PathBuf>,

    /// The Blueprints a new Sovereign's bootstrap tree is resolved from (a folder like
    /// catalog/bootstrap). Default: the bootstrap kit built into this binary. The --catalog
    /// Blueprints are added, for the components the wizard offers.
    #[arg(long, env = "CATALYST_BOOTSTRAP_CATALOG", value_name = "DIR")]
    bootstrap_catalog: Option<PathBuf>,

    /// The URL the Sovereign's clusters reach this Catalyst at: each Environment's Flux
    /// plumbing in system/catalyst-config points its GitRepository sources at <URL>/git and
    /// its notification Provider at <URL>/api/v1/hooks/flux.
    #[arg(
        long,
        env = "CATALYST_PUBLIC_URL",
        value_name = "URL",
        default_value = catalyst_gitops::sovereign::DEFAULT_PUBLIC_URL,
        value_parser = public_url
    )]
    public_url: String,

    /// OIDC: JWKS URL of the identity provider. Optional: without it the JWKS URL is discovered
    /// from <issuer>/.well-known/openid-configuration on first use. Needs --oidc-issuer and
    /// --oidc-audience.
    #[arg(
        long,
        env = "CATALYST_OIDC_JWKS_URL",
        requires_all = ["oidc_issuer", "oidc_audience"],
        value_parser = parse_http_url
    )]
    oidc_jwks_url: Option<String>,

    /// OIDC: the issuer; JWTs must carry it as `iss`. With --oidc-audience, bearer tokens that are
    /// JWTs are validated; opaque tokens still use the token store.
    #[arg(
        long,
        env = "CATALYST_OIDC_ISSUER",
        requires = "oidc_audience",
        value_parser = parse_http_url
    )]
    oidc_issuer: Option<String>,

    /// OIDC: the expected `aud` claim. Needs --oidc-issuer.
    #[arg(long, env = "CATALYST_OIDC_AUDIENCE", requires = "oidc_issuer")]
    oidc_audience: Option<String>,

    /// OIDC: the claim naming the caller's Organization.
    #[arg(long, env = "CATALYST_OIDC_ORG_CLAIM", default_value = "catalyst_org")]
    oidc_org_claim: String,

    /// OIDC: the claim naming the caller's role (sovereign-admin, org-admin, …).
    #[arg(
        long,
        env = "CATALYST_OIDC_ROLE_CLAIM",
        default_value = "catalyst_role"
    )]
    oidc_role_claim: String,

    /// OIDC: the claim naming the caller (commit author); `sub` when absent.
    #[arg(
        long,
        env = "CATALYST_OIDC_NAME_CLAIM",
        default_value = "preferred_username"
    )]
    oidc_name_claim: String,
}

/// An `http://` or `https://` URL with a host (the OIDC issuer and JWKS URL).
fn parse_http_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| format!("{s:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || s.chars().any(char::is_whitespace) {
        return Err(format!(
            "{s:?} is not an http:// or https:// URL with a host"
        ));
    }
    Ok(s.to_string())
}

/// Parses `90s`, `30m`, `2h`, `500ms` or a bare number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 30m or 2h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "ms" => return Ok(Duration::from_millis(n)),
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

/// A lease TTL: a duration of at least 300 ms (renewals come every third of it).
fn parse_lease_ttl(s: &str) -> Result<Duration, String> {
    let ttl = parse_duration(s)?;
    if ttl < Duration::from_millis(300) {
        return Err(format!(
            "{s:?} is too short for a lease: at least 300ms (it is renewed every third of it)"
        ));
    }
    Ok(ttl)
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CATALYST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: never when stderr is a file or a pipe, or when
    // NO_COLOR is set to anything (https://no-color.org).
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Finds `bin` on PATH (or checks it when it is a path).
fn find_binary(bin: &Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(bin))
            .find(|p| p.is_file())
    })
}

async fn serve(args: ServeArgs) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    // Before anything under --data-dir is read, repaired or written: one server per data
    // directory. Then the socket, so a taken port also stops start-up before any state changes.
    let mut dir_lock = datadir::DataDirLock::acquire(&args.data_dir)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let listen = listener.local_addr()?;
    if let Err(e) = dir_lock.record_listen(listen) {
        warn!(error = %e, lock = %dir_lock.path().display(), "Cannot note the listen address in the lock file.");
    }
    // On PostgreSQL, other servers may share the store: each deployment is run by the holder
    // of its lease, and restoring fails only the deployments whose lease this server can take.
    let (store, coordination): (Arc<dyn DeploymentStore>, _) = match &args.database_url {
        Some(url) => {
            let pg = Arc::new(
                PgStore::connect(url)
                    .await
                    .context("cannot open the PostgreSQL deployment store")?,
            );
            let owner = catalyst_store::LeaseOwner {
                id: dir_lock
                    .replica_id()
                    .context("cannot read or write <data-dir>/replica-id")?,
                about: format!(
                    "catalyst serve pid={} listen={listen} data-dir={}",
                    std::process::id(),
                    args.data_dir.display()
                ),
            };
            let coordination = catalyst_provision::service::Coordination {
                shared: pg.clone(),
                owner,
                lease_ttl: args.deployment_lease_ttl,
            };
            (pg as Arc<dyn DeploymentStore>, Some(coordination))
        }
        None => (
            Arc::new(
                FileStore::open(args.data_dir.join("deployments"))
                    .context("cannot open the deployment store under --data-dir")?,
            ),
            None,
        ),
    };

    let tofu_root = args.data_dir.join("tofu");
    let module_dir = match &args.tofu_module {
        Some(dir) => dir.clone(),
        None => module::materialize(&tofu_root.join("module"))
            .context("cannot write the built-in OpenTofu module")?,
    };
    let mut settings = TofuSettings::new(module_dir, tofu_root.join("runs"));
    settings.gitops_repo_url = args.gitops_repo_url.clone();
    settings.gitops_branch = args.gitops_branch.clone();
    let tofu_path = find_binary(&args.tofu_bin);
    let kind = match (args.provisioner, &tofu_path) {
        (Some(k), _) => k,
        (None, Some(_)) => ProvisionerKind::Tofu,
        (None, None) => {
            warn!(tofu_bin = %args.tofu_bin.display(), "OpenTofu not found; using the dry-run provisioner (nothing will be applied).");
            ProvisionerKind::DryRun
        }
    };
    let provisioner: Arc<dyn Provisioner> = match kind {
        ProvisionerKind::Tofu => {
            let Some(bin) = tofu_path else {
                bail!(
                    "--provisioner tofu needs OpenTofu, but {} was not found (set --tofu-bin)",
                    args.tofu_bin.display()
                );
            };
            Arc::new(TofuProvisioner::new(bin, settings))
        }
        ProvisionerKind::DryRun => Arc::new(DryRunProvisioner::new(settings)),
    };

    let pool_domains: Vec<String> = args
        .pool_domains
        .iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    let allocator = pool::start(
        &args.pool,
        pool_domains.clone(),
        &args.data_dir,
        args.database_url.as_deref(),
    )
    .await?;
    let config = ServiceConfig {
        pool_domains,
        provision_timeout: args.provision_timeout,
        ..ServiceConfig::default()
    };
    let service = match coordination {
        Some(c) => DeploymentService::start_shared(store, provisioner, config, c).await,
        None => DeploymentService::start(store, provisioner, config).await,
    }
    .context("cannot load stored deployments")?;
    let hetzner =
        HetznerClient::new(args.hetzner_api_url.clone()).context("invalid --hetzner-api-url")?;
    service.set_name_allocator(Arc::new(catalyst_api::pool::PoolNames(allocator.clone())));
    let pool_allocator = allocator.clone();
    let spine = spine(&args)?;
    let sweeper_stop = tokio_util::sync::CancellationToken::new();
    allocator.spawn_sweeper(Duration::from_secs(30), sweeper_stop.clone());
    let auth = Arc::new(
        catalyst_api::auth::Authenticator::open(&args.data_dir, oidc(&args).map(Arc::new))
            .context("cannot open the token store under --data-dir/auth")?,
    );
    let mut state = AppState::new(service.clone(), hetzner, auth.clone());
    state.pool = Some(Arc::new(catalyst_api::pool::PoolApi {
        allocator,
        registrars: pool::registrars(),
    }));
    let catalog =
        catalyst_console::Catalog::load(&args.catalog).context("cannot load --catalog")?;
    for problem in catalog.warnings() {
        warn!(%problem, "Skipped a Blueprint in the catalog.");
    }
    // Git first (it seeds an empty log from a data directory's history), then the deployments.
    let orgs = org_api(&args, auth.clone(), spine.clone())?;
    let sovereign = orgs.sovereign.clone();
    if let Some(git) = &orgs.sovereign_git {
        service.set_bootstrap_publisher(git.clone());
        state.sovereign_git = Some(git.clone());
    }
    let console = catalyst_console::routers(Arc::new(
        catalyst_console::ConsoleState::new(service.clone(), catalog).with_read(orgs.read.clone()),
    ));
    let streams_stop = orgs.shutdown.clone();
    // Tokens: what the token file holds and the log lacks (a crash, or `catalyst token …`
    // while the server was down) now, later changes within seconds; failed sign-ins from now.
    let auth_events = Arc::new(catalyst_api::orgs::auth_events::AuthEvents::new(
        orgs.read.clone(),
        auth.tokens().clone(),
    ));
    auth_events
        .reconcile(catalyst_api::orgs::auth_events::OFFLINE_ACTOR)
        .context("cannot record the token changes on the event log")?;
    auth_events.spawn_watcher(Duration::from_secs(2), sweeper_stop.clone());
    auth.set_events(auth_events);
    service
        .set_spine(spine.clone())
        .await
        .context("cannot record the stored deployments on the event log")?;
    pool_allocator
        .set_spine(spine)
        .await
        .context("cannot record the pool allocations on the event log")?;
    state.read = Some(orgs.metrics.clone());
    let state = Arc::new(state);
    let app = catalyst_api::router_with(
        state.clone(),
        [
            console.public,
            catalyst_api::guard_pages(&state, console.admin),
            catalyst_api::guard_member_pages(&state, console.members),
            catalyst_api::orgs::router(orgs),
        ],
    );

    info!(
        listen = %listen,
        data_dir = %args.data_dir.display(),
        store = service.store().backend(),
        provisioner = service.provisioner_name(),
        "Catalyst is serving."
    );
    let grace = args.shutdown_grace;
    let shutdown_service = service.clone();
    let git = sovereign.clone();
    listen::serve(listener, app, args.header_read_timeout, async move {
        shutdown_signal().await;
        info!("Shutting down: stopping running deployments and closing streams.");
        sweeper_stop.cancel();
        streams_stop.cancel();
        shutdown_service.shutdown(grace).await;
    })
    .await;
    if let Err(e) = git.flush() {
        warn!(error = %e, "Could not make the last Git write's refs durable; the next start-up finishes it from its journal.");
    }
    info!("Stopped.");
    Ok(())
}

/// The GitOps write path (`<data-dir>/git`) with the --catalog Blueprints, recording on `spine`.
fn org_api(
    args: &ServeArgs,
    auth: Arc<catalyst_api::auth::Authenticator>,
    spine: Arc<dyn catalyst_spine::Spine>,
) -> Result<Arc<catalyst_api::orgs::OrgApi>> {
    let roots: Vec<_> = args
        .catalog
        .iter()
        .map(|r| (catalyst_blueprint::Source::Sovereign, r.clone()))
        .collect();
    let (catalog, _) =
        catalyst_blueprint::load::load_catalog(&roots).context("cannot load --catalog")?;
    let admission = admission(args)?;
    let render = render_options(args, &admission);
    let render_registry = render.clone();
    // Whether the log is empty before opening: opening finishes an interrupted call (the last
    // call's journal stays until the next one) and records its event, which must not keep the
    // rest of Git's history out of an empty log.
    let log_was_empty = spine.head() == 0;
    let sovereign = catalyst_gitops::Sovereign::open_with_spine(
        args.data_dir.join("git"),
        Arc::new(catalog),
        render,
        Some(spine.clone()),
    )
    .context("cannot open the Git repositories under --data-dir/git")?
    .with_admission(Arc::new(admission))
    .with_public_url(&args.public_url);
    // A data directory with history from before the spine: seed the log with what Git holds.
    if log_was_empty {
        let seed = sovereign
            .snapshot_events()
            .context("cannot read the Git repositories to seed the event log")?;
        if !seed.is_empty() {
            info!(
                organizations = seed.len(),
                "Seeding the empty event log from the Git repositories."
            );
            spine.append(seed).context("cannot seed the event log")?;
        }
    }
    let key_file = args
        .flux_webhook_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("auth").join("flux-webhook.key"));
    let flux_key = catalyst_api::orgs::auth::secret_file(&key_file)
        .with_context(|| format!("cannot read the Flux webhook key {}", key_file.display()))?;
    if flux_key.is_empty() {
        bail!(
            "the Flux webhook key {} is empty: put the generic-hmac Provider's token in it",
            key_file.display()
        );
    }
    info!(key_file = %key_file.display(), "Flux notifications are accepted at /api/v1/hooks/flux, signed with the key in this file.");
    let flux_git_file = args
        .flux_git_token_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("auth").join("flux-git.token"));
    let flux_git_token =
        catalyst_api::orgs::auth::secret_file(&flux_git_file).with_context(|| {
            format!(
                "cannot read Flux's Git read token {}",
                flux_git_file.display()
            )
        })?;
    if flux_git_token.len() < 16 {
        bail!(
            "Flux's Git read token {} is shorter than 16 characters: put the catalyst-git Secret's password in it",
            flux_git_file.display()
        );
    }
    info!(token_file = %flux_git_file.display(), "Flux fetches this Sovereign's Git with the token in this file (read-only).");
    let git_key_file = args
        .sovereign_git_key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("auth").join("sovereign-git.key"));
    let git_key = catalyst_api::orgs::auth::secret_file(&git_key_file).with_context(|| {
        format!(
            "cannot read the Sovereign Git key {}",
            git_key_file.display()
        )
    })?;
    if git_key.is_empty() {
        bail!("the Sovereign Git key {} is empty", git_key_file.display());
    }
    let bootstrap = bootstrap_catalog::load(args.bootstrap_catalog.as_ref(), &args.catalog)?;
    let settings = catalyst_gitops::bootstrap::BootstrapSettings {
        registry: render_registry.registry,
        pull_secret: render_registry.pull_secret,
        ..Default::default()
    };
    let repos = catalyst_gitops::sovereign_git::SovereignRepos::new(
        args.data_dir.join("git"),
        Arc::new(bootstrap),
        settings,
    );
    let sovereign_git = Arc::new(catalyst_api::sovereign_git::SovereignGit::new(
        repos,
        &git_key,
        &args.public_url,
    ));
    let api = catalyst_api::orgs::OrgApi::new(Arc::new(sovereign), auth)
        .context("the GitOps state records on no event log")?
        .with_flux_key(flux_key)
        .with_flux_git_token(flux_git_token)
        .with_sovereign_git(sovereign_git);
    Ok(Arc::new(api))
}

/// The event spine: a JetStream stream with --nats-url, else the embedded log under
/// `<data-dir>/events`.
fn spine(args: &ServeArgs) -> Result<Arc<dyn catalyst_spine::Spine>> {
    if let Some(url) = &args.nats_url {
        let mut config = catalyst_spine::JetStreamConfig::new(url.clone());
        config.stream = args.nats_stream.clone();
        config.subject_prefix = args.nats_subject_prefix.clone();
        config.kv_prefix = args.nats_subject_prefix.replace('.', "-");
        let log = catalyst_spine::JetStreamLog::open(config)
            .with_context(|| format!("cannot open the event spine on NATS at {url}"))?;
        info!(events = catalyst_spine::Spine::head(&log), backend = "jetstream", stream = %args.nats_stream, "Event spine opened.");
        return Ok(Arc::new(log));
    }
    let dir = args.data_dir.join("events");
    let (log, report) = catalyst_spine::FileLog::open(&dir)
        .with_context(|| format!("cannot open the event log under {}", dir.display()))?;
    info!(
        events = report.events,
        backend = "file",
        "Event log opened."
    );
    Ok(Arc::new(log))
}

/// How Application repositories render their Flux objects: from where Flux pulls, with which
/// pull secret.
fn render_options(
    args: &ServeArgs,
    admission: &catalyst_api::orgs::admission::OciAdmission,
) -> catalyst_blueprint::render::RenderOptions {
    let mut render = catalyst_blueprint::render::RenderOptions::default();
    if let Some(url) = admission.store().flux_url() {
        render.registry = url;
    }
    render.pull_secret = Some(args.pull_secret.trim().to_string()).filter(|s| !s.is_empty());
    render
}

/// Blueprint artifacts: the store (--registry or <data-dir>/oci) and the trusted keys.
fn admission(args: &ServeArgs) -> Result<catalyst_api::orgs::admission::OciAdmission> {
    use catalyst_api::orgs::admission::{ArtifactStore, OciAdmission};
    use catalyst_oci::registry::{credentials_from_config_files, Credentials, RegistryClient};
    let store = match &args.registry {
        Some(r) => ArtifactStore::registry(r).map_err(anyhow::Error::msg)?,
        None => ArtifactStore::Layout(args.data_dir.join("oci")),
    };
    let credentials = match (&args.registry_username, &args.registry_password) {
        (Some(u), Some(p)) => Some(Credentials::new(u, &p.0)),
        (Some(_), None) => bail!("--registry-username needs CATALYST_REGISTRY_PASSWORD"),
        (None, Some(_)) => {
            bail!("CATALYST_REGISTRY_PASSWORD was given without --registry-username")
        }
        (None, None) => None,
    };
    let opener = catalyst_oci::store::Opener {
        registry: RegistryClient::default()
            .with_credentials(credentials)
            .with_host_credentials(credentials_from_config_files())
            .with_plain_http(args.registry_plain_http),
    };
    let mut keys = Vec::new();
    for path in args
        .trusted_keys
        .iter()
        .filter(|p| !p.as_os_str().is_empty())
    {
        keys.push(
            catalyst_oci::sign::PublicKey::load(path)
                .with_context(|| format!("cannot load --trusted-key {}", path.display()))?,
        );
    }
    let bundle_paths: Vec<PathBuf> = args
        .trusted_bundles
        .iter()
        .filter(|p| !p.as_os_str().is_empty())
        .cloned()
        .collect();
    if keys.is_empty() && !bundle_paths.is_empty() {
        bail!("--trusted-bundle needs --trusted-key: the key that signed the bundle");
    }
    let bundles =
        artifact_cli::load_bundles(&bundle_paths, &keys).context("cannot use --trusted-bundle")?;
    if keys.is_empty() {
        warn!(store = ?store, "No --trusted-key: Blueprint artifacts are pinned by digest when the store has them, but their signatures are not checked.");
    } else {
        let ids: Vec<&str> = keys.iter().map(|k| k.id()).collect();
        info!(store = ?store, keys = ?ids, "Blueprint artifacts must be signed by a trusted key.");
    }
    let policy = catalyst_oci::TrustPolicy { keys, bundles };
    Ok(OciAdmission::new(store, opener, policy))
}

fn oidc(args: &ServeArgs) -> Option<catalyst_api::orgs::oidc::OidcVerifier> {
    use catalyst_api::orgs::oidc::{OidcConfig, OidcVerifier};
    // clap refuses an issuer without an audience and the other way round (and a JWKS URL
    // without both), so OIDC is never half configured.
    let (Some(iss), Some(aud)) = (&args.oidc_issuer, &args.oidc_audience) else {
        return None;
    };
    let mut config = match &args.oidc_jwks_url {
        Some(url) => OidcConfig::new(url, iss, aud),
        None => OidcConfig::discover(iss, aud),
    };
    config.org_claim = args.oidc_org_claim.clone();
    config.role_claim = args.oidc_role_claim.clone();
    config.name_claim = args.oidc_name_claim.clone();
    match &args.oidc_jwks_url {
        Some(url) => tracing::info!(jwks = %url, issuer = %iss, "OIDC bearer tokens enabled"),
        None => tracing::info!(
            issuer = %iss,
            "OIDC bearer tokens enabled; the JWKS URL is discovered from the issuer on first use"
        ),
    }
    Some(OidcVerifier::new(config))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        cli_out::fail(&e, 1);
    }
}

async fn run() -> Result<()> {
    use clap::CommandFactory;
    let argv = config::expand(&Cli::command(), std::env::args_os().collect(), |k| {
        std::env::var_os(k)
    })?;
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => cli_out::clap_exit(e),
    };
    match cli.command {
        Command::Blueprint(args) => blueprint_cli::run(args),
        Command::Key(args) => artifact_cli::run_key(args),
        Command::Token(args) => org_cli::run_token(args),
        Command::Projection(args) => projection_cli::run(args),
        Command::Sovereign(args) => sovereign_cli::run(args).await,
        Command::Org(args) => org_cli::report(org_cli::run_org(args).await),
        Command::Env(args) => org_cli::report(org_cli::run_env(args).await),
        Command::App(args) => org_cli::report(org_cli::run_app(args).await),
        Command::Deployment(args) => org_cli::report(deployment_cli::run(args).await),
        Command::Serve(args) => {
            init_tracing(args.log_format);
            serve(*args).await
        }
        Command::Doctor(args) => doctor::run(*args).await,
        Command::Openapi => {
            out!("{}", catalyst_api::openapi::json());
            Ok(())
        }
        Command::Crds { output } => {
            out!("{}", crds_text(output));
            Ok(())
        }
        Command::Completion { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "catalyst", &mut out);
            out!("{}", String::from_utf8_lossy(&out));
            Ok(())
        }
    }
}

/// `--public-url`: an absolute http(s) URL without query or fragment.
fn public_url(v: &str) -> Result<String, String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or_else(|| format!("{v:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || v.contains(['?', '#', ' ']) {
        return Err(format!(
            "{v:?} is not a URL like https://catalyst.example (a host, no query or fragment)"
        ));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Top-level help names every subcommand of every command (`token: create, list, revoke`).
    #[test]
    fn help_lists_every_subcommand() {
        use clap::CommandFactory;
        let cli = Cli::command();
        for cmd in cli.get_subcommands() {
            let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
            assert!(!about.is_empty(), "{} has no help", cmd.get_name());
            for sub in cmd.get_subcommands() {
                assert!(
                    about.contains(sub.get_name()),
                    "`catalyst --help` says `{}: {about}` but not `{}`",
                    cmd.get_name(),
                    sub.get_name()
                );
            }
        }
        let help = cli.clone().render_help().to_string();
        assert!(
            help.contains("self-hosted platform control plane"),
            "{help}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn crds_prints_every_crd_in_either_format() {
        let yaml = crds_text(CrdsOutput::Yaml);
        let docs: Vec<serde_json::Value> = catalyst_blueprint::yaml::parse_documents(&yaml)
            .unwrap()
            .iter()
            .map(|d| d.to_json())
            .collect();
        assert_eq!(docs, catalyst_crds::documents());
        let json: serde_json::Value = serde_json::from_str(&crds_text(CrdsOutput::Json)).unwrap();
        assert_eq!(json["kind"], "List");
        assert_eq!(json["items"], serde_json::json!(catalyst_crds::documents()));
        assert_eq!(yaml, crds_text(CrdsOutput::Yaml), "stable");
    }

    /// The chart ships the CRDs as `catalyst crds` prints them; a change of the types must be
    /// followed by regenerating the file.
    #[test]
    fn the_charts_crds_are_what_catalyst_crds_prints() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/chart/crds/catalyst-crds.yaml");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == crds_text(CrdsOutput::Yaml),
            "{} is not what `catalyst crds` prints; regenerate it: \
             cargo run -p catalyst -- crds > deploy/chart/crds/catalyst-crds.yaml",
            path.display()
        );
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn artifact_flags() {
        let dir = tempfile::tempdir().unwrap();
        let key = catalyst_oci::sign::SigningKey::generate();
        let a = dir.path().join("a.pub");
        let b = dir.path().join("b.pub");
        std::fs::write(&a, key.public_key().to_pem().unwrap()).unwrap();
        std::fs::write(
            &b,
            catalyst_oci::sign::SigningKey::generate()
                .public_key()
                .to_pem()
                .unwrap(),
        )
        .unwrap();
        let parse = |extra: &[&str]| {
            let mut argv = vec!["catalyst", "serve"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv) {
                Ok(Cli {
                    command: Command::Serve(a),
                }) => a,
                other => panic!("{other:?}"),
            }
        };
        let args = parse(&[
            "--data-dir",
            "/srv/c",
            "--trusted-key",
            a.to_str().unwrap(),
            "--trusted-key",
            b.to_str().unwrap(),
        ]);
        let adm = admission(&args).unwrap();
        assert!(adm.requires_signatures());
        assert_eq!(
            adm.store(),
            &catalyst_api::orgs::admission::ArtifactStore::Layout("/srv/c/oci".into())
        );
        assert_eq!(
            render_options(&args, &adm).pull_secret.as_deref(),
            Some("ghcr-pull")
        );
        let args = parse(&[
            "--registry",
            "127.0.0.1:5000/blueprints",
            "--pull-secret",
            "",
        ]);
        let adm = admission(&args).unwrap();
        assert!(!adm.requires_signatures());
        let render = render_options(&args, &adm);
        assert_eq!(render.pull_secret, None);
        assert_eq!(render.registry, "oci://127.0.0.1:5000/blueprints");
        assert_eq!(
            adm.store().flux_url().as_deref(),
            Some("oci://127.0.0.1:5000/blueprints")
        );
        let args = parse(&[
            "--trusted-key",
            dir.path().join("missing.pub").to_str().unwrap(),
        ]);
        assert!(admission(&args).is_err());
        let args = parse(&[
            "--registry",
            "127.0.0.1:5000",
            "--registry-password",
            "s3cret",
        ]);
        let err = admission(&args).err().unwrap().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(!format!("{args:?}").contains("s3cret"));
    }

    #[test]
    fn oidc_flags_go_together() {
        let serve = |extra: &[&str]| {
            let mut argv = vec!["catalyst", "serve"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv) {
                Ok(Cli {
                    command: Command::Serve(a),
                }) => Ok(a),
                Ok(_) => unreachable!(),
                Err(e) => Err(e),
            }
        };
        assert!(oidc(&serve(&[]).unwrap()).is_none());
        assert!(serve(&["--oidc-jwks-url", "http://127.0.0.1:1/jwks"]).is_err());
        // Half of the configuration is an error, not OIDC silently off.
        for partial in [
            &["--oidc-issuer", "https://idp.example.test"][..],
            &["--oidc-audience", "catalyst"][..],
            &[
                "--oidc-jwks-url",
                "http://127.0.0.1:1/jwks",
                "--oidc-audience",
                "catalyst",
            ][..],
        ] {
            let e = serve(partial).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{partial:?}: {e}"
            );
        }
        let e = serve(&["--oidc-issuer", "idp.example.test", "--oidc-audience", "c"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{e}");
        // Issuer and audience alone: the JWKS URL is discovered.
        let a = serve(&[
            "--oidc-issuer",
            "https://idp.example.test",
            "--oidc-audience",
            "catalyst",
        ])
        .unwrap();
        assert_eq!(oidc(&a).unwrap().config().jwks_url, None);
        let a = serve(&[
            "--oidc-jwks-url",
            "http://127.0.0.1:1/jwks",
            "--oidc-issuer",
            "https://idp.example.test",
            "--oidc-audience",
            "catalyst",
            "--oidc-role-claim",
            "groups_role",
        ])
        .unwrap();
        let v = oidc(&a).unwrap();
        assert_eq!(v.config().role_claim, "groups_role");
        assert_eq!(v.config().org_claim, "catalyst_org");
        assert_eq!(v.config().name_claim, "preferred_username");
    }
}
