//! Entry points for the fuzz targets (`fuzz/`): the crate's private parsers, reachable without
//! a server. Not API: each function is the production code path, minus the IO around it.
use axum::body::Bytes;
use axum::http::HeaderMap;
use catalyst_core::{DeploymentSpec, Secret};

use crate::orgs::auth::Identity;
use crate::orgs::oidc::{OidcConfig, OidcError, OidcVerifier};
use crate::ApiError;

/// `POST /api/v1/deployments` up to the service: the body decoded as the handler decodes it,
/// converted and validated against `pool_domains`.
pub fn create_deployment(
    body: &Bytes,
    pool_domains: &[String],
) -> Result<(DeploymentSpec, Secret), ApiError> {
    let req: crate::wire::CreateDeploymentRequest = crate::handlers::decode(body, false)?;
    req.into_input()
        .validate(pool_domains)
        .map_err(ApiError::validation)
}

/// Where an SSE stream resumes (`Last-Event-ID` header, else `?lastEventId=`).
pub fn resume_from(headers: &HeaderMap, query: Option<&str>) -> Result<Option<u64>, ApiError> {
    crate::sse::resume_from(headers, query)
}

/// The body a smart-HTTP `git-upload-pack` request hands to git (gunzipped when declared).
pub fn git_request_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    crate::orgs::git_http::request_body(headers, body)
}

/// One pkt-line as the advertisement frames it.
pub fn pkt_line(s: &str) -> Vec<u8> {
    crate::orgs::git_http::pkt_line(s)
}

/// A JWT checked as [`OidcVerifier::verify`] checks it, with the keys from `jwks` (a JWKS
/// response body) instead of a fetched set.
pub struct OidcCheck(OidcVerifier);

impl OidcCheck {
    /// A checker for tokens of `issuer` meant for `audience`.
    pub fn new(issuer: &str, audience: &str) -> OidcCheck {
        OidcCheck(OidcVerifier::new(OidcConfig::new(
            "http://127.0.0.1:9/jwks",
            issuer,
            audience,
        )))
    }

    /// The identity `token` stands for under the keys of `jwks`.
    pub fn verify(&self, jwks: &[u8], token: &str) -> Result<Identity, OidcError> {
        let keys = crate::orgs::oidc::parse_jwks(jwks).map_err(OidcError::Unavailable)?;
        let (alg, kid) = crate::orgs::oidc::signing_key_of(token)?;
        let key = keys
            .get(&kid)
            .ok_or_else(|| OidcError::Invalid("unknown signing key (kid)".into()))?;
        self.0.check(token, alg, key)
    }
}

/// The `jwks_uri` of a discovery document for `issuer`.
pub fn jwks_uri_of(body: &[u8], issuer: &str) -> Result<String, String> {
    crate::orgs::oidc::jwks_uri_of(body, issuer)
}

/// `max-age` of a JWKS response's `Cache-Control`.
pub fn max_age(cache_control: &str) -> Option<std::time::Duration> {
    crate::orgs::oidc::max_age(cache_control)
}

/// A provider's `Retry-After`.
pub fn retry_after(value: &str) -> Option<std::time::Duration> {
    crate::orgs::oidc::retry_after(value)
}

/// The `exp` of a JWT's payload (read after the token was verified).
pub fn jwt_exp(token: &str) -> Option<i64> {
    crate::orgs::auth::jwt_exp(token)
}
