//! End-to-end: `catalyst key generate` and `catalyst blueprint package|sign|verify|mirror|inspect|
//! pull` through the binary, on image-layout directories (no registry needed).

#[path = "../../catalyst-oci/tests/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .env_remove("COSIGN_PASSWORD")
        .env_remove("CATALYST_KEY_PASSWORD")
        .env_remove("DOCKER_CONFIG")
        .env_remove("HELM_REGISTRY_CONFIG")
        .env("HOME", dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let (code, out, err) = run(dir, args);
    assert_eq!(code, 0, "{args:?}\nstdout: {out}\nstderr: {err}");
    out
}

/// On a terminal (`script` gives the binary a pty) `mirror` draws a bar counting blobs on
/// stderr; `--quiet` draws none.
fn progress_on_a_terminal(d: &Path) {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!(
            "progress_on_a_terminal: no `script` here to give the binary a terminal; not checked"
        );
        return;
    }
    let on_tty = |quiet: bool, to: &str| {
        let cmd = format!(
            "{} blueprint mirror oci:out oci:{to}{}",
            env!("CARGO_BIN_EXE_catalyst"),
            if quiet { " --quiet" } else { "" }
        );
        let out = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(d)
            .env("HOME", d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = on_tty(false, "tty");
    assert!(
        shown.contains("mirror") && shown.contains("blobs"),
        "{shown}"
    );
    let quiet = on_tty(true, "tty-quiet");
    assert!(!quiet.contains("blobs"), "{quiet}");
    assert!(
        quiet.contains("-> "),
        "the mirrored artifacts are still listed: {quiet}"
    );
}

fn digest_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("digest: "))
        .unwrap()
        .to_string()
}

#[test]
fn package_sign_verify_mirror_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let bp = d.join("bp-web");
    std::fs::create_dir_all(bp.join("chart/templates")).unwrap();
    std::fs::write(
        bp.join("blueprint.yaml"),
        "apiVersion: catalyst.openova.io/v1alpha1\nkind: Blueprint\nmetadata:\n  name: bp-web\nspec:\n  version: 1.4.0\n",
    )
    .unwrap();
    std::fs::write(
        bp.join("chart/Chart.yaml"),
        "apiVersion: v2\nname: bp-web\nversion: 1.4.0\n",
    )
    .unwrap();
    std::fs::write(
        bp.join("chart/values.yaml"),
        "image:\n  repository: nginx\n  tag: \"1.27\"\n",
    )
    .unwrap();
    std::fs::write(bp.join("chart/templates/cm.yaml"), "kind: ConfigMap\n").unwrap();

    let out = ok(d, &["key", "generate", "--output-prefix", "release"]);
    assert!(out.contains("release.pub"));
    assert!(!out.contains("PRIVATE"));
    ok(d, &["key", "generate", "--output-prefix", "stranger"]);
    let (code, _, err) = run(d, &["key", "generate", "--output-prefix", "release"]);
    assert_eq!(code, 2, "{err}");

    let first = digest_line(&ok(d, &["blueprint", "package", "bp-web", "-o", "out"]));
    let again = digest_line(&ok(
        d,
        &["blueprint", "package", "bp-web", "-o", "bp-web.tgz"],
    ));
    assert_eq!(first, again);
    assert!(d.join("bp-web.tgz").is_file());

    let (code, out, _) = run(
        d,
        &[
            "blueprint",
            "verify",
            "oci:out:bp-web:1.4.0",
            "--key",
            "release.pub",
        ],
    );
    assert_eq!(code, 1);
    assert!(out.contains("not signed") && out.contains(&first), "{out}");

    ok(
        d,
        &[
            "blueprint",
            "sign",
            "oci:out:bp-web:1.4.0",
            "--key",
            "release.key",
            "--bundle-out",
            "set.bundle",
        ],
    );
    let out = ok(
        d,
        &[
            "blueprint",
            "verify",
            "oci:out:bp-web:1.4.0",
            "--key",
            "release.pub",
        ],
    );
    assert!(out.starts_with("OK ") && out.contains(&first), "{out}");
    let (code, out, _) = run(
        d,
        &[
            "blueprint",
            "verify",
            "oci:out:bp-web:1.4.0",
            "--key",
            "stranger.pub",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("no trusted key") && out.contains(&first),
        "{out}"
    );

    // Air gap: mirror the whole layout, verify there against a key directory and the bundle.
    let (code, _, err) = run(d, &["blueprint", "mirror", "oci:out", "oci:airgap"]);
    assert_eq!(code, 0, "{err}");
    // Piped: no progress bar, no escape codes.
    assert!(!err.contains('\u{1b}') && !err.contains("blobs"), "{err}");
    progress_on_a_terminal(d);
    std::fs::create_dir_all(d.join("trusted")).unwrap();
    std::fs::copy(d.join("release.pub"), d.join("trusted/release.pub")).unwrap();
    let out = ok(
        d,
        &[
            "blueprint",
            "verify",
            "oci:airgap:bp-web:1.4.0",
            "--trusted-keys",
            "trusted",
            "-o",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["digest"], first.as_str());
    ok(
        d,
        &[
            "blueprint",
            "verify",
            "oci:airgap:bp-web:1.4.0",
            "--key",
            "release.pub",
            "--bundle",
            "set.bundle",
        ],
    );

    let out = ok(
        d,
        &[
            "blueprint",
            "inspect",
            "oci:airgap:bp-web:1.4.0",
            "--key",
            "release.pub",
            "-o",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["images"][0], "nginx:1.27");
    assert_eq!(v["blueprint"]["name"], "bp-web");
    assert!(v["signatures"][0]["verified_by"].is_string());
    let text = ok(d, &["blueprint", "inspect", "oci:airgap:bp-web:1.4.0"]);
    assert!(
        text.contains("application/vnd.catalyst.blueprint.v1+yaml"),
        "{text}"
    );

    // cosign's encrypted key format: generate, sign, verify.
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args([
            "key",
            "generate",
            "--encrypted",
            "--output-prefix",
            "sealed",
        ])
        .current_dir(d)
        .env("CATALYST_KEY_PASSWORD", "open sesame")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed = std::fs::read_to_string(d.join("sealed.key")).unwrap();
    assert!(sealed.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    let (code, _, err) = run(
        d,
        &[
            "blueprint",
            "sign",
            "oci:out:bp-web:1.4.0",
            "--key",
            "sealed.key",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("COSIGN_PASSWORD"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args([
            "blueprint",
            "sign",
            "oci:out:bp-web:1.4.0",
            "--key",
            "sealed.key",
        ])
        .current_dir(d)
        .env("COSIGN_PASSWORD", "open sesame")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ok(
        d,
        &[
            "blueprint",
            "verify",
            "oci:out:bp-web:1.4.0",
            "--key",
            "sealed.pub",
        ],
    );

    // Pull from a layout into another, writing the chart archive: byte-identical to `package`.
    ok(
        d,
        &[
            "blueprint",
            "pull",
            &format!("oci:airgap:bp-web@{first}"),
            "-o",
            "pulled",
            "--chart",
            "pulled.tgz",
        ],
    );
    assert_eq!(
        std::fs::read(d.join("pulled.tgz")).unwrap(),
        std::fs::read(d.join("bp-web.tgz")).unwrap()
    );
}

/// The README's registry flow through the binary, against a registry behind basic auth:
/// push a folder, sign, verify, mirror to a layout directory and back, pull the chart.
#[test]
fn registry_flow_with_basic_auth() {
    let Some(reg) = support::auth_registry() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    support::blueprint_dir(d, "flow", "0.9.0", &[]);
    ok(d, &["key", "generate", "--output-prefix", "k"]);
    let with_password = |args: &[&str]| -> (i32, String, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_catalyst"))
            .args(args)
            .args(["--username", support::USER, "--password-stdin"])
            .current_dir(d)
            .env("RUST_BACKTRACE", "0")
            .env("HOME", d)
            .env_remove("DOCKER_CONFIG")
            .env_remove("HELM_REGISTRY_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{}", support::PASSWORD).unwrap();
        let out = child.wait_with_output().unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert!(!o.contains(support::PASSWORD) && !e.contains(support::PASSWORD));
        (out.status.code().unwrap_or(-1), o, e)
    };
    let okp = |args: &[&str]| -> String {
        let (code, out, err) = with_password(args);
        assert_eq!(code, 0, "{args:?}\nstdout: {out}\nstderr: {err}");
        out
    };
    let repo = format!("{}/team/bp-flow", reg.addr);
    let pushed = okp(&["blueprint", "push", "flow", &repo]);
    let digest = pushed.trim().rsplit_once('@').unwrap().1.to_string();
    let tagged = format!("{repo}:0.9.0");
    // Without credentials the registry says no, and the error says how to log in.
    let (code, _, err) = run(d, &["blueprint", "sign", &tagged, "--key", "k.key"]);
    assert_eq!(code, 2);
    assert!(err.contains("authentication failed"), "{err}");

    okp(&["blueprint", "sign", &tagged, "--key", "k.key"]);
    let out = okp(&["blueprint", "verify", &tagged, "--key", "k.pub"]);
    assert!(out.contains(&digest), "{out}");
    okp(&["blueprint", "mirror", &repo, "oci:airgap"]);
    ok(
        d,
        &[
            "blueprint",
            "verify",
            "oci:airgap:bp-flow:0.9.0",
            "--key",
            "k.pub",
        ],
    );
    okp(&[
        "blueprint",
        "mirror",
        "oci:airgap",
        &format!("{}/mirrored", reg.addr),
    ]);
    let back = format!("{}/mirrored/bp-flow:0.9.0", reg.addr);
    let out = okp(&["blueprint", "verify", &back, "--key", "k.pub", "-o", "json"]);
    assert!(out.contains(&digest), "{out}");
    okp(&[
        "blueprint",
        "pull",
        &back,
        "-o",
        "pulled",
        "--chart",
        "flow.tgz",
    ]);
    // A layout entry pushes back as it is (tag and digest kept).
    let again = okp(&[
        "blueprint",
        "push",
        "oci:pulled:bp-flow:0.9.0",
        &format!("{}/again/bp-flow", reg.addr),
    ]);
    assert!(again.trim().ends_with(&digest), "{again}");
    ok(d, &["blueprint", "package", "flow", "-o", "local.tgz"]);
    assert_eq!(
        std::fs::read(d.join("flow.tgz")).unwrap(),
        std::fs::read(d.join("local.tgz")).unwrap()
    );
    let out = okp(&["blueprint", "inspect", &back, "--key", "k.pub"]);
    assert!(out.contains("ghcr.io/openova-io/demo:v1.0.0"), "{out}");

    // Credentials in the Docker config file are used for their host (the `auth` form `docker
    // login` writes is covered by the crate's unit tests).
    std::fs::create_dir_all(d.join(".docker")).unwrap();
    std::fs::write(
        d.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"username":"{}","password":"{}"}}}}}}"#,
            reg.addr,
            support::USER,
            support::PASSWORD
        ),
    )
    .unwrap();
    let out = ok(d, &["blueprint", "verify", &back, "--key", "k.pub"]);
    assert!(out.contains(&digest), "{out}");
}
