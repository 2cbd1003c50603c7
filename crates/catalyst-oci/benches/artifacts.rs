//! Package + push + sign of 50 generated Blueprints with 1 MiB charts, then verify throughput
//! (harness = false; prints medians of 3 runs).
//!
//! `cargo bench -p catalyst-oci --bench artifacts`
//!
//! Against a private `docker-registry` on loopback (skipped when it is not installed) and against
//! an image-layout directory under `target/bench-tmp`. Chart content is incompressible, so each
//! chart layer really is ~1 MiB on the wire.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use catalyst_oci::layout::{Layout, LayoutRepo};
use catalyst_oci::package::package_dir;
use catalyst_oci::policy::verify_digest;
use catalyst_oci::registry::{RegistryClient, RegistryRepo};
use catalyst_oci::sign::{sign, SigningKey};
use catalyst_oci::store::Repo;
use catalyst_oci::transfer::push_package;
use catalyst_oci::{Digest, TrustPolicy};

const COUNT: usize = 50;
const CHART_BYTES: usize = 1024 * 1024;
const RUNS: usize = 3;

/// Deterministic incompressible bytes (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn generate(root: &Path) -> Vec<PathBuf> {
    (0..COUNT)
        .map(|i| {
            let dir = support::blueprint_dir(root, &format!("bench{i}"), "1.0.0", &[]);
            std::fs::write(
                dir.join("chart/files.bin"),
                noise(i as u64 + 1, CHART_BYTES),
            )
            .unwrap();
            dir
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn publish(
    dirs: &[PathBuf],
    repo_for: &dyn Fn(usize) -> Box<dyn Repo>,
    key: &SigningKey,
) -> (f64, Vec<(Box<dyn Repo>, Digest)>) {
    let start = Instant::now();
    let mut out = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let pkg = package_dir(dir).unwrap();
        let repo = repo_for(i);
        let d = push_package(&pkg, repo.as_ref(), None).await.unwrap();
        sign(repo.as_ref(), &d, key).await.unwrap();
        out.push((repo, d));
    }
    (start.elapsed().as_secs_f64(), out)
}

async fn verify_all(items: &[(Box<dyn Repo>, Digest)], policy: &TrustPolicy) -> f64 {
    let start = Instant::now();
    for (repo, d) in items {
        verify_digest(repo.as_ref(), d, policy).await.unwrap();
    }
    items.len() as f64 / start.elapsed().as_secs_f64()
}

async fn scenario(name: &str, dirs: &[PathBuf], repo_for: &dyn Fn(usize, usize) -> Box<dyn Repo>) {
    let key = SigningKey::generate();
    let policy = TrustPolicy {
        keys: vec![key.public_key()],
        bundles: vec![],
    };
    let mut publish_s = Vec::new();
    let mut verify_ps = Vec::new();
    for run in 0..RUNS {
        let (secs, items) = publish(dirs, &|i| repo_for(run, i), &key).await;
        publish_s.push(secs);
        verify_ps.push(verify_all(&items, &policy).await);
    }
    println!(
        "{name}: package+push+sign {COUNT} × 1 MiB: median {:.2} s ({:.1} Blueprints/s); runs {:?}",
        median(publish_s.clone()),
        COUNT as f64 / median(publish_s.clone()),
        publish_s
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
    );
    println!(
        "{name}: verify (every blob re-hashed + signature): median {:.1} artifacts/s; runs {:?}",
        median(verify_ps.clone()),
        verify_ps
            .iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
    );
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp/oci");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let dirs = generate(&root.join("src"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Signing alone: the cryptography, without IO.
        let key = SigningKey::generate();
        let public = key.public_key();
        let n = 2000;
        let start = Instant::now();
        let sigs: Vec<_> = (0..n)
            .map(|i| key.sign(format!("payload {i}").as_bytes()))
            .collect();
        let sign_ps = n as f64 / start.elapsed().as_secs_f64();
        let start = Instant::now();
        for (i, s) in sigs.iter().enumerate() {
            assert!(public.verify(format!("payload {i}").as_bytes(), s));
        }
        let verify_ps = n as f64 / start.elapsed().as_secs_f64();
        println!("ECDSA P-256 alone: {sign_ps:.0} signatures/s, {verify_ps:.0} verifications/s");

        let start = Instant::now();
        for dir in &dirs {
            package_dir(dir).unwrap();
        }
        println!(
            "package alone: {:.1} Blueprints/s ({COUNT} × 1 MiB, read + tar + gzip + hash)",
            COUNT as f64 / start.elapsed().as_secs_f64()
        );

        let layout_root = root.clone();
        scenario("layout", &dirs, &move |run, i| {
            let layout = Layout::create(&layout_root.join(format!("layout-{run}"))).unwrap();
            Box::new(LayoutRepo::new(layout, &format!("bp-bench{i}")))
        })
        .await;
        match support::open_registry() {
            Some(reg) => {
                let addr = reg.addr.clone();
                let client = RegistryClient::default();
                scenario("registry", &dirs, &move |run, i| {
                    Box::new(RegistryRepo::new(
                        client.clone(),
                        &addr,
                        &format!("bench{run}/bp-bench{i}"),
                    ))
                })
                .await;
            }
            None => println!("registry: skipped (docker-registry not installed)"),
        }
    });
    let _ = std::fs::remove_dir_all(&root);
}
