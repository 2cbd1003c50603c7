//! A client for OCI distribution registries: manifests and blobs (HEAD/GET/PUT), monolithic and
//! chunked uploads, cross-repository mounts with fallback, tags, and basic or bearer-token auth
//! negotiated from the `WWW-Authenticate` challenge. Passwords and tokens are never logged and
//! never appear in an error.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tracing::debug;

use crate::store::Repo;
use crate::{media, Digest, Error, Result};

/// Largest manifest we accept (the distribution spec's recommended limit).
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// Default size above which blobs are uploaded in chunks, and the chunk size.
pub const DEFAULT_CHUNK_SIZE: usize = 8 * 1024 * 1024;

/// A registry user name and password (or token). `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    username: String,
    password: String,
}

impl Credentials {
    /// New credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

/// A registry client shared by every repository it opens (the token cache is shared too).
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    credentials: Option<Credentials>,
    host_credentials: Arc<HashMap<String, Credentials>>,
    plain_http: bool,
    chunk_size: usize,
    auth_cache: Arc<Mutex<HashMap<String, String>>>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("credentials", &self.credentials)
            .field("plain_http", &self.plain_http)
            .field("chunk_size", &self.chunk_size)
            .finish()
    }
}

impl Default for RegistryClient {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .user_agent(concat!("catalyst/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(std::time::Duration::from_secs(15))
                .read_timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap_or_default(),
            credentials: None,
            host_credentials: Arc::default(),
            plain_http: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            auth_cache: Arc::default(),
        }
    }
}

impl RegistryClient {
    /// Uses `credentials` for basic auth and for token requests.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Per-host credentials (e.g. from `docker login` / `helm registry login` config files), used
    /// for hosts when no explicit credentials were given.
    pub fn with_host_credentials(mut self, credentials: HashMap<String, Credentials>) -> Self {
        self.host_credentials = Arc::new(credentials);
        self
    }

    fn credentials_for(&self, host: &str) -> Option<&Credentials> {
        self.credentials
            .as_ref()
            .or_else(|| self.host_credentials.get(host))
    }

    /// Speaks plain HTTP to every host (loopback hosts always use plain HTTP).
    pub fn with_plain_http(mut self, plain_http: bool) -> Self {
        self.plain_http = plain_http;
        self
    }

    /// Blobs larger than `size` bytes are uploaded in chunks of `size` bytes.
    pub fn with_chunk_size(mut self, size: usize) -> Self {
        self.chunk_size = size.max(1);
        self
    }

    fn scheme(&self, host: &str) -> &'static str {
        let h = host.split(':').next().unwrap_or(host);
        if self.plain_http || h == "localhost" || h.starts_with("127.") || host.starts_with("[::1]")
        {
            "http"
        } else {
            "https"
        }
    }

    /// Sends a request, answering one auth challenge if the registry asks for it.
    async fn send(
        &self,
        host: &str,
        scope: &str,
        url: &str,
        make: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        let key = format!("{host} {scope}");
        let cached = self
            .auth_cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned());
        let mut req = make(&self.http);
        if let Some(h) = &cached {
            req = req.header(AUTHORIZATION, h);
        }
        let resp = req.send().await.map_err(|e| transport(url, e))?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let header = self.authorize(host, scope, &challenge, url).await?;
        if let Ok(mut c) = self.auth_cache.lock() {
            c.insert(key, header.clone());
        }
        let resp = make(&self.http)
            .header(AUTHORIZATION, &header)
            .send()
            .await
            .map_err(|e| transport(url, e))?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(Error::Auth {
                url: url.to_string(),
                detail: "the registry rejected the credentials".into(),
            });
        }
        Ok(resp)
    }

    /// Turns a `WWW-Authenticate` challenge into an `Authorization` header value.
    async fn authorize(
        &self,
        host: &str,
        scope: &str,
        challenge: &str,
        url: &str,
    ) -> Result<String> {
        let credentials = self.credentials_for(host);
        let auth_err = |detail: String| Error::Auth {
            url: url.to_string(),
            detail,
        };
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => credentials.map(Credentials::basic).ok_or_else(|| {
                auth_err("the registry wants a user name and password (--username, --password-stdin or CATALYST_REGISTRY_USERNAME/PASSWORD)".into())
            }),
            "bearer" => {
                let realm = params
                    .get("realm")
                    .ok_or_else(|| auth_err("bearer challenge without realm".into()))?;
                let mut token_url = url::Url::parse(realm)
                    .map_err(|e| auth_err(format!("bad token realm {realm:?}: {e}")))?;
                {
                    let mut q = token_url.query_pairs_mut();
                    if let Some(service) = params.get("service") {
                        q.append_pair("service", service);
                    }
                    let mut scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
                    if let Some(s) = params.get("scope") {
                        for s in s.split(' ') {
                            if !scopes.contains(&s) {
                                scopes.push(s);
                            }
                        }
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                let mut req = self.http.get(token_url.clone());
                if let Some(c) = credentials {
                    req = req.header(AUTHORIZATION, c.basic());
                }
                let resp = req.send().await.map_err(|e| transport(realm, e))?;
                if !resp.status().is_success() {
                    return Err(auth_err(format!(
                        "token service {realm} answered HTTP {}",
                        resp.status().as_u16()
                    )));
                }
                #[derive(serde::Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body: TokenResponse = resp
                    .json()
                    .await
                    .map_err(|e| auth_err(format!("token service {realm}: {e}")))?;
                let token = body
                    .token
                    .or(body.access_token)
                    .ok_or_else(|| auth_err(format!("token service {realm} returned no token")))?;
                debug!(realm = %realm, "Obtained a registry token.");
                Ok(format!("Bearer {token}"))
            }
            other => Err(auth_err(format!(
                "unsupported auth challenge {other:?}"
            ))),
        }
    }
}

/// Reads `auths` from the Docker config (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`) and Helm's registry config (`~/.config/helm/registry/config.json`):
/// host → credentials. Credential helpers (`credsStore`, `credHelpers`) are not consulted.
pub fn credentials_from_config_files() -> HashMap<String, Credentials> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let mut paths = Vec::new();
    if let Some(helm) = std::env::var_os("HELM_REGISTRY_CONFIG") {
        paths.push(std::path::PathBuf::from(helm));
    } else if let Some(h) = &home {
        paths.push(h.join(".config/helm/registry/config.json"));
    }
    match (std::env::var_os("DOCKER_CONFIG"), &home) {
        (Some(d), _) => paths.push(std::path::PathBuf::from(d).join("config.json")),
        (None, Some(h)) => paths.push(h.join(".docker/config.json")),
        _ => {}
    }
    let mut out = HashMap::new();
    for path in paths {
        if let Ok(bytes) = std::fs::read(&path) {
            out.extend(parse_docker_config(&bytes));
        }
    }
    out
}

/// Parses the `auths` of a Docker-format config file; entries that do not decode are skipped.
pub fn parse_docker_config(bytes: &[u8]) -> HashMap<String, Credentials> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        auths: HashMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let Ok(config) = serde_json::from_slice::<Config>(bytes) else {
        return HashMap::new();
    };
    config
        .auths
        .into_iter()
        .filter_map(|(key, e)| {
            let host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let creds = match (e.auth, e.username, e.password) {
                (Some(auth), _, _) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .ok()?;
                    let raw = String::from_utf8(raw).ok()?;
                    let (u, p) = raw.split_once(':')?;
                    Credentials::new(u, p)
                }
                (None, Some(u), Some(p)) => Credentials::new(u, p),
                _ => return None,
            };
            Some((host, creds))
        })
        .collect()
}

/// Splits `Bearer realm="…",service="…"` into the scheme and its parameters.
fn parse_challenge(challenge: &str) -> (String, HashMap<String, String>) {
    let challenge = challenge.trim();
    let (scheme, rest) = challenge.split_once(' ').unwrap_or((challenge, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_string(), params)
}

fn transport(url: &str, e: reqwest::Error) -> Error {
    Error::Transport {
        url: url.to_string(),
        detail: e.without_url().to_string(),
    }
}

/// Reads a manifest response body, refusing anything larger than [`MAX_MANIFEST`].
async fn manifest_body(resp: Response, url: &str) -> Result<Bytes> {
    let too_big = || Error::Malformed {
        what: format!("manifest at {url}"),
        detail: format!("larger than {MAX_MANIFEST} bytes"),
    };
    if resp.content_length().unwrap_or(0) > MAX_MANIFEST {
        return Err(too_big());
    }
    let body = resp.bytes().await.map_err(|e| transport(url, e))?;
    if body.len() as u64 > MAX_MANIFEST {
        return Err(too_big());
    }
    Ok(body)
}

async fn unexpected(resp: Response, url: &str) -> Error {
    let status = resp.status().as_u16();
    let mut detail = resp.text().await.unwrap_or_default();
    if detail.len() > 300 {
        let mut cut = 300;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    Error::Registry {
        url: url.to_string(),
        status,
        detail: detail.trim().to_string(),
    }
}

/// One repository in a registry.
#[derive(Debug, Clone)]
pub struct RegistryRepo {
    client: RegistryClient,
    host: String,
    repository: String,
}

impl RegistryRepo {
    /// The repository `repository` on `host`.
    pub fn new(client: RegistryClient, host: &str, repository: &str) -> Self {
        Self {
            client,
            host: host.to_string(),
            repository: repository.to_string(),
        }
    }

    fn base(&self) -> String {
        format!(
            "{}://{}/v2/{}",
            self.client.scheme(&self.host),
            self.host,
            self.repository
        )
    }

    fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }

    fn push_scope(&self) -> String {
        format!("repository:{}:pull,push", self.repository)
    }

    async fn request(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        accept: Option<&'static str>,
    ) -> Result<Response> {
        let u = url.to_string();
        self.client
            .send(&self.host, scope, url, &move |http| {
                let r = http.request(method.clone(), &u);
                match accept {
                    Some(a) => r.header(ACCEPT, a),
                    None => r,
                }
            })
            .await
    }

    fn absolute(&self, location: &str) -> Result<url::Url> {
        let base = url::Url::parse(&self.base()).map_err(|e| Error::Transport {
            url: self.base(),
            detail: e.to_string(),
        })?;
        base.join(location).map_err(|e| Error::Transport {
            url: location.to_string(),
            detail: format!("bad upload location: {e}"),
        })
    }

    fn location_of(&self, resp: &Response, url: &str) -> Result<url::Url> {
        let loc = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Registry {
                url: url.to_string(),
                status: resp.status().as_u16(),
                detail: "upload response without a Location header".into(),
            })?;
        self.absolute(loc)
    }

    /// Starts an upload session.
    async fn start_upload(&self) -> Result<url::Url> {
        let url = format!("{}/blobs/uploads/", self.base());
        let resp = self
            .request(Method::POST, &url, &self.push_scope(), None)
            .await?;
        match resp.status() {
            StatusCode::ACCEPTED => self.location_of(&resp, &url),
            _ => Err(unexpected(resp, &url).await),
        }
    }

    async fn upload(&self, digest: &Digest, data: Bytes, mut location: url::Url) -> Result<()> {
        let scope = self.push_scope();
        let chunk = self.client.chunk_size;
        if data.len() > chunk {
            let mut start = 0;
            while start < data.len() {
                let end = (start + chunk).min(data.len());
                let part = data.slice(start..end);
                let url = location.to_string();
                let range = format!("{}-{}", start, end - 1);
                let resp = self
                    .client
                    .send(&self.host, &scope, &url, &|http| {
                        http.patch(&url)
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, part.len())
                            .header("Content-Range", &range)
                            .body(part.clone())
                    })
                    .await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(unexpected(resp, &url).await);
                }
                location = self.location_of(&resp, &url)?;
                start = end;
            }
            let mut done = location.clone();
            done.query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let url = done.to_string();
            let resp = self
                .client
                .send(&self.host, &scope, &url, &|http| {
                    http.put(&url).header(CONTENT_LENGTH, 0)
                })
                .await?;
            if resp.status() != StatusCode::CREATED {
                return Err(unexpected(resp, &url).await);
            }
        } else {
            location
                .query_pairs_mut()
                .append_pair("digest", &digest.to_string());
            let url = location.to_string();
            let resp = self
                .client
                .send(&self.host, &scope, &url, &|http| {
                    http.put(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, data.len())
                        .body(data.clone())
                })
                .await?;
            if resp.status() != StatusCode::CREATED {
                return Err(unexpected(resp, &url).await);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Repo for RegistryRepo {
    fn describe(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    fn identity(&self) -> String {
        format!("{}/{}", self.host, self.repository)
    }

    fn registry_location(&self) -> Option<(String, String)> {
        Some((self.host.clone(), self.repository.clone()))
    }

    async fn resolve_tag(&self, tag: &str) -> Result<Option<Digest>> {
        let url = format!("{}/manifests/{tag}", self.base());
        let resp = self
            .request(
                Method::HEAD,
                &url,
                &self.pull_scope(),
                Some(media::MANIFEST_ACCEPT),
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if s.is_success() => {
                if let Some(d) = resp
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<Digest>().ok())
                {
                    return Ok(Some(d));
                }
            }
            _ => return Err(unexpected(resp, &url).await),
        }
        let resp = self
            .request(
                Method::GET,
                &url,
                &self.pull_scope(),
                Some(media::MANIFEST_ACCEPT),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(unexpected(resp, &url).await);
        }
        let body = manifest_body(resp, &url).await?;
        Ok(Some(Digest::of(&body)))
    }

    async fn manifest(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        let url = format!("{}/manifests/{digest}", self.base());
        let resp = self
            .request(
                Method::GET,
                &url,
                &self.pull_scope(),
                Some(media::MANIFEST_ACCEPT),
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let body = manifest_body(resp, &url).await?;
                digest.check(
                    &format!("manifest {digest} from {}", self.describe()),
                    &body,
                )?;
                Ok(Some(body.to_vec()))
            }
            _ => Err(unexpected(resp, &url).await),
        }
    }

    async fn blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let url = format!("{}/blobs/{digest}", self.base());
        let resp = self
            .request(Method::GET, &url, &self.pull_scope(), None)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Err(Error::NotFound(format!(
                "blob {digest} in {}",
                self.describe()
            ))),
            s if s.is_success() => {
                let body = resp.bytes().await.map_err(|e| transport(&url, e))?;
                digest.check(&format!("blob {digest} from {}", self.describe()), &body)?;
                Ok(body.to_vec())
            }
            _ => Err(unexpected(resp, &url).await),
        }
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = format!("{}/blobs/{digest}", self.base());
        let resp = self
            .request(Method::HEAD, &url, &self.pull_scope(), None)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(unexpected(resp, &url).await),
        }
    }

    async fn put_blob(&self, digest: &Digest, bytes: Vec<u8>) -> Result<()> {
        digest.check("blob to upload", &bytes)?;
        if self.has_blob(digest).await? {
            return Ok(());
        }
        let location = self.start_upload().await?;
        self.upload(digest, Bytes::from(bytes), location).await
    }

    async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool> {
        let url = format!("{}/blobs/uploads/?mount={digest}&from={from}", self.base());
        let scope = format!("{} repository:{from}:pull", self.push_scope());
        let resp = self.request(Method::POST, &url, &scope, None).await?;
        match resp.status() {
            StatusCode::CREATED => {
                debug!(digest = %digest, from, "Mounted blob.");
                Ok(true)
            }
            // The registry opened an ordinary upload session instead; it expires on its own.
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(unexpected(resp, &url).await),
        }
    }

    async fn put_manifest(
        &self,
        media_type: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let reference = tag
            .map(str::to_string)
            .unwrap_or_else(|| digest.to_string());
        let url = format!("{}/manifests/{reference}", self.base());
        let body = Bytes::copy_from_slice(bytes);
        let ct = HeaderValue::from_str(media_type).map_err(|e| Error::Malformed {
            what: "media type".into(),
            detail: e.to_string(),
        })?;
        let resp = self
            .client
            .send(&self.host, &self.push_scope(), &url, &|http| {
                http.put(&url)
                    .header(CONTENT_TYPE, ct.clone())
                    .body(body.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(unexpected(resp, &url).await);
        }
        if let Some(stored) = resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok())
        {
            if stored != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest stored at {url}"),
                    expected: digest,
                    actual: stored,
                });
            }
        }
        Ok(digest)
    }

    async fn tags(&self) -> Result<Vec<String>> {
        let url = format!("{}/tags/list?n=10000", self.base());
        let resp = self
            .request(Method::GET, &url, &self.pull_scope(), None)
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            s if s.is_success() => {
                #[derive(serde::Deserialize)]
                struct Tags {
                    tags: Option<Vec<String>>,
                }
                let tags: Tags = resp.json().await.map_err(|e| transport(&url, e))?;
                Ok(tags.tags.unwrap_or_default())
            }
            _ => Err(unexpected(resp, &url).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!(s, "Basic");
        assert_eq!(p["realm"], "basic-realm");
        let c = Credentials::new("u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        let creds = parse_docker_config(
            br#"{"auths":{"ghcr.io":{"auth":"dTpodW50ZXIy"},"https://index.docker.io/v1/":{"username":"a","password":"b"},"bad":{"auth":"!!"}}}"#,
        );
        assert_eq!(creds.len(), 2);
        assert_eq!(
            creds["ghcr.io"].basic(),
            Credentials::new("u", "hunter2").basic()
        );
        assert!(creds.contains_key("index.docker.io"));
    }
}
