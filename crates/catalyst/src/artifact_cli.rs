//! `catalyst key generate` and the artifact verbs of `catalyst blueprint`: package, push, pull,
//! sign, verify, mirror, inspect. Parses flags, calls `catalyst-oci`, prints.
//!
//! Exit codes: 0 ok, 1 verification refused, 2 usage, IO or registry problems.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use catalyst_oci::bundle::{sign_bundle, verify_bundle, Bundle, BundleEntry};
use catalyst_oci::layout::{Layout, LayoutRepo};
use catalyst_oci::package::{package_dir, Package};
use catalyst_oci::policy::VerifiedBy;
use catalyst_oci::reference::Location;
use catalyst_oci::registry::{
    credentials_from_config_files, Credentials, RegistryClient, DEFAULT_CHUNK_SIZE,
};
use catalyst_oci::sign::{PublicKey, SigningKey};
use catalyst_oci::store::{fetch_image_manifest, resolve, Opener, Repo};

use crate::progress::{Progress, Tracked};
use catalyst_oci::transfer::{copy, is_signature_tag, mirror_all, push_package};
use catalyst_oci::{media, Digest, Reference, TrustPolicy};
use clap::{Subcommand, ValueEnum};

/// `catalyst key …`.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate an ECDSA P-256 key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub
    /// (the public key, as `cosign public-key` prints it).
    Generate {
        /// Path prefix of the two files.
        #[arg(long, default_value = "catalyst")]
        output_prefix: PathBuf,
        /// Write the private key in cosign's encrypted format (`ENCRYPTED SIGSTORE PRIVATE KEY`),
        /// with the password from CATALYST_KEY_PASSWORD or COSIGN_PASSWORD.
        #[arg(long)]
        encrypted: bool,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
}

/// The artifact verbs, flattened into `catalyst blueprint`.
#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// Package a Blueprint folder (blueprint.yaml + chart/) into an OCI artifact Helm and Flux
    /// pull as a chart. Reproducible: the same folder gives the same digest.
    Package(PackageArgs),
    /// Push a Blueprint folder (packaged on the fly) or a layout entry (oci:DIR:NAME:TAG) to a
    /// registry (host/repo[:tag]; the tag defaults to the chart version).
    Push(PushArgs),
    /// Pull an artifact (and its signatures) into an OCI image-layout directory.
    Pull(PullArgs),
    /// Sign artifacts by digest (cosign key-pair format); optionally write a signed bundle.
    Sign(SignArgs),
    /// Verify artifacts: content digests and a signature by a trusted key (or a trusted bundle).
    Verify(VerifyArgs),
    /// Copy artifacts with their signatures between registries and layout directories.
    Mirror(MirrorArgs),
    /// Show an artifact's metadata, digests, signatures and the container images its chart uses.
    Inspect(InspectArgs),
}

/// A password from the command line or environment; `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct Password(pub(crate) String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Password {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

#[derive(Debug, Clone, clap::Args)]
struct RegistryOpts {
    /// Registry user name. Without it, credentials saved by `docker login` or `helm registry
    /// login` are used for their hosts.
    #[arg(long, env = "CATALYST_REGISTRY_USERNAME")]
    username: Option<String>,
    /// Read the registry password (or token) from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Registry password (prefer --password-stdin; never printed).
    #[arg(
        long = "password",
        env = "CATALYST_REGISTRY_PASSWORD",
        hide_env_values = true,
        hide = true
    )]
    password: Option<Password>,
    /// Use plain HTTP (loopback registries always do).
    #[arg(long, env = "CATALYST_REGISTRY_PLAIN_HTTP")]
    plain_http: bool,
    /// Blobs larger than this many bytes are uploaded in chunks of this size.
    #[arg(long, default_value_t = DEFAULT_CHUNK_SIZE)]
    chunk_size: usize,
}

impl RegistryOpts {
    fn opener(&self) -> Result<Opener> {
        let password = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            Some(line.trim_end_matches(['\n', '\r']).to_string())
        } else {
            self.password.as_ref().map(|p| p.0.clone())
        };
        let credentials = match (&self.username, password) {
            (Some(u), Some(p)) => Some(Credentials::new(u, p)),
            (Some(_), None) => {
                bail!("--username needs a password: --password-stdin or CATALYST_REGISTRY_PASSWORD")
            }
            (None, Some(_)) => bail!("a password was given without --username"),
            (None, None) => None,
        };
        Ok(Opener {
            registry: RegistryClient::default()
                .with_credentials(credentials)
                .with_host_credentials(credentials_from_config_files())
                .with_plain_http(self.plain_http)
                .with_chunk_size(self.chunk_size),
        })
    }
}

#[derive(Debug, Clone, clap::Args)]
struct TrustOpts {
    /// A trusted public key (PEM; `cosign public-key` output works). Repeatable.
    #[arg(long = "key", value_name = "FILE")]
    keys: Vec<PathBuf>,
    /// A directory of trusted public keys (*.pub, *.pem).
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
    /// A signed bundle (from `sign --bundle-out`), verified against the keys; the artifacts it
    /// lists are trusted without their own signatures. Repeatable.
    #[arg(long = "bundle", value_name = "FILE")]
    bundles: Vec<PathBuf>,
}

impl TrustOpts {
    fn keys(&self) -> Result<Vec<PublicKey>> {
        let mut keys = Vec::new();
        for path in &self.keys {
            keys.push(load_public(path)?);
        }
        if let Some(dir) = &self.trusted_keys {
            keys.extend(PublicKey::load_dir(dir)?);
        }
        Ok(keys)
    }

    fn policy(&self) -> Result<TrustPolicy> {
        let keys = self.keys()?;
        if keys.is_empty() {
            bail!("no trusted keys: pass --key FILE or --trusted-keys DIR");
        }
        let bundles = load_bundles(&self.bundles, &keys)?;
        Ok(TrustPolicy { keys, bundles })
    }
}

/// Reads signed bundles and verifies each against `keys` (an error names the file).
pub(crate) fn load_bundles(paths: &[PathBuf], keys: &[PublicKey]) -> Result<Vec<Bundle>> {
    let mut bundles = Vec::new();
    for path in paths {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        bundles.push(
            verify_bundle(&bytes, keys).with_context(|| format!("bundle {}", path.display()))?,
        );
    }
    Ok(bundles)
}

/// A public key file, or a private key file whose public half is used.
fn load_public(path: &Path) -> Result<PublicKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if text.contains("PRIVATE KEY") {
        let password = key_password();
        let key = SigningKey::from_pem(&text, password.as_deref().map(str::as_bytes))
            .with_context(|| path.display().to_string())?;
        return Ok(PublicKey::from_pem(
            &key.public_key().to_pem()?,
            &path.display().to_string(),
        )?);
    }
    Ok(PublicKey::from_pem(&text, &path.display().to_string())?)
}

#[derive(Debug, clap::Args)]
pub struct PackageArgs {
    /// The Blueprint folder.
    dir: PathBuf,
    /// Where to write: a `.tgz` path gets the chart archive (what `helm package` makes); any
    /// other path is an OCI image-layout directory (created or updated).
    #[arg(short, long, value_name = "FILE|DIR")]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// A Blueprint folder, or a layout entry `oci:DIR:NAME:TAG`.
    source: String,
    /// Destination `host/repository[:tag]`.
    destination: String,
    /// No progress bar (there is none anyway when stdout or stderr is not a terminal).
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// `host/repository:tag` or `host/repository@sha256:…`.
    reference: String,
    /// The OCI image-layout directory to pull into.
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Also write the chart archive (`.tgz`) here.
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
    /// No progress bar (there is none anyway when stdout or stderr is not a terminal).
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Artifacts to sign (tags are resolved; the signature covers the digest).
    #[arg(required = true)]
    references: Vec<String>,
    /// The private key: PKCS#8 or SEC1 PEM, or cosign's encrypted key (password from
    /// CATALYST_KEY_PASSWORD or COSIGN_PASSWORD).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Also write a signed bundle listing every signed digest (for offline verification).
    #[arg(long, value_name = "FILE")]
    bundle_out: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Artifacts to verify.
    #[arg(required = true)]
    references: Vec<String>,
    #[command(flatten)]
    trust: TrustOpts,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Format,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    /// Sources: `host/repo[:tag|@digest]` (no tag: every tag), `oci:DIR` (everything),
    /// `oci:DIR:NAME[:TAG]`. The last argument is the destination: `oci:DIR` or a registry
    /// prefix `host/namespace` (each artifact lands at `<prefix>/<name>`).
    #[arg(required = true, num_args = 2..)]
    locations: Vec<String>,
    /// No progress bar (there is none anyway when stdout or stderr is not a terminal).
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The artifact.
    reference: String,
    /// Keys to check the signatures against (optional).
    #[command(flatten)]
    trust: TrustOpts,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Format,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs `catalyst key …`; on failure prints the error and exits with code 2.
pub fn run_key(args: KeyArgs) -> Result<()> {
    if let Err(e) = key_command(args) {
        crate::cli_out::fail(&e, 2);
    }
    Ok(())
}

fn key_command(args: KeyArgs) -> Result<()> {
    match args.command {
        KeyCommand::Generate {
            output_prefix,
            encrypted,
            force,
        } => {
            let key_path = output_prefix.with_extension("key");
            let pub_path = output_prefix.with_extension("pub");
            for p in [&key_path, &pub_path] {
                if p.exists() && !force {
                    bail!("{} exists; pass --force to overwrite", p.display());
                }
            }
            let key = SigningKey::generate();
            let pem = if encrypted {
                let password = key_password().ok_or_else(|| {
                    anyhow!("--encrypted needs CATALYST_KEY_PASSWORD or COSIGN_PASSWORD")
                })?;
                key.to_encrypted_pem(password.as_bytes(), 15)?
            } else {
                key.to_pem()?
            };
            write_private(&key_path, pem.as_bytes())?;
            std::fs::write(&pub_path, key.public_key().to_pem()?)
                .with_context(|| format!("cannot write {}", pub_path.display()))?;
            outln!(
                "Private key: {} (keep it secret)\nPublic key:  {}\nKey id:      {}",
                key_path.display(),
                pub_path.display(),
                key.public_key().id()
            );
            Ok(())
        }
    }
}

/// The private-key password: CATALYST_KEY_PASSWORD, else cosign's COSIGN_PASSWORD.
fn key_password() -> Option<String> {
    std::env::var("CATALYST_KEY_PASSWORD")
        .or_else(|_| std::env::var("COSIGN_PASSWORD"))
        .ok()
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Runs an artifact verb and returns its exit code. It runs on a runtime of its own, so it can be
/// called from the synchronous `blueprint` dispatcher.
pub fn run_blueprint(command: ArtifactCommand) -> Result<i32> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        rt.block_on(dispatch(command))
    })
    .join()
    .map_err(|_| anyhow!("the artifact command panicked"))?
}

async fn dispatch(command: ArtifactCommand) -> Result<i32> {
    match command {
        ArtifactCommand::Package(a) => cmd_package(a).await,
        ArtifactCommand::Push(a) => cmd_push(a).await,
        ArtifactCommand::Pull(a) => cmd_pull(a).await,
        ArtifactCommand::Sign(a) => cmd_sign(a).await,
        ArtifactCommand::Verify(a) => cmd_verify(a).await,
        ArtifactCommand::Mirror(a) => cmd_mirror(a).await,
        ArtifactCommand::Inspect(a) => cmd_inspect(a).await,
    }
}

fn parse_ref(text: &str) -> Result<Reference> {
    Ok(Reference::parse(text)?)
}

async fn cmd_package(a: PackageArgs) -> Result<i32> {
    let pkg = package_dir(&a.dir)?;
    if a.out.extension().and_then(|e| e.to_str()) == Some("tgz") {
        std::fs::write(&a.out, pkg.chart_archive())
            .with_context(|| format!("cannot write {}", a.out.display()))?;
    } else {
        let repo = LayoutRepo::new(Layout::create(&a.out)?, &pkg.chart_name);
        push_package(&pkg, &repo, None).await?;
    }
    outln!(
        "Packaged {} {} into {}\ndigest: {}",
        pkg.chart_name,
        pkg.chart_version,
        a.out.display(),
        pkg.digest
    );
    Ok(0)
}

async fn cmd_push(a: PushArgs) -> Result<i32> {
    let opener = a.registry.opener()?;
    let dst_ref = parse_ref(&a.destination)?;
    if !matches!(dst_ref.location, Location::Registry { .. }) {
        bail!("push goes to a registry (host/repository[:tag]); to write a layout directory use `package -o DIR` or `mirror`");
    }
    let dst = opener.open(&dst_ref, true)?;
    let progress = Progress::blobs(a.quiet, "push");
    let dst = Tracked::new(dst.as_ref(), &progress);
    let source_path = Path::new(&a.source);
    let digest = if !a.source.starts_with("oci:") && source_path.is_dir() {
        let pkg: Package = package_dir(source_path)?;
        push_package(&pkg, &dst, dst_ref.tag.as_deref()).await?
    } else {
        let src_ref = parse_ref(&a.source)?;
        let src = opener.open(&src_ref, false)?;
        copy(
            src.as_ref(),
            &src_ref.target(),
            &dst,
            dst_ref.tag.as_deref(),
            true,
        )
        .await?
    };
    progress.finish();
    outln!("{}", dst_ref.pinned(&digest));
    Ok(0)
}

async fn cmd_pull(a: PullArgs) -> Result<i32> {
    let opener = a.registry.opener()?;
    let src_ref = parse_ref(&a.reference)?;
    let src = opener.open(&src_ref, false)?;
    let name = src_ref.short_name().unwrap_or("artifact").to_string();
    let dst = LayoutRepo::new(Layout::create(&a.out)?, &name);
    let progress = Progress::blobs(a.quiet, "pull");
    let digest = copy(
        src.as_ref(),
        &src_ref.target(),
        &Tracked::new(&dst, &progress),
        None,
        true,
    )
    .await?;
    progress.finish();
    if let Some(chart) = &a.chart {
        let manifest = fetch_image_manifest(&dst, &digest).await?;
        let layer = manifest
            .layers
            .iter()
            .find(|l| l.media_type == media::HELM_CHART)
            .ok_or_else(|| anyhow!("artifact {digest} has no Helm chart layer"))?;
        std::fs::write(chart, dst.blob(&layer.digest).await?)
            .with_context(|| format!("cannot write {}", chart.display()))?;
    }
    outln!(
        "{} -> oci:{}:{name}@{digest}",
        src_ref.pinned(&digest),
        a.out.display()
    );
    Ok(0)
}

async fn cmd_sign(a: SignArgs) -> Result<i32> {
    let password = key_password();
    let key = SigningKey::load(&a.key, password.as_deref().map(str::as_bytes))?;
    let opener = a.registry.opener()?;
    let mut entries = Vec::new();
    for text in &a.references {
        let r = parse_ref(text)?;
        let repo = opener.open(&r, false)?;
        let digest = resolve(repo.as_ref(), &r.target()).await?;
        catalyst_oci::sign::sign(repo.as_ref(), &digest, &key).await?;
        outln!(
            "Signed {} (key {})",
            r.pinned(&digest),
            key.public_key().id()
        );
        entries.push(BundleEntry {
            reference: r.to_string(),
            digest,
        });
    }
    if let Some(out) = &a.bundle_out {
        std::fs::write(out, sign_bundle(&Bundle { artifacts: entries }, &key))
            .with_context(|| format!("cannot write {}", out.display()))?;
        outln!("Bundle: {}", out.display());
    }
    Ok(0)
}

async fn cmd_verify(a: VerifyArgs) -> Result<i32> {
    let policy = a.trust.policy()?;
    let opener = a.registry.opener()?;
    let mut code = 0;
    let mut results = Vec::new();
    for text in &a.references {
        let r = parse_ref(text)?;
        match catalyst_oci::admit_reference(&opener, &r, &policy).await {
            Ok(ok) => {
                let by = match &ok.verified_by {
                    VerifiedBy::Key(id) => format!("key {id}"),
                    VerifiedBy::Bundle => "a trusted bundle".to_string(),
                };
                if a.output == Format::Text {
                    outln!("OK {} (signed by {by})", ok.pinned);
                }
                results.push(serde_json::json!({"reference": text, "digest": ok.digest, "verified": true, "by": by}));
            }
            Err(catalyst_oci::Error::Refused(refusal)) => {
                code = 1;
                if a.output == Format::Text {
                    outln!("REFUSED {text}: {refusal}");
                }
                results.push(serde_json::json!({"reference": text, "verified": false, "refusal": refusal.to_string()}));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if a.output == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    }
    Ok(code)
}

/// Expands a mirror source into `(repository, target-or-all-tags)` pairs.
fn mirror_sources(opener: &Opener, text: &str) -> Result<Vec<(Box<dyn Repo>, Reference)>> {
    let r = parse_ref(text)?;
    match &r.location {
        Location::Layout { path, name: None } => {
            let layout = Layout::open(path)?;
            let mut names: Vec<String> = layout
                .refs()?
                .into_iter()
                .filter_map(|(n, _)| n.rsplit_once(':').map(|(name, _)| name.to_string()))
                .collect();
            names.sort();
            names.dedup();
            Ok(names
                .into_iter()
                .map(|n| {
                    let rr = Reference {
                        location: Location::Layout {
                            path: path.clone(),
                            name: Some(n.clone()),
                        },
                        tag: None,
                        digest: None,
                    };
                    (
                        Box::new(LayoutRepo::new(layout.clone(), &n)) as Box<dyn Repo>,
                        rr,
                    )
                })
                .collect())
        }
        _ => Ok(vec![(opener.open(&r, false)?, r)]),
    }
}

async fn cmd_mirror(a: MirrorArgs) -> Result<i32> {
    let opener = a.registry.opener()?;
    let (dst_text, sources) = a
        .locations
        .split_last()
        .ok_or_else(|| anyhow!("mirror needs SRC... DST"))?;
    let dst_ref = parse_ref(dst_text).or_else(|_| parse_ref(&format!("{dst_text}/x")))?;
    let progress = Progress::blobs(a.quiet, "mirror");
    for text in sources {
        for (src, src_ref) in mirror_sources(&opener, text)? {
            let name = src_ref
                .short_name()
                .ok_or_else(|| anyhow!("{text}: cannot tell the artifact name"))?
                .to_string();
            let dst: Box<dyn Repo> = match &dst_ref.location {
                Location::Layout { path, .. } => {
                    Box::new(LayoutRepo::new(Layout::create(path)?, &name))
                }
                Location::Registry { host, .. } => {
                    let prefix = dst_text.trim_start_matches("oci://").trim_end_matches('/');
                    let prefix = prefix
                        .strip_prefix(host.as_str())
                        .unwrap_or("")
                        .trim_matches('/');
                    let repo = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}/{name}")
                    };
                    opener.open(&parse_ref(&format!("{host}/{repo}"))?, true)?
                }
            };
            let tracked = Tracked::new(dst.as_ref(), &progress);
            let copied: Vec<(String, Digest)> = if src_ref.tag.is_none() && src_ref.digest.is_none()
            {
                mirror_all(src.as_ref(), &tracked).await?
            } else {
                let target = src_ref.target();
                let d = copy(src.as_ref(), &target, &tracked, None, true).await?;
                vec![(target.to_string(), d)]
            };
            for (tag, d) in copied {
                if !is_signature_tag(&tag) {
                    progress
                        .suspend(|| outln!("{} {tag} -> {} ({d})", src.describe(), dst.describe()));
                }
            }
        }
    }
    Ok(0)
}

async fn cmd_inspect(a: InspectArgs) -> Result<i32> {
    let keys = a.trust.keys()?;
    let opener = a.registry.opener()?;
    let r = parse_ref(&a.reference)?;
    let repo = opener.open(&r, false)?;
    let report = catalyst_oci::inspect::inspect(repo.as_ref(), &r, &keys).await?;
    if a.output == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    let mut out = String::new();
    use std::fmt::Write as _;
    writeln!(out, "Reference: {}", report.reference)?;
    writeln!(out, "Digest:    {}", report.digest)?;
    if let Some(bp) = &report.blueprint {
        writeln!(
            out,
            "Blueprint: {} {}",
            bp.name.as_deref().unwrap_or("?"),
            bp.version.as_deref().unwrap_or("?")
        )?;
    }
    if let Some(c) = &report.chart {
        writeln!(
            out,
            "Chart:     {} {}{}",
            c.name,
            c.version,
            c.app_version
                .as_deref()
                .map(|v| format!(" (app {v})"))
                .unwrap_or_default()
        )?;
    }
    writeln!(out, "Config:    {}", report.config_media_type)?;
    writeln!(out, "Layers:")?;
    for l in &report.layers {
        writeln!(out, "  {} {} ({} bytes)", l.digest, l.media_type, l.size)?;
    }
    if !report.subcharts.is_empty() {
        writeln!(out, "Subcharts: {}", report.subcharts.join(", "))?;
    }
    writeln!(
        out,
        "Signatures:{}",
        if report.signatures.is_empty() {
            " none"
        } else {
            ""
        }
    )?;
    for s in &report.signatures {
        writeln!(
            out,
            "  key {} -> {}{}",
            s.key_id.as_deref().unwrap_or("(unnamed)"),
            s.signed_digest.as_deref().unwrap_or("?"),
            match &s.verified_by {
                Some(k) => format!(" [verified by {k}]"),
                None if keys.is_empty() => String::new(),
                None => " [not verified by the given keys]".to_string(),
            }
        )?;
    }
    writeln!(
        out,
        "Images:{}",
        if report.images.is_empty() {
            " none found"
        } else {
            ""
        }
    )?;
    for i in &report.images {
        writeln!(out, "  {i}")?;
    }
    out!("{out}");
    Ok(0)
}
