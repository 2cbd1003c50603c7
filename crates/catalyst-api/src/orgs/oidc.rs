//! Optional OIDC: a bearer token that is a JWT is checked against the identity provider's JWKS
//! (signature, `iss`, `aud`, `exp`/`nbf` with 60 s leeway) and mapped to the same [`Identity`]
//! the token store gives, from three claims: role, Organization and name. Keys are cached; an
//! unknown `kid`, or a set older than the JWKS response's `Cache-Control: max-age` (at most a
//! day), refetches the JWKS at most once per `min_refetch` (30 s by default) and never before a
//! provider's `Retry-After` (at most an hour); a stale set serves while the provider cannot be
//! reached. Discovery documents over 64 KiB and JWK sets over 256 KiB are refused unread.
//! Tokens are never logged and never echoed in an error.
//!
//! Without a configured JWKS URL the verifier discovers it (OIDC Discovery 1.0 §4): on first
//! use it reads `<issuer>/.well-known/openid-configuration`, refuses a document whose `issuer`
//! is not exactly the configured one (§4.3), and takes its `jwks_uri`. Discovery is lazy so an
//! identity provider that is down when Catalyst starts does not stop Catalyst; a failed
//! discovery or JWKS fetch is retried on a later request, at most once per `min_refetch`, and
//! meanwhile answers [`OidcError::Unavailable`] (503 `oidc-unavailable`): the token may well be
//! fine, the keys to check it are what is missing.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::auth::{Identity, Role};
use crate::ApiError;

/// The algorithms a JWT may be signed with.
const ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What the identity provider is and which claims carry the role, Organization and name.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The JWKS URL; `None`: discovered from the issuer's `/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud` (one of, when `aud` is a list).
    pub audience: String,
    /// The claim naming the Organization (`catalyst_org`).
    pub org_claim: String,
    /// The claim naming the role (`catalyst_role`).
    pub role_claim: String,
    /// The claim naming the caller (`preferred_username`; `sub` when absent).
    pub name_claim: String,
    /// The least time between two JWKS fetches for an unknown `kid` (30 s).
    pub min_refetch: Duration,
}

impl OidcConfig {
    /// A config with the default claim names and refetch interval.
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> OidcConfig {
        OidcConfig {
            jwks_url: Some(jwks_url.to_string()),
            ..OidcConfig::discover(issuer, audience)
        }
    }

    /// A config whose JWKS URL is discovered from the issuer (OIDC Discovery) on first use.
    pub fn discover(issuer: &str, audience: &str) -> OidcConfig {
        OidcConfig {
            jwks_url: None,
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            org_claim: "catalyst_org".into(),
            role_claim: "catalyst_role".into(),
            name_claim: "preferred_username".into(),
            min_refetch: Duration::from_secs(30),
        }
    }
}

/// The discovery document path appended to the issuer (OIDC Discovery 1.0 §4.1).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// Why a JWT was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The token is not valid (401 `invalid-token`); the text names the check that failed.
    #[error("{0}")]
    Invalid(String),
    /// The signing keys cannot be had: discovery or the JWKS fetch failed, or the provider's
    /// discovery document does not match the configuration (503 `oidc-unavailable`).
    #[error("{0}")]
    Unavailable(String),
}

impl OidcError {
    /// The HTTP answer: 401 `invalid-token` with a Bearer challenge, or 503 `oidc-unavailable`
    /// with `Retry-After`.
    pub fn into_response(self) -> axum::response::Response {
        use axum::http::{header, HeaderValue, StatusCode};
        use axum::response::IntoResponse;
        match self {
            OidcError::Invalid(d) => super::auth::invalid_token(&d),
            OidcError::Unavailable(d) => {
                let mut r = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "oidc-unavailable", d)
                    .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
                r
            }
        }
    }
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    /// The JWKS URL found by discovery (kept until a JWKS fetch from it fails).
    discovered: Option<String>,
    /// Why the last fetch failed, answered until the next attempt is due.
    last_error: Option<String>,
    /// When the keys go stale (the JWKS response's `Cache-Control: max-age`): a token is then
    /// checked against a fresh set (the old one serves while the provider cannot be reached).
    stale_at: Option<Instant>,
    /// No fetch before this (the provider's `Retry-After` on a 429 or 503).
    not_before: Option<Instant>,
}

/// What a JWKS fetch gave.
struct Fetched {
    keys: HashMap<String, DecodingKey>,
    /// `Cache-Control: max-age`, bounded to [`MAX_KEY_AGE`].
    max_age: Option<Duration>,
}

/// Why a JWKS fetch failed, and how long the provider asked us to wait.
struct FetchError {
    message: String,
    retry_after: Option<Duration>,
}

impl From<String> for FetchError {
    fn from(message: String) -> FetchError {
        FetchError {
            message,
            retry_after: None,
        }
    }
}

/// Keys are refetched at least this often, whatever `max-age` says.
const MAX_KEY_AGE: Duration = Duration::from_secs(24 * 3600);

/// A provider's `Retry-After` is honoured up to this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `max-age` of a `Cache-Control` value (`no-store`/`no-cache` count as 0).
pub(crate) fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|d| {
        let d = d.trim().to_ascii_lowercase();
        if d == "no-store" || d == "no-cache" {
            return Some(Duration::ZERO);
        }
        let secs = d
            .strip_prefix("max-age=")?
            .trim_matches('"')
            .parse::<u64>()
            .ok()?;
        Some(Duration::from_secs(secs).min(MAX_KEY_AGE))
    })
}

/// `Retry-After` in seconds (the HTTP-date form is not used by identity providers we know of,
/// and falls back to the refetch interval).
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    let secs = value.trim().parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// The part of the discovery document we use.
#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Largest discovery document read (real ones are a few KiB).
const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// Largest JWK set read (a few dozen keys fit in a fraction of this).
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Reads a response body, refusing one over `limit` bytes without reading the rest (declared
/// `Content-Length` first, then as chunks arrive).
async fn bounded_body(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_big = || format!("the response is larger than {} KiB", limit / 1024);
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the response failed: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `jwks_uri` of a discovery document, which must name exactly `issuer` (§4.3).
pub(crate) fn jwks_uri_of(body: &[u8], issuer: &str) -> Result<String, String> {
    let doc: Discovery = serde_json::from_slice(body)
        .map_err(|_| "not a discovery document (JSON with issuer and jwks_uri)".to_string())?;
    if doc.issuer != issuer {
        return Err(format!(
            "the document's issuer {:?} is not the configured issuer {issuer:?}",
            doc.issuer
        ));
    }
    if !(doc.jwks_uri.starts_with("https://") || doc.jwks_uri.starts_with("http://")) {
        return Err(format!("jwks_uri {:?} is not an http(s) URL", doc.jwks_uri));
    }
    Ok(doc.jwks_uri)
}

/// The keys of a JWK set by `kid` (keys without a `kid`, or of a kind we cannot use, are
/// skipped).
pub(crate) fn parse_jwks(body: &[u8]) -> Result<HashMap<String, DecodingKey>, String> {
    let set: JwkSet = serde_json::from_slice(body)
        .map_err(|_| "cannot fetch the signing keys: the JWKS is not a JWK set".to_string())?;
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(k) => {
                out.insert(kid, k);
            }
            Err(_) => tracing::warn!(%kid, "JWKS key skipped: unsupported key"),
        }
    }
    Ok(out)
}

/// The algorithm and key id a token's header names, when the algorithm is one we accept.
pub(crate) fn signing_key_of(token: &str) -> Result<(Algorithm, String), OidcError> {
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| OidcError::Invalid("malformed token".into()))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(OidcError::Invalid(format!(
            "unsupported algorithm {:?}",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| OidcError::Invalid("the token names no signing key (kid)".into()))?;
    Ok((header.alg, kid))
}

/// Validates JWTs against a JWKS.
pub struct OidcVerifier {
    config: OidcConfig,
    http: reqwest::Client,
    keys: tokio::sync::Mutex<Keys>,
}

/// True when `token` has the shape of a compact JWS (three base64url parts, a JSON header).
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ")
        && token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl OidcVerifier {
    /// A verifier; keys are fetched on first use.
    pub fn new(config: OidcConfig) -> OidcVerifier {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        OidcVerifier {
            config,
            http,
            keys: tokio::sync::Mutex::new(Keys::default()),
        }
    }

    /// The config.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The discovery document's URL for the configured issuer.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}{DISCOVERY_PATH}",
            self.config.issuer.trim_end_matches('/')
        )
    }

    /// The JWKS URL from the issuer's discovery document, whose `issuer` must be exactly ours.
    async fn discover(&self) -> Result<String, String> {
        let url = self.discovery_url();
        let fail = |why: String| format!("OIDC discovery failed: {url}: {why}");
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| fail(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!("answered {}", resp.status())));
        }
        let body = bounded_body(resp, MAX_DISCOVERY_BYTES)
            .await
            .map_err(|e| fail(e.to_string()))?;
        jwks_uri_of(&body, &self.config.issuer).map_err(fail)
    }

    /// The configured or discovered JWKS URL.
    async fn jwks_url(&self, keys: &mut Keys) -> Result<String, String> {
        if let Some(u) = self.config.jwks_url.as_ref().or(keys.discovered.as_ref()) {
            return Ok(u.clone());
        }
        let u = self.discover().await?;
        tracing::info!(issuer = %self.config.issuer, jwks = %u, "OIDC: discovered the JWKS URL");
        keys.discovered = Some(u.clone());
        Ok(u)
    }

    async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("cannot fetch the signing keys: {}", e.without_url()))?;
        if !resp.status().is_success() {
            let wait = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(retry_after);
            return Err(FetchError {
                message: format!(
                    "cannot fetch the signing keys: the JWKS answered {}",
                    resp.status()
                ),
                retry_after: wait,
            });
        }
        let age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = bounded_body(resp, MAX_JWKS_BYTES)
            .await
            .map_err(|e| format!("cannot fetch the signing keys: {e}"))?;
        Ok(Fetched {
            keys: parse_jwks(&body)?,
            max_age: age,
        })
    }

    /// The key for `kid`: from the cached set while it is fresh; else the JWKS is refetched
    /// when a fetch is due (not within `min_refetch` of the last one, nor before the provider's
    /// `Retry-After`), and a stale set still serves while the provider cannot be reached.
    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        let mut keys = self.keys.lock().await;
        let now = Instant::now();
        let stale = keys.stale_at.is_some_and(|t| now >= t);
        if !stale {
            if let Some(k) = keys.by_kid.get(kid) {
                return Ok(k.clone());
            }
        }
        let due = keys
            .fetched
            .is_none_or(|t| t.elapsed() >= self.config.min_refetch)
            && keys.not_before.is_none_or(|t| now >= t);
        if due {
            keys.fetched = Some(now);
            let fetched = match self.jwks_url(&mut keys).await {
                Ok(url) => {
                    let r = self.fetch(&url).await;
                    if r.is_err() {
                        // The provider may have moved its keys: discover again next time.
                        keys.discovered = None;
                    }
                    r
                }
                Err(e) => Err(FetchError::from(e)),
            };
            match fetched {
                Ok(fresh) => {
                    keys.by_kid = fresh.keys;
                    keys.stale_at = fresh.max_age.map(|a| now + a);
                    keys.not_before = None;
                    keys.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.config.issuer, retry_after = ?e.retry_after, "OIDC: {}", e.message);
                    keys.not_before = e.retry_after.map(|w| now + w);
                    keys.last_error = Some(e.message);
                }
            }
        }
        if let Some(k) = keys.by_kid.get(kid) {
            return Ok(k.clone());
        }
        // Without any key, an unknown kid says nothing about the token: the keys are missing.
        match (&keys.last_error, keys.by_kid.is_empty()) {
            (Some(e), true) => Err(OidcError::Unavailable(e.clone())),
            _ => Err(OidcError::Invalid("unknown signing key (kid)".into())),
        }
    }

    /// The identity a JWT stands for, or why it is not valid (safe to show the caller).
    pub async fn verify(&self, token: &str) -> Result<Identity, OidcError> {
        let (alg, kid) = signing_key_of(token)?;
        let key = self.key(&kid).await?;
        self.check(token, alg, &key)
    }

    /// Checks a token's signature and claims with the key its header names (no IO).
    pub(crate) fn check(
        &self,
        token: &str,
        alg: Algorithm,
        key: &DecodingKey,
    ) -> Result<Identity, OidcError> {
        let mut v = Validation::new(alg);
        v.leeway = 60;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_issuer(&[&self.config.issuer]);
        v.set_audience(&[&self.config.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "expired".to_string(),
                ErrorKind::ImmatureSignature => "not yet valid (nbf)".to_string(),
                ErrorKind::InvalidAudience => "wrong audience".to_string(),
                ErrorKind::InvalidIssuer => "wrong issuer".to_string(),
                ErrorKind::InvalidSignature => "bad signature".to_string(),
                ErrorKind::InvalidAlgorithm => "the algorithm does not match the key".to_string(),
                ErrorKind::MissingRequiredClaim(c) => format!("missing claim {c}"),
                _ => "malformed token".to_string(),
            })
            .map_err(OidcError::Invalid)?;
        self.identity(&data.claims).map_err(OidcError::Invalid)
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, String> {
        let c = &self.config;
        let role = claims
            .get(&c.role_claim)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing role claim {}", c.role_claim))?;
        let role = Role::parse(role).ok_or_else(|| {
            format!(
                "role claim {} is not one of {}",
                c.role_claim,
                Role::ALL.map(Role::as_str).join(", ")
            )
        })?;
        let org = match role {
            Role::SovereignAdmin => None,
            _ => Some(
                claims
                    .get(&c.org_claim)
                    .and_then(Value::as_str)
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| {
                        format!(
                            "missing org claim {} for role {}",
                            c.org_claim,
                            role.as_str()
                        )
                    })?
                    .to_string(),
            ),
        };
        let name = claims
            .get(&c.name_claim)
            .or_else(|| claims.get("sub"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing name claim {} (and sub)", c.name_claim))?;
        // The name becomes a commit author and trailer, as a token name does.
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            return Err(format!(
                "name claim {} must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.', '@'",
                c.name_claim
            ));
        }
        Ok(Identity {
            name: name.to_string(),
            role,
            org,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shape_and_claim_mapping() {
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(!looks_like_jwt("cat_0123abcd"));
        assert!(!looks_like_jwt("eyJ.only-two"));
        let v = OidcVerifier::new(OidcConfig::new("http://127.0.0.1:1/jwks", "i", "a"));
        let claims = |j: Value| j.as_object().unwrap().clone();
        let id = v
            .identity(&claims(serde_json::json!({
                "catalyst_role": "org-viewer", "catalyst_org": "acme", "sub": "s-1"
            })))
            .unwrap();
        assert_eq!(
            (id.role, id.org.as_deref(), id.name.as_str()),
            (Role::OrgViewer, Some("acme"), "s-1")
        );
        let root = v
            .identity(&claims(serde_json::json!({
                "catalyst_role": "sovereign-admin", "catalyst_org": "acme", "preferred_username": "root"
            })))
            .unwrap();
        assert_eq!(root.org, None);
        assert!(v
            .identity(&claims(serde_json::json!({
                "catalyst_role": "org-admin", "catalyst_org": "acme", "preferred_username": "a b\nc"
            })))
            .unwrap_err()
            .contains("name claim"));
    }
}

#[cfg(test)]
mod bounded_tests {
    use super::{bounded_body, max_age, retry_after, MAX_KEY_AGE, MAX_RETRY_AFTER};
    use std::time::Duration;

    #[test]
    fn cache_control_and_retry_after() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age("Max-Age=60, must-revalidate"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=999999999"), Some(MAX_KEY_AGE));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    /// A local server answering `/small` (10 KiB), `/big` (300 KiB with Content-Length) and
    /// `/stream` (300 KiB in chunks, no Content-Length).
    async fn server() -> String {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/small", get(|| async { "x".repeat(10 * 1024) }))
            .route("/big", get(|| async { "x".repeat(300 * 1024) }))
            .route(
                "/stream",
                get(|| async {
                    let chunks = (0..300)
                        .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1024])));
                    axum::body::Body::from_stream(futures::stream::iter(chunks))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let base = server().await;
        let get = |p: &str| reqwest::get(format!("{base}{p}"));
        let small = bounded_body(get("/small").await.unwrap(), 256 * 1024).await;
        assert_eq!(small.unwrap().len(), 10 * 1024);
        for path in ["/big", "/stream"] {
            let err = bounded_body(get(path).await.unwrap(), 256 * 1024)
                .await
                .unwrap_err();
            assert!(err.contains("larger than 256 KiB"), "{path}: {err}");
        }
    }
}
