//! The few HTTP calls the campaign makes, and what an answer means for the ledger.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// The server of the current run, as the sovereign-admin.
#[derive(Clone)]
pub struct Api {
    /// The HTTP client (no redirects).
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The sovereign-admin token.
    pub admin: String,
}

/// What became of a request.
#[derive(Debug)]
pub enum Answer {
    /// A 2xx answer: acknowledged.
    Ok(u16, Value),
    /// Any other answer: refused (the server says what happened).
    Refused(u16, Value),
    /// No answer (connection refused or reset, timeout): in doubt.
    None(String),
}

impl Api {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends `method path` with `body` (JSON) and `token` (default: the admin's).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token.unwrap_or(&self.admin))
            .timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Answer::None(e.to_string()),
        };
        let status = resp.status().as_u16();
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            // The headers came, the body did not: the server died while answering. A 2xx
            // status line is already an acknowledgement, but without its body (the commit ids,
            // the token) the harness cannot check it; treat it as in doubt.
            Err(e) => return Answer::None(format!("{status} without a body: {e}")),
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Answer::Ok(status, v)
        } else {
            Answer::Refused(status, v)
        }
    }

    /// `GET path` as the admin: the JSON answer of a 2xx, or an error naming the status.
    pub async fn get(&self, path: &str) -> Result<(u16, Value), String> {
        match self.call(Method::GET, path, None, None).await {
            Answer::Ok(s, v) | Answer::Refused(s, v) => Ok((s, v)),
            Answer::None(e) => Err(format!("GET {path}: no answer: {e}")),
        }
    }
}
