//! `catalyst serve --trusted-bundle`: an air-gapped Sovereign mirrors artifacts without their
//! `.sig` tags and trusts the digests a signed bundle lists. Driven through the real binary:
//! `key generate`, `blueprint package` (reproducible, so two copies share a digest),
//! `blueprint sign --bundle-out`, then installs through the API.
mod support;

#[path = "../../catalyst-api/tests/support/blueprints.rs"]
mod blueprints;

use std::path::Path;

use serde_json::{json, Value};
use support::{cli, Catalyst};

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = cli(dir, args);
    assert_eq!(code, 0, "{args:?}\nstdout: {out}\nstderr: {err}");
    out
}

async fn post(c: &Catalyst, path: &str, body: Value) -> (u16, Value) {
    let r = c
        .client()
        .post(c.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Creates acme and acme-dev, then installs bp-web as `web`.
async fn install(c: &Catalyst) -> (u16, Value) {
    for (path, body) in [
        ("/api/v1/orgs", json!({"name": "acme"})),
        ("/api/v1/orgs/acme/environments", json!({"envType": "dev"})),
    ] {
        let (s, v) = post(c, path, body).await;
        assert_eq!(s, 201, "{path}: {v}");
    }
    post(
        c,
        "/api/v1/orgs/acme/applications",
        json!({"name": "web", "environment": "dev", "blueprint": "bp-web"}),
    )
    .await
}

#[tokio::test]
async fn a_signed_bundle_vouches_for_unsigned_mirrored_artifacts() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    blueprints::blueprint(&d.join("catalog"), "bp-web", "bp-web", "1.0.0", "");
    ok(d, &["key", "generate", "--output-prefix", "release"]);
    ok(d, &["key", "generate", "--output-prefix", "stranger"]);
    // The Sovereign's store gets the artifact without a signature; the signature (and the
    // bundle) are made on another copy, as a release pipeline would before mirroring.
    for out in ["data/oci", "release-oci"] {
        ok(d, &["blueprint", "package", "catalog/bp-web", "-o", out]);
    }
    ok(
        d,
        &[
            "blueprint",
            "sign",
            "oci:release-oci:bp-web:1.0.0",
            "--key",
            "release.key",
            "--bundle-out",
            "bundle.json",
        ],
    );
    ok(
        d,
        &[
            "blueprint",
            "sign",
            "oci:release-oci:bp-web:1.0.0",
            "--key",
            "stranger.key",
            "--bundle-out",
            "stranger-bundle.json",
        ],
    );
    let serve = |data: &str, extra: &[&str]| {
        let mut args = vec![
            "--provisioner",
            "dry-run",
            "--catalog",
            "catalog",
            "--trusted-key",
            "release.pub",
        ];
        args.extend_from_slice(extra);
        let data = d.join(data);
        std::fs::create_dir_all(&data).unwrap();
        Catalyst::start_with(&data, &args, |cmd| {
            cmd.current_dir(d)
                .env_remove("CATALYST_TRUSTED_KEYS")
                .env_remove("CATALYST_TRUSTED_BUNDLES");
        })
    };

    // Without the bundle the unsigned artifact is refused and nothing is written.
    let mut c = serve("data", &[]);
    let (s, v) = install(&c).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (422, Some("untrusted-artifact")),
        "{v}"
    );
    assert!(!d.join("data/git/acme/web.git").exists());
    c.stop();

    // With it, the same artifact is admitted and pinned by digest.
    std::fs::remove_dir_all(d.join("data/git")).unwrap();
    let mut c = serve("data", &["--trusted-bundle", "bundle.json"]);
    let (s, v) = install(&c).await;
    assert_eq!(s, 201, "{v}");
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(d.join("data/git/acme/web.git"))
        .args(["show", "develop:flux/ocirepository.yaml"])
        .output()
        .unwrap();
    let source = String::from_utf8_lossy(&out.stdout);
    assert!(source.contains("digest: sha256:"), "{source}");
    assert!(!source.contains("tag:"), "{source}");
    c.stop();

    // A bundle the trusted key did not sign stops start-up, naming the file; so does a bundle
    // without any trusted key.
    for (args, needle) in [
        (
            vec![
                "serve",
                "--data-dir",
                "data2",
                "--trusted-key",
                "release.pub",
                "--trusted-bundle",
                "stranger-bundle.json",
            ],
            "stranger-bundle.json",
        ),
        (
            vec![
                "serve",
                "--data-dir",
                "data2",
                "--trusted-bundle",
                "bundle.json",
            ],
            "--trusted-key",
        ),
    ] {
        let port = format!("127.0.0.1:{}", support::free_port());
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_catalyst"))
            .args(&args)
            .args(["--listen", &port, "--provisioner", "dry-run"])
            .current_dir(d)
            .env_remove("CATALYST_TRUSTED_KEYS")
            .env_remove("CATALYST_TRUSTED_BUNDLES")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{args:?}: catalyst serve started instead of refusing");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
