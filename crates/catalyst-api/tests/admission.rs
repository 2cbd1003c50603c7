//! Blueprint artifacts admitted on the GitOps write path, through the router: packaged, pushed
//! and signed with `catalyst-oci` into a `<data-dir>/oci` image layout (and, when Debian's
//! `docker-registry` is on PATH, a real registry), then installed, upgraded and promoted.
//! Signed artifacts are pinned by digest; an unsigned one, or one signed by a key the
//! Sovereign does not trust, refuses the whole call with 422 and nothing is committed.
#[path = "support/conform.rs"]
mod conform;

#[path = "support/blueprints.rs"]
mod blueprints;
#[path = "../../catalyst-oci/tests/support/mod.rs"]
mod oci_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use catalyst_api::orgs::admission::{ArtifactStore, OciAdmission};
use catalyst_api::orgs::auth::{Authenticator, Role};
use catalyst_api::orgs::{router, OrgApi};
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::{AppName, OrgName, Sovereign};
use catalyst_oci::layout::{Layout, LayoutRepo};
use catalyst_oci::package::package_dir;
use catalyst_oci::registry::RegistryClient;
use catalyst_oci::sign::{sign, PublicKey, SigningKey};
use catalyst_oci::store::{Opener, Repo};
use catalyst_oci::transfer::push_package;
use catalyst_oci::{Digest, Reference, TrustPolicy};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use blueprints::blueprint;

const NEEDS_DB: &str = "  depends:\n    - blueprint: bp-db\n      version: ^1\n";

/// The Blueprint folders: bp-web 1.0.0 and 1.1.0 (each needing bp-db ^1) and bp-db 1.0.0.
fn folders(root: &Path) -> Vec<(String, PathBuf)> {
    vec![
        ("bp-db".into(), blueprint(root, "db", "bp-db", "1.0.0", "")),
        (
            "bp-web".into(),
            blueprint(root, "web", "bp-web", "1.0.0", NEEDS_DB),
        ),
        (
            "bp-web".into(),
            blueprint(root, "web-1.1.0", "bp-web", "1.1.0", NEEDS_DB),
        ),
    ]
}

struct Env {
    _dir: tempfile::TempDir,
    data: PathBuf,
    sovereign: Arc<Sovereign>,
    app: axum::Router,
    admin: String,
}

/// A Sovereign over `data` whose artifact store is `store`, trusting `keys` (PEM files, as
/// `catalyst serve --trusted-key` reads them), with Organization acme and its dev and stg
/// Environments.
async fn serve(dir: tempfile::TempDir, store: ArtifactStore, keys: &[&SigningKey]) -> Env {
    let data = dir.path().to_path_buf();
    let (catalog, diags) =
        catalyst_blueprint::load::load_catalog(&[(Source::Sovereign, data.join("src"))]).unwrap();
    assert!(
        diags
            .iter()
            .all(|d| d.severity != catalyst_blueprint::Severity::Error),
        "{diags:?}"
    );
    let mut trusted = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let path = data.join(format!("trusted-{i}.pub"));
        std::fs::write(&path, key.public_key().to_pem().unwrap()).unwrap();
        trusted.push(PublicKey::load(&path).unwrap());
    }
    let mut render = RenderOptions::default();
    if let Some(url) = store.flux_url() {
        render.registry = url;
    }
    let admission = OciAdmission::new(
        store,
        Opener::default(),
        TrustPolicy {
            keys: trusted,
            bundles: Vec::new(),
        },
    );
    let sovereign = Arc::new(
        Sovereign::open_with_spine(
            data.join("git"),
            Arc::new(catalog),
            render,
            Some(Arc::new(
                catalyst_spine::FileLog::open(data.join("events"))
                    .unwrap()
                    .0,
            )),
        )
        .unwrap()
        .with_admission(Arc::new(admission)),
    );
    let auth = Arc::new(Authenticator::open(&data, None).unwrap());
    let admin = auth
        .tokens()
        .create(Role::SovereignAdmin, None, "root")
        .unwrap();
    let app = conform::conform(router(Arc::new(
        OrgApi::new(sovereign.clone(), auth).unwrap(),
    )));
    let env = Env {
        _dir: dir,
        data,
        sovereign,
        app,
        admin,
    };
    for (uri, body) in [
        ("/api/v1/orgs", json!({"name": "acme"})),
        ("/api/v1/orgs/acme/environments", json!({"envType": "dev"})),
        ("/api/v1/orgs/acme/environments", json!({"envType": "stg"})),
    ] {
        let (s, v) = env.send("POST", uri, body).await;
        assert_eq!(s, StatusCode::CREATED, "{uri}: {v}");
    }
    env
}

impl Env {
    async fn send(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.admin))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn install_web(&self) -> (StatusCode, Value) {
        self.send(
            "POST",
            "/api/v1/orgs/acme/applications",
            json!({"name": "shop", "environment": "dev", "blueprint": "bp-web", "version": "1.0.0"}),
        )
        .await
    }

    /// `flux/ocirepository.yaml` of an Application on `branch`.
    fn source(&self, app: &str, branch: &str) -> String {
        let repo = self.sovereign.app_repo(
            &OrgName::parse("acme").unwrap(),
            &AppName::parse(app).unwrap(),
        );
        String::from_utf8(
            repo.read(branch, "flux/ocirepository.yaml")
                .unwrap()
                .unwrap_or_default(),
        )
        .unwrap()
    }

    /// No Application repository exists, and the config repository holds only the set-up
    /// commits (Organization, two Environments).
    fn assert_nothing_committed(&self) {
        let acme = self.data.join("git/acme");
        let repos: Vec<_> = std::fs::read_dir(&acme)
            .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(repos.is_empty(), "Application repositories: {repos:?}");
        assert_eq!(self.sovereign.config().log("main").unwrap().len(), 3);
    }
}

/// The layout `<data>/oci` with every folder pushed (tag = version); returns name@version → digest.
async fn push_to_layout(data: &Path) -> Vec<(String, String, Digest)> {
    let layout = Layout::create(&data.join("oci")).unwrap();
    let mut out = Vec::new();
    for (name, dir) in folders(&data.join("src")) {
        let pkg = package_dir(&dir).unwrap();
        let repo = LayoutRepo::new(layout.clone(), &name);
        let digest = push_package(&pkg, &repo, None).await.unwrap();
        out.push((name, pkg.chart_version.clone(), digest));
    }
    out
}

async fn sign_in_layout(data: &Path, name: &str, digest: &Digest, key: &SigningKey) {
    let repo = LayoutRepo::new(Layout::open(&data.join("oci")).unwrap(), name);
    sign(&repo, digest, key).await.unwrap();
}

fn digest_of<'a>(pushed: &'a [(String, String, Digest)], name: &str, version: &str) -> &'a Digest {
    &pushed
        .iter()
        .find(|(n, v, _)| n == name && v == version)
        .unwrap()
        .2
}

fn tempdir_with_sources() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    folders(&dir.path().join("src"));
    dir
}

#[tokio::test]
async fn signed_blueprints_install_pinned_by_digest_and_upgrade_checks_the_target() {
    let key = SigningKey::generate();
    let dir = tempdir_with_sources();
    let pushed = push_to_layout(dir.path()).await;
    for (name, _, digest) in &pushed {
        if !(name == "bp-web" && digest == digest_of(&pushed, "bp-web", "1.1.0")) {
            sign_in_layout(dir.path(), name, digest, &key).await;
        }
    }
    let oci = dir.path().join("oci");
    let env = serve(dir, ArtifactStore::Layout(oci), &[&key]).await;

    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for (app, name) in [("shop", "bp-web"), ("shop-db", "bp-db")] {
        let source = env.source(app, "develop");
        let digest = digest_of(&pushed, name, "1.0.0");
        assert!(source.contains(&format!("digest: {digest}")), "{source}");
        assert!(!source.contains("tag:"), "{source}");
    }

    // bp-web 1.1.0 is pushed but not signed: the upgrade is refused and the branch stays.
    let before = env.source("shop", "develop");
    let (s, v) = env
        .send(
            "POST",
            "/api/v1/orgs/acme/applications/shop/upgrade",
            json!({"environment": "dev", "version": "1.1.0"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "untrusted-artifact", "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("bp-web 1.1.0"), "{detail}");
    assert!(detail.contains("is not signed"), "{detail}");
    assert_eq!(env.source("shop", "develop"), before);

    // Promotion re-admits the artifact the destination will run (here: still trusted).
    let (s, v) = env
        .send(
            "POST",
            "/api/v1/orgs/acme/applications/shop-db/promote",
            json!({"from": "dev", "to": "stg"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(env
        .source("shop-db", "staging")
        .contains(&format!("digest: {}", digest_of(&pushed, "bp-db", "1.0.0"))));
}

#[tokio::test]
async fn an_unsigned_dependency_refuses_the_install_and_nothing_is_committed() {
    let key = SigningKey::generate();
    let dir = tempdir_with_sources();
    let pushed = push_to_layout(dir.path()).await;
    let web = digest_of(&pushed, "bp-web", "1.0.0").clone();
    sign_in_layout(dir.path(), "bp-web", &web, &key).await;
    let oci = dir.path().join("oci");
    let env = serve(dir, ArtifactStore::Layout(oci), &[&key]).await;

    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "untrusted-artifact", "{v}");
    let detail = v["detail"].as_str().unwrap();
    let db = digest_of(&pushed, "bp-db", "1.0.0");
    assert!(detail.contains("bp-db 1.0.0"), "{detail}");
    assert!(
        detail.contains(&format!("artifact {db} is not signed")),
        "{detail}"
    );
    env.assert_nothing_committed();

    // A dry run is refused the same way.
    let (s, _) = env
        .send(
            "POST",
            "/api/v1/orgs/acme/applications?dryRun=true",
            json!({"name": "shop", "environment": "dev", "blueprint": "bp-web"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    env.assert_nothing_committed();
}

#[tokio::test]
async fn a_signature_by_another_key_or_no_artifact_refuses() {
    let trusted = SigningKey::generate();
    let stranger = SigningKey::generate();
    let dir = tempdir_with_sources();
    let pushed = push_to_layout(dir.path()).await;
    for (name, _, digest) in &pushed {
        sign_in_layout(dir.path(), name, digest, &stranger).await;
    }
    let oci = dir.path().join("oci");
    let env = serve(dir, ArtifactStore::Layout(oci.clone()), &[&trusted]).await;

    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "untrusted-artifact", "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("signed, but by no trusted key"), "{detail}");
    assert!(detail.contains(stranger.public_key().id()), "{detail}");
    env.assert_nothing_committed();

    // With trusted keys, a Blueprint with no artifact at all is refused too.
    std::fs::remove_dir_all(&oci).unwrap();
    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("push and sign it"),
        "{v}"
    );
    env.assert_nothing_committed();
}

#[tokio::test]
async fn without_trusted_keys_digests_are_pinned_when_known_else_the_tag() {
    // No artifacts: today's behaviour, the exact tag.
    let dir = tempdir_with_sources();
    let oci = dir.path().join("oci");
    let env = serve(dir, ArtifactStore::Layout(oci), &[]).await;
    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let source = env.source("shop", "develop");
    assert!(source.contains("tag: 1.0.0"), "{source}");
    assert!(!source.contains("digest:"), "{source}");

    // Unsigned artifacts present: resolved and pinned by digest.
    let dir = tempdir_with_sources();
    let pushed = push_to_layout(dir.path()).await;
    let oci = dir.path().join("oci");
    let env = serve(dir, ArtifactStore::Layout(oci), &[]).await;
    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let source = env.source("shop-db", "develop");
    assert!(
        source.contains(&format!("digest: {}", digest_of(&pushed, "bp-db", "1.0.0"))),
        "{source}"
    );
}

/// The same against a real registry (`--registry 127.0.0.1:PORT/blueprints`); Flux's source
/// points there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_blueprints_from_a_real_registry() {
    let Some(reg) = oci_support::open_registry() else {
        return;
    };
    let key = SigningKey::generate();
    let dir = tempdir_with_sources();
    let client = RegistryClient::default();
    let opener = Opener {
        registry: client.clone(),
    };
    let namespace = format!("blueprints-{}", std::process::id());
    let mut pushed = Vec::new();
    for (name, folder) in folders(&dir.path().join("src")) {
        let pkg = package_dir(&folder).unwrap();
        let r = Reference::parse(&format!("{}/{namespace}/{name}", reg.addr)).unwrap();
        let repo: Box<dyn Repo> = opener.open(&r, true).unwrap();
        let digest = push_package(&pkg, repo.as_ref(), None).await.unwrap();
        if name == "bp-db" {
            // Signed by a key the Sovereign does not trust, at first.
            sign(repo.as_ref(), &digest, &SigningKey::generate())
                .await
                .unwrap();
        } else {
            sign(repo.as_ref(), &digest, &key).await.unwrap();
        }
        pushed.push((name, pkg.chart_version.clone(), digest));
    }
    let store = ArtifactStore::registry(&format!("{}/{namespace}", reg.addr)).unwrap();
    let env = serve(dir, store, &[&key]).await;

    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"], "untrusted-artifact", "{v}");
    env.assert_nothing_committed();

    let db = digest_of(&pushed, "bp-db", "1.0.0").clone();
    let r = Reference::parse(&format!("{}/{namespace}/bp-db", reg.addr)).unwrap();
    sign(opener.open(&r, false).unwrap().as_ref(), &db, &key)
        .await
        .unwrap();
    let (s, v) = env.install_web().await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let source = env.source("shop-db", "develop");
    assert!(source.contains(&format!("digest: {db}")), "{source}");
    assert!(
        source.contains(&format!("url: oci://{}/{namespace}/bp-db", reg.addr)),
        "{source}"
    );
}
