//! Packaging, image layouts, signatures, bundles, the policy and inspection — no network.

mod support;

use std::io::Read;

use base64::Engine as _;
use catalyst_oci::bundle::{sign_bundle, verify_bundle, Bundle, BundleEntry};
use catalyst_oci::layout::{Layout, LayoutRepo};
use catalyst_oci::manifest::Manifest;
use catalyst_oci::package::package_dir;
use catalyst_oci::policy::{verify_digest, VerifiedBy};
use catalyst_oci::sign::{sign, PublicKey, SigningKey};
use catalyst_oci::store::Repo;
use catalyst_oci::transfer::push_package;
use catalyst_oci::{admit, media, Digest, Error, Reference, Refusal, TrustPolicy};
use support::blueprint_dir;

fn policy(keys: &[&SigningKey]) -> TrustPolicy {
    TrustPolicy {
        keys: keys.iter().map(|k| k.public_key()).collect(),
        bundles: Vec::new(),
    }
}

async fn packaged_in_layout(root: &std::path::Path, name: &str) -> (LayoutRepo, Digest) {
    let src = blueprint_dir(&root.join("src"), name, "1.0.0", &[]);
    let pkg = package_dir(&src).unwrap();
    let repo = LayoutRepo::new(
        Layout::create(&root.join("layout")).unwrap(),
        &format!("bp-{name}"),
    );
    let d = push_package(&pkg, &repo, None).await.unwrap();
    assert_eq!(d, pkg.digest);
    (repo, d)
}

#[test]
fn same_folder_same_digest() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let extra = [
        ("chart/templates/svc.yaml", "kind: Service\n"),
        ("chart/README.md", "hi\n"),
    ];
    let one = package_dir(&blueprint_dir(a.path(), "demo", "1.2.3", &extra)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let dir_b = blueprint_dir(b.path(), "demo", "1.2.3", &extra);
    // Different modes and mtimes must not matter.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir_b.join("chart/README.md"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let two = package_dir(&dir_b).unwrap();
    assert_eq!(one.digest, two.digest);
    assert_eq!(one.manifest, two.manifest);

    // A changed byte changes the digest.
    std::fs::write(dir_b.join("chart/README.md"), "hi!\n").unwrap();
    assert_ne!(package_dir(&dir_b).unwrap().digest, one.digest);

    // Fixed gzip header: magic, deflate, no flags, mtime 0, OS 255.
    let tgz = one.chart_archive();
    assert_eq!(&tgz[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&tgz[4..8], &[0, 0, 0, 0]);
    assert_eq!(tgz[9], 255);
    // Sorted entries under the chart name, fixed metadata.
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut names = Vec::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert_eq!(
            (
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap()
            ),
            (0o644, 0, 0, 0)
        );
        names.push(e.path().unwrap().to_string_lossy().to_string());
    }
    assert_eq!(
        names,
        [
            "bp-demo/Chart.yaml",
            "bp-demo/README.md",
            "bp-demo/templates/deployment.yaml",
            "bp-demo/templates/svc.yaml",
            "bp-demo/values.yaml"
        ]
    );
}

/// Reads the manifest the way Helm's registry client does: config media type, exactly one chart
/// layer, unknown layers skipped; the config is the chart metadata.
#[test]
fn helm_compatible_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = package_dir(&blueprint_dir(tmp.path(), "demo", "0.3.1", &[])).unwrap();
    let m = Manifest::parse(&pkg.manifest).unwrap();
    assert_eq!(m.media_type.as_deref(), Some(media::OCI_MANIFEST));
    assert_eq!(
        m.config.media_type,
        "application/vnd.cncf.helm.config.v1+json"
    );
    let charts: Vec<_> = m
        .layers
        .iter()
        .filter(|l| l.media_type == "application/vnd.cncf.helm.chart.content.v1.tar+gzip")
        .collect();
    assert_eq!(charts.len(), 1);
    let config = &pkg
        .blobs
        .iter()
        .find(|(d, _)| d.digest == m.config.digest)
        .unwrap()
        .1;
    let meta: serde_json::Value = serde_json::from_slice(config).unwrap();
    assert_eq!(meta["name"], "bp-demo");
    assert_eq!(meta["version"], "0.3.1");
    assert_eq!(meta["apiVersion"], "v2");
    let mut chart_yaml = String::new();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(pkg.chart_archive()));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == "bp-demo/Chart.yaml" {
            e.read_to_string(&mut chart_yaml).unwrap();
        }
    }
    assert!(chart_yaml.contains("name: bp-demo"));
    let mut shown: serde_json::Value = serde_json::from_slice(&pkg.manifest).unwrap();
    for l in shown["layers"].as_array_mut().unwrap() {
        if l["mediaType"] == media::HELM_CHART {
            l["digest"] = "[chart digest]".into();
            l["size"] = "[chart size]".into();
        }
    }
    insta::assert_json_snapshot!("helm_manifest", shown);
}

#[tokio::test]
async fn sign_verify_wrong_key_and_trusted_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, digest) = packaged_in_layout(tmp.path(), "signed").await;
    let key = SigningKey::generate();
    let other = SigningKey::generate();

    let err = verify_digest(&repo, &digest, &policy(&[&key]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::Unsigned { .. })),
        "{err}"
    );
    assert!(err.to_string().contains(&digest.to_string()));

    sign(&repo, &digest, &key).await.unwrap();
    assert_eq!(
        verify_digest(&repo, &digest, &policy(&[&key]))
            .await
            .unwrap(),
        VerifiedBy::Key(key.public_key().id().to_string())
    );
    let err = verify_digest(&repo, &digest, &policy(&[&other]))
        .await
        .unwrap_err();
    match &err {
        Error::Refused(Refusal::UnknownKey { digest: d, key_ids }) => {
            assert_eq!(d, &digest);
            assert_eq!(key_ids, &[key.public_key().id().to_string()]);
        }
        other => panic!("expected UnknownKey, got {other}"),
    }
    assert!(err.to_string().contains(&digest.to_string()));

    // --trusted-keys DIR: the signer's key among others.
    let keys = tmp.path().join("trusted");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(
        keys.join("a-other.pub"),
        other.public_key().to_pem().unwrap(),
    )
    .unwrap();
    std::fs::write(keys.join("b-ours.pub"), key.public_key().to_pem().unwrap()).unwrap();
    std::fs::write(keys.join("notes.txt"), "ignored").unwrap();
    let trusted = PublicKey::load_dir(&keys).unwrap();
    assert_eq!(trusted.len(), 2);
    let p = TrustPolicy {
        keys: trusted,
        bundles: vec![],
    };
    let reference = Reference::parse(&format!(
        "oci:{}:bp-signed:1.0.0",
        tmp.path().join("layout").display()
    ))
    .unwrap();
    let admitted = admit(&repo, &reference, &p).await.unwrap();
    assert_eq!(admitted.digest, digest);
    assert!(admitted.pinned.ends_with(&format!("@{digest}")));

    // Re-signing with the same key replaces, a second key adds.
    sign(&repo, &digest, &key).await.unwrap();
    sign(&repo, &digest, &other).await.unwrap();
    let sigs = catalyst_oci::sign::signatures(&repo, &digest)
        .await
        .unwrap();
    assert_eq!(sigs.len(), 2);
}

#[tokio::test]
async fn changed_byte_in_a_layer_fails_naming_the_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, digest) = packaged_in_layout(tmp.path(), "tamper").await;
    let key = SigningKey::generate();
    sign(&repo, &digest, &key).await.unwrap();
    let m = Manifest::parse(&repo.manifest(&digest).await.unwrap().unwrap()).unwrap();
    let chart = m
        .layers
        .iter()
        .find(|l| l.media_type == media::HELM_CHART)
        .unwrap();
    let path = tmp
        .path()
        .join("layout/blobs/sha256")
        .join(chart.digest.hex());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let err = verify_digest(&repo, &digest, &policy(&[&key]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::DigestMismatch { .. })),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&chart.digest.to_string()), "{msg}");
    assert!(msg.contains(&digest.to_string()), "{msg}");
}

/// A signature made by following cosign's documented algorithm by hand (no crate code) verifies;
/// and ours has exactly cosign's shape.
#[tokio::test]
async fn cosign_format_both_ways() {
    use p256::ecdsa::signature::{Signer, Verifier};
    let tmp = tempfile::tempdir().unwrap();
    let (repo, digest) = packaged_in_layout(tmp.path(), "cosign").await;
    let ec = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let pem = p256::pkcs8::EncodePublicKey::to_public_key_pem(
        ec.verifying_key(),
        p256::pkcs8::LineEnding::LF,
    )
    .unwrap();
    let trusted = PublicKey::from_pem(&pem, "cosign.pub").unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;

    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"ghcr.io/x/bp-cosign"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"creator":"hand"}}}}"#
    );
    let sig: p256::ecdsa::Signature = ec.sign(payload.as_bytes());
    let payload_digest = Digest::of(payload.as_bytes());
    repo.put_blob(&payload_digest, payload.clone().into_bytes())
        .await
        .unwrap();
    let config =
        br#"{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#
            .to_vec();
    let config_digest = Digest::of(&config);
    repo.put_blob(&config_digest, config.clone()).await.unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "digest": payload_digest.to_string(),
            "size": payload.len(),
            "annotations": {"dev.cosignproject.cosign/signature": b64.encode(sig.to_der().as_bytes())}
        }]
    });
    let tag = format!("sha256-{}.sig", digest.hex());
    repo.put_manifest(
        media::OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
        Some(&tag),
    )
    .await
    .unwrap();
    let p = TrustPolicy {
        keys: vec![trusted],
        bundles: vec![],
    };
    assert!(matches!(
        verify_digest(&repo, &digest, &p).await.unwrap(),
        VerifiedBy::Key(_)
    ));

    // Ours, read back by hand.
    let ours = SigningKey::generate();
    sign(&repo, &digest, &ours).await.unwrap();
    let sig_digest = repo.resolve_tag(&tag).await.unwrap().unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&repo.manifest(&sig_digest).await.unwrap().unwrap()).unwrap();
    let layer = m["layers"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = repo
        .blob(&layer["digest"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        v["critical"]["image"]["docker-manifest-digest"],
        digest.to_string()
    );
    assert_eq!(v["critical"]["type"], "cosign container image signature");
    let der = b64
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let vk = p256::ecdsa::VerifyingKey::from_public_key_pem(&ours.public_key().to_pem().unwrap())
        .unwrap();
    vk.verify(&payload, &p256::ecdsa::Signature::from_der(&der).unwrap())
        .unwrap();
}

use p256::pkcs8::DecodePublicKey;

#[tokio::test]
async fn bundle_verifies_a_set_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, digest) = packaged_in_layout(tmp.path(), "bundled").await;
    let key = SigningKey::generate();
    let file = sign_bundle(
        &Bundle {
            artifacts: vec![BundleEntry {
                reference: "bp-bundled:1.0.0".into(),
                digest: digest.clone(),
            }],
        },
        &key,
    );
    let bundle = verify_bundle(&file, &[key.public_key()]).unwrap();
    let p = TrustPolicy {
        keys: vec![],
        bundles: vec![bundle],
    };
    assert_eq!(
        verify_digest(&repo, &digest, &p).await.unwrap(),
        VerifiedBy::Bundle
    );
    // Another artifact is not covered.
    let (repo2, d2) = packaged_in_layout(&tmp.path().join("two"), "other").await;
    let err = verify_digest(&repo2, &d2, &p).await.unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::Unsigned { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn inspect_finds_images_in_subcharts() {
    let tmp = tempfile::tempdir().unwrap();
    // A nested subchart archive, as `helm dependency build` leaves it.
    let nested = tmp.path().join("nested");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(
        nested.join("Chart.yaml"),
        "apiVersion: v2\nname: redis\nversion: 1.0.0\n",
    )
    .unwrap();
    std::fs::write(
        nested.join("values.yaml"),
        "image:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: 7.4.1\n",
    )
    .unwrap();
    let tgz = catalyst_oci::package::chart_archive(&nested, "redis").unwrap();
    let src = blueprint_dir(
        &tmp.path().join("src"),
        "app",
        "1.0.0",
        &[
            ("chart/charts/cilium/Chart.yaml", "apiVersion: v2\nname: cilium\nversion: 1.16.5\n"),
            ("chart/charts/cilium/values.yaml", "image:\n  repository: quay.io/cilium/cilium\n  tag: v1.16.5\noperator:\n  image: quay.io/cilium/operator:v1.16.5\n"),
            ("chart/templates/values.yaml", "image: not/a-values-file:1\n"),
        ],
    );
    std::fs::write(src.join("chart/charts/redis-1.0.0.tgz"), tgz).unwrap();
    let pkg = package_dir(&src).unwrap();
    let repo = LayoutRepo::new(
        Layout::create(&tmp.path().join("layout")).unwrap(),
        "bp-app",
    );
    push_package(&pkg, &repo, None).await.unwrap();
    let key = SigningKey::generate();
    sign(&repo, &pkg.digest, &key).await.unwrap();
    let reference = Reference::parse(&format!(
        "oci:{}:bp-app:1.0.0",
        tmp.path().join("layout").display()
    ))
    .unwrap();
    let report = catalyst_oci::inspect::inspect(&repo, &reference, &[key.public_key()])
        .await
        .unwrap();
    assert_eq!(
        report.images,
        [
            "docker.io/bitnami/redis:7.4.1",
            "ghcr.io/openova-io/demo:v1.0.0",
            "quay.io/cilium/cilium:v1.16.5",
            "quay.io/cilium/operator:v1.16.5"
        ]
    );
    assert_eq!(report.subcharts, ["cilium", "redis-1.0.0"]);
    let bp = report.blueprint.as_ref().unwrap();
    assert_eq!(
        (bp.name.as_deref(), bp.version.as_deref()),
        (Some("bp-app"), Some("1.0.0"))
    );
    assert_eq!(
        report.chart.as_ref().unwrap().app_version.as_deref(),
        Some("2.0")
    );
    assert_eq!(report.signatures.len(), 1);
    assert!(report.signatures[0].verified_by.is_some());
    assert_eq!(report.digest, pkg.digest);
}

#[test]
fn packaging_errors_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let err = package_dir(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("blueprint.yaml and chart/"), "{err}");
    let dir = blueprint_dir(
        tmp.path(),
        "x",
        "1.0.0",
        &[("chart/Chart.yaml", "apiVersion: v2\n")],
    );
    let err = package_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("`name` and `version`"), "{err}");
}

/// A signature whose bytes were altered reads as a bad signature (its key id names a trusted key);
/// a valid signature copied over from another artifact is a digest mismatch.
#[tokio::test]
async fn altered_and_replayed_signatures() {
    let tmp = tempfile::tempdir().unwrap();
    let (repo, digest) = packaged_in_layout(tmp.path(), "replay").await;
    let (other_repo, other) = packaged_in_layout(&tmp.path().join("o"), "replay2").await;
    let key = SigningKey::generate();
    sign(&repo, &digest, &key).await.unwrap();
    sign(&other_repo, &other, &key).await.unwrap();
    let tag = digest.signature_tag();
    let sig_digest = repo.resolve_tag(&tag).await.unwrap().unwrap();
    let original = repo.manifest(&sig_digest).await.unwrap().unwrap();

    // Altered: flip one base64 character of the signature.
    let mut m: serde_json::Value = serde_json::from_slice(&original).unwrap();
    let ann = &mut m["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"];
    let mut sig = ann.as_str().unwrap().to_string();
    let flipped = if sig.starts_with('M') { "N" } else { "M" };
    sig.replace_range(0..1, flipped);
    *ann = sig.into();
    repo.put_manifest(
        media::OCI_MANIFEST,
        &serde_json::to_vec(&m).unwrap(),
        Some(&tag),
    )
    .await
    .unwrap();
    let err = verify_digest(&repo, &digest, &policy(&[&key]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Refused(Refusal::BadSignature { .. })),
        "{err}"
    );
    assert!(err.to_string().contains(&digest.to_string()), "{err}");

    // Replayed: the other artifact's signature manifest, under this artifact's signature tag.
    let other_sig = other_repo
        .resolve_tag(&other.signature_tag())
        .await
        .unwrap()
        .unwrap();
    let theirs = other_repo.manifest(&other_sig).await.unwrap().unwrap();
    let m = Manifest::parse(&theirs).unwrap();
    for blob in m.blobs() {
        repo.put_blob(&blob.digest, other_repo.blob(&blob.digest).await.unwrap())
            .await
            .unwrap();
    }
    repo.put_manifest(media::OCI_MANIFEST, &theirs, Some(&tag))
        .await
        .unwrap();
    let err = verify_digest(&repo, &digest, &policy(&[&key]))
        .await
        .unwrap_err();
    match &err {
        Error::Refused(Refusal::DigestMismatch {
            expected, actual, ..
        }) => {
            assert_eq!((expected, actual), (&digest, &other));
        }
        other => panic!("expected DigestMismatch, got {other}"),
    }
}
