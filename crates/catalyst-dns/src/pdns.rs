//! A small PowerDNS authoritative HTTP API client: zones, rrset PATCH, cryptokeys, rectify.
//!
//! Every call is retried on a transport error or a 5xx with a backoff (`[0, 250ms, 1s]` by
//! default); a 4xx answers at once. Creating an existing zone and deleting a missing one are
//! successes, so every operation here can be repeated. The API key goes out in `X-API-Key`
//! (marked sensitive) and appears in no log line, error or `Debug` output.
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{debug, warn};

use crate::{DnsError, Result};

/// Default backoff before attempts 1, 2 and 3.
pub const DEFAULT_BACKOFF: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(250),
    Duration::from_secs(1),
];

/// One record of an RRset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Record data in presentation format.
    pub content: String,
    /// Disabled records are not served.
    #[serde(default)]
    pub disabled: bool,
}

/// One RRset change of a PATCH.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RrSet {
    /// Owner name (canonical, with trailing dot).
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// TTL (omitted for DELETE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// `REPLACE` or `DELETE`.
    pub changetype: &'static str,
    /// Records (omitted for DELETE).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<Record>,
}

impl RrSet {
    /// A REPLACE of `name`/`rtype` with `contents`.
    pub fn replace(name: &str, rtype: &str, ttl: u32, contents: &[String]) -> Self {
        RrSet {
            name: canonical(name),
            rtype: rtype.to_owned(),
            ttl: Some(ttl),
            changetype: "REPLACE",
            records: contents
                .iter()
                .map(|c| Record {
                    content: c.clone(),
                    disabled: false,
                })
                .collect(),
        }
    }

    /// A DELETE of `name`/`rtype`.
    pub fn delete(name: &str, rtype: &str) -> Self {
        RrSet {
            name: canonical(name),
            rtype: rtype.to_owned(),
            ttl: None,
            changetype: "DELETE",
            records: Vec::new(),
        }
    }
}

/// A DNSSEC key as the API lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct CryptoKey {
    /// Key id.
    #[serde(default)]
    pub id: u64,
    /// `ksk`, `zsk` or `csk`.
    #[serde(default)]
    pub keytype: String,
    /// Signing with it.
    #[serde(default)]
    pub active: bool,
    /// DS records for this key (KSK/CSK).
    #[serde(default)]
    pub ds: Vec<String>,
}

/// True when the active keys sign both keys and zone (a CSK does both).
pub fn is_signed(keys: &[CryptoKey]) -> bool {
    let has = |types: &[&str]| {
        keys.iter()
            .any(|k| k.active && types.contains(&k.keytype.as_str()))
    };
    has(&["ksk", "csk"]) && has(&["zsk", "csk"])
}

/// The DS records of the active key-signing keys, SHA-256 digests only when there are any.
pub fn ds_of(keys: &[CryptoKey]) -> Vec<String> {
    let all: Vec<String> = keys
        .iter()
        .filter(|k| k.active && (k.keytype == "ksk" || k.keytype == "csk"))
        .flat_map(|k| k.ds.iter().cloned())
        .collect();
    let sha256: Vec<String> = all
        .iter()
        .filter(|d| d.split_whitespace().nth(2) == Some("2"))
        .cloned()
        .collect();
    if sha256.is_empty() {
        all
    } else {
        sha256
    }
}

/// Lowercase, trimmed, with a trailing dot; an empty name stays empty.
pub fn canonical(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    if n.is_empty() || n.ends_with('.') {
        n
    } else {
        format!("{n}.")
    }
}

/// The PowerDNS client. Cheap to clone.
#[derive(Clone)]
pub struct PowerDns {
    http: reqwest::Client,
    zones_url: String,
    backoff: Vec<Duration>,
}

impl std::fmt::Debug for PowerDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerDns")
            .field("zones_url", &self.zones_url)
            .finish_non_exhaustive()
    }
}

fn api_error(op: &str, status: StatusCode, body: &[u8]) -> DnsError {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| {
            let s = String::from_utf8_lossy(body);
            let mut s: String = s.chars().take(256).collect();
            if body.len() > 256 {
                s.push_str("...");
            }
            s
        });
    DnsError::PowerDns(format!("powerdns {op}: status {}: {text}", status.as_u16()))
}

impl PowerDns {
    /// A client for `base_url` (e.g. `http://127.0.0.1:8081`), server id `server_id`
    /// (default `localhost` when empty).
    pub fn new(base_url: &str, api_key: &str, server_id: &str) -> Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if !api_key.is_empty() {
            let mut key = HeaderValue::from_str(api_key).map_err(|_| {
                DnsError::PowerDns("the PowerDNS API key contains invalid characters".into())
            })?;
            key.set_sensitive(true);
            headers.insert("X-API-Key", key);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| DnsError::PowerDns(format!("cannot build HTTP client: {e}")))?;
        let base = base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(DnsError::PowerDns(format!(
                "PowerDNS URL {base:?} must start with http:// or https://"
            )));
        }
        let server = match server_id.trim() {
            "" => "localhost",
            s => s,
        };
        Ok(PowerDns {
            http,
            zones_url: format!("{base}/api/v1/servers/{server}/zones"),
            backoff: DEFAULT_BACKOFF.to_vec(),
        })
    }

    /// Replaces the retry backoff (one entry per attempt; at least one attempt).
    pub fn with_backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.backoff = if backoff.is_empty() {
            vec![Duration::ZERO]
        } else {
            backoff
        };
        self
    }

    fn zone_url(&self, zone: &str) -> String {
        format!("{}/{}", self.zones_url, canonical(zone))
    }

    /// One API call with retries; returns the final status and body.
    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let mut last_error = None;
        for (attempt, wait) in self.backoff.iter().enumerate() {
            if !wait.is_zero() {
                tokio::time::sleep(*wait).await;
            }
            let mut req = self.http.request(method.clone(), url);
            if let Some(b) = body {
                req = req.header(CONTENT_TYPE, "application/json").json(b);
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
                    if status.is_server_error() && attempt + 1 < self.backoff.len() {
                        debug!(%method, url, status = status.as_u16(), attempt, "PowerDNS answered 5xx; retrying.");
                        last_error = Some(format!("status {}", status.as_u16()));
                        continue;
                    }
                    return Ok((status, bytes));
                }
                Err(e) => {
                    debug!(%method, url, error = %e, attempt, "PowerDNS unreachable; retrying.");
                    last_error = Some(e.to_string());
                }
            }
        }
        let path = url.split_once("/api/").map(|(_, p)| p).unwrap_or(url);
        Err(DnsError::PowerDns(format!(
            "powerdns api {method} /api/{path}: {}",
            last_error.unwrap_or_default()
        )))
    }

    /// Creates a Native zone signed from the start (`dnssec`, `api_rectify`); an existing zone
    /// is a success.
    pub async fn create_zone(&self, zone: &str, nameservers: &[String]) -> Result<()> {
        let ns: Vec<String> = nameservers.iter().map(|n| canonical(n)).collect();
        let body = json!({
            "name": canonical(zone),
            "kind": "Native",
            "nameservers": ns,
            "dnssec": true,
            "api_rectify": true,
            "soa_edit_api": "INCEPTION-EPOCH",
        });
        let (status, bytes) = self
            .call(Method::POST, &self.zones_url, Some(&body))
            .await?;
        match status.as_u16() {
            200 | 201 | 409 => Ok(()),
            _ => Err(api_error("create zone", status, &bytes)),
        }
    }

    /// True when the zone exists.
    pub async fn zone_exists(&self, zone: &str) -> Result<bool> {
        let (status, bytes) = self
            .call(
                Method::GET,
                &format!("{}?rrsets=false", self.zone_url(zone)),
                None,
            )
            .await?;
        match status.as_u16() {
            200 => Ok(true),
            404 | 422 => Ok(false),
            _ => Err(api_error("get zone", status, &bytes)),
        }
    }

    /// Deletes a zone (records and keys); a missing zone is a success.
    pub async fn delete_zone(&self, zone: &str) -> Result<()> {
        let (status, bytes) = self
            .call(Method::DELETE, &self.zone_url(zone), None)
            .await?;
        match status.as_u16() {
            200 | 204 | 404 => Ok(()),
            _ => Err(api_error("delete zone", status, &bytes)),
        }
    }

    /// Applies RRset changes in one atomic PATCH; an empty list makes no call.
    pub async fn patch(&self, zone: &str, rrsets: &[RrSet]) -> Result<()> {
        if rrsets.is_empty() {
            return Ok(());
        }
        let body = json!({ "rrsets": rrsets });
        let (status, bytes) = self
            .call(Method::PATCH, &self.zone_url(zone), Some(&body))
            .await?;
        match status.as_u16() {
            200 | 204 => Ok(()),
            _ => Err(api_error("patch rrsets", status, &bytes)),
        }
    }

    /// The zone's DNSSEC keys (none for a missing zone).
    pub async fn cryptokeys(&self, zone: &str) -> Result<Vec<CryptoKey>> {
        let (status, bytes) = self
            .call(
                Method::GET,
                &format!("{}/cryptokeys", self.zone_url(zone)),
                None,
            )
            .await?;
        match status.as_u16() {
            200 => serde_json::from_slice(&bytes).map_err(|e| {
                DnsError::PowerDns(format!("powerdns cryptokeys: unexpected body: {e}"))
            }),
            404 => Ok(Vec::new()),
            _ => Err(api_error("list cryptokeys", status, &bytes)),
        }
    }

    /// Recomputes ordering and auth flags after changes.
    pub async fn rectify(&self, zone: &str) -> Result<()> {
        let (status, bytes) = self
            .call(
                Method::PUT,
                &format!("{}/rectify", self.zone_url(zone)),
                None,
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(api_error("rectify", status, &bytes))
        }
    }

    /// Signs a zone: `dnssec` on, then adds the keys that are missing among the active ones
    /// (a CSK is both a KSK and a ZSK), then rectifies. Repeating it changes nothing.
    pub async fn enable_dnssec(&self, zone: &str) -> Result<()> {
        let body = json!({
            "dnssec": true,
            "api_rectify": true,
            "soa_edit": "INCEPTION-EPOCH",
            "soa_edit_api": "INCEPTION-EPOCH",
        });
        let (status, bytes) = self
            .call(Method::PUT, &self.zone_url(zone), Some(&body))
            .await?;
        if !status.is_success() {
            return Err(api_error("enable dnssec", status, &bytes));
        }
        let keys = self.cryptokeys(zone).await?;
        let has = |types: &[&str]| {
            keys.iter()
                .any(|k| k.active && types.contains(&k.keytype.as_str()))
        };
        let mut missing = Vec::new();
        if !has(&["ksk", "csk"]) {
            missing.push("ksk");
        }
        if !has(&["zsk", "csk"]) {
            missing.push("zsk");
        }
        for keytype in missing {
            let body = json!({"keytype": keytype, "active": true, "published": true, "algorithm": "ecdsa256"});
            let (status, bytes) = self
                .call(
                    Method::POST,
                    &format!("{}/cryptokeys", self.zone_url(zone)),
                    Some(&body),
                )
                .await?;
            if !status.is_success() {
                return Err(api_error("add cryptokey", status, &bytes));
            }
        }
        self.rectify(zone).await
    }

    /// The zone's keys, after signing it when it lacks an active key-signing or zone-signing
    /// key (a zone created here is signed from the start, so that costs one GET).
    pub async fn ensure_signed(&self, zone: &str) -> Result<Vec<CryptoKey>> {
        let keys = self.cryptokeys(zone).await?;
        if is_signed(&keys) {
            return Ok(keys);
        }
        self.enable_dnssec(zone).await?;
        self.cryptokeys(zone).await
    }

    /// The DS records (SHA-256 digests) of the zone's active key-signing keys.
    pub async fn ds_records(&self, zone: &str) -> Result<Vec<String>> {
        Ok(ds_of(&self.cryptokeys(zone).await?))
    }

    /// Makes sure a parent zone exists and is signed (start-up).
    pub async fn ensure_signed_zone(&self, zone: &str, nameservers: &[String]) -> Result<()> {
        if !self.zone_exists(zone).await? {
            self.create_zone(zone, nameservers).await?;
        }
        if let Err(e) = self.enable_dnssec(zone).await {
            warn!(zone, error = %e, "Could not sign the pool zone.");
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(keytype: &str, active: bool, ds: &[&str]) -> CryptoKey {
        CryptoKey {
            id: 1,
            keytype: keytype.into(),
            active,
            ds: ds.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn signing_state() {
        assert!(is_signed(&[key("csk", true, &[])]), "a CSK is both");
        assert!(is_signed(&[key("ksk", true, &[]), key("zsk", true, &[])]));
        assert!(!is_signed(&[key("ksk", true, &[])]));
        assert!(!is_signed(&[key("csk", false, &[])]));
        assert!(!is_signed(&[]));
    }

    #[test]
    fn ds_prefers_sha256_of_active_ksks() {
        let keys = [
            key("csk", true, &["1 13 1 aa", "1 13 2 bb", "1 13 4 cc"]),
            key("ksk", false, &["2 13 2 dd"]),
            key("zsk", true, &["3 13 2 ee"]),
        ];
        assert_eq!(ds_of(&keys), ["1 13 2 bb"]);
        assert_eq!(ds_of(&[key("ksk", true, &["1 13 1 aa"])]), ["1 13 1 aa"]);
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical(" Omani.Works "), "omani.works.");
        assert_eq!(canonical("a.b."), "a.b.");
        assert_eq!(canonical(""), "");
    }

    #[test]
    fn rrset_shapes() {
        let r = RrSet::replace("A.b", "A", 300, &["10.0.0.1".into()]);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"name": "a.b.", "type": "A", "ttl": 300, "changetype": "REPLACE",
                   "records": [{"content": "10.0.0.1", "disabled": false}]})
        );
        assert_eq!(
            serde_json::to_value(RrSet::delete("a.b", "NS")).unwrap(),
            json!({"name": "a.b.", "type": "NS", "changetype": "DELETE"})
        );
    }

    #[test]
    fn client_config() {
        assert!(PowerDns::new("ftp://x", "k", "").is_err());
        assert!(PowerDns::new("http://x", "bad\nkey", "").is_err());
        let c = PowerDns::new("http://127.0.0.1:8081/", "secret-key", "").unwrap();
        assert_eq!(
            c.zones_url,
            "http://127.0.0.1:8081/api/v1/servers/localhost/zones"
        );
        assert!(!format!("{c:?}").contains("secret-key"));
    }
}
