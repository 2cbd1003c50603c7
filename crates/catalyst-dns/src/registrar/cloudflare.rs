//! Cloudflare v4: `Authorization: Bearer <token>`; validate = token verify + zone lookup;
//! set = `PATCH /zones/{id}` with `name_servers`.
use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};

use super::{
    common_status, require_ns, secret_header, transport, RegResult, Registrar, RegistrarError,
};

/// Production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// The Cloudflare adapter.
#[derive(Debug, Clone)]
pub struct Cloudflare {
    base: String,
    http: reqwest::Client,
}

fn envelope_error(v: &Value) -> RegistrarError {
    let code = v["errors"]
        .as_array()
        .and_then(|e| e.first())
        .and_then(|e| e["code"].as_i64());
    match code {
        Some(10000 | 6003 | 6111) => RegistrarError::InvalidToken,
        Some(9103 | 9109 | 1001) => RegistrarError::DomainNotInAccount,
        Some(10013) => RegistrarError::RateLimited,
        Some(c) => RegistrarError::Other(format!("cloudflare error code {c}")),
        None => RegistrarError::Other("cloudflare: success=false without errors".into()),
    }
}

impl Cloudflare {
    /// An adapter at `base`.
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Cloudflare {
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
        if token.trim().is_empty() {
            return Err(RegistrarError::InvalidToken);
        }
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(
                AUTHORIZATION,
                secret_header(&format!("Bearer {}", token.trim()))?,
            )
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if v["success"] == Value::Bool(false) && !matches!(status, 429 | 500..=599) {
            return Err(envelope_error(&v));
        }
        if let Some(e) = common_status(status, false) {
            return Err(e);
        }
        if status != 200 {
            return Err(RegistrarError::Other(format!(
                "cloudflare api unexpected status {status}"
            )));
        }
        if v["success"] != Value::Bool(true) {
            return Err(envelope_error(&v));
        }
        Ok(v)
    }

    async fn zone_id(&self, token: &str, domain: &str) -> RegResult<String> {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("name", domain)
            .finish();
        let v = self
            .call(token, Method::GET, &format!("/zones?{q}"), None)
            .await?;
        v["result"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|z| {
                z["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(domain))
            })
            .and_then(|z| z["id"].as_str().map(str::to_owned))
            .ok_or(RegistrarError::DomainNotInAccount)
    }
}

#[async_trait]
impl Registrar for Cloudflare {
    fn name(&self) -> &'static str {
        "cloudflare"
    }

    async fn validate_token(&self, token: &str, domain: &str) -> RegResult<()> {
        self.call(token, Method::GET, "/user/tokens/verify", None)
            .await?;
        self.zone_id(token, domain).await.map(|_| ())
    }

    async fn set_nameservers(&self, token: &str, domain: &str, ns: &[String]) -> RegResult<()> {
        require_ns(ns, "cloudflare")?;
        let id = self.zone_id(token, domain).await?;
        self.call(
            token,
            Method::PATCH,
            &format!("/zones/{id}"),
            Some(json!({"name_servers": ns})),
        )
        .await
        .map(|_| ())
    }

    async fn get_nameservers(&self, token: &str, domain: &str) -> RegResult<Vec<String>> {
        let id = self.zone_id(token, domain).await?;
        let v = self
            .call(token, Method::GET, &format!("/zones/{id}"), None)
            .await?;
        Ok(v["result"]["name_servers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect())
    }
}
