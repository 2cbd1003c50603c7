//! Shared by `tests/push.rs` and `benches/push.rs`: a Sovereign (with a spine) holding
//! `acme/orders-db` (bp-postgres 1.2.0 from `examples/catalog`) in `acme-dev`, and pushes to
//! it built by a real `git` in a private working copy (commit, then `pack-objects --thin`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::{Actor, AppName, Call, EnvType, InstallRequest, OrgName, Sovereign};
use serde_json::json;

pub const APP: &str = "orders-db";

pub fn call(actor: &str, id: String, if_match: Option<String>) -> Call {
    Call {
        actor: Actor {
            name: actor.into(),
            email: format!("{actor}@acme.example"),
        },
        request_id: id,
        dry_run: false,
        if_match,
    }
}

/// The Sovereign under `dir`, `acme-dev` with `orders-db` at `storageGi: 10`.
pub fn sovereign(dir: &Path) -> Sovereign {
    let catalog_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog");
    let (catalog, _) = load_catalog(&[(Source::Public, catalog_dir)]).expect("catalog");
    let (log, _) = catalyst_spine::FileLog::open(dir.join("events")).expect("spine");
    let s = Sovereign::open_with_spine(
        dir.join("git"),
        Arc::new(catalog),
        RenderOptions::default(),
        Some(Arc::new(log)),
    )
    .expect("open");
    let org = org();
    s.create_org(&call("admin", "org".into(), None), &org, &json!({}))
        .expect("org");
    s.create_env(
        &call("admin", "env".into(), None),
        &org,
        EnvType::Dev,
        &json!([]),
    )
    .expect("env");
    let req = InstallRequest {
        app: AppName::parse(APP).expect("name"),
        env: EnvType::Dev,
        blueprint: "bp-postgres@1.2.0".into(),
        values: json!({"storageGi": 10}),
        use_existing: Default::default(),
        dependency_values: Default::default(),
    };
    s.install(&call("admin", "install".into(), None), &org, &req)
        .expect("install");
    s
}

pub fn org() -> OrgName {
    OrgName::parse("acme").expect("org")
}

pub fn bare(s: &Sovereign) -> PathBuf {
    s.root().join("acme").join(format!("{APP}.git"))
}

pub fn git(dir: &Path, args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Dana")
        .env("GIT_AUTHOR_EMAIL", "dana@acme.example")
        .env("GIT_COMMITTER_NAME", "Dana")
        .env("GIT_COMMITTER_EMAIL", "dana@acme.example")
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("git runs");
    if let (Some(bytes), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write;
        stdin.write_all(bytes).expect("stdin");
    }
    let out = child.wait_with_output().expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A working copy of `develop` of the served repository.
pub fn working_copy(s: &Sovereign, at: &Path) -> PathBuf {
    let src = bare(s);
    git(
        at.parent().unwrap(),
        &[
            "clone",
            "--quiet",
            "--branch",
            "develop",
            src.to_str().unwrap(),
            at.to_str().unwrap(),
        ],
        None,
    );
    at.to_path_buf()
}

fn pkt(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(format!("{:04x}", s.len() + 4).as_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Sets `storageGi` to `size` in `values.yaml` and the rendered HelmRelease on top of the
/// working copy's HEAD (after fetching the served `develop` when `fetch`), commits, and
/// returns (old, new, the receive-pack request body).
pub fn values_push(
    s: &Sovereign,
    work: &Path,
    size: u32,
    fetch: bool,
) -> (String, String, Vec<u8>) {
    if fetch {
        let src = bare(s);
        git(
            work,
            &["fetch", "--quiet", src.to_str().unwrap(), "develop"],
            None,
        );
        git(work, &["reset", "--quiet", "--hard", "FETCH_HEAD"], None);
    }
    let old = String::from_utf8(git(work, &["rev-parse", "HEAD"], None))
        .unwrap()
        .trim()
        .to_owned();
    for f in ["values.yaml", "flux/helmrelease.yaml"] {
        let p = work.join(f);
        let text = std::fs::read_to_string(&p).unwrap();
        let out: Vec<String> = text
            .lines()
            .map(|l| match l.find("storageGi: ") {
                Some(i) => format!("{}storageGi: {size}", &l[..i]),
                None => l.to_owned(),
            })
            .collect();
        std::fs::write(&p, out.join("\n") + "\n").unwrap();
    }
    git(
        work,
        &["commit", "--quiet", "-am", &format!("storageGi {size}")],
        None,
    );
    let new = String::from_utf8(git(work, &["rev-parse", "HEAD"], None))
        .unwrap()
        .trim()
        .to_owned();
    let pack = git(
        work,
        &["pack-objects", "--stdout", "--revs", "--thin", "--quiet"],
        Some(format!("{new}\n^{old}\n").as_bytes()),
    );
    let mut body = Vec::new();
    pkt(
        &mut body,
        &format!("{old} {new} refs/heads/develop\0report-status side-band-64k quiet\n"),
    );
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&pack);
    (old, new, body)
}

/// True when the response accepts `refs/heads/develop`.
pub fn accepted(response: &[u8]) -> bool {
    let text = String::from_utf8_lossy(response);
    if text.contains("ok refs/heads/develop") {
        return true;
    }
    assert!(
        text.contains("ng refs/heads/develop"),
        "neither ok nor ng: {text}"
    );
    false
}
