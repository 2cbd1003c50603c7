//! `system/catalyst-config`: one YAML resource per Organization, Environment and
//! EnvironmentPolicy (`apiVersion: catalyst.openova.io/v1alpha1`). Pure: documents and paths.
use serde_json::{json, Value};

use crate::names::{env_name, EnvType, OrgName};
use crate::API_VERSION;

/// Path of an Organization resource.
pub fn org_path(org: &OrgName) -> String {
    format!("organizations/{org}.yaml")
}

/// Path of an Environment resource.
pub fn env_path(org: &OrgName, env: EnvType) -> String {
    format!("environments/{}.yaml", env_name(org, env))
}

/// Path of an EnvironmentPolicy resource (reference architecture §1.4).
pub fn policy_path(org: &OrgName, env: EnvType) -> String {
    format!("policies/{}-policy.yaml", env_name(org, env))
}

/// Path of the promotion approvals of an Application into an env type.
pub fn approvals_path(org: &OrgName, app: &str, env: EnvType) -> String {
    format!("approvals/{org}/{app}-{env}.yaml")
}

fn meta(name: &str, org: &OrgName) -> Value {
    json!({
        "name": name,
        "namespace": "catalyst-system",
        "labels": { "catalyst.openova.io/organization": org.as_str() },
    })
}

/// An Organization resource.
pub fn organization(org: &OrgName, spec: Value) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Organization",
        "metadata": meta(org.as_str(), org),
        "spec": spec,
    })
}

/// An Environment resource.
pub fn environment(org: &OrgName, env: EnvType) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Environment",
        "metadata": meta(&env_name(org, env), org),
        "spec": {
            "organization": org.as_str(),
            "envType": env.as_str(),
            "branch": env.branch(),
        },
    })
}

/// An EnvironmentPolicy resource with `rules` (each `{kind: pr-required|soak|change-window, …}`).
pub fn policy(org: &OrgName, env: EnvType, rules: Value) -> Value {
    let name = env_name(org, env);
    json!({
        "apiVersion": API_VERSION,
        "kind": "EnvironmentPolicy",
        "metadata": meta(&format!("{name}-policy"), org),
        "spec": {
            "appliesTo": { "environments": [name] },
            "rules": rules,
        },
    })
}
