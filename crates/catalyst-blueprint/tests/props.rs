//! Property tests over generated catalogs: a plan is a topological order of exactly the reachable
//! set and satisfies every constraint; a conflict is only reported when no solution exists;
//! cycles are reported; nothing loops or panics.

use std::collections::{BTreeMap, BTreeSet};

use catalyst_blueprint::catalog::{Catalog, Entry, Source};
use catalyst_blueprint::resolve::{resolve_plan, Options, Request, ResolveError};
use catalyst_blueprint::{Blueprint, BlueprintName, VersionRange};
use proptest::prelude::*;
use semver::Version;

#[derive(Debug, Clone)]
struct GenVersion {
    version: (u64, u64),
    deps: Vec<(usize, String)>,
}

fn range_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        (0u64..3).prop_map(|m| format!("^{m}")),
        (0u64..3, 0u64..3).prop_map(|(m, n)| format!("~{m}.{n}")),
        (0u64..3, 0u64..3).prop_map(|(m, n)| format!(">={m}.{n} <{}", m + 2)),
        (0u64..3, 0u64..3).prop_map(|(m, n)| format!("{m}.{n}.0")),
        (0u64..3, 0u64..3).prop_map(|(a, b)| format!("^{a} || ^{b}")),
    ]
}

/// `names` Blueprints (index 0..names; indexes >= names are never published), each with 1–3
/// versions depending on up to 3 others (itself included, so cycles happen).
fn catalog_strategy() -> impl Strategy<Value = Vec<Vec<GenVersion>>> {
    (2usize..7).prop_flat_map(|names| {
        let version = (
            (0u64..3, 0u64..3),
            prop::collection::vec((0..names + 1, range_strategy()), 0..3),
        )
            .prop_map(|(version, deps)| GenVersion { version, deps });
        prop::collection::vec(prop::collection::vec(version, 1..4), names)
    })
}

fn name(i: usize) -> BlueprintName {
    BlueprintName::parse(&format!("n{i}")).unwrap()
}

fn build(spec: &[Vec<GenVersion>]) -> Catalog {
    let mut c = Catalog::new();
    for (i, versions) in spec.iter().enumerate() {
        for v in versions {
            let deps: String = v
                .deps
                .iter()
                .map(|(d, r)| format!("    - {{blueprint: n{d}, version: \"{r}\"}}\n"))
                .collect();
            let text = format!(
                "apiVersion: catalyst.openova.io/v1\nkind: Blueprint\nmetadata: {{name: n{i}}}\nspec:\n  version: {}.{}.0\n  depends:\n{}",
                v.version.0,
                v.version.1,
                if deps.is_empty() { "    []\n".to_string() } else { deps }
            );
            let bp = Blueprint::from_yaml(&text).unwrap();
            // Duplicate versions are generated sometimes; the first one wins.
            let _ = c.insert(Entry {
                blueprint: bp,
                source: Source::Public,
                file: String::new(),
            });
        }
    }
    c
}

/// Brute force: is there any assignment (a version or nothing per Blueprint) that satisfies the
/// requests and is closed under dependencies (unpublished names may stay missing)?
fn solvable(c: &Catalog, names: usize, requests: &[Request]) -> bool {
    let options: Vec<Vec<Option<Version>>> = (0..names)
        .map(|i| {
            let mut o = vec![None];
            o.extend(
                c.versions_of(&name(i))
                    .iter()
                    .map(|e| Some(e.blueprint.version.clone())),
            );
            o
        })
        .collect();
    let mut idx = vec![0usize; names];
    loop {
        let pick: BTreeMap<BlueprintName, &Version> = (0..names)
            .filter_map(|i| options[i][idx[i]].as_ref().map(|v| (name(i), v)))
            .collect();
        let ok = requests
            .iter()
            .all(|r| pick.get(&r.name).is_some_and(|v| r.range.matches(v)))
            && pick.iter().all(|(n, v)| {
                let e = c
                    .versions_of(n)
                    .iter()
                    .find(|e| &&e.blueprint.version == v)
                    .unwrap();
                e.blueprint.depends.iter().all(|d| {
                    c.versions_of(&d.blueprint).is_empty()
                        || pick
                            .get(&d.blueprint)
                            .is_some_and(|dv| d.version.matches(dv))
                })
            });
        if ok {
            return true;
        }
        // Next combination.
        let mut k = 0;
        loop {
            if k == names {
                return false;
            }
            idx[k] += 1;
            if idx[k] < options[k].len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn plans_are_sound_and_conflicts_are_real(
        spec in catalog_strategy(),
        picks in prop::collection::vec((0usize..6, range_strategy()), 1..3),
    ) {
        let names = spec.len();
        let catalog = build(&spec);
        let requests: Vec<Request> = picks
            .iter()
            .map(|(i, r)| Request { name: name(i % names), range: VersionRange::parse(r).unwrap() })
            .collect();
        match resolve_plan(&catalog, &requests, &Options::default()) {
            Ok(plan) => {
                let chosen: BTreeMap<&BlueprintName, &Version> = plan.iter().map(|p| (&p.name, &p.version)).collect();
                prop_assert_eq!(chosen.len(), plan.iter().count(), "one version per Blueprint");
                for r in &requests {
                    prop_assert!(chosen.get(&r.name).is_some_and(|v| r.range.matches(v)), "request {} unmet", r);
                }
                // Topological: every dependency sits in an earlier layer.
                let layer_of: BTreeMap<&BlueprintName, usize> = plan
                    .layers.iter().enumerate()
                    .flat_map(|(i, l)| l.iter().map(move |p| (&p.name, i)))
                    .collect();
                let mut reachable: BTreeSet<&BlueprintName> = requests.iter().map(|r| &r.name).collect();
                for p in plan.iter() {
                    let e = catalog.versions_of(&p.name).iter().find(|e| e.blueprint.version == p.version).unwrap();
                    for d in &e.blueprint.depends {
                        reachable.insert(&d.blueprint);
                        match chosen.get(&d.blueprint) {
                            Some(v) => {
                                prop_assert!(d.version.matches(v), "{} needs {} {} but got {}", p.name, d.blueprint, d.version, v);
                                prop_assert!(layer_of[&d.blueprint] < layer_of[&p.name]);
                            }
                            None => prop_assert!(plan.missing.iter().any(|m| m.name == d.blueprint)),
                        }
                    }
                }
                // Exactly the reachable set: planned ∪ missing.
                let planned: BTreeSet<&BlueprintName> = chosen.keys().copied().chain(plan.missing.iter().map(|m| &m.name)).collect();
                prop_assert_eq!(planned, reachable);
            }
            Err(ResolveError::Cycle { path }) => {
                prop_assert!(path.len() >= 2);
                prop_assert_eq!(path.first(), path.last());
            }
            Err(ResolveError::Conflict(c)) => {
                prop_assert!(!c.sides.is_empty());
                prop_assert!(!solvable(&catalog, names, &requests), "a solution exists but the resolver reported:\n{}", ResolveError::Conflict(c));
            }
            Err(e @ ResolveError::TooComplex { .. }) => prop_assert!(false, "budget exhausted on a tiny catalog: {e}"),
        }
    }
}

const VALID: &str = "apiVersion: catalyst.openova.io/v1alpha1\nkind: Blueprint\nmetadata:\n  name: bp-x\nspec:\n  version: 1.0.0\n  card: {title: X, summary: s}\n  visibility: listed\n  configSchema:\n    type: object\n    properties:\n      n: {type: integer, default: 1}\n  placementSchema: {modes: [single-region], default: single-region, minRegions: 1, maxRegions: 2}\n  depends:\n    - bp-y\n    - {blueprint: z, version: ^1, alias: z, when: \"{{ .n == 1 }}\"}\n  upgrades: {from: [0.x], blocks: [1.0.x]}\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Lint and fmt never panic, whatever the bytes.
    #[test]
    fn lint_never_panics(edits in prop::collection::vec((0usize..400, "[ -~\n]{0,6}"), 0..6), junk in ".{0,80}") {
        let mut text = VALID.to_string();
        for (at, insert) in &edits {
            let mut at = (*at).min(text.len());
            while !text.is_char_boundary(at) { at -= 1; }
            text.insert_str(at, insert);
        }
        for t in [text.as_str(), junk.as_str()] {
            let f = catalyst_blueprint::lint::LintFile { file: "f".into(), text: t.to_string(), chart: Some(("c".into(), t.to_string())) };
            let _ = catalyst_blueprint::lint::lint(&[f], &Catalog::new());
            if let Ok(bp) = Blueprint::from_yaml(t) {
                let again = Blueprint::from_yaml(&bp.to_canonical_yaml());
                prop_assert!(again.is_ok(), "canonical form of a valid Blueprint must parse: {:?}", again.err());
            }
        }
    }
}
