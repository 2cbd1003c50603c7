//! `catalyst sovereign render --fqdn F --region R [--components a,b] [--catalog DIR] -o DIR`:
//! writes a Sovereign's bootstrap tree (what Catalyst commits as `clusters/<fqdn>/`) into a
//! folder, for inspection (`kubectl kustomize DIR` builds it). Offline: the tree is
//! `catalyst_gitops::bootstrap::render` over the bootstrap catalog read from disk.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::{Severity, Source};
use catalyst_gitops::bootstrap::{self, BootstrapSettings, SovereignChoice};

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
    #[arg(long)]
    fqdn: String,
    /// The provider region it runs in (`fsn1`).
    #[arg(long)]
    region: String,
    /// Optional components chosen (listed Blueprints, `bp-<name>` or `<name>`, comma-separated);
    /// the bootstrap kit is always included.
    #[arg(long, value_delimiter = ',')]
    components: Vec<String>,
    /// The bootstrap catalog.
    #[arg(long, default_value = "catalog/bootstrap")]
    catalog: PathBuf,
    /// The folder to write the tree into (created; must be empty if it exists).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
}

/// Runs `catalyst sovereign …`.
pub fn run(a: SovereignArgs) -> Result<()> {
    match a.cmd {
        SovereignCmd::Render(r) => render(r),
    }
}

fn render(r: RenderArgs) -> Result<()> {
    let (catalog, diags) = load_catalog(&[(Source::Public, r.catalog.clone())])
        .with_context(|| format!("cannot read the catalog {}", r.catalog.display()))?;
    let mut broken = false;
    for d in &diags {
        broken |= d.severity == Severity::Error;
        eprintln!("{}:{}:{}: {}", d.file, d.line, d.column, d.message);
    }
    if broken {
        bail!(
            "the catalog {} has errors (catalyst blueprint lint {} says more)",
            r.catalog.display(),
            r.catalog.display()
        );
    }
    let choice = SovereignChoice {
        fqdn: r.fqdn,
        region: r.region,
        components: r.components.into_iter().filter(|c| !c.is_empty()).collect(),
    };
    let settings = BootstrapSettings::default();
    let files = bootstrap::render(&catalog, &choice, &settings)?;
    if r.out.exists()
        && std::fs::read_dir(&r.out)
            .with_context(|| format!("cannot read {}", r.out.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty; pass a new or empty folder",
            r.out.display()
        );
    }
    for (path, bytes) in &files {
        let to = r.out.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&to, bytes).with_context(|| format!("cannot write {}", to.display()))?;
    }
    outln!(
        "wrote {} files of {}/ to {}",
        files.len(),
        bootstrap::dir(&choice.fqdn),
        r.out.display()
    );
    Ok(())
}
