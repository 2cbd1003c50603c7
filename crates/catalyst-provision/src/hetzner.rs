//! The Hetzner Cloud token check behind `POST /api/v1/credentials/validate`.
//!
//! [`precheck`] is upstream's cheap length rule; [`HetznerClient::check_token`] asks Hetzner
//! itself with `GET /v1/servers`. The token is only ever placed in the `Authorization` header
//! (marked sensitive); it never appears in an error, a log line or a returned value.
use std::time::Duration;

use catalyst_core::secret::Secret;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;

/// The public Hetzner Cloud API.
pub const DEFAULT_BASE_URL: &str = "https://api.hetzner.cloud";

/// Whole-request timeout for the token check.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Minimum trimmed token length accepted by [`precheck`].
pub const MIN_TOKEN_LEN: usize = 64;

/// The message [`precheck`] returns for a short token (upstream wording).
pub const TOKEN_TOO_SHORT: &str = "token too short — Hetzner API tokens are at least 64 characters";

/// What Hetzner said about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// Hetzner answered 200: the token is accepted.
    Valid,
    /// Hetzner answered 401 or 403: the token is not accepted.
    Rejected,
}

/// Why the token check could not reach a verdict. No variant ever carries the token.
#[derive(Debug, thiserror::Error)]
pub enum HetznerError {
    /// The configured base URL is not an absolute http(s) URL.
    #[error("invalid Hetzner API base URL: {0}")]
    InvalidBaseUrl(String),
    /// The HTTP client could not be built.
    #[error("could not build HTTP client: {0}")]
    Client(String),
    /// The token contains characters that cannot be sent in an HTTP header.
    #[error("token contains characters not allowed in an HTTP header")]
    InvalidToken,
    /// The request failed before a response arrived (connect error, timeout, TLS…).
    #[error("could not reach Hetzner API: {0}")]
    Unreachable(String),
    /// Hetzner answered with a status other than 200, 401 or 403.
    #[error("unexpected status {0}")]
    UnexpectedStatus(u16),
}

/// Upstream's local rule: a token whose trimmed length is under 64 characters is refused
/// without calling Hetzner. Returns the user-facing message on refusal.
pub fn precheck(token: &Secret) -> Result<(), &'static str> {
    if token.expose().trim().chars().count() < MIN_TOKEN_LEN {
        Err(TOKEN_TOO_SHORT)
    } else {
        Ok(())
    }
}

/// A small client for the Hetzner Cloud API, used only to check tokens.
#[derive(Debug, Clone)]
pub struct HetznerClient {
    base_url: String,
    http: reqwest::Client,
}

impl HetznerClient {
    /// Builds a client for `base_url` (e.g. [`DEFAULT_BASE_URL`], or a stand-in in tests) with a
    /// 10 s timeout and redirects disabled (so the token is never forwarded elsewhere).
    pub fn new(base_url: impl Into<String>) -> Result<Self, HetznerError> {
        let base_url = base_url.into().trim().trim_end_matches('/').to_owned();
        match reqwest::Url::parse(&base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            Ok(_) => {
                return Err(HetznerError::InvalidBaseUrl(
                    "scheme must be http or https".into(),
                ))
            }
            Err(e) => return Err(HetznerError::InvalidBaseUrl(e.to_string())),
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HetznerError::Client(e.to_string()))?;
        Ok(HetznerClient { base_url, http })
    }

    /// The base URL requests go to (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Checks `token` with `GET {base}/v1/servers` and `Authorization: Bearer <token>`:
    /// 200 → [`TokenCheck::Valid`], 401/403 → [`TokenCheck::Rejected`], any other status →
    /// [`HetznerError::UnexpectedStatus`], no response → [`HetznerError::Unreachable`].
    pub async fn check_token(&self, token: &Secret) -> Result<TokenCheck, HetznerError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| HetznerError::InvalidToken)?;
        auth.set_sensitive(true);

        let url = format!("{}/v1/servers", self.base_url);
        let response = self
            .http
            .get(&url)
            .header(AUTHORIZATION, auth)
            .send()
            .await
            .map_err(|e| {
                let message = describe(&e, token);
                tracing::warn!(url = %url, error = %message, "hetzner token check: request failed");
                HetznerError::Unreachable(message)
            })?;

        let status = response.status();
        match status {
            StatusCode::OK => {
                tracing::info!(status = status.as_u16(), "hetzner token check: accepted");
                Ok(TokenCheck::Valid)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                tracing::info!(status = status.as_u16(), "hetzner token check: rejected");
                Ok(TokenCheck::Rejected)
            }
            other => {
                tracing::warn!(
                    status = other.as_u16(),
                    "hetzner token check: unexpected status"
                );
                Err(HetznerError::UnexpectedStatus(other.as_u16()))
            }
        }
    }
}

/// The error and its causes as one line, with any occurrence of the token blanked out
/// (belt and braces: reqwest does not put headers in its errors).
fn describe(err: &reqwest::Error, token: &Secret) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    if err.is_timeout() && !message.contains("timed out") {
        message.push_str(" (timed out)");
    }
    let plain = token.expose().trim();
    if !plain.is_empty() {
        message = message.replace(plain, "<redacted>");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precheck_length_rule() {
        assert_eq!(precheck(&Secret::new("")), Err(TOKEN_TOO_SHORT));
        assert_eq!(precheck(&Secret::new("a".repeat(63))), Err(TOKEN_TOO_SHORT));
        assert_eq!(
            precheck(&Secret::new(format!("  {}  \n", "a".repeat(63)))),
            Err(TOKEN_TOO_SHORT)
        );
        assert_eq!(precheck(&Secret::new("a".repeat(64))), Ok(()));
        assert_eq!(
            precheck(&Secret::new(format!(" {} ", "a".repeat(64)))),
            Ok(())
        );
    }

    #[test]
    fn new_normalises_and_validates_base_url() {
        let c = HetznerClient::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert_eq!(
            HetznerClient::new(DEFAULT_BASE_URL).unwrap().base_url(),
            DEFAULT_BASE_URL
        );
        assert!(matches!(
            HetznerClient::new("not a url"),
            Err(HetznerError::InvalidBaseUrl(_))
        ));
        assert!(matches!(
            HetznerClient::new("ftp://example.com"),
            Err(HetznerError::InvalidBaseUrl(_))
        ));
    }

    #[tokio::test]
    async fn header_unsafe_token_is_refused_without_echo() {
        let c = HetznerClient::new("http://127.0.0.1:9").unwrap();
        let err = c
            .check_token(&Secret::new("secret-part\nInjected: yes"))
            .await
            .unwrap_err();
        assert!(matches!(err, HetznerError::InvalidToken));
        assert!(!err.to_string().contains("secret-part"));
    }
}
