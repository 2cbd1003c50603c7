//! Rendering an install plan to the Flux objects a cluster applies: per Blueprint one
//! `OCIRepository` (`source.toolkit.fluxcd.io/v1`) and one `HelmRelease`
//! (`helm.toolkit.fluxcd.io/v2`) whose `dependsOn` names the concrete releases the resolver fixed.
//! Versions are pinned: by digest when the plan knows it, else by the exact tag.

use serde_json::{json, Map, Value};

use crate::resolve::Plan;
use crate::schema::ValueError;

/// Rendering settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// OCI registry path the Blueprints are published under (`oci://ghcr.io/openova-io`).
    pub registry: String,
    /// Namespace of the Flux objects.
    pub namespace: String,
    /// Reconcile interval.
    pub interval: String,
    /// Pull secret for the registry, if any.
    pub pull_secret: Option<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            registry: "oci://ghcr.io/openova-io".to_string(),
            namespace: "flux-system".to_string(),
            interval: "15m".to_string(),
            pull_secret: Some("ghcr-pull".to_string()),
        }
    }
}

/// Why a plan cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The plan names Blueprints the catalog lacks; Flux would wait on them forever.
    #[error("the plan is incomplete: {} missing from the catalog", .0.join(", "))]
    Incomplete(Vec<String>),
    /// The plan orders a Blueprint before a dependency, or names one it does not contain
    /// (a hand-edited plan file).
    #[error("the plan is inconsistent: {0}")]
    Inconsistent(String),
    /// A Blueprint's values do not satisfy its configSchema.
    #[error("{}", invalid_text(.0))]
    InvalidValues(Vec<(String, ValueError)>),
}

fn invalid_text(errors: &[(String, ValueError)]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|(n, e)| {
            let at = if e.pointer.is_empty() {
                "/"
            } else {
                &e.pointer
            };
            format!("{n} values {at}: {}", e.message)
        })
        .collect();
    format!(
        "values do not satisfy the configSchema:\n  {}\n  help: pass values with --values NAME=FILE",
        lines.join("\n  ")
    )
}

/// The Flux objects for `plan`, in install order (source before release).
pub fn render(plan: &Plan, opts: &RenderOptions) -> Result<Vec<Value>, RenderError> {
    if !plan.missing.is_empty() {
        return Err(RenderError::Incomplete(
            plan.missing.iter().map(|m| m.name.to_string()).collect(),
        ));
    }
    let mut placed: Vec<(&str, &semver::Version)> = Vec::new();
    for layer in &plan.layers {
        for p in layer {
            for e in &p.depends_on {
                let Some(v) = &e.version else { continue };
                if !placed.contains(&(e.name.as_str(), v)) {
                    return Err(RenderError::Inconsistent(format!(
                        "{} depends on {} {v}, which no earlier layer installs",
                        p.name, e.name
                    )));
                }
            }
        }
        placed.extend(layer.iter().map(|p| (p.name.as_str(), &p.version)));
    }
    let invalid: Vec<(String, ValueError)> = plan
        .value_errors()
        .into_iter()
        .map(|(n, e)| (n.to_string(), e))
        .collect();
    if !invalid.is_empty() {
        return Err(RenderError::InvalidValues(invalid));
    }
    let registry = opts.registry.trim_end_matches('/');
    let mut out = Vec::new();
    for p in plan.iter() {
        let name = p.name.as_str();
        let labels = json!({
            "app.kubernetes.io/managed-by": "catalyst",
            "openova.io/blueprint": name,
            "openova.io/blueprint-version": p.version.to_string(),
        });
        let reference = match &p.digest {
            Some(d) => json!({ "digest": d }),
            None => json!({ "tag": p.version.to_string() }),
        };
        let mut source_spec = json!({
            "interval": opts.interval,
            "url": format!("{registry}/{name}"),
            "ref": reference,
            "layerSelector": {
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "operation": "copy",
            },
        });
        if let Some(secret) = &opts.pull_secret {
            source_spec["secretRef"] = json!({ "name": secret });
        }
        out.push(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": { "name": name, "namespace": opts.namespace, "labels": labels },
            "spec": source_spec,
        }));

        let mut values = match &p.values {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        // Aliased dependencies are visible to the chart as .Values.dependencies.<alias>.
        let mut deps = Map::new();
        for e in &p.depends_on {
            let (Some(alias), Some(dep)) = (&e.alias, plan.get(&e.name)) else {
                continue;
            };
            let mut d = json!({
                "blueprint": dep.name.as_str(),
                "version": dep.version.to_string(),
                "releaseName": dep.name.short(),
                "namespace": dep.name.short(),
            });
            if let Value::Object(outputs) = &dep.outputs {
                for (k, v) in outputs {
                    d[k] = v.clone();
                }
            }
            deps.insert(alias.clone(), d);
        }
        if !deps.is_empty() {
            values.insert("dependencies".to_string(), Value::Object(deps));
        }
        let depends_on: Vec<Value> = p
            .depends_on
            .iter()
            .filter(|e| e.version.is_some())
            .map(|e| json!({ "name": e.name.as_str() }))
            .collect();
        let mut spec = json!({
            "interval": opts.interval,
            "releaseName": p.name.short(),
            "targetNamespace": p.name.short(),
            "chartRef": {
                "kind": "OCIRepository",
                "name": name,
                "namespace": opts.namespace,
            },
            "install": { "createNamespace": true, "remediation": { "retries": 3 } },
            "upgrade": { "remediation": { "retries": 3 } },
        });
        if !depends_on.is_empty() {
            spec["dependsOn"] = Value::Array(depends_on);
        }
        if !values.is_empty() {
            spec["values"] = Value::Object(values);
        }
        out.push(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": { "name": name, "namespace": opts.namespace, "labels": labels },
            "spec": spec,
        }));
    }
    Ok(out)
}

/// The objects as one multi-document YAML stream.
pub fn to_yaml_stream(objects: &[Value]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        out.push_str(&crate::yaml::to_string(o));
    }
    out
}
