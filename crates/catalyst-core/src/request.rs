//! Validation of a deployment request into a spec that cannot be invalid.
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::{catalog, secret::Secret};

/// How the Sovereign's domain is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DomainMode {
    /// A subdomain of a pool domain, allocated by the pool-domain manager.
    Pool,
    /// The customer's domain; they change NS records at their registrar by hand.
    ByoManual,
    /// The customer's domain; Catalyst flips NS through the registrar's API.
    ByoApi,
}

impl DomainMode {
    /// Parses the wire spelling; upstream's legacy `byo` means `byo-manual`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pool" => Some(DomainMode::Pool),
            "byo-manual" | "byo" => Some(DomainMode::ByoManual),
            "byo-api" => Some(DomainMode::ByoApi),
            _ => None,
        }
    }

    /// The wire/tfvars spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DomainMode::Pool => "pool",
            DomainMode::ByoManual => "byo-manual",
            DomainMode::ByoApi => "byo-api",
        }
    }
}

/// One region of a request, as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionInput {
    /// Provider code.
    pub provider: String,
    /// Provider region code.
    pub cloud_region: String,
    /// Control-plane SKU.
    pub control_plane_size: String,
    /// Worker SKU.
    pub worker_size: String,
    /// Number of workers.
    pub worker_count: i64,
}

/// A deployment request as received, before validation.
#[derive(Debug, Clone, Default)]
pub struct DeploymentInput {
    /// Organization display name.
    pub org_name: String,
    /// Initial sovereign-admin email.
    pub org_email: String,
    /// Sovereign FQDN.
    pub sovereign_fqdn: String,
    /// `pool`, `byo-manual`, `byo-api` (or legacy `byo`).
    pub domain_mode: String,
    /// Pool apex domain.
    pub pool_domain: String,
    /// Pool subdomain.
    pub subdomain: String,
    /// Hetzner API token.
    pub hetzner_token: Option<Secret>,
    /// Hetzner project id.
    pub hetzner_project_id: String,
    /// Legacy singular region.
    pub region: String,
    /// Legacy singular control-plane size.
    pub control_plane_size: String,
    /// Legacy singular worker size.
    pub worker_size: String,
    /// Legacy singular worker count.
    pub worker_count: i64,
    /// HA control plane.
    pub ha_enabled: bool,
    /// Regions (the first is the primary).
    pub regions: Vec<RegionInput>,
    /// SSH public key (OpenSSH authorized_keys format).
    pub ssh_public_key: String,
    /// Optional components chosen in the wizard (Blueprint names, `bp-<name>` or `<name>`);
    /// the bootstrap kit is always installed.
    pub components: Vec<String>,
}

/// Most components one request may name.
pub const MAX_COMPONENTS: usize = 64;

/// A validated region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionSpec {
    /// Provider code, present in the catalog.
    pub provider: String,
    /// Region code, one of the provider's.
    pub cloud_region: String,
    /// Control-plane SKU, one of the provider's.
    pub control_plane_size: String,
    /// Worker SKU, one of the provider's, or empty when there are no workers.
    pub worker_size: String,
    /// 0..=50.
    pub worker_count: u32,
}

/// A validated deployment request. Carries no credential, so it may be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// Organization display name.
    pub org_name: String,
    /// Initial sovereign-admin email.
    pub org_email: String,
    /// Lower-case FQDN.
    pub sovereign_fqdn: String,
    /// Domain mode.
    pub domain_mode: DomainMode,
    /// Pool apex (pool mode only).
    #[serde(default)]
    pub pool_domain: Option<String>,
    /// Pool label (pool mode only).
    #[serde(default)]
    pub subdomain: Option<String>,
    /// Hetzner project id.
    pub hetzner_project_id: String,
    /// At least one region; the first is the primary.
    pub regions: Vec<RegionSpec>,
    /// HA control plane.
    pub ha_enabled: bool,
    /// SSH public key, normalised to `algo base64 [comment]`.
    pub ssh_public_key: String,
    /// Optional components chosen (each `bp-<name>`, sorted, without duplicates); the
    /// bootstrap kit is always installed. Records from before the field have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
}

impl DeploymentSpec {
    /// The primary region.
    pub fn primary(&self) -> &RegionSpec {
        &self.regions[0]
    }
}

/// One validation failure, naming the request field (wire spelling) it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// Field path, e.g. `orgEmail` or `regions[1].cloudRegion`.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn email_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[^\s@]+@[^\s@]+\.[^\s@]+$").expect("static regex"))
}

/// True when `label` is a DNS label that starts with a letter: 1–63 of `[a-z0-9-]`, no leading
/// or trailing hyphen.
pub fn is_dns_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1] != b'-'
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// True when `fqdn` has at least two labels, each a DNS label starting with a letter, ≤ 253 chars.
pub fn is_fqdn(fqdn: &str) -> bool {
    fqdn.len() <= 253 && fqdn.split('.').count() >= 2 && fqdn.split('.').all(is_dns_label)
}

/// Checks an OpenSSH public key line; returns it normalised. Accepts the algorithms the
/// OpenTofu module accepts: ed25519, RSA, ECDSA P-256.
pub fn check_ssh_public_key(line: &str) -> Result<String, String> {
    let line = line.trim();
    if line.is_empty() {
        return Err(
            "SSH public key is required (sovereign-admin break-glass + cluster bootstrap)".into(),
        );
    }
    if line.contains('\n') {
        return Err("must be a single authorized_keys line".into());
    }
    let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| {
        format!("not an OpenSSH public key ({e}); paste the line from your .pub file")
    })?;
    let algo = key.algorithm();
    let ok = matches!(
        algo,
        ssh_key::Algorithm::Ed25519
            | ssh_key::Algorithm::Rsa { .. }
            | ssh_key::Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP256
            }
    );
    if !ok {
        return Err(format!(
            "key type {} is not supported; use ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256",
            algo.as_str()
        ));
    }
    Ok(line.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn check_region(i: usize, r: &RegionInput, errors: &mut Vec<FieldError>) -> Option<RegionSpec> {
    let field = |name: &str| format!("regions[{i}].{name}");
    let code = r.provider.trim();
    if code.is_empty() {
        errors.push(err(field("provider"), "provider is required"));
        return None;
    }
    let Some(provider) = catalog::provider(code) else {
        let known: Vec<_> = catalog::PROVIDERS.iter().map(|p| p.code).collect();
        errors.push(err(
            field("provider"),
            format!(
                "unknown provider {code:?}; expected one of {}",
                known.join(", ")
            ),
        ));
        return None;
    };
    if !provider.provisionable {
        errors.push(err(
            field("provider"),
            format!(
                "{} is in the catalog but cannot be provisioned yet; use hetzner",
                provider.name
            ),
        ));
    }
    let before = errors.len();
    let region = r.cloud_region.trim();
    if region.is_empty() {
        errors.push(err(field("cloudRegion"), "cloudRegion is required"));
    } else if provider.region(region).is_none() {
        let known: Vec<_> = provider.regions.iter().map(|r| r.code).collect();
        errors.push(err(
            field("cloudRegion"),
            format!(
                "{region:?} is not a {} region; expected one of {}",
                provider.code,
                known.join(", ")
            ),
        ));
    }
    let cp = r.control_plane_size.trim();
    if cp.is_empty() {
        errors.push(err(
            field("controlPlaneSize"),
            "controlPlaneSize is required",
        ));
    } else if provider.size(cp).is_none() {
        errors.push(err(
            field("controlPlaneSize"),
            format!("{cp:?} is not a {} node size", provider.code),
        ));
    }
    let count = match u32::try_from(r.worker_count) {
        Ok(n) if n <= 50 => n,
        _ => {
            errors.push(err(
                field("workerCount"),
                "workerCount must be between 0 and 50",
            ));
            0
        }
    };
    let worker = r.worker_size.trim();
    if count > 0 && worker.is_empty() {
        errors.push(err(
            field("workerSize"),
            "workerSize is required when workerCount > 0",
        ));
    } else if !worker.is_empty() && provider.size(worker).is_none() {
        errors.push(err(
            field("workerSize"),
            format!("{worker:?} is not a {} node size", provider.code),
        ));
    }
    (errors.len() == before).then(|| RegionSpec {
        provider: provider.code.to_owned(),
        cloud_region: region.to_owned(),
        control_plane_size: cp.to_owned(),
        worker_size: worker.to_owned(),
        worker_count: count,
    })
}

impl DeploymentInput {
    /// Validates every field and returns the spec plus the credential, or every failure found
    /// (each naming its field). `pool_domains` are the pool apexes this Sovereign manages.
    pub fn validate(
        &self,
        pool_domains: &[String],
    ) -> Result<(DeploymentSpec, Secret), Vec<FieldError>> {
        let mut errors = Vec::new();

        let regions_in: Vec<RegionInput> = if self.regions.is_empty() {
            if self.region.trim().is_empty() {
                errors.push(err(
                    "region",
                    "region is required (runtime parameter, never hardcoded)",
                ));
                Vec::new()
            } else {
                let hetzner = catalog::provider("hetzner").expect("hetzner is in the catalog");
                let cp = if self.control_plane_size.trim().is_empty() {
                    hetzner.recommended_size().id.to_owned()
                } else {
                    self.control_plane_size.clone()
                };
                vec![RegionInput {
                    provider: "hetzner".into(),
                    cloud_region: self.region.clone(),
                    control_plane_size: cp,
                    worker_size: self.worker_size.clone(),
                    worker_count: self.worker_count,
                }]
            }
        } else {
            self.regions.clone()
        };
        if regions_in.len() > 8 {
            errors.push(err("regions", "at most 8 regions are supported"));
        }
        let regions: Vec<RegionSpec> = regions_in
            .iter()
            .enumerate()
            .filter_map(|(i, r)| check_region(i, r, &mut errors))
            .collect();

        let token = match &self.hetzner_token {
            Some(t) if !t.is_blank() => Some(Secret::new(t.expose().trim())),
            _ => {
                errors.push(err("hetznerToken", "hetzner token is required"));
                None
            }
        };
        if self.hetzner_project_id.trim().is_empty() {
            errors.push(err("hetznerProjectID", "hetzner project ID is required"));
        }
        let org_name = self.org_name.trim();
        if org_name.is_empty() {
            errors.push(err("orgName", "organisation name is required"));
        } else if org_name.chars().count() > 128 {
            errors.push(err(
                "orgName",
                "organisation name must be at most 128 characters",
            ));
        }
        let email = self.org_email.trim();
        if email.is_empty() {
            errors.push(err(
                "orgEmail",
                "organisation email is required (becomes initial sovereign-admin)",
            ));
        } else if email.len() > 254 || !email_re().is_match(email) {
            errors.push(err(
                "orgEmail",
                format!("{email:?} is not an email address"),
            ));
        }

        let mode = match DomainMode::parse(self.domain_mode.trim()) {
            Some(m) => Some(m),
            None => {
                errors.push(err(
                    "sovereignDomainMode",
                    format!(
                        "{:?} is not a domain mode; expected pool, byo-manual or byo-api",
                        self.domain_mode
                    ),
                ));
                None
            }
        };
        let mut fqdn = self.sovereign_fqdn.trim().to_ascii_lowercase();
        let mut pool_domain = None;
        let mut subdomain = None;
        if mode == Some(DomainMode::Pool) {
            let pool = self.pool_domain.trim().to_ascii_lowercase();
            let sub = self.subdomain.trim().to_ascii_lowercase();
            if !pool_domains.iter().any(|p| p == &pool) {
                errors.push(err(
                    "sovereignPoolDomain",
                    format!(
                        "{pool:?} is not a pool domain here; expected one of {}",
                        pool_domains.join(", ")
                    ),
                ));
            }
            if !is_dns_label(&sub) {
                errors.push(err(
                    "sovereignSubdomain",
                    "subdomain must be a-z, 0-9 and hyphens, start with a letter, max 63 characters",
                ));
            }
            let expected = format!("{sub}.{pool}");
            if fqdn.is_empty() {
                fqdn = expected;
            } else if fqdn != expected {
                errors.push(err(
                    "sovereignFQDN",
                    format!("in pool mode the FQDN must be {expected:?} (subdomain.poolDomain), got {fqdn:?}"),
                ));
            }
            pool_domain = Some(pool);
            subdomain = Some(sub);
        }
        if fqdn.is_empty() {
            errors.push(err("sovereignFQDN", "sovereign FQDN is required"));
        } else if !is_fqdn(&fqdn) {
            errors.push(err(
                "sovereignFQDN",
                format!("{fqdn:?} is not a valid FQDN (two or more labels of a-z, 0-9 and hyphens, each starting with a letter)"),
            ));
        }
        let ssh = match check_ssh_public_key(&self.ssh_public_key) {
            Ok(k) => Some(k),
            Err(m) => {
                errors.push(err("sshPublicKey", m));
                None
            }
        };

        let components = check_components(&self.components, &mut errors);

        match (errors.is_empty(), token, mode, ssh) {
            (true, Some(token), Some(domain_mode), Some(ssh_public_key)) if !regions.is_empty() => {
                Ok((
                    DeploymentSpec {
                        org_name: org_name.to_owned(),
                        org_email: email.to_owned(),
                        sovereign_fqdn: fqdn,
                        domain_mode,
                        pool_domain,
                        subdomain,
                        hetzner_project_id: self.hetzner_project_id.trim().to_owned(),
                        regions,
                        ha_enabled: self.ha_enabled,
                        ssh_public_key,
                        components,
                    },
                    token,
                ))
            }
            _ => Err(errors),
        }
    }
}

/// The components of a request as `bp-<name>`, sorted and without duplicates; a malformed
/// name is an error on `components[i]`. Whether each exists is the bootstrap catalog's say.
fn check_components(input: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if input.len() > MAX_COMPONENTS {
        errors.push(err(
            "components",
            format!(
                "{} components named; at most {MAX_COMPONENTS} may be",
                input.len()
            ),
        ));
        return Vec::new();
    }
    let mut out = std::collections::BTreeSet::new();
    for (i, raw) in input.iter().enumerate() {
        let name = raw.trim().to_ascii_lowercase();
        let bare = name.strip_prefix("bp-").unwrap_or(&name);
        let ok = !bare.is_empty()
            && bare.len() <= 60
            && bare.starts_with(|c: char| c.is_ascii_lowercase())
            && !bare.ends_with('-')
            && bare
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            out.insert(format!("bp-{bare}"));
        } else {
            errors.push(err(
                format!("components[{i}]"),
                format!("{raw:?} is not a Blueprint name (bp-<name>: lower-case letters, digits and hyphens)"),
            ));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_normalised_and_malformed_ones_named() {
        let mut errors = Vec::new();
        let got = check_components(
            &["Gitea".into(), "bp-gitea".into(), " bp-harbor ".into()],
            &mut errors,
        );
        assert_eq!(got, ["bp-gitea", "bp-harbor"]);
        assert!(errors.is_empty());
        check_components(
            &["".into(), "bp-".into(), "x/y".into(), "a-".into()],
            &mut errors,
        );
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "components[0]",
                "components[1]",
                "components[2]",
                "components[3]"
            ]
        );
        let many = vec!["a".to_string(); MAX_COMPONENTS + 1];
        let mut errors = Vec::new();
        assert!(check_components(&many, &mut errors).is_empty());
        assert_eq!(errors[0].field, "components");
    }

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl catalyst@test";

    fn valid() -> DeploymentInput {
        DeploymentInput {
            org_name: "Acme Financial".into(),
            org_email: "platform@acme.io".into(),
            sovereign_fqdn: "omantel.omani.works".into(),
            domain_mode: "pool".into(),
            pool_domain: "omani.works".into(),
            subdomain: "omantel".into(),
            hetzner_token: Some(Secret::new("x".repeat(64))),
            hetzner_project_id: "123".into(),
            regions: vec![RegionInput {
                provider: "hetzner".into(),
                cloud_region: "fsn1".into(),
                control_plane_size: "cpx32".into(),
                worker_size: "cpx32".into(),
                worker_count: 2,
            }],
            ssh_public_key: KEY.into(),
            ..Default::default()
        }
    }

    fn pools() -> Vec<String> {
        vec!["omani.works".into(), "openova.io".into()]
    }

    fn check(mutate: impl FnOnce(&mut DeploymentInput), field: &str) {
        let mut input = valid();
        mutate(&mut input);
        let errs = input.validate(&pools()).expect_err("must fail");
        assert!(
            errs.iter().any(|e| e.field == field),
            "expected an error on {field}, got {errs:?}"
        );
    }

    #[test]
    fn valid_request_passes() {
        let (spec, token) = valid().validate(&pools()).unwrap();
        assert_eq!(spec.sovereign_fqdn, "omantel.omani.works");
        assert_eq!(spec.primary().cloud_region, "fsn1");
        assert_eq!(token.expose().len(), 64);
    }

    #[test]
    fn each_bad_field_is_named() {
        check(|i| i.org_email = "not-an-email".into(), "orgEmail");
        check(|i| i.org_name = "  ".into(), "orgName");
        check(|i| i.hetzner_token = None, "hetznerToken");
        check(|i| i.hetzner_project_id.clear(), "hetznerProjectID");
        check(
            |i| i.ssh_public_key = "ssh-ed25519 AAAAnotbase64!!".into(),
            "sshPublicKey",
        );
        check(|i| i.domain_mode = "dns".into(), "sovereignDomainMode");
        check(
            |i| i.pool_domain = "example.com".into(),
            "sovereignPoolDomain",
        );
        check(|i| i.subdomain = "-bad-".into(), "sovereignSubdomain");
        check(
            |i| i.sovereign_fqdn = "other.omani.works".into(),
            "sovereignFQDN",
        );
        check(
            |i| i.regions[0].provider = "gcp".into(),
            "regions[0].provider",
        );
        check(
            |i| i.regions[0].provider = "aws".into(),
            "regions[0].provider",
        );
        check(
            |i| i.regions[0].cloud_region = "us-east-1".into(),
            "regions[0].cloudRegion",
        );
        check(
            |i| i.regions[0].control_plane_size = "cx42".into(),
            "regions[0].controlPlaneSize",
        );
        check(
            |i| i.regions[0].worker_size.clear(),
            "regions[0].workerSize",
        );
        check(|i| i.regions[0].worker_count = -1, "regions[0].workerCount");
        check(|i| i.regions[0].worker_count = 51, "regions[0].workerCount");
        check(
            |i| {
                i.domain_mode = "byo-manual".into();
                i.sovereign_fqdn = "Not A Domain".into();
            },
            "sovereignFQDN",
        );
        check(
            |i| {
                i.regions.clear();
                i.region.clear();
            },
            "region",
        );
    }

    #[test]
    fn byo_ignores_pool_fields_and_legacy_singulars_work() {
        let mut i = valid();
        i.domain_mode = "byo".into();
        i.sovereign_fqdn = "k8s.example.com".into();
        i.regions.clear();
        i.region = "nbg1".into();
        let (spec, _) = i.validate(&pools()).unwrap();
        assert_eq!(spec.domain_mode, DomainMode::ByoManual);
        assert_eq!(spec.pool_domain, None);
        assert_eq!(spec.primary().control_plane_size, "cpx32");
    }

    #[test]
    fn fqdn_and_labels() {
        assert!(is_fqdn("a.b"));
        assert!(!is_fqdn("localhost"));
        assert!(!is_fqdn("1a.example.com"));
        assert!(!is_fqdn("a..b"));
        assert!(is_dns_label("omantel"));
        assert!(!is_dns_label("omantel-"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
