//! Moving artifacts between repositories: push a package, copy an artifact (with its signature
//! manifest), mirror a set of tags. Blobs already present at the destination are not sent again;
//! between two repositories of one registry they are mounted instead of copied.

use crate::manifest::{media_type_of, Index, Manifest};
use crate::package::Package;
use crate::reference::Target;
use crate::store::{fetch_manifest, resolve, Repo};
use crate::{media, Digest, Result};

/// Pushes a packaged Blueprint to `dst`, tagged `tag` (default: the chart version, with `+`
/// written as `_` the way Helm does, since tags cannot hold `+`).
pub async fn push_package(pkg: &Package, dst: &dyn Repo, tag: Option<&str>) -> Result<Digest> {
    for (desc, bytes) in &pkg.blobs {
        dst.put_blob(&desc.digest, bytes.clone()).await?;
    }
    let default_tag = pkg.chart_version.replace('+', "_");
    dst.put_manifest(
        media::OCI_MANIFEST,
        &pkg.manifest,
        Some(tag.unwrap_or(&default_tag)),
    )
    .await
}

fn mount_source(src: &dyn Repo, dst: &dyn Repo) -> Option<String> {
    match (src.registry_location(), dst.registry_location()) {
        (Some((sh, sr)), Some((dh, dr))) if sh == dh && sr != dr => Some(sr),
        _ => None,
    }
}

async fn copy_blob(
    src: &dyn Repo,
    dst: &dyn Repo,
    digest: &Digest,
    mount: Option<&str>,
) -> Result<()> {
    if dst.has_blob(digest).await? {
        return Ok(());
    }
    if let Some(from) = mount {
        if dst.mount_blob(digest, from).await? {
            return Ok(());
        }
    }
    dst.put_blob(digest, src.blob(digest).await?).await
}

/// Copies manifest `digest` (and, for an index, every manifest it lists) with all blobs; tags the
/// top manifest `tag` when given.
fn copy_manifest<'a>(
    src: &'a dyn Repo,
    dst: &'a dyn Repo,
    digest: &'a Digest,
    tag: Option<&'a str>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
    Box::pin(async move {
        let bytes = fetch_manifest(src, digest).await?;
        let media_type = media_type_of(&bytes).unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        let mount = mount_source(src, dst);
        if media::is_index(&media_type) {
            for child in Index::parse(&bytes)?.manifests {
                copy_manifest(src, dst, &child.digest, None).await?;
            }
        } else {
            for blob in Manifest::parse(&bytes)?.blobs() {
                copy_blob(src, dst, &blob.digest, mount.as_deref()).await?;
            }
        }
        dst.put_manifest(&media_type, &bytes, tag).await?;
        Ok(())
    })
}

/// Copies the artifact `target` from `src` to `dst` (tagged `dst_tag`, else the source tag),
/// with its signature manifest (and cosign `.att`/`.sbom` manifests) when `with_signatures` is set
/// and they exist. Returns its digest.
pub async fn copy(
    src: &dyn Repo,
    target: &Target,
    dst: &dyn Repo,
    dst_tag: Option<&str>,
    with_signatures: bool,
) -> Result<Digest> {
    let digest = resolve(src, target).await?;
    let tag = dst_tag.map(str::to_string).or(match target {
        Target::Tag(t) => Some(t.clone()),
        Target::Digest(_) => None,
    });
    copy_manifest(src, dst, &digest, tag.as_deref()).await?;
    if with_signatures {
        // Signatures, and cosign attestations and SBOMs when present, travel with the artifact.
        for suffix in ["sig", "att", "sbom"] {
            let tag = format!("sha256-{}.{suffix}", digest.hex());
            if let Some(sig) = src.resolve_tag(&tag).await? {
                copy_manifest(src, dst, &sig, Some(&tag)).await?;
            }
        }
    }
    Ok(digest)
}

/// Copies every tag of `src` (signature tags travel with their artifacts) to `dst`.
pub async fn mirror_all(src: &dyn Repo, dst: &dyn Repo) -> Result<Vec<(String, Digest)>> {
    let mut out = Vec::new();
    let mut tags = src.tags().await?;
    tags.sort();
    for tag in tags.into_iter().filter(|t| !is_signature_tag(t)) {
        let d = copy(src, &Target::Tag(tag.clone()), dst, None, true).await?;
        out.push((tag, d));
    }
    Ok(out)
}

/// Whether `tag` is a cosign `sha256-<hex>.sig` (or `.att`/`.sbom`) tag.
pub fn is_signature_tag(tag: &str) -> bool {
    tag.starts_with("sha256-")
        && (tag.ends_with(".sig") || tag.ends_with(".att") || tag.ends_with(".sbom"))
}
