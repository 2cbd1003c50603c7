//! [`Repo`]: one repository of artifacts, in a registry or an image-layout directory. Everything
//! above this trait (push, pull, sign, verify, mirror, inspect, the install policy) is written once.

use async_trait::async_trait;

use crate::layout::{Layout, LayoutRepo};
use crate::manifest::{media_type_of, Manifest};
use crate::reference::{Location, Reference, Target};
use crate::registry::{RegistryClient, RegistryRepo};
use crate::{Digest, Error, Result};

/// One repository of artifacts.
#[async_trait]
pub trait Repo: Send + Sync {
    /// Human-readable location, for messages.
    fn describe(&self) -> String;

    /// The `docker-reference` cosign puts into signature payloads (`host/repository`).
    fn identity(&self) -> String;

    /// `(host, repository)` when this is a registry repository (used for cross-repo mounts).
    fn registry_location(&self) -> Option<(String, String)> {
        None
    }

    /// Resolves a tag to the digest of the manifest it points at, or `None` when absent.
    async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>>;

    /// The manifest stored under `digest` (bytes checked against the digest), or `None`.
    async fn manifest(&self, digest: &Digest) -> Result<Option<Vec<u8>>>;

    /// The blob `digest` (bytes checked against the digest).
    async fn blob(&self, digest: &Digest) -> Result<Vec<u8>>;

    /// Whether the blob exists.
    async fn has_blob(&self, digest: &Digest) -> Result<bool>;

    /// Stores a blob (a no-op when it is already there).
    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<()>;

    /// Mounts a blob from repository `from` of the same registry; `false` when not mounted
    /// (not a registry, or the registry declined), and the caller uploads instead.
    async fn mount_blob(&self, _digest: &Digest, _from: &str) -> Result<bool> {
        Ok(false)
    }

    /// Stores a manifest, tagged with `tag` when given; returns its digest.
    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest>;

    /// The tags in this repository (for a layout: the tags under this repository's name).
    async fn tags(&self) -> Result<Vec<String>>;
}

/// Resolves `target` to a digest (a digest target is returned as is).
pub async fn resolve(repo: &dyn Repo, target: &Target) -> Result<Digest> {
    match target {
        Target::Digest(d) => Ok(d.clone()),
        Target::Tag(t) => repo
            .resolve_tag(t)
            .await?
            .ok_or_else(|| Error::NotFound(format!("tag {t} in {}", repo.describe()))),
    }
}

/// Fetches the manifest `digest` or fails with [`Error::NotFound`].
pub async fn fetch_manifest(repo: &dyn Repo, digest: &Digest) -> Result<Vec<u8>> {
    repo.manifest(digest)
        .await?
        .ok_or_else(|| Error::NotFound(format!("manifest {digest} in {}", repo.describe())))
}

/// Fetches and parses an image manifest.
pub async fn fetch_image_manifest(repo: &dyn Repo, digest: &Digest) -> Result<Manifest> {
    let bytes = fetch_manifest(repo, digest).await?;
    let media_type = media_type_of(&bytes).unwrap_or_default();
    if crate::media::is_index(&media_type) {
        return Err(Error::Malformed {
            what: format!("artifact {digest}"),
            detail: "it is an image index, not a single Blueprint artifact".into(),
        });
    }
    Manifest::parse(&bytes)
}

/// Connection settings for opening references.
#[derive(Clone, Default)]
pub struct Opener {
    /// The registry client (credentials, plain HTTP hosts, chunk size).
    pub registry: RegistryClient,
}

impl Opener {
    /// Opens the repository a reference points into. A layout directory is created when
    /// `create` is set and it does not exist.
    pub fn open(&self, reference: &Reference, create: bool) -> Result<Box<dyn Repo>> {
        match &reference.location {
            Location::Registry { host, repository } => Ok(Box::new(RegistryRepo::new(
                self.registry.clone(),
                host,
                repository,
            ))),
            Location::Layout { path, name } => {
                let layout = if create {
                    Layout::create(path)?
                } else {
                    Layout::open(path)?
                };
                let name = name.clone().ok_or_else(|| Error::Reference {
                    reference: reference.to_string(),
                    reason: "name the artifact inside the layout: oci:DIR:NAME[:TAG]".into(),
                })?;
                Ok(Box::new(LayoutRepo::new(layout, &name)))
            }
        }
    }
}
