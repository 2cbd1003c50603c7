//! OCI image-layout directories (`oci-layout`, `index.json`, `blobs/sha256/…`).
//!
//! `index.json` entries carry `org.opencontainers.image.ref.name` = `<name>:<tag>` (for example
//! `bp-cilium:1.2.3` or `bp-cilium:sha256-….sig`), so one directory holds a whole set of
//! Blueprints with their signatures. Writes are atomic (temp file + rename); one writer at a time.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::manifest::{media_type_of, Descriptor, Index};
use crate::store::Repo;
use crate::{io_err, media, Digest, Error, Result};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// An image-layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens an existing layout directory.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.join(LAYOUT_FILE).is_file() {
            return Err(Error::NotFound(format!(
                "{} is not an OCI image-layout directory (no oci-layout file)",
                root.display()
            )));
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Opens the layout at `root`, creating it when missing.
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root.join("blobs").join("sha256")).map_err(io_err(root))?;
        let layout = Self {
            root: root.to_path_buf(),
        };
        if !root.join(LAYOUT_FILE).is_file() {
            write_atomic(&root.join(LAYOUT_FILE), LAYOUT_CONTENT)?;
        }
        if !root.join("index.json").is_file() {
            layout.write_index(&Index::default())?;
        }
        Ok(layout)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Reads a blob and checks its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!(
                    "blob {digest} in {}",
                    self.root.display()
                )))
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        digest.check(&format!("blob {digest} in {}", self.root.display()), &bytes)?;
        Ok(bytes)
    }

    /// Whether a blob file exists.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Writes a blob (no-op when present) after checking its digest.
    pub fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        digest.check("blob to store", bytes)?;
        if self.has_blob(digest) {
            return Ok(());
        }
        write_atomic(&self.blob_path(digest), bytes)
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        Index::parse(&bytes)
    }

    fn write_index(&self, index: &Index) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(index).unwrap_or_default();
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Points the ref name `name` at `descriptor`, replacing an earlier entry of that name.
    pub fn set_ref(&self, name: &str, descriptor: Descriptor) -> Result<()> {
        let mut index = self.index()?;
        index
            .manifests
            .retain(|d| d.annotations.get(media::ANN_REF_NAME).map(String::as_str) != Some(name));
        index
            .manifests
            .push(descriptor.with_annotation(media::ANN_REF_NAME, name));
        index.manifests.sort_by(|a, b| {
            a.annotations
                .get(media::ANN_REF_NAME)
                .cmp(&b.annotations.get(media::ANN_REF_NAME))
        });
        self.write_index(&index)
    }

    /// Every `(ref name, descriptor)` in `index.json`.
    pub fn refs(&self) -> Result<Vec<(String, Descriptor)>> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|d| {
                d.annotations
                    .get(media::ANN_REF_NAME)
                    .cloned()
                    .map(|n| (n, d))
            })
            .collect())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// The artifacts named `name` inside a layout directory.
#[derive(Debug, Clone)]
pub struct LayoutRepo {
    layout: Layout,
    name: String,
}

impl LayoutRepo {
    /// The artifacts whose ref names are `name:<tag>`.
    pub fn new(layout: Layout, name: &str) -> Self {
        Self {
            layout,
            name: name.to_string(),
        }
    }
}

#[async_trait]
impl Repo for LayoutRepo {
    fn describe(&self) -> String {
        format!("oci:{}:{}", self.layout.root.display(), self.name)
    }

    fn identity(&self) -> String {
        self.name.clone()
    }

    async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>> {
        let want = format!("{}:{tag}", self.name);
        Ok(self
            .layout
            .refs()?
            .into_iter()
            .find(|(n, _)| *n == want)
            .map(|(_, d)| d.digest))
    }

    async fn manifest(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        match self.layout.read_blob(digest) {
            Ok(b) => Ok(Some(b)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.layout.read_blob(digest)
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.layout.has_blob(digest))
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<()> {
        self.layout.write_blob(digest, &bytes)
    }

    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest> {
        let digest = Digest::of(bytes);
        self.layout.write_blob(&digest, bytes)?;
        if let Some(tag) = tag {
            let mt = media_type_of(bytes).unwrap_or_else(|| media_type.to_string());
            self.layout
                .set_ref(&format!("{}:{tag}", self.name), Descriptor::of(&mt, bytes))?;
        }
        Ok(digest)
    }

    async fn tags(&self) -> Result<Vec<String>> {
        let prefix = format!("{}:", self.name);
        Ok(self
            .layout
            .refs()?
            .into_iter()
            .filter_map(|(n, _)| n.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }
}
