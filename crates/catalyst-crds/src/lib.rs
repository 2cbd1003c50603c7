//! Catalyst's CustomResourceDefinitions, `catalyst.openova.io`, generated from the Rust types
//! in this crate (kube's `CustomResource` derive and schemars), never kept by hand.
//!
//! The types describe exactly what Catalyst commits: [`config`] (Organization, Environment,
//! EnvironmentPolicy, PromotionApprovals in `system/catalyst-config`), [`application`] (each
//! Application repository's `catalyst.yaml`), [`blueprint`] (catalog entries in canonical form)
//! and [`sovereign`]. `catalyst crds` prints [`documents`]; the write path's tests validate every
//! file it commits against [`openapi_schema`].
//!
//! Pure: no IO, no YAML (callers serialize the documents).
#![forbid(unsafe_code)]

pub mod application;
pub mod blueprint;
pub mod config;
pub mod schema;
pub mod sovereign;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value};

pub use application::{Application, ApplicationSpec, ApplicationStatus};
pub use blueprint::{Blueprint, BlueprintSpec};
pub use config::{
    Environment, EnvironmentPolicy, EnvironmentPolicySpec, EnvironmentSpec, Organization,
    OrganizationSpec, PromotionApprovals, PromotionApprovalsSpec,
};
pub use sovereign::{Sovereign, SovereignSpec, SovereignStatus};

/// The API group.
pub const GROUP: &str = "catalyst.openova.io";
/// The version every Catalyst resource is written in and stored as.
pub const VERSION: &str = "v1alpha1";
/// The other version the Blueprint CRD serves (the catalog dialect `catalyst blueprint fmt`
/// writes; same schema, conversion `None`).
pub const BLUEPRINT_V1: &str = "v1";

/// Every CRD, in containment order: Sovereign, Organization, Environment, EnvironmentPolicy,
/// PromotionApprovals, Application, Blueprint.
pub fn definitions() -> Vec<CustomResourceDefinition> {
    vec![
        Sovereign::crd(),
        Organization::crd(),
        Environment::crd(),
        EnvironmentPolicy::crd(),
        PromotionApprovals::crd(),
        Application::crd(),
        blueprint_crd(),
    ]
}

/// The Blueprint CRD: `v1alpha1` (stored) and `v1` (served), one schema.
fn blueprint_crd() -> CustomResourceDefinition {
    let mut crd = Blueprint::crd();
    let mut v1 = crd.spec.versions[0].clone();
    v1.name = BLUEPRINT_V1.to_string();
    v1.storage = false;
    crd.spec.versions.push(v1);
    crd
}

/// [`definitions`] as JSON documents with their keys sorted, so any serialization of them
/// (YAML or JSON) is stable byte for byte.
pub fn documents() -> Vec<Value> {
    definitions()
        .iter()
        .map(|crd| {
            // A CRD is plain data with string keys: it always serializes.
            sorted(serde_json::to_value(crd).unwrap_or(Value::Null))
        })
        .collect()
}

/// The `openAPIV3Schema` of `kind` at `version` (`None` when no CRD serves it).
pub fn openapi_schema(kind: &str, version: &str) -> Option<Value> {
    documents().into_iter().find_map(|crd| {
        if crd["spec"]["names"]["kind"] != kind {
            return None;
        }
        crd["spec"]["versions"]
            .as_array()?
            .iter()
            .find(|v| v["name"] == version)
            .map(|v| v["schema"]["openAPIV3Schema"].clone())
    })
}

/// The `openAPIV3Schema` of the CRD's served `version` (`None` when it serves no such version),
/// made strict the way the API server behaves: objects with `properties` reject unknown fields
/// (the server would prune them silently: the `disableTakeOwnership` incident) unless they
/// preserve unknown fields; `apiVersion` must be the CRD's group and that version, `kind` the
/// CRD's kind, and `metadata` an object (the server checks it as ObjectMeta, whether or not the
/// schema names it). `x-kubernetes-*` keys are not JSON Schema keywords and are left to be
/// ignored.
pub fn strict_version_schema(crd: &Value, version: &str) -> Option<Value> {
    use serde_json::{json, Value};
    fn strict(schema: &mut Value) {
        let Some(obj) = schema.as_object_mut() else {
            return;
        };
        let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        if obj.contains_key("properties") && !preserve && !obj.contains_key("additionalProperties")
        {
            obj.insert("additionalProperties".into(), json!(false));
        }
        for (_, v) in obj.iter_mut() {
            match v {
                Value::Object(_) => strict(v),
                Value::Array(items) => items.iter_mut().for_each(strict),
                _ => {}
            }
        }
    }
    let served = crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == version && v["served"] == json!(true))?;
    let mut schema = served["schema"]["openAPIV3Schema"].clone();
    strict(&mut schema);
    schema["properties"]["apiVersion"] = json!({"const": format!(
        "{}/{}",
        crd["spec"]["group"].as_str().unwrap_or_default(),
        version
    )});
    schema["properties"]["kind"] = json!({"const": crd["spec"]["names"]["kind"]});
    if schema["properties"].get("metadata").is_none() {
        schema["properties"]["metadata"] = json!({"type": "object"});
    }
    Some(schema)
}

fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}
