//! Every `catalyst.openova.io` resource the write path commits is a valid object of its CRD
//! (`catalyst-crds`), checked the way the API server would: the version's structural schema,
//! unknown fields refused (the server would prune them), `apiVersion` and `kind` pinned.
use std::path::Path;
use std::sync::Arc;

use catalyst_blueprint::load::load_catalog;
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::{Actor, AppName, Call, EnvType, InstallRequest, OrgName, Repo, Sovereign};
use serde_json::{json, Value};

fn call(id: &str) -> Call {
    Call {
        actor: Actor {
            name: "alice".into(),
            email: "alice@acme.example".into(),
        },
        request_id: id.into(),
        dry_run: false,
        if_match: None,
    }
}

/// Pins a digest for `bp-db`, so a committed `catalyst.yaml` carries `blueprint.digest`.
struct PinDb;

impl catalyst_gitops::Admission for PinDb {
    fn admit(
        &self,
        blueprint: &str,
        _version: &str,
        _digest: Option<&str>,
    ) -> Result<Option<String>, catalyst_gitops::AdmissionError> {
        Ok((blueprint == "bp-db").then(|| format!("sha256:{}", "d".repeat(64))))
    }
}

fn sovereign(dir: &Path) -> Sovereign {
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/catalog");
    let (catalog, _) = load_catalog(&[(Source::Public, catalog)]).unwrap();
    Sovereign::open(dir.join("git"), Arc::new(catalog), RenderOptions::default())
        .unwrap()
        .with_admission(Arc::new(PinDb))
}

/// What the API server would refuse or prune in `doc`, by its own `apiVersion` and `kind`.
fn problems(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap_or_default();
    let Some(version) = doc["apiVersion"]
        .as_str()
        .and_then(|a| a.strip_prefix("catalyst.openova.io/"))
    else {
        return vec![format!(
            "apiVersion {} is not Catalyst's",
            doc["apiVersion"]
        )];
    };
    let Some(crd) = catalyst_crds::documents()
        .into_iter()
        .find(|c| c["spec"]["names"]["kind"] == kind)
    else {
        return vec![format!("no CRD for kind {kind:?}")];
    };
    let Some(schema) = catalyst_testkit::strict_crd_version_schema(&crd, version) else {
        return vec![format!("the {kind} CRD does not serve {version}")];
    };
    jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn parse(repo: &Repo, rev: &str, path: &str) -> Value {
    let bytes = repo.read(rev, path).unwrap().unwrap();
    catalyst_blueprint::yaml::parse_json(&String::from_utf8(bytes).unwrap()).unwrap()
}

/// Every resource committed: the YAML files of `system/catalyst-config` and the
/// `catalyst.yaml` of every Application on every branch, as `(where, document)`.
fn committed(s: &Sovereign, orgs: &[&OrgName]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let config = s.config();
    for path in config.list("main", None).unwrap() {
        assert!(path.ends_with(".yaml"), "system/catalyst-config/{path}");
        let doc = parse(&config, "main", &path);
        let ours = doc["apiVersion"]
            .as_str()
            .is_some_and(|a| a.starts_with("catalyst.openova.io/"));
        if !ours {
            // An Environment's Flux plumbing (environments/<org>-<env>/…: Namespace, Flux
            // sources, Kustomizations, notifications), held to Flux's CRDs by its own tests.
            let plumbing = path
                .strip_prefix("environments/")
                .is_some_and(|rest| rest.contains('/'));
            assert!(
                plumbing,
                "system/catalyst-config/{path} is not a Catalyst resource"
            );
            continue;
        }
        out.push((format!("system/catalyst-config/{path}"), doc));
    }
    for org in orgs {
        let mut names: Vec<String> = s
            .list_apps(org)
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names.dedup();
        for name in names {
            let name = AppName::parse(&name).unwrap();
            let repo = s.app_repo(org, &name);
            for branch in repo.branches().unwrap().keys() {
                out.push((
                    format!("{org}/{name}@{branch}:catalyst.yaml"),
                    parse(&repo, branch, "catalyst.yaml"),
                ));
            }
        }
    }
    out
}

/// An Organization with members, three Environments with every kind of policy rule, an
/// Application with two dependencies (one pinned by digest), an approval and a promotion, and
/// a second Organization created with nothing but its name.
fn populated(s: &Sovereign) -> (OrgName, OrgName) {
    let acme = OrgName::parse("acme").unwrap();
    let bare = OrgName::parse("globex").unwrap();
    s.create_org(
        &call("o1"),
        &acme,
        &json!({"displayName": "Acme Corp", "contact": "ops@acme.example", "plan": "small",
                "labels": {"tier": "regulated"}}),
    )
    .unwrap();
    s.create_org(&call("o2"), &bare, &json!({})).unwrap();
    s.set_member(&call("m1"), &acme, "dana", "org-developer")
        .unwrap();
    s.set_member(&call("m2"), &acme, "erin@acme.example", "security-officer")
        .unwrap();
    s.create_env(&call("e1"), &acme, EnvType::Dev, &json!([]))
        .unwrap();
    s.create_env(
        &call("e2"),
        &acme,
        EnvType::Stg,
        &json!([{"kind": "pr-required", "minApprovals": 1, "approvers": ["team-platform"]}]),
    )
    .unwrap();
    s.create_env(
        &call("e3"),
        &acme,
        EnvType::Prod,
        &json!([
            {"kind": "soak", "sourceEnvironment": "acme-stg", "duration": "72h"},
            {"kind": "change-window", "cron": "0 14 * * 2,4", "duration": "2h"},
            {"kind": "re-score-gate", "minScore": 80, "severity": "blocking"},
        ]),
    )
    .unwrap();
    s.install(
        &call("i1"),
        &acme,
        &InstallRequest {
            app: AppName::parse("web").unwrap(),
            env: EnvType::Dev,
            blueprint: "bp-shop".into(),
            values: json!({"replicas": 2}),
            use_existing: Default::default(),
            dependency_values: Default::default(),
        },
    )
    .unwrap();
    let db = AppName::parse("web-db").unwrap();
    s.approve(&call("a1"), &acme, &db, EnvType::Dev, EnvType::Stg)
        .unwrap();
    s.promote(&call("p1"), &acme, &db, EnvType::Dev, EnvType::Stg)
        .unwrap();
    (acme, bare)
}

#[test]
fn every_committed_resource_is_valid_against_its_crd() {
    let dir = tempfile::tempdir().unwrap();
    let s = sovereign(dir.path());
    let (acme, bare) = populated(&s);
    let docs = committed(&s, &[&acme, &bare]);
    let mut kinds: Vec<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "Application",
            "Environment",
            "EnvironmentPolicy",
            "Organization",
            "PromotionApprovals"
        ]
    );
    // 2 Organizations, 3 Environments + 3 policies, 1 approvals; 3 Applications on develop
    // and web-db on staging.
    assert_eq!(
        docs.len(),
        2 + 6 + 1 + 4,
        "{:#?}",
        docs.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    let mut failures = Vec::new();
    for (at, doc) in &docs {
        for p in problems(doc) {
            failures.push(format!("{at}: {p}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The fields that matter made it into the checked documents.
    let find = |at: &str| &docs.iter().find(|(w, _)| w == at).unwrap().1;
    let db = find("acme/web-db@develop:catalyst.yaml");
    assert!(db["spec"]["blueprint"]["digest"].is_string(), "{db}");
    let api = find("acme/web-api@develop:catalyst.yaml");
    assert_eq!(api["spec"]["dependsOn"][0]["application"], "web-db");
    assert!(api["spec"]["dependencies"].is_object(), "{api}");
    let approvals = find("system/catalyst-config/approvals/acme/web-db-stg.yaml");
    assert_eq!(approvals["spec"]["approvals"][0]["from"], "dev");
}

#[test]
fn a_renamed_or_mistyped_field_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = sovereign(dir.path());
    let (acme, bare) = populated(&s);
    let docs = committed(&s, &[&acme, &bare]);
    let find = |at: &str| docs.iter().find(|(w, _)| w == at).unwrap().1.clone();
    let rename = |doc: &Value, parent: &str, from: &str, to: &str| {
        let mut d = doc.clone();
        let o = d.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        let v = o.remove(from).unwrap();
        o.insert(to.to_string(), v);
        d
    };
    let env = find("system/catalyst-config/environments/acme-dev.yaml");
    let app = find("acme/web-api@develop:catalyst.yaml");
    let policy = find("system/catalyst-config/policies/acme-prod-policy.yaml");
    let org = find("system/catalyst-config/organizations/acme.yaml");
    let approvals = find("system/catalyst-config/approvals/acme/web-db-stg.yaml");
    let mut cases = vec![
        (
            "envType renamed",
            rename(&env, "/spec", "envType", "environmentType"),
        ),
        (
            "dependsOn renamed",
            rename(&app, "/spec", "dependsOn", "depends"),
        ),
        (
            "blueprint.version renamed",
            rename(&app, "/spec/blueprint", "version", "tag"),
        ),
        (
            "appliesTo renamed",
            rename(&policy, "/spec", "appliesTo", "applies"),
        ),
        ("members renamed", rename(&org, "/spec", "members", "users")),
    ];
    let mut set = |what: &'static str, doc: &Value, pointer: &str, v: Value| {
        let mut d = doc.clone();
        *d.pointer_mut(pointer).unwrap() = v;
        cases.push((what, d));
    };
    set("unknown env type", &env, "/spec/envType", json!("qa"));
    set(
        "branch not of an env type",
        &env,
        "/spec/branch",
        json!("master"),
    );
    set(
        "rule kind unknown",
        &policy,
        "/spec/rules/0/kind",
        json!("two-person"),
    );
    set(
        "duration in words",
        &policy,
        "/spec/rules/0/duration",
        json!("three days"),
    );
    set(
        "member role unknown",
        &org,
        "/spec/members/0/role",
        json!("owner"),
    );
    set(
        "contact not a string",
        &org,
        "/spec/contact",
        json!({"email": "x@y"}),
    );
    set(
        "commit not a commit id",
        &approvals,
        "/spec/approvals/0/commit",
        json!("HEAD"),
    );
    set(
        "version not semver",
        &app,
        "/spec/blueprint/version",
        json!("latest"),
    );
    set(
        "wrong apiVersion",
        &app,
        "/apiVersion",
        json!("catalyst.openova.io/v1"),
    );
    set("wrong kind", &app, "/kind", json!("Environment"));
    for (what, doc) in cases {
        assert!(!problems(&doc).is_empty(), "{what}: accepted {doc:#}");
    }
}

/// An Application's `status.phase` speaks the read side's App card statuses.
#[test]
fn application_phases_are_the_read_sides_statuses() {
    let schema = catalyst_crds::openapi_schema("Application", "v1alpha1").unwrap();
    let phases = &schema["properties"]["status"]["properties"]["phase"]["enum"];
    let mut ours: Vec<&str> = phases
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let mut read_side: Vec<&str> = catalyst_spine::projection::AppStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    ours.sort();
    read_side.sort();
    assert_eq!(ours, read_side);
}

#[test]
fn an_organization_the_crd_would_refuse_is_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let s = sovereign(dir.path());
    let org = OrgName::parse("acme").unwrap();
    for (spec, needle) in [
        (json!({"contact": {"email": "ops@acme.example"}}), "contact"),
        (json!({"plan": 5}), "plan"),
        (json!({"labels": {"tier": 1}}), "labels"),
    ] {
        let err = s.create_org(&call("r-bad"), &org, &spec).unwrap_err();
        assert!(
            matches!(&err, catalyst_gitops::GitopsError::Invalid(m) if m.contains(needle)),
            "{err:?}"
        );
    }
    assert!(
        s.config().head("main").unwrap().is_none(),
        "nothing written"
    );
    s.create_org(
        &call("r-ok"),
        &org,
        &json!({"contact": "ops@acme.example", "labels": {"tier": "gold"}}),
    )
    .unwrap();
}
