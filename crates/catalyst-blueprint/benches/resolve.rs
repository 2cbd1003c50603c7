//! Resolver and lint benchmarks (harness = false; prints medians).
//!
//! `cargo bench -p catalyst-blueprint --bench resolve`
//!
//! - resolve: a synthetic catalog of 10 000 Blueprints × 5 versions, in 500 chains 20 deep; each
//!   Blueprint depends on the next two in its chain and on one of a shared 20-deep library chain
//!   (diamonds everywhere); requests pin `^1` so the search has to skip the 2.x versions.
//! - lint: the 48-file upstream catalog (`upstream-b8d7a8b` in `$CATALYST_UPSTREAM_CORPUS`,
//!   default `../shared/fixtures/blueprints`; left out when absent).

use std::path::Path;
use std::time::{Duration, Instant};

use catalyst_blueprint::catalog::{Catalog, Entry, Source};
use catalyst_blueprint::lint::lint;
use catalyst_blueprint::load::read_all;
use catalyst_blueprint::resolve::{resolve_plan, Options, Request};
use catalyst_blueprint::Blueprint;

const CHAINS: usize = 500;
const DEPTH: usize = 20;
const VERSIONS: [&str; 5] = ["1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0"];

fn name(chain: usize, depth: usize) -> String {
    format!("c{chain}-d{depth}")
}

fn synthetic() -> Catalog {
    let mut c = Catalog::new();
    for chain in 0..CHAINS {
        for depth in 0..DEPTH {
            for v in VERSIONS {
                let major = &v[..1];
                let mut deps = String::new();
                for step in [1, 2] {
                    if depth + step < DEPTH {
                        let range = if step == 1 {
                            format!("^{major}")
                        } else {
                            format!(">={major}.1 <{}", major.parse::<u32>().unwrap_or(1) + 1)
                        };
                        deps.push_str(&format!(
                            "    - {{blueprint: {}, version: \"{range}\"}}\n",
                            name(chain, depth + step)
                        ));
                    }
                }
                // Chain 0 is the shared library everyone else leans on.
                if chain != 0 {
                    deps.push_str(&format!(
                        "    - {{blueprint: {}, version: \"^{major}\"}}\n",
                        name(0, depth)
                    ));
                }
                let text = format!(
                    "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {{name: {}}}\nspec:\n  version: {v}\n  depends:\n{}",
                    name(chain, depth),
                    if deps.is_empty() { "    []\n".to_string() } else { deps }
                );
                let bp = Blueprint::from_yaml(&text).expect("synthetic Blueprint");
                c.insert(Entry {
                    blueprint: bp,
                    source: Source::Public,
                    file: String::new(),
                })
                .expect("unique");
            }
        }
    }
    c
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    let samples = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    median(samples)
}

fn main() {
    let t = Instant::now();
    let catalog = synthetic();
    println!(
        "synthetic catalog: {} Blueprint versions built in {:?}",
        catalog.len(),
        t.elapsed()
    );

    let one = vec![Request::parse(&format!("{}@^1", name(7, 0))).expect("request")];
    let plan = resolve_plan(&catalog, &one, &Options::default()).expect("resolves");
    let n = plan.iter().count();
    let d = time(51, || resolve_plan(&catalog, &one, &Options::default()));
    println!("resolve 1 root (chain 20 deep + shared chain, {n} Blueprints, {} layers): median {d:?} over 51 runs", plan.layers.len());

    let many: Vec<Request> = (1..=50)
        .map(|c| Request::parse(&format!("{}@^1", name(c * 9, 0))).expect("request"))
        .collect();
    let plan = resolve_plan(&catalog, &many, &Options::default()).expect("resolves");
    let n = plan.iter().count();
    let d = time(21, || resolve_plan(&catalog, &many, &Options::default()));
    println!(
        "resolve 50 roots ({n} Blueprints, {} layers): median {d:?} over 21 runs",
        plan.layers.len()
    );

    // A conflict deep in the shared chain: the request wants 2.x of a library Blueprint that
    // every 1.x dependent pins to ^1. The resolver has to prove there is no way out and explain it.
    let conflict = vec![
        Request::parse(&format!("{}@^1", name(7, 0))).expect("request"),
        Request::parse(&format!("{}@^2", name(0, 10))).expect("request"),
    ];
    let err = resolve_plan(&catalog, &conflict, &Options::default()).expect_err("conflict");
    let d = time(21, || {
        resolve_plan(&catalog, &conflict, &Options::default())
    });
    println!(
        "resolve with a conflict ({}): median {d:?} over 21 runs",
        err.to_string().lines().next().unwrap_or("")
    );

    let upstream = std::env::var_os("CATALYST_UPSTREAM_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/blueprints")
        })
        .join("upstream-b8d7a8b");
    if upstream.is_dir() {
        let roots = [upstream.to_path_buf()];
        let files = read_all(&roots).expect("read upstream");
        let d = time(51, || lint(&files, &Catalog::new()));
        println!(
            "lint upstream-b8d7a8b ({} files, in memory): median {d:?} over 51 runs",
            files.len()
        );
        let d = time(51, || {
            lint(&read_all(&roots).expect("read"), &Catalog::new())
        });
        println!(
            "lint upstream-b8d7a8b ({} files, read + lint): median {d:?} over 51 runs",
            files.len()
        );
    } else {
        println!("lint: skipped, {} is absent", upstream.display());
    }
}
