//! `catalyst sovereign render --fqdn F --region R [--components a,b] [--catalog DIR] -o DIR`:
//! writes a Sovereign's bootstrap tree (what Catalyst commits as `clusters/<fqdn>/`) into a
//! folder, for inspection (`kubectl kustomize DIR` builds it). Offline: the tree is
//! `catalyst_gitops::bootstrap::render` over the bootstrap catalog (built in, or read from
//! `--catalog`). With `--deployment ID` instead, the tree Catalyst committed for that
//! deployment is fetched from the server (`GET /api/v1/deployments/{id}/bootstrap`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use catalyst_gitops::bootstrap::{self, BootstrapSettings, SovereignChoice};

use crate::bootstrap_catalog;

/// `catalyst sovereign …`.
#[derive(Debug, clap::Args)]
pub struct SovereignArgs {
    #[command(subcommand)]
    cmd: SovereignCmd,
}

#[derive(Debug, clap::Subcommand)]
enum SovereignCmd {
    /// Write a Sovereign's bootstrap tree (`clusters/<fqdn>/`: per component a Flux
    /// Kustomization and a folder with its OCIRepository and HelmRelease) into a folder; offline.
    Render(RenderArgs),
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    /// The Sovereign's FQDN (`omantel.omani.works`).
    #[arg(long, required_unless_present = "deployment")]
    fqdn: Option<String>,
    /// The provider region it runs in (`fsn1`).
    #[arg(long, required_unless_present = "deployment")]
    region: Option<String>,
    /// Optional components chosen (listed Blueprints, `bp-<name>` or `<name>`, comma-separated);
    /// the bootstrap kit is always included.
    #[arg(long, value_delimiter = ',')]
    components: Vec<String>,
    /// The bootstrap catalog (a folder like catalog/bootstrap). Default: the one built into
    /// this binary.
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Instead of rendering: the tree the server committed for this deployment
    /// (system/sovereign-<ID>), fetched with --server and --token.
    #[arg(long, value_name = "ID", conflicts_with_all = ["fqdn", "region", "components", "catalog"])]
    deployment: Option<String>,
    /// Base URL of the Catalyst server (with --deployment).
    #[arg(long, env = "CATALYST_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// API token of a sovereign-admin (with --deployment).
    #[arg(long, env = "CATALYST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The folder to write the tree into (created; must be empty if it exists).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
}

/// Runs `catalyst sovereign …`.
pub async fn run(a: SovereignArgs) -> Result<()> {
    match a.cmd {
        SovereignCmd::Render(r) => match r.deployment.clone() {
            Some(id) => fetch(r, &id).await,
            None => render(r),
        },
    }
}

fn render(r: RenderArgs) -> Result<()> {
    let catalog = bootstrap_catalog::load(r.catalog.as_ref(), &[])?;
    let choice = SovereignChoice {
        fqdn: r.fqdn.clone().unwrap_or_default(),
        region: r.region.clone().unwrap_or_default(),
        components: r
            .components
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect(),
    };
    let settings = BootstrapSettings::default();
    let files = bootstrap::render(&catalog, &choice, &settings)?;
    write_tree(&r.out, &files)?;
    outln!(
        "wrote {} files of {}/ to {}",
        files.len(),
        bootstrap::dir(&choice.fqdn),
        r.out.display()
    );
    Ok(())
}

async fn fetch(r: RenderArgs, id: &str) -> Result<()> {
    let url = format!(
        "{}/api/v1/deployments/{id}/bootstrap",
        r.server.trim_end_matches('/')
    );
    let mut req = reqwest::Client::new().get(&url);
    if let Some(t) = &r.token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {}", r.server))?;
    let body: serde_json::Value = crate::org_cli::check(resp).await?.json().await?;
    let dir = body["path"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("./")
        .to_owned();
    let mut files = BTreeMap::new();
    for (path, text) in body["files"].as_object().into_iter().flatten() {
        if let (Some(rel), Some(text)) = (path.strip_prefix(&format!("{dir}/")), text.as_str()) {
            files.insert(rel.to_owned(), text.as_bytes().to_vec());
        }
    }
    if files.is_empty() {
        bail!("the server sent no files under {dir}/ for deployment {id}");
    }
    write_tree(&r.out, &files)?;
    outln!(
        "wrote {} files of {}/ ({} at {}) to {}",
        files.len(),
        dir,
        body["repo"].as_str().unwrap_or_default(),
        body["commit"].as_str().unwrap_or_default(),
        r.out.display()
    );
    Ok(())
}

/// Writes `files` (paths relative to the tree) under `out`, which must be new or empty.
fn write_tree(out: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    if out.exists()
        && std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_some()
    {
        bail!("{} is not empty; pass a new or empty folder", out.display());
    }
    for (path, bytes) in files {
        if path.split('/').any(|c| c == ".." || c.is_empty()) {
            bail!("refusing to write {path:?} outside {}", out.display());
        }
        let to = out.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&to, bytes).with_context(|| format!("cannot write {}", to.display()))?;
    }
    Ok(())
}
