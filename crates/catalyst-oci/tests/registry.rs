//! Against a real CNCF distribution registry on loopback (Debian's `docker-registry`), once
//! without auth and once behind htpasswd basic auth. Skipped with a printed reason when the
//! binary is missing, unless CATALYST_REQUIRE_SERVICES=1.

mod support;

use catalyst_oci::layout::{Layout, LayoutRepo};
use catalyst_oci::package::package_dir;
use catalyst_oci::policy::VerifiedBy;
use catalyst_oci::reference::Target;
use catalyst_oci::registry::{Credentials, RegistryClient, RegistryRepo};
use catalyst_oci::sign::{sign, SigningKey};
use catalyst_oci::store::{Opener, Repo};
use catalyst_oci::transfer::{copy, mirror_all, push_package};
use catalyst_oci::{admit, Error, Reference, Refusal, TrustPolicy};
use support::{auth_registry, blueprint_dir, open_registry, PASSWORD, USER};

fn repo(client: &RegistryClient, addr: &str, name: &str) -> RegistryRepo {
    RegistryRepo::new(client.clone(), addr, name)
}

fn trust(key: &SigningKey) -> TrustPolicy {
    TrustPolicy {
        keys: vec![key.public_key()],
        bundles: vec![],
    }
}

/// Pushes with a small chunk size so the chart layer goes up in several PATCH requests; pulls into
/// a layout directory by tag and by digest; every byte comes back identical.
#[tokio::test]
async fn push_pull_round_trip_is_byte_identical() {
    let Some(reg) = open_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Incompressible content, so the chart layer is several chunks.
    let noise: String = (0..20_000u32)
        .map(|i| format!("{:08x}", i.wrapping_mul(2_654_435_761)))
        .collect();
    let src = blueprint_dir(
        tmp.path(),
        "roundtrip",
        "1.0.0",
        &[("chart/files/noise.txt", &noise)],
    );
    let pkg = package_dir(&src).unwrap();
    assert!(pkg.chart_archive().len() > 3 * 16 * 1024);
    let client = RegistryClient::default().with_chunk_size(16 * 1024);
    let remote = repo(&client, &reg.addr, "catalyst/bp-roundtrip");
    let digest = push_package(&pkg, &remote, None).await.unwrap();
    assert_eq!(digest, pkg.digest);
    assert_eq!(
        remote.resolve_tag("1.0.0").await.unwrap(),
        Some(digest.clone())
    );
    assert_eq!(
        remote.manifest(&digest).await.unwrap().unwrap(),
        pkg.manifest
    );
    for (desc, bytes) in &pkg.blobs {
        assert_eq!(&remote.blob(&desc.digest).await.unwrap(), bytes);
    }
    // Pushing again is a no-op that keeps the digest.
    assert_eq!(push_package(&pkg, &remote, None).await.unwrap(), digest);

    let layout = LayoutRepo::new(
        Layout::create(&tmp.path().join("pulled")).unwrap(),
        "bp-roundtrip",
    );
    let pulled = copy(&remote, &Target::Tag("1.0.0".into()), &layout, None, true)
        .await
        .unwrap();
    assert_eq!(pulled, digest);
    assert_eq!(
        layout.manifest(&digest).await.unwrap().unwrap(),
        pkg.manifest
    );
    for (desc, bytes) in &pkg.blobs {
        assert_eq!(&layout.blob(&desc.digest).await.unwrap(), bytes);
    }
    let by_digest = LayoutRepo::new(
        Layout::create(&tmp.path().join("by-digest")).unwrap(),
        "bp-roundtrip",
    );
    copy(
        &remote,
        &Target::Digest(digest.clone()),
        &by_digest,
        Some("pinned"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(by_digest.resolve_tag("pinned").await.unwrap(), Some(digest));
}

#[tokio::test]
async fn moved_tag_pinned_digest_still_verifies() {
    let Some(reg) = open_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let client = RegistryClient::default();
    let remote = repo(&client, &reg.addr, "catalyst/bp-moved");
    let key = SigningKey::generate();
    let signed = package_dir(&blueprint_dir(&tmp.path().join("a"), "moved", "1.0.0", &[])).unwrap();
    let good = push_package(&signed, &remote, None).await.unwrap();
    sign(&remote, &good, &key).await.unwrap();
    let tag_ref = Reference::parse(&format!("{}/catalyst/bp-moved:1.0.0", reg.addr)).unwrap();
    let admitted = admit(&remote, &tag_ref, &trust(&key)).await.unwrap();
    assert_eq!(admitted.digest, good);
    assert_eq!(
        admitted.pinned,
        format!("{}/catalyst/bp-moved@{good}", reg.addr)
    );
    assert_eq!(
        admitted.verified_by,
        VerifiedBy::Key(key.public_key().id().to_string())
    );

    // Someone moves the tag to different, unsigned content.
    let evil = package_dir(&blueprint_dir(
        &tmp.path().join("b"),
        "moved",
        "1.0.0",
        &[("chart/templates/extra.yaml", "kind: ConfigMap\n")],
    ))
    .unwrap();
    let bad = push_package(&evil, &remote, Some("1.0.0")).await.unwrap();
    assert_ne!(bad, good);
    let err = admit(&remote, &tag_ref, &trust(&key)).await.unwrap_err();
    match &err {
        Error::Refused(Refusal::Unsigned { digest }) => assert_eq!(digest, &bad),
        other => panic!("expected Unsigned, got {other}"),
    }
    assert!(err.to_string().contains(&bad.to_string()));

    // The pinned digest still pulls and verifies the signed artifact.
    let pinned = Reference::parse(&admitted.pinned).unwrap();
    assert_eq!(
        admit(&remote, &pinned, &trust(&key)).await.unwrap().digest,
        good
    );
    assert_eq!(
        remote.manifest(&good).await.unwrap().unwrap(),
        signed.manifest
    );

    // A wrong key fails.
    let other = SigningKey::generate();
    let err = admit(&remote, &pinned, &trust(&other)).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::UnknownKey { .. })),
        "{err}"
    );
}

/// Registry → layout directory → another registry repository, signatures included; the
/// signature verifies at every hop, and a copy between two repositories of one registry mounts.
#[tokio::test]
async fn mirror_to_layout_and_back() {
    let Some(reg) = open_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let client = RegistryClient::default();
    let key = SigningKey::generate();
    let origin = repo(&client, &reg.addr, "upstream/bp-mirrored");
    let mut digests = Vec::new();
    for v in ["1.0.0", "1.1.0"] {
        let pkg = package_dir(&blueprint_dir(&tmp.path().join(v), "mirrored", v, &[])).unwrap();
        let d = push_package(&pkg, &origin, None).await.unwrap();
        sign(&origin, &d, &key).await.unwrap();
        digests.push(d);
    }
    let opener = Opener {
        registry: client.clone(),
    };
    let layout_ref = Reference::parse(&format!(
        "oci:{}:bp-mirrored",
        tmp.path().join("airgap").display()
    ))
    .unwrap();
    let layout = opener.open(&layout_ref, true).unwrap();
    let copied = mirror_all(&origin, layout.as_ref()).await.unwrap();
    assert_eq!(copied.len(), 2);
    for d in &digests {
        catalyst_oci::policy::verify_digest(layout.as_ref(), d, &trust(&key))
            .await
            .unwrap();
    }
    let back = repo(&client, &reg.addr, "airgapped/bp-mirrored");
    mirror_all(layout.as_ref(), &back).await.unwrap();
    for (tag, d) in [("1.0.0", &digests[0]), ("1.1.0", &digests[1])] {
        let r = Reference::parse(&format!("{}/airgapped/bp-mirrored:{tag}", reg.addr)).unwrap();
        assert_eq!(&admit(&back, &r, &trust(&key)).await.unwrap().digest, d);
    }
    // Same registry, other repository: blobs are mounted.
    let sibling = repo(&client, &reg.addr, "sibling/bp-mirrored");
    copy(&origin, &Target::Tag("1.0.0".into()), &sibling, None, true)
        .await
        .unwrap();
    let r = Reference::parse(&format!("{}/sibling/bp-mirrored:1.0.0", reg.addr)).unwrap();
    assert_eq!(
        admit(&sibling, &r, &trust(&key)).await.unwrap().digest,
        digests[0]
    );
}

#[tokio::test]
async fn basic_auth_registry() {
    let Some(reg) = auth_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package_dir(&blueprint_dir(tmp.path(), "private", "2.0.0", &[])).unwrap();

    let anonymous = repo(&RegistryClient::default(), &reg.addr, "catalyst/bp-private");
    let err = push_package(&pkg, &anonymous, None).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");

    let wrong =
        RegistryClient::default().with_credentials(Some(Credentials::new(USER, "wrong-password")));
    let err = push_package(&pkg, &repo(&wrong, &reg.addr, "catalyst/bp-private"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");
    assert!(!err.to_string().contains("wrong-password"));

    let client = RegistryClient::default()
        .with_credentials(Some(Credentials::new(USER, PASSWORD)))
        .with_chunk_size(1024);
    assert!(!format!("{client:?}").contains(PASSWORD));
    let remote = repo(&client, &reg.addr, "catalyst/bp-private");
    let d = push_package(&pkg, &remote, None).await.unwrap();
    let key = SigningKey::generate();
    sign(&remote, &d, &key).await.unwrap();
    let r = Reference::parse(&format!("{}/catalyst/bp-private:2.0.0", reg.addr)).unwrap();
    assert_eq!(admit(&remote, &r, &trust(&key)).await.unwrap().digest, d);
    let err = format!(
        "{:?}",
        admit(&anonymous, &r, &trust(&key)).await.unwrap_err()
    );
    assert!(!err.contains(PASSWORD));
}

/// A blob corrupted in the registry's own storage is caught, naming the blob's digest.
#[tokio::test]
async fn corrupted_registry_blob_is_refused() {
    let Some(reg) = open_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let client = RegistryClient::default();
    let remote = repo(&client, &reg.addr, "catalyst/bp-corrupt");
    let src = blueprint_dir(
        tmp.path(),
        "corrupt",
        "1.0.0",
        &[("chart/files/unique.txt", "corrupt-test\n")],
    );
    let pkg = package_dir(&src).unwrap();
    let d = push_package(&pkg, &remote, None).await.unwrap();
    let key = SigningKey::generate();
    sign(&remote, &d, &key).await.unwrap();
    let bp_layer = &pkg.blobs[2].0;
    let path = reg
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&bp_layer.digest.hex()[..2])
        .join(bp_layer.digest.hex())
        .join("data");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let r = Reference::parse(&format!("{}/catalyst/bp-corrupt@{d}", reg.addr)).unwrap();
    let err = admit(&remote, &r, &trust(&key)).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::DigestMismatch { .. })),
        "{err}"
    );
    assert!(
        err.to_string().contains(&bp_layer.digest.to_string()),
        "{err}"
    );
}

/// A token-auth front for the open registry: `/token` hands out a bearer token for basic
/// credentials; every other request needs that token, else it gets a `Bearer` challenge.
async fn token_front(upstream: String) -> String {
    use axum::body::Body;
    use axum::http::{HeaderMap, Request, Response, StatusCode};
    use base64::Engine as _;

    const TOKEN: &str = "tok-7f3a";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let me = listener.local_addr().unwrap().to_string();
    let front = me.clone();
    let http = reqwest::Client::new();
    let handler = move |req: Request<Body>| {
        let (upstream, front, http) = (upstream.clone(), front.clone(), http.clone());
        async move {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            if path.starts_with("/token") {
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
                );
                let ok = auth == want && path.contains("scope=repository%3A");
                return Response::builder()
                    .status(if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::UNAUTHORIZED
                    })
                    .body(Body::from(if ok {
                        format!(r#"{{"token":"{TOKEN}"}}"#)
                    } else {
                        String::new()
                    }))
                    .unwrap();
            }
            if auth != format!("Bearer {TOKEN}") {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(
                        "www-authenticate",
                        format!(r#"Bearer realm="http://{front}/token",service="catalyst-test""#),
                    )
                    .body(Body::empty())
                    .unwrap();
            }
            let method = req.method().clone();
            let mut headers = HeaderMap::new();
            for name in ["accept", "content-type", "content-range", "content-length"] {
                if let Some(v) = req.headers().get(name) {
                    headers.insert(name, v.clone());
                }
            }
            let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                .await
                .unwrap();
            let resp = http
                .request(method, format!("http://{upstream}{path}"))
                .headers(headers)
                .body(body)
                .send()
                .await
                .unwrap();
            let mut out = Response::builder().status(resp.status().as_u16());
            for (name, value) in resp.headers() {
                let v = value.to_str().unwrap_or("").replace(&upstream, &front);
                if [
                    "location",
                    "docker-content-digest",
                    "content-type",
                    "range",
                    "docker-upload-uuid",
                ]
                .contains(&name.as_str())
                {
                    out = out.header(name.as_str(), v);
                }
            }
            out.body(Body::from(resp.bytes().await.unwrap())).unwrap()
        }
    };
    let app = axum::Router::new().fallback(handler);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    me
}

#[tokio::test]
async fn bearer_token_auth() {
    let Some(reg) = open_registry() else { return };
    let front = token_front(reg.addr.clone()).await;
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package_dir(&blueprint_dir(tmp.path(), "bearer", "3.0.0", &[])).unwrap();

    let anonymous = repo(&RegistryClient::default(), &front, "catalyst/bp-bearer");
    let err = push_package(&pkg, &anonymous, None).await.unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err}");

    let client = RegistryClient::default()
        .with_credentials(Some(Credentials::new(USER, PASSWORD)))
        .with_chunk_size(64);
    let remote = repo(&client, &front, "catalyst/bp-bearer");
    let d = push_package(&pkg, &remote, None).await.unwrap();
    let key = SigningKey::generate();
    sign(&remote, &d, &key).await.unwrap();
    let r = Reference::parse(&format!("{front}/catalyst/bp-bearer:3.0.0")).unwrap();
    assert_eq!(admit(&remote, &r, &trust(&key)).await.unwrap().digest, d);
    // The same content is reachable directly, so the front really forwarded it.
    let direct = repo(&RegistryClient::default(), &reg.addr, "catalyst/bp-bearer");
    assert_eq!(direct.resolve_tag("3.0.0").await.unwrap(), Some(d));
}

/// Counts what a copy asks of the destination.
struct Counting {
    inner: RegistryRepo,
    mounted: std::sync::atomic::AtomicUsize,
    uploaded: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Repo for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn identity(&self) -> String {
        self.inner.identity()
    }
    fn registry_location(&self) -> Option<(String, String)> {
        self.inner.registry_location()
    }
    async fn resolve_tag(&self, tag: &str) -> catalyst_oci::Result<Option<catalyst_oci::Digest>> {
        self.inner.resolve_tag(tag).await
    }
    async fn manifest(&self, d: &catalyst_oci::Digest) -> catalyst_oci::Result<Option<Vec<u8>>> {
        self.inner.manifest(d).await
    }
    async fn blob(&self, d: &catalyst_oci::Digest) -> catalyst_oci::Result<Vec<u8>> {
        self.inner.blob(d).await
    }
    async fn has_blob(&self, d: &catalyst_oci::Digest) -> catalyst_oci::Result<bool> {
        self.inner.has_blob(d).await
    }
    async fn put_blob(&self, d: &catalyst_oci::Digest, bytes: Vec<u8>) -> catalyst_oci::Result<()> {
        self.uploaded
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.put_blob(d, bytes).await
    }
    async fn mount_blob(&self, d: &catalyst_oci::Digest, from: &str) -> catalyst_oci::Result<bool> {
        let mounted = self.inner.mount_blob(d, from).await?;
        if mounted {
            self.mounted
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(mounted)
    }
    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> catalyst_oci::Result<catalyst_oci::Digest> {
        self.inner.put_manifest(media_type, bytes, tag).await
    }
    async fn tags(&self) -> catalyst_oci::Result<Vec<String>> {
        self.inner.tags().await
    }
}

/// Within one registry, blobs are mounted, not re-uploaded; a mount the registry declines (the
/// source repository lacks the blob) falls back to an upload.
#[tokio::test]
async fn cross_repo_mount_and_fallback() {
    let Some(reg) = open_registry() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let client = RegistryClient::default();
    let origin = repo(&client, &reg.addr, "mount/src/bp-mount");
    let pkg = package_dir(&blueprint_dir(tmp.path(), "mount", "1.0.0", &[])).unwrap();
    let d = push_package(&pkg, &origin, None).await.unwrap();
    let dst = Counting {
        inner: repo(&client, &reg.addr, "mount/dst/bp-mount"),
        mounted: Default::default(),
        uploaded: Default::default(),
    };
    copy(&origin, &Target::Tag("1.0.0".into()), &dst, None, false)
        .await
        .unwrap();
    assert_eq!(dst.mounted.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(dst.uploaded.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(dst.manifest(&d).await.unwrap().unwrap(), pkg.manifest);

    let lonely = repo(&client, &reg.addr, "mount/other/bp-mount");
    let blob = b"only here".to_vec();
    let bd = catalyst_oci::Digest::of(&blob);
    assert!(!lonely.mount_blob(&bd, "mount/src/bp-mount").await.unwrap());
    lonely.put_blob(&bd, blob.clone()).await.unwrap();
    assert_eq!(lonely.blob(&bd).await.unwrap(), blob);
}
