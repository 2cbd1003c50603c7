//! Media types and annotation keys, each in one place.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest (accepted when reading).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (accepted when reading).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image config (cosign's signature manifests use it).
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Helm chart config: the chart's `Chart.yaml` as JSON.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
/// Helm chart content: the chart archive (`.tgz`).
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Ours: the normalized `blueprint.yaml`, carried as an extra layer next to the chart. Helm and
/// Flux skip layers whose media type they do not know.
pub const BLUEPRINT: &str = "application/vnd.catalyst.blueprint.v1+yaml";
/// cosign's simple-signing payload layer.
pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Ours: the payload type of a signed bundle (a DSSE envelope around a list of digests).
pub const BUNDLE_PAYLOAD: &str = "application/vnd.catalyst.bundle.v1+json";

/// cosign's annotation carrying the base64 DER ECDSA signature on a signature layer.
pub const ANN_COSIGN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// Ours: the id (`sha256` of the DER public key, hex) of the key that made a signature, so a
/// failure can say "unknown key" rather than "bad signature". cosign ignores it.
pub const ANN_KEY_ID: &str = "dev.catalyst.signature/key-id";
/// OCI title annotation.
pub const ANN_TITLE: &str = "org.opencontainers.image.title";
/// OCI version annotation.
pub const ANN_VERSION: &str = "org.opencontainers.image.version";
/// OCI image-layout reference name (on `index.json` entries).
pub const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `Accept` header for manifest requests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// Whether `media_type` is an index (a list of manifests) rather than a single manifest.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}
