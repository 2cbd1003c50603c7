//! What is inside an artifact: Blueprint and chart metadata, digests, signatures and the container
//! images referenced by the chart's values (bundled subcharts included), so an air-gapped
//! Sovereign knows what to mirror. No Helm binary involved.

use std::collections::BTreeSet;
use std::io::Read;

use serde::Serialize;

use crate::sign::{check_signatures, signatures, PublicKey, SignatureCheck, SimpleSigning};
use crate::store::{fetch_image_manifest, resolve, Repo};
use crate::{media, yaml, Digest, Error, Reference, Result};

/// Largest file we read out of a chart archive.
const MAX_ENTRY: u64 = 16 * 1024 * 1024;
/// Largest total we decompress from one chart archive (nested archives included).
const MAX_TOTAL: u64 = 256 * 1024 * 1024;
/// How deep nested subchart archives are followed.
const MAX_DEPTH: usize = 4;

/// A report on one artifact.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The reference, pinned to the digest.
    pub reference: String,
    /// The manifest digest.
    pub digest: Digest,
    /// The config media type (Helm's for Blueprints).
    pub config_media_type: String,
    /// `name`/`version`/`appVersion` from the chart config.
    pub chart: Option<ChartInfo>,
    /// `metadata.name` and version from the Blueprint layer, when present.
    pub blueprint: Option<BlueprintInfo>,
    /// Every layer.
    pub layers: Vec<LayerInfo>,
    /// Signatures stored for the digest.
    pub signatures: Vec<SignatureInfo>,
    /// Subcharts bundled in the chart archive.
    pub subcharts: Vec<String>,
    /// Container images referenced by the chart's values, sorted.
    pub images: Vec<String>,
}

/// Chart metadata.
#[derive(Debug, Clone, Serialize)]
pub struct ChartInfo {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
    /// `appVersion`, if any.
    pub app_version: Option<String>,
}

/// Blueprint metadata (kept minimal; `catalyst-blueprint` owns the model).
#[derive(Debug, Clone, Serialize)]
pub struct BlueprintInfo {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `spec.version` (or `metadata.version`).
    pub version: Option<String>,
}

/// One layer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// One signature.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureInfo {
    /// The key id the signature claims (ours carry one).
    pub key_id: Option<String>,
    /// The digest the payload vouches for.
    pub signed_digest: Option<String>,
    /// The `docker-reference` in the payload.
    pub identity: Option<String>,
    /// The trusted key that verifies it, when keys were given.
    pub verified_by: Option<String>,
}

/// Inspects the artifact `reference` in `repo`; `keys` (optional) are tried on the signatures.
pub async fn inspect(
    repo: &dyn Repo,
    reference: &Reference,
    keys: &[PublicKey],
) -> Result<Inspection> {
    let digest = resolve(repo, &reference.target()).await?;
    let manifest = fetch_image_manifest(repo, &digest).await?;
    let mut chart = None;
    if manifest.config.media_type == media::HELM_CONFIG {
        let config = repo.blob(&manifest.config.digest).await?;
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&config) {
            if let Some((name, version)) = yaml::chart_name_version(&v) {
                chart = Some(ChartInfo {
                    name,
                    version,
                    app_version: v.get("appVersion").and_then(|a| match a {
                        serde_json::Value::String(s) => Some(s.clone()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    }),
                });
            }
        }
    }
    let mut blueprint = None;
    let mut images = BTreeSet::new();
    let mut subcharts = Vec::new();
    for layer in &manifest.layers {
        match layer.media_type.as_str() {
            media::BLUEPRINT => {
                let bytes = repo.blob(&layer.digest).await?;
                let v = yaml::to_json(&bytes, "blueprint.yaml layer")?;
                let (name, version) = yaml::blueprint_name_version(&v);
                blueprint = Some(BlueprintInfo { name, version });
            }
            media::HELM_CHART => {
                let bytes = repo.blob(&layer.digest).await?;
                let mut budget = MAX_TOTAL;
                scan_chart(&bytes, 0, &mut budget, &mut images, &mut subcharts)?;
            }
            _ => {}
        }
    }
    subcharts.sort();
    subcharts.dedup();
    let found = signatures(repo, &digest).await?;
    let signatures = found
        .iter()
        .map(|s| {
            let payload: Option<SimpleSigning> = serde_json::from_slice(&s.payload).ok();
            let verified_by = keys.iter().find_map(|k| {
                match check_signatures(&digest, std::slice::from_ref(s), std::slice::from_ref(k)) {
                    SignatureCheck::Verified(_) => Some(format!("{} ({})", k.id(), k.label())),
                    _ => None,
                }
            });
            SignatureInfo {
                key_id: s.key_id.clone(),
                signed_digest: payload
                    .as_ref()
                    .map(|p| p.critical.image.docker_manifest_digest.clone()),
                identity: payload.map(|p| p.critical.identity.docker_reference),
                verified_by,
            }
        })
        .collect();
    Ok(Inspection {
        reference: reference.pinned(&digest).to_string(),
        config_media_type: manifest.config.media_type.clone(),
        layers: manifest
            .layers
            .iter()
            .map(|l| LayerInfo {
                media_type: l.media_type.clone(),
                digest: l.digest.clone(),
                size: l.size,
            })
            .collect(),
        digest,
        chart,
        blueprint,
        signatures,
        subcharts,
        images: images.into_iter().collect(),
    })
}

/// Reads a chart archive: image references from every `values.yaml` of the chart and its
/// subcharts (unpacked under `charts/` or as nested `.tgz` archives).
pub fn chart_images(archive: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
    let mut images = BTreeSet::new();
    let mut subcharts = Vec::new();
    let mut budget = MAX_TOTAL;
    scan_chart(archive, 0, &mut budget, &mut images, &mut subcharts)?;
    subcharts.sort();
    subcharts.dedup();
    Ok((images.into_iter().collect(), subcharts))
}

fn scan_chart(
    archive: &[u8],
    depth: usize,
    budget: &mut u64,
    images: &mut BTreeSet<String>,
    subcharts: &mut Vec<String>,
) -> Result<()> {
    let bad = |detail: String| Error::Malformed {
        what: "chart archive".into(),
        detail,
    };
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .to_string();
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        let n = parts.len();
        let is_values = n >= 2
            && parts[n - 1] == "values.yaml"
            && (n == 2 || (n >= 4 && parts[n - 3] == "charts"));
        let is_sub_chart_yaml = n >= 4 && parts[n - 1] == "Chart.yaml" && parts[n - 3] == "charts";
        let is_sub_tgz = n >= 3 && parts[n - 2] == "charts" && parts[n - 1].ends_with(".tgz");
        if !(is_values || is_sub_tgz || is_sub_chart_yaml) {
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_ENTRY || size > *budget {
            return Err(bad(format!(
                "{path} is too large to inspect ({size} bytes)"
            )));
        }
        *budget -= size;
        let mut data = Vec::with_capacity(size as usize);
        entry
            .by_ref()
            .take(MAX_ENTRY)
            .read_to_end(&mut data)
            .map_err(|e| bad(format!("{path}: {e}")))?;
        if is_sub_chart_yaml {
            subcharts.push(parts[n - 2].to_string());
        } else if is_values {
            // Values that do not parse are reported by `helm lint`, not here; skip them.
            if let Ok(v) = yaml::to_json(&data, &path) {
                yaml::images_in_values(&v, images);
            }
        } else if depth < MAX_DEPTH {
            subcharts.push(parts[n - 1].trim_end_matches(".tgz").to_string());
            scan_chart(&data, depth + 1, budget, images, subcharts)?;
        }
    }
    Ok(())
}
