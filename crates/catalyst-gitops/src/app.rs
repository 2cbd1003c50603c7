//! What an Application repository holds on one env branch: a pure function from the
//! Application's description to files.
//!
//! Layout (one repository per Application, `<org>/<app>`, a branch per env type):
//! `catalyst.yaml` (the `Application` resource), `kustomization.yaml` (root kustomization; pins
//! the Blueprint version), `values.yaml`, `overlays/<env_type>/values.yaml`,
//! `flux/ocirepository.yaml` + `flux/helmrelease.yaml` (rendered by the Blueprint engine),
//! `CODEOWNERS`.
use std::collections::BTreeMap;

use catalyst_blueprint::render::{render, RenderError, RenderOptions};
use catalyst_blueprint::resolve::{merge, Plan, Planned};
use catalyst_blueprint::{BlueprintName, Source};
use semver::Version;
use serde_json::{json, Value};

use crate::names::{env_name, AppName, EnvType, OrgName};
use crate::{yaml, GitopsError, ValueProblem, API_VERSION};

/// A link to another Application this one waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepRef {
    /// The Application depended on.
    pub application: String,
    /// Its Blueprint.
    pub blueprint: String,
    /// The alias the dependent's chart sees it under.
    pub alias: Option<String>,
}

/// One Application on one env branch.
#[derive(Debug, Clone, PartialEq)]
pub struct AppDoc {
    /// Organization.
    pub org: OrgName,
    /// Application (repository) name.
    pub app: AppName,
    /// Env type of the branch.
    pub env: EnvType,
    /// Blueprint.
    pub blueprint: BlueprintName,
    /// Pinned version.
    pub version: Version,
    /// Artifact digest, when the catalog knows it (then the source pins by digest).
    pub digest: Option<String>,
    /// Applications this one depends on.
    pub depends_on: Vec<DepRef>,
    /// Outputs of dependencies passed to the chart under `values.dependencies.<alias>`.
    pub dependencies: Value,
}

impl AppDoc {
    /// The `Application` resource.
    pub fn resource(&self) -> Value {
        let mut spec = json!({
            "organization": self.org.as_str(),
            "environment": env_name(&self.org, self.env),
            "blueprint": { "name": self.blueprint.as_str(), "version": self.version.to_string() },
        });
        if let Some(d) = &self.digest {
            spec["blueprint"]["digest"] = json!(d);
        }
        if !self.depends_on.is_empty() {
            spec["dependsOn"] = Value::Array(
                self.depends_on
                    .iter()
                    .map(|d| {
                        let mut v =
                            json!({ "application": d.application, "blueprint": d.blueprint });
                        if let Some(a) = &d.alias {
                            v["alias"] = json!(a);
                        }
                        v
                    })
                    .collect(),
            );
        }
        if self.dependencies.as_object().is_some_and(|m| !m.is_empty()) {
            spec["dependencies"] = self.dependencies.clone();
        }
        json!({
            "apiVersion": API_VERSION,
            "kind": "Application",
            "metadata": {
                "name": self.app.as_str(),
                "namespace": "catalyst-system",
                "labels": { "catalyst.openova.io/organization": self.org.as_str() },
            },
            "spec": spec,
        })
    }

    /// Reads the resource back (`catalyst.yaml`).
    pub fn from_resource(v: &Value, env: EnvType) -> Result<AppDoc, GitopsError> {
        let bad = |what: &str| GitopsError::Corrupt(format!("catalyst.yaml: {what}"));
        let s = |p: &str| v.pointer(p).and_then(Value::as_str);
        let org = OrgName::parse(s("/spec/organization").ok_or_else(|| bad("no organization"))?)
            .map_err(|e| bad(&e.to_string()))?;
        let app = AppName::parse(s("/metadata/name").ok_or_else(|| bad("no name"))?)
            .map_err(|e| bad(&e.to_string()))?;
        let blueprint =
            BlueprintName::parse(s("/spec/blueprint/name").ok_or_else(|| bad("no blueprint"))?)
                .map_err(|e| bad(&e.to_string()))?;
        let version =
            Version::parse(s("/spec/blueprint/version").ok_or_else(|| bad("no version"))?)
                .map_err(|e| bad(&e.to_string()))?;
        let depends_on = v
            .pointer("/spec/dependsOn")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|d| {
                        Some(DepRef {
                            application: d.get("application")?.as_str()?.to_string(),
                            blueprint: d.get("blueprint")?.as_str()?.to_string(),
                            alias: d.get("alias").and_then(Value::as_str).map(str::to_string),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(AppDoc {
            org,
            app,
            env,
            blueprint,
            version,
            digest: s("/spec/blueprint/digest").map(str::to_string),
            depends_on,
            dependencies: v
                .pointer("/spec/dependencies")
                .cloned()
                .unwrap_or(json!({})),
        })
    }
}

/// What stands for a secret value wherever values are shown (events, the API).
pub const REDACTED: &str = "<redacted>";

/// True for a configSchema property that holds a secret: `x-catalyst-ui-hint: password`,
/// `format: password` or `writeOnly: true`.
fn is_secret(prop: &Value) -> bool {
    prop.get("x-catalyst-ui-hint").and_then(Value::as_str) == Some("password")
        || prop.get("format").and_then(Value::as_str) == Some("password")
        || prop.get("writeOnly").and_then(Value::as_bool) == Some(true)
}

/// `values` with every secret property of `schema` (at any depth of `properties`) replaced by
/// [`REDACTED`], so events and API answers never carry one.
pub fn redact(schema: Option<&Value>, mut values: Value) -> Value {
    fn walk(schema: &Value, values: &mut Value) {
        let (Some(props), Some(obj)) = (
            schema.get("properties").and_then(Value::as_object),
            values.as_object_mut(),
        ) else {
            return;
        };
        for (key, prop) in props {
            let Some(v) = obj.get_mut(key) else {
                continue;
            };
            if is_secret(prop) {
                *v = Value::String(REDACTED.to_owned());
            } else {
                walk(prop, v);
            }
        }
    }
    if let Some(schema) = schema {
        walk(schema, &mut values);
    }
    values
}

/// The configuration the chart gets: schema defaults ⊕ `values.yaml` ⊕ the env overlay.
pub fn effective_values(schema: Option<&Value>, base: &Value, overlay: &Value) -> Value {
    let mut v = base.clone();
    if !v.is_object() {
        v = json!({});
    }
    merge(&mut v, overlay);
    match schema {
        Some(s) => catalyst_blueprint::schema::apply_defaults(s, &v),
        None => v,
    }
}

/// The Flux objects of one Application (source and release), named after the Application and
/// validated against the configSchema by the Blueprint engine.
pub fn flux_objects(
    doc: &AppDoc,
    values: &Value,
    schema: Option<&Value>,
    opts: &RenderOptions,
) -> Result<Vec<Value>, GitopsError> {
    let plan = Plan {
        requests: vec![doc.blueprint.to_string()],
        layers: vec![vec![Planned {
            name: doc.blueprint.clone(),
            version: doc.version.clone(),
            digest: doc.digest.clone(),
            source: Source::Public,
            depends_on: Vec::new(),
            skipped: Vec::new(),
            values: values.clone(),
            outputs: Value::Null,
            config_schema: schema.cloned(),
        }]],
        missing: Vec::new(),
    };
    let mut objects = render(&plan, opts).map_err(|e| match e {
        RenderError::InvalidValues(errs) => GitopsError::InvalidValues(
            errs.into_iter()
                .map(|(n, e)| ValueProblem::of(n, e))
                .collect(),
        ),
        other => GitopsError::Invalid(other.to_string()),
    })?;
    let app = doc.app.as_str();
    for o in &mut objects {
        o["metadata"]["name"] = json!(app);
        o["metadata"]["labels"]["catalyst.openova.io/application"] = json!(app);
        o["metadata"]["labels"]["catalyst.openova.io/environment"] =
            json!(env_name(&doc.org, doc.env));
        if o["kind"] == "HelmRelease" {
            o["spec"]["releaseName"] = json!(app);
            o["spec"]["targetNamespace"] = json!(app);
            o["spec"]["chartRef"]["name"] = json!(app);
            if !doc.depends_on.is_empty() {
                o["spec"]["dependsOn"] = Value::Array(
                    doc.depends_on
                        .iter()
                        .map(|d| json!({ "name": d.application }))
                        .collect(),
                );
            }
            if doc.dependencies.as_object().is_some_and(|m| !m.is_empty()) {
                o["spec"]["values"]["dependencies"] = doc.dependencies.clone();
            }
        }
    }
    Ok(objects)
}

/// Every file of the Application on its env branch.
pub fn files(
    doc: &AppDoc,
    base: &Value,
    overlay: &Value,
    schema: Option<&Value>,
    opts: &RenderOptions,
) -> Result<BTreeMap<String, Vec<u8>>, GitopsError> {
    let values = effective_values(schema, base, overlay);
    let objects = flux_objects(doc, &values, schema, opts)?;
    let mut out = BTreeMap::new();
    let mut put = |path: &str, v: &Value| {
        out.insert(path.to_string(), yaml::to_string(v).into_bytes());
    };
    put("catalyst.yaml", &doc.resource());
    put("values.yaml", base);
    put(&format!("overlays/{}/values.yaml", doc.env), overlay);
    for o in &objects {
        let file = match o["kind"].as_str() {
            Some("OCIRepository") => "flux/ocirepository.yaml",
            _ => "flux/helmrelease.yaml",
        };
        put(file, o);
    }
    put(
        "kustomization.yaml",
        &json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["flux/ocirepository.yaml", "flux/helmrelease.yaml"],
            "commonAnnotations": {
                "catalyst.openova.io/blueprint": doc.blueprint.as_str(),
                "catalyst.openova.io/blueprint-version": doc.version.to_string(),
            },
        }),
    );
    out.insert(
        "CODEOWNERS".to_string(),
        format!(
            "# Changes to {org}/{app} are reviewed by the Organization's admins.\n* @{org}/org-admin\n",
            org = doc.org,
            app = doc.app
        )
        .into_bytes(),
    );
    Ok(out)
}

/// `incoming` with each secret property that still says [`REDACTED`] (values read back from
/// an event or the API and sent again) set to its value in `stored`, or left out when `stored`
/// has none: a redacted read never overwrites a secret with the placeholder.
pub fn keep_secrets(schema: Option<&Value>, mut incoming: Value, stored: &Value) -> Value {
    fn walk(schema: &Value, incoming: &mut Value, stored: Option<&Value>) {
        let (Some(props), Some(obj)) = (
            schema.get("properties").and_then(Value::as_object),
            incoming.as_object_mut(),
        ) else {
            return;
        };
        for (key, prop) in props {
            let old = stored.and_then(|s| s.get(key));
            if is_secret(prop) {
                if obj.get(key).and_then(Value::as_str) == Some(REDACTED) {
                    match old {
                        Some(v) => {
                            obj.insert(key.clone(), v.clone());
                        }
                        None => {
                            obj.remove(key);
                        }
                    }
                }
            } else if let Some(v) = obj.get_mut(key) {
                walk(prop, v, old);
            }
        }
    }
    if let Some(schema) = schema {
        walk(schema, &mut incoming, Some(stored));
    }
    incoming
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let schema = json!({"properties": {
            "adminPassword": {"type": "string", "x-catalyst-ui-hint": "password"},
            "db": {"type": "object", "properties": {
                "pass": {"type": "string", "format": "password"},
                "host": {"type": "string"}
            }},
            "key": {"type": "string", "writeOnly": true},
            "instances": {"type": "integer"}
        }});
        let v = redact(
            Some(&schema),
            json!({"adminPassword": "s3cret", "db": {"pass": "p", "host": "h"}, "key": "k", "instances": 2}),
        );
        assert_eq!(
            v,
            json!({"adminPassword": REDACTED, "db": {"pass": REDACTED, "host": "h"}, "key": REDACTED, "instances": 2})
        );
        assert_eq!(redact(None, json!({"a": 1})), json!({"a": 1}));
        // Sent back as read, the placeholders keep what is stored.
        let stored =
            json!({"adminPassword": "s3cret", "db": {"pass": "p", "host": "h"}, "instances": 2});
        let back = keep_secrets(Some(&schema), v, &stored);
        assert_eq!(
            back,
            json!({"adminPassword": "s3cret", "db": {"pass": "p", "host": "h"}, "instances": 2})
        );
        let changed = keep_secrets(Some(&schema), json!({"adminPassword": "new"}), &stored);
        assert_eq!(changed, json!({"adminPassword": "new"}));
    }
}
