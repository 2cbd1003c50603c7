//! Registrar adapters: check a customer's API credentials and point a domain's name servers at
//! ours. Stateless: the token arrives with every call, is used for that call only, and is never
//! logged, stored, or put into an error message.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

/// A registrar call's failure. The variants are what an API caller can act on; `Other` carries
/// a message for the operator log that never contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrarError {
    /// Credentials missing, malformed or rejected.
    #[error("credentials rejected")]
    InvalidToken,
    /// The registrar throttled us.
    #[error("rate limited")]
    RateLimited,
    /// The domain is not in the account the credentials open.
    #[error("domain not in account")]
    DomainNotInAccount,
    /// The registrar could not be reached or answered 5xx.
    #[error("registrar API unavailable")]
    ApiUnavailable,
    /// Anything else (logged, never returned verbatim).
    #[error("{0}")]
    Other(String),
}

impl RegistrarError {
    /// The log outcome label.
    pub fn outcome(&self) -> &'static str {
        match self {
            RegistrarError::InvalidToken => "invalid-token",
            RegistrarError::RateLimited => "rate-limited",
            RegistrarError::DomainNotInAccount => "domain-not-in-account",
            RegistrarError::ApiUnavailable => "api-unavailable",
            RegistrarError::Other(_) => "unknown-error",
        }
    }
}

/// Result alias for registrar calls.
pub type RegResult<T> = std::result::Result<T, RegistrarError>;

/// One registrar's API.
#[async_trait]
pub trait Registrar: Send + Sync {
    /// The registry key (`cloudflare`, …).
    fn name(&self) -> &'static str;
    /// Checks the credentials open `domain`.
    async fn validate_token(&self, token: &str, domain: &str) -> RegResult<()>;
    /// Replaces the domain's name servers.
    async fn set_nameservers(&self, token: &str, domain: &str, ns: &[String]) -> RegResult<()>;
    /// Reads the domain's name servers.
    async fn get_nameservers(&self, token: &str, domain: &str) -> RegResult<Vec<String>>;
}

/// Base URLs of the five adapters (overridable for tests and sandboxes).
#[derive(Debug, Clone)]
pub struct RegistrarUrls {
    /// Cloudflare v4 API.
    pub cloudflare: String,
    /// Namecheap XML API.
    pub namecheap: String,
    /// GoDaddy API.
    pub godaddy: String,
    /// OVH API (with `/1.0`).
    pub ovh: String,
    /// Dynadot api3.json.
    pub dynadot: String,
}

impl Default for RegistrarUrls {
    fn default() -> Self {
        RegistrarUrls {
            cloudflare: cloudflare::DEFAULT_BASE_URL.into(),
            namecheap: namecheap::DEFAULT_BASE_URL.into(),
            godaddy: godaddy::DEFAULT_BASE_URL.into(),
            ovh: ovh::DEFAULT_BASE_URL.into(),
            dynadot: dynadot::DEFAULT_BASE_URL.into(),
        }
    }
}

impl RegistrarUrls {
    /// Every adapter pointed at `base` (a local stand-in), each under its own path prefix:
    /// `/cloudflare`, `/namecheap`, `/godaddy`, `/ovh/1.0`, `/dynadot/api3.json`.
    pub fn all_at(base: &str) -> Self {
        let b = base.trim_end_matches('/');
        RegistrarUrls {
            cloudflare: format!("{b}/cloudflare"),
            namecheap: format!("{b}/namecheap"),
            godaddy: format!("{b}/godaddy"),
            ovh: format!("{b}/ovh/1.0"),
            dynadot: format!("{b}/dynadot/api3.json"),
        }
    }
}

/// Name → adapter.
#[derive(Clone, Default)]
pub struct Registry {
    adapters: BTreeMap<&'static str, Arc<dyn Registrar>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// All five adapters at `urls`.
    pub fn with_all(urls: &RegistrarUrls) -> Self {
        let http = http_client();
        let mut r = Registry::default();
        r.insert(Arc::new(cloudflare::Cloudflare::new(
            &urls.cloudflare,
            http.clone(),
        )));
        r.insert(Arc::new(namecheap::Namecheap::new(
            &urls.namecheap,
            http.clone(),
        )));
        r.insert(Arc::new(godaddy::GoDaddy::new(&urls.godaddy, http.clone())));
        r.insert(Arc::new(ovh::Ovh::new(&urls.ovh, http.clone())));
        r.insert(Arc::new(dynadot::Dynadot::new(&urls.dynadot, http)));
        r
    }

    /// Adds (or replaces) an adapter.
    pub fn insert(&mut self, adapter: Arc<dyn Registrar>) {
        self.adapters.insert(adapter.name(), adapter);
    }

    /// The adapter for `name` (exact, lowercase).
    pub fn get(&self, name: &str) -> Option<Arc<dyn Registrar>> {
        self.adapters.get(name).cloned()
    }

    /// Adapter names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.adapters.keys().copied().collect()
    }
}

/// The propagation hint shown after a successful set-ns.
pub fn propagation_hint(registrar: &str) -> &'static str {
    match registrar {
        "cloudflare" => "cloudflare typically reflects NS changes within minutes; full TLD propagation up to 24 hours",
        "godaddy" => "godaddy typically reflects NS changes within 1-4 hours; full TLD propagation up to 48 hours",
        "namecheap" => "namecheap typically reflects NS changes within 1-2 hours; full TLD propagation up to 48 hours",
        "ovh" => "ovh applies NS changes asynchronously (task queue); reflected within 1-4 hours",
        "dynadot" => "dynadot reflects NS changes within 30-60 minutes",
        _ => "registrar-specific; full TLD propagation up to 48 hours",
    }
}

/// The shared HTTP client of the adapters: 30 s timeout, no retries.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Maps the status codes every adapter shares; `None` means "look at the body".
fn common_status(status: u16, not_found_means_domain: bool) -> Option<RegistrarError> {
    match status {
        401 | 403 => Some(RegistrarError::InvalidToken),
        429 => Some(RegistrarError::RateLimited),
        404 if not_found_means_domain => Some(RegistrarError::DomainNotInAccount),
        s if s >= 500 => Some(RegistrarError::ApiUnavailable),
        _ => None,
    }
}

/// A transport failure (never includes the URL, which may carry credentials in its query).
fn transport(_e: reqwest::Error) -> RegistrarError {
    RegistrarError::ApiUnavailable
}

/// A header value marked sensitive (kept out of debug output).
fn secret_header(v: &str) -> RegResult<reqwest::header::HeaderValue> {
    let mut h =
        reqwest::header::HeaderValue::from_str(v).map_err(|_| RegistrarError::InvalidToken)?;
    h.set_sensitive(true);
    Ok(h)
}

fn require_ns(ns: &[String], who: &str) -> RegResult<()> {
    if ns.is_empty() {
        return Err(RegistrarError::Other(format!(
            "{who}: nameservers must be a non-empty list"
        )));
    }
    Ok(())
}

pub mod cloudflare;
pub mod dynadot;
pub mod godaddy;
pub mod namecheap;
pub mod ovh;

/// Sends a request to a registrar API that answers JSON and reports errors in `message`
/// (GoDaddy, OVH): the shared status mapping, then the body.
pub(crate) async fn send_json(
    req: reqwest::RequestBuilder,
    registrar: &str,
) -> RegResult<serde_json::Value> {
    let resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if let Some(e) = common_status(status.as_u16(), true) {
        return Err(e);
    }
    if !status.is_success() {
        let msg = v["message"].as_str().unwrap_or_default();
        return Err(RegistrarError::Other(format!(
            "{registrar} status {}: {msg}",
            status.as_u16()
        )));
    }
    Ok(v)
}
