//! GoDaddy: `Authorization: sso-key <key>:<secret>`; validate = list active domains;
//! set = `PATCH /v1/domains/{domain}` with `nameServers`.
use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

use super::{require_ns, secret_header, send_json, RegResult, Registrar, RegistrarError};

/// Production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.godaddy.com";
/// OTE sandbox base URL.
pub const OTE_BASE_URL: &str = "https://api.ote-godaddy.com";

/// The GoDaddy adapter.
#[derive(Debug, Clone)]
pub struct GoDaddy {
    base: String,
    http: reqwest::Client,
}

fn split_token(token: &str) -> RegResult<(&str, &str)> {
    match token.trim().split_once(':') {
        Some((k, s)) if !k.trim().is_empty() && !s.trim().is_empty() => Ok((k.trim(), s.trim())),
        _ => Err(RegistrarError::InvalidToken),
    }
}

impl GoDaddy {
    /// An adapter at `base`.
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        GoDaddy {
            base: base.trim_end_matches('/').to_owned(),
            http,
        }
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> RegResult<Value> {
        let (key, secret) = split_token(token)?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(
                AUTHORIZATION,
                secret_header(&format!("sso-key {key}:{secret}"))?,
            )
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.header(CONTENT_TYPE, "application/json").json(&b);
        }
        send_json(req, "godaddy").await
    }
}

#[async_trait]
impl Registrar for GoDaddy {
    fn name(&self) -> &'static str {
        "godaddy"
    }

    async fn validate_token(&self, token: &str, domain: &str) -> RegResult<()> {
        let v = self
            .call(
                token,
                Method::GET,
                "/v1/domains?statuses=ACTIVE&limit=1000",
                None,
            )
            .await?;
        let found = v.as_array().into_iter().flatten().any(|d| {
            d["domain"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(domain))
        });
        if found {
            Ok(())
        } else {
            Err(RegistrarError::DomainNotInAccount)
        }
    }

    async fn set_nameservers(&self, token: &str, domain: &str, ns: &[String]) -> RegResult<()> {
        require_ns(ns, "godaddy")?;
        self.call(
            token,
            Method::PATCH,
            &format!("/v1/domains/{domain}"),
            Some(json!({"nameServers": ns})),
        )
        .await
        .map(|_| ())
    }

    async fn get_nameservers(&self, token: &str, domain: &str) -> RegResult<Vec<String>> {
        let v = self
            .call(token, Method::GET, &format!("/v1/domains/{domain}"), None)
            .await?;
        Ok(v["nameServers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect())
    }
}
