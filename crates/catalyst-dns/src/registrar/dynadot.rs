//! Dynadot api3.json: GET with `key`, `secret`, `command`, `domain`; the answer's
//! `ResponseHeader` says success or why not.
use async_trait::async_trait;
use serde_json::Value;

use super::{common_status, require_ns, transport, RegResult, Registrar, RegistrarError};

/// Production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.dynadot.com/api3.json";

/// The Dynadot adapter.
#[derive(Debug, Clone)]
pub struct Dynadot {
    base: String,
    http: reqwest::Client,
}

fn split_token(token: &str) -> RegResult<(&str, &str)> {
    match token.trim().split_once(':') {
        Some((k, s)) if !k.trim().is_empty() && !s.trim().is_empty() => Ok((k.trim(), s.trim())),
        _ => Err(RegistrarError::InvalidToken),
    }
}

fn header_error(h: &Value) -> Option<RegistrarError> {
    let ok = h["Status"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("success"))
        || h["ResponseCode"].as_str() == Some("0")
        || h["ResponseCode"].as_i64() == Some(0);
    if ok {
        return None;
    }
    let e = h["Error"].as_str().unwrap_or_default().to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    Some(if has(&["not found", "not in your account", "not own"]) {
        RegistrarError::DomainNotInAccount
    } else if has(&["invalid api", "key", "secret", "auth"]) {
        RegistrarError::InvalidToken
    } else if has(&["rate", "too many"]) {
        RegistrarError::RateLimited
    } else {
        RegistrarError::Other("dynadot command failed".into())
    })
}

impl Dynadot {
    /// An adapter at `base`.
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        Dynadot {
            base: base.to_owned(),
            http,
        }
    }

    async fn call(
        &self,
        token: &str,
        command: &str,
        domain: &str,
        extra: &[(String, String)],
        envelope: &str,
    ) -> RegResult<Value> {
        let (key, secret) = split_token(token)?;
        let query = {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("key", key)
                .append_pair("secret", secret)
                .append_pair("command", command)
                .append_pair("domain", domain);
            for (k, v) in extra {
                q.append_pair(k, v);
            }
            q.finish()
        };
        let sep = if self.base.contains('?') { '&' } else { '?' };
        let resp = self
            .http
            .get(format!("{}{sep}{}", self.base, query))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        if let Some(e) = common_status(status, false) {
            return Err(e);
        }
        if status != 200 {
            return Err(RegistrarError::Other(format!(
                "dynadot unexpected status {status}"
            )));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|_| RegistrarError::Other("dynadot: body is not JSON".into()))?;
        match header_error(&v[envelope]["ResponseHeader"]) {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }
}

#[async_trait]
impl Registrar for Dynadot {
    fn name(&self) -> &'static str {
        "dynadot"
    }

    async fn validate_token(&self, token: &str, domain: &str) -> RegResult<()> {
        self.call(token, "domain_info", domain, &[], "DomainInfoResponse")
            .await
            .map(|_| ())
    }

    async fn set_nameservers(&self, token: &str, domain: &str, ns: &[String]) -> RegResult<()> {
        require_ns(ns, "dynadot")?;
        let extra: Vec<(String, String)> = ns
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("ns{i}"), n.clone()))
            .collect();
        self.call(token, "set_ns", domain, &extra, "SetNsResponse")
            .await
            .map(|_| ())
    }

    async fn get_nameservers(&self, token: &str, domain: &str) -> RegResult<Vec<String>> {
        let v = self
            .call(token, "domain_info", domain, &[], "DomainInfoResponse")
            .await?;
        Ok(
            v["DomainInfoResponse"]["DomainInfo"]["NameServerSettings"]["NameServers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| {
                    n["ServerName"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                })
                .collect(),
        )
    }
}
