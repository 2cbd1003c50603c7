//! Test helpers: Blueprint folder fixtures and a private CNCF distribution registry (Debian's
//! `docker-registry`) per test binary, on a free loopback port with a temporary storage directory.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// User and password of the basic-auth registry.
pub const USER: &str = "catalyst";
/// Never printed by the code under test; tests scan errors for it.
pub const PASSWORD: &str = "pw-Zq81-never-logged";

/// Writes a Blueprint folder under `root/<name>` and returns its path.
pub fn blueprint_dir(root: &Path, name: &str, version: &str, extra: &[(&str, &str)]) -> PathBuf {
    let dir = root.join(name);
    let chart = dir.join("chart");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        dir.join("blueprint.yaml"),
        format!(
            "apiVersion: catalyst.openova.io/v1alpha1\nkind: Blueprint\nmetadata:\n  name: bp-{name}\nspec:\n  version: {version}\n  card:\n    title: {name}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: bp-{name}\nversion: {version}\ntype: application\nappVersion: \"2.0\"\n"),
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "image:\n  repository: ghcr.io/openova-io/demo\n  tag: v1.0.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
    )
    .unwrap();
    for (path, content) in extra {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    dir
}

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn find(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}

fn unavailable(reason: &str) -> Option<Registry> {
    catalyst_testkit::skip_or_fail(catalyst_testkit::Need::Registry, reason);
    None
}

fn start(with_auth: bool) -> Option<Registry> {
    let Some(bin) = find("docker-registry") else {
        return unavailable("docker-registry is not on PATH");
    };
    let dir = tempfile::tempdir().unwrap();
    let mut auth = String::new();
    if with_auth {
        let Some(htpasswd) = find("htpasswd") else {
            return unavailable("htpasswd (apache2-utils) is not on PATH");
        };
        let out = Command::new(htpasswd)
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .unwrap();
        assert!(out.status.success(), "htpasswd failed");
        std::fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
        auth = format!(
            "auth:\n  htpasswd:\n    realm: catalyst-test\n    path: {}\n",
            dir.path().join("htpasswd").display()
        );
    }
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: catalyst-test-only\n{auth}",
        dir.path().join("data").display()
    );
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, config).unwrap();
    // A watchdog shell ends the registry when this test binary exits (statics are never dropped).
    let script = format!(
        "'{}' serve '{}' >'{}' 2>&1 & r=$!; while kill -0 {} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 0.5; done; kill $r 2>/dev/null",
        bin.display(),
        cfg.display(),
        dir.path().join("registry.log").display(),
        std::process::id()
    );
    let child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(&addr).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
            panic!("docker-registry did not start on {addr}: {log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Registry {
        addr,
        _child: child,
        _dir: dir,
    })
}

impl Registry {
    /// The storage directory (for corrupting blobs on purpose).
    pub fn storage(&self) -> PathBuf {
        self._dir.path().join("data")
    }
}

/// The shared registry without auth, or `None` (skip) when the binary is missing.
pub fn open_registry() -> Option<&'static Registry> {
    static R: OnceLock<Option<Registry>> = OnceLock::new();
    R.get_or_init(|| start(false)).as_ref()
}

/// The shared registry behind htpasswd basic auth.
pub fn auth_registry() -> Option<&'static Registry> {
    static R: OnceLock<Option<Registry>> = OnceLock::new();
    R.get_or_init(|| start(true)).as_ref()
}
