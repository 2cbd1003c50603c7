//! OVH: application key, application secret and consumer key; every request is signed with
//! `"$1$" + sha1_hex(secret+"+"+consumer+"+"+METHOD+"+"+url+"+"+body+"+"+timestamp)`.
use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::{require_ns, secret_header, send_json, RegResult, Registrar, RegistrarError};

/// Production (EU) base URL.
pub const DEFAULT_BASE_URL: &str = "https://eu.api.ovh.com/1.0";

/// The OVH adapter.
#[derive(Debug, Clone)]
pub struct Ovh {
    base: String,
    http: reqwest::Client,
}

struct Creds<'a> {
    app_key: &'a str,
    app_secret: &'a str,
    consumer: &'a str,
}

fn split_token(token: &str) -> RegResult<Creds<'_>> {
    let parts: Vec<&str> = token.trim().split(':').map(str::trim).collect();
    match parts[..] {
        [a, s, c] if !a.is_empty() && !s.is_empty() && !c.is_empty() => Ok(Creds {
            app_key: a,
            app_secret: s,
            consumer: c,
        }),
        _ => Err(RegistrarError::InvalidToken),
    }
}

/// The `X-Ovh-Signature` value of one request.
pub fn signature(
    app_secret: &str,
    consumer: &str,
    method: &str,
    url: &str,
    body: &str,
    ts: i64,
) -> String {
    let mut h = Sha1::new();
    h.update(format!("{app_secret}+{consumer}+{method}+{url}+{body}+{ts}").as_bytes());
    format!("$1${}", hex::encode(h.finalize()))
}

impl Ovh {
    /// An adapter at `base` (with the `/1.0` suffix).
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Ovh {
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
        let c = split_token(token)?;
        let url = format!("{}{path}", self.base);
        let body_text = body.as_ref().map(Value::to_string).unwrap_or_default();
        let ts = chrono::Utc::now().timestamp();
        let sig = signature(
            c.app_secret,
            c.consumer,
            method.as_str(),
            &url,
            &body_text,
            ts,
        );
        let mut req = self
            .http
            .request(method, &url)
            .header("X-Ovh-Application", secret_header(c.app_key)?)
            .header("X-Ovh-Consumer", secret_header(c.consumer)?)
            .header("X-Ovh-Timestamp", ts.to_string())
            .header("X-Ovh-Signature", secret_header(&sig)?)
            .header(ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json").body(body_text);
        }
        send_json(req, "ovh").await
    }
}

#[async_trait]
impl Registrar for Ovh {
    fn name(&self) -> &'static str {
        "ovh"
    }

    async fn validate_token(&self, token: &str, domain: &str) -> RegResult<()> {
        let v = self.call(token, Method::GET, "/domain", None).await?;
        let found = v
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d.as_str().is_some_and(|n| n.eq_ignore_ascii_case(domain)));
        if found {
            Ok(())
        } else {
            Err(RegistrarError::DomainNotInAccount)
        }
    }

    async fn set_nameservers(&self, token: &str, domain: &str, ns: &[String]) -> RegResult<()> {
        require_ns(ns, "ovh")?;
        let hosts: Vec<Value> = ns.iter().map(|h| json!({"host": h})).collect();
        self.call(
            token,
            Method::POST,
            &format!("/domain/{domain}/nameServers/update"),
            Some(json!({"nameServers": hosts})),
        )
        .await
        .map(|_| ())
    }

    async fn get_nameservers(&self, token: &str, domain: &str) -> RegResult<Vec<String>> {
        let ids = self
            .call(
                token,
                Method::GET,
                &format!("/domain/{domain}/nameServer"),
                None,
            )
            .await?;
        let mut out = Vec::new();
        for id in ids.as_array().into_iter().flatten() {
            let v = self
                .call(
                    token,
                    Method::GET,
                    &format!("/domain/{domain}/nameServer/{id}"),
                    None,
                )
                .await?;
            if let Some(h) = v["host"].as_str().filter(|h| !h.is_empty()) {
                out.push(h.to_owned());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_math() {
        let s = signature(
            "secret",
            "consumer",
            "GET",
            "https://eu.api.ovh.com/1.0/domain",
            "",
            1_700_000_000,
        );
        assert!(s.starts_with("$1$") && s.len() == 43, "{s}");
        let mut h = Sha1::new();
        h.update(b"secret+consumer+GET+https://eu.api.ovh.com/1.0/domain++1700000000");
        assert_eq!(s, format!("$1${}", hex::encode(h.finalize())));
    }

    #[test]
    fn token_shape() {
        assert!(split_token("a:b").is_err());
        assert!(split_token("a::c").is_err());
        assert!(split_token(" a : b : c ").is_ok());
    }
}
