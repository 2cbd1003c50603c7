//! Bearer tokens, console sessions and roles. Tokens are random (`cat_` + 64 hex), shown once,
//! and stored only as SHA-256 hashes in `<data-dir>/auth/tokens.json`; verification compares
//! hashes in constant time. The file is re-read when it changes, and writers hold an exclusive
//! lock on `tokens.lock`, so `catalyst token create` works offline against the data dir of a
//! running server without losing a concurrent write.
//!
//! Browsers cannot put a header on an `EventSource`, so the console signs in once
//! (`POST /api/v1/session`) and gets an HttpOnly, SameSite=Strict cookie. The cookie never holds
//! the token: it carries the token's record id (or, for OIDC, the mapped identity) and an expiry,
//! MACed with HMAC-SHA256 under `<data-dir>/auth/session.key`. A stored token's session dies
//! with the token. Cookie-authenticated writes from another origin are refused.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiError;

/// A role (PRODUCT.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Operates the Sovereign; every Organization.
    SovereignAdmin,
    /// Administers one Organization: Environments, members, Applications, approvals.
    OrgAdmin,
    /// Installs and configures Applications in one Organization.
    OrgDeveloper,
    /// Reads one Organization.
    OrgViewer,
    /// Audits one Organization and approves promotions.
    SecurityOfficer,
    /// Sees one Organization's metadata (billing lives there).
    BillingAdmin,
}

/// Something a route needs the caller to be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Create and delete Organizations; read `system/catalyst-config`.
    ManageOrgs,
    /// Read the Organization resource.
    ReadOrg,
    /// Add and remove members.
    ManageMembers,
    /// Create and delete Environments (and their policies).
    ManageEnvs,
    /// Read Applications and clone their repositories.
    ReadApps,
    /// Install, configure, upgrade, uninstall, roll back and promote Applications.
    WriteApps,
    /// Approve promotions.
    Approve,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::SovereignAdmin,
        Role::OrgAdmin,
        Role::OrgDeveloper,
        Role::OrgViewer,
        Role::SecurityOfficer,
        Role::BillingAdmin,
    ];

    /// Parses `sovereign-admin`, `org-admin`, ….
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SovereignAdmin => "sovereign-admin",
            Role::OrgAdmin => "org-admin",
            Role::OrgDeveloper => "org-developer",
            Role::OrgViewer => "org-viewer",
            Role::SecurityOfficer => "security-officer",
            Role::BillingAdmin => "billing-admin",
        }
    }

    /// True when the role has `right` (within its Organization).
    pub fn allows(self, right: Right) -> bool {
        use Right::*;
        match self {
            Role::SovereignAdmin => true,
            Role::OrgAdmin => matches!(
                right,
                ReadOrg | ManageMembers | ManageEnvs | ReadApps | WriteApps | Approve
            ),
            Role::OrgDeveloper => matches!(right, ReadOrg | ReadApps | WriteApps),
            Role::OrgViewer => matches!(right, ReadOrg | ReadApps),
            Role::SecurityOfficer => matches!(right, ReadOrg | ReadApps | Approve),
            Role::BillingAdmin => matches!(right, ReadOrg),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Token name (the commit author).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The Organization the role applies in (`None` for sovereign-admin).
    pub org: Option<String>,
}

impl Identity {
    /// Checks `right` on `org`: another Organization's objects are 404 (they do not exist for
    /// the caller), a missing right in the caller's own Organization is 403.
    pub fn authorize(&self, org: &str, right: Right) -> Result<(), ApiError> {
        if self.role == Role::SovereignAdmin {
            return Ok(());
        }
        if self.org.as_deref() != Some(org) {
            return Err(org_not_found());
        }
        if !self.role.allows(right) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("role {} may not do this in {org}", self.role.as_str()),
            ));
        }
        Ok(())
    }

    /// Checks a Sovereign-wide right (only sovereign-admin holds them).
    pub fn authorize_sovereign(&self) -> Result<(), ApiError> {
        if self.role == Role::SovereignAdmin {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "role {} may not do this; it needs sovereign-admin",
                self.role.as_str()
            ),
        ))
    }
}

/// The 404 an Organization the caller cannot see answers with.
pub fn org_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "Organization not found")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenRecord {
    id: String,
    name: String,
    role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<String>,
    sha256: String,
    created: String,
}

/// What `catalyst token list` shows of a token: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Record id (`catalyst token revoke --id`).
    pub id: String,
    /// Holder.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Organization (`None` for sovereign-admin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// When it was made (RFC 3339).
    pub created: String,
}

/// Which tokens to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSelector {
    /// One token by its record id.
    Id(String),
    /// Every token of a holder (in an Organization, or Sovereign-wide when `org` is `None`).
    Holder {
        /// Holder name.
        name: String,
        /// Organization.
        org: Option<String>,
    },
}

/// Why a token could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file cannot be read or written.
    #[error("token store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The token file is not what this version writes.
    #[error("token store {0} is corrupt")]
    Corrupt(PathBuf),
    /// The role needs an Organization, or sovereign-admin was given one.
    #[error("{0}")]
    Invalid(String),
}

/// What identifies one version of the token file: mtime, inode, length.
type FileStamp = (SystemTime, u64, u64);

/// The token store under a data dir.
pub struct TokenStore {
    path: PathBuf,
    cache: Mutex<(Option<FileStamp>, Vec<TokenRecord>)>,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TokenStore {
    /// The store at `<data_dir>/auth/tokens.json` (created on first write).
    pub fn open(data_dir: &Path) -> TokenStore {
        TokenStore {
            path: data_dir.join("auth").join("tokens.json"),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    fn io(&self, source: std::io::Error) -> TokenError {
        TokenError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn load(&self) -> Result<Vec<TokenRecord>, TokenError> {
        // Every save renames a new file into place, so the inode changes even when the mtime's
        // resolution hides a write.
        let mtime = std::fs::metadata(&self.path).ok().and_then(|m| {
            use std::os::unix::fs::MetadataExt;
            Some((m.modified().ok()?, m.ino(), m.len()))
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if mtime.is_some() && cache.0 == mtime {
            return Ok(cache.1.clone());
        }
        let records = match std::fs::read(&self.path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|_| TokenError::Corrupt(self.path.clone()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.io(e)),
        };
        *cache = (mtime, records);
        Ok(cache.1.clone())
    }

    fn save(&self, records: &[TokenRecord]) -> Result<(), TokenError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let tmp = dir.join(format!(
            ".tokens.{}.tmp",
            hex::encode(rand::random::<[u8; 6]>())
        ));
        let body = serde_json::to_vec_pretty(records)
            .map_err(|_| TokenError::Corrupt(self.path.clone()))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.io(e)
        })?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).0 = None;
        Ok(())
    }

    /// Runs a read-modify-write of the records under an exclusive lock on `tokens.lock`, so
    /// concurrent writers (the server and `catalyst token create`) never lose each other's work.
    fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<TokenRecord>) -> (bool, T),
    ) -> Result<T, TokenError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("tokens.lock"))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        // Another process may have written within the cached mtime's resolution: read afresh.
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).0 = None;
        let mut records = self.load()?;
        let (changed, out) = change(&mut records);
        if changed {
            self.save(&records)?;
        }
        drop(lock);
        Ok(out)
    }

    /// Creates a token and returns it (the only time it exists in plaintext).
    pub fn create(&self, role: Role, org: Option<&str>, name: &str) -> Result<String, TokenError> {
        match (role, org) {
            (Role::SovereignAdmin, Some(_)) => {
                return Err(TokenError::Invalid(
                    "sovereign-admin is Sovereign-wide; drop --org".into(),
                ))
            }
            (r, None) if r != Role::SovereignAdmin => {
                return Err(TokenError::Invalid(format!("{} needs --org", r.as_str())))
            }
            _ => {}
        }
        if !valid_token_name(name) {
            return Err(TokenError::Invalid(
                "the name must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.', '@'".into(),
            ));
        }
        let token = format!("cat_{}", hex::encode(rand::random::<[u8; 32]>()));
        let record = TokenRecord {
            id: hex::encode(rand::random::<[u8; 8]>()),
            name: name.to_string(),
            role,
            org: org.map(str::to_string),
            sha256: hash(&token),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        self.update(|records| {
            records.push(record);
            (true, ())
        })?;
        Ok(token)
    }

    /// Revokes every token of member `name` in `org`; returns how many.
    pub fn revoke(&self, org: &str, name: &str) -> Result<usize, TokenError> {
        self.revoke_where(|r| r.org.as_deref() == Some(org) && r.name == name)
    }

    /// Revokes the tokens `which` names; returns how many. Their console sessions end too.
    pub fn revoke_matching(&self, which: &TokenSelector) -> Result<usize, TokenError> {
        self.revoke_where(|r| match which {
            TokenSelector::Id(id) => r.id == *id,
            TokenSelector::Holder { name, org } => r.name == *name && r.org == *org,
        })
    }

    fn revoke_where(&self, hit: impl Fn(&TokenRecord) -> bool) -> Result<usize, TokenError> {
        self.update(|records| {
            let before = records.len();
            records.retain(|r| !hit(r));
            let n = before - records.len();
            (n > 0, n)
        })
    }

    /// Every token's metadata (never a hash or a token), oldest first.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self
            .load()?
            .into_iter()
            .map(|r| TokenInfo {
                id: r.id,
                name: r.name,
                role: r.role,
                org: r.org,
                created: r.created,
            })
            .collect())
    }

    /// The identity a token stands for.
    pub fn verify(&self, token: &str) -> Option<Identity> {
        self.verify_with_id(token).map(|(_, id)| id)
    }

    /// The identity a token stands for, with the id of its record (what a session refers to).
    pub fn verify_with_id(&self, token: &str) -> Option<(String, Identity)> {
        let h = hash(token);
        let records = self.load().ok()?;
        let mut found = None;
        for r in &records {
            if bool::from(r.sha256.as_bytes().ct_eq(h.as_bytes())) {
                found = Some((r.id.clone(), r.identity()));
            }
        }
        found
    }

    /// The identity of the record with this id, while it exists (sessions end with revocation).
    pub fn identity_by_id(&self, id: &str) -> Option<Identity> {
        let records = self.load().ok()?;
        records
            .iter()
            .find(|r| r.id == id)
            .map(TokenRecord::identity)
    }
}

impl TokenRecord {
    fn identity(&self) -> Identity {
        Identity {
            name: self.name.clone(),
            role: self.role,
            org: self.org.clone(),
        }
    }
}

/// Name of the console's session cookie.
pub const SESSION_COOKIE: &str = "catalyst_session";

/// How long a console session lasts (12 h; an OIDC session never outlives its JWT).
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

/// Verifies every kind of credential: stored tokens, OIDC JWTs (when configured) and console
/// session cookies.
pub struct Authenticator {
    tokens: Arc<TokenStore>,
    oidc: Option<Arc<super::oidc::OidcVerifier>>,
    session_key: [u8; 32],
    /// Where failed sign-ins are recorded, once the event spine is up.
    events: std::sync::OnceLock<Arc<super::auth_events::AuthEvents>>,
    /// Failed credential checks per client address, console sign-ins per holder.
    limits: super::limit::SignInLimits,
    /// Open SSE streams per holder.
    streams: Arc<super::limit::StreamCap>,
}

/// What a session cookie says (MACed, never holding a token).
#[derive(Debug, Serialize, Deserialize)]
struct SessionClaims {
    /// The stored token's record id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tid: Option<String>,
    /// The identity an OIDC JWT mapped to (OIDC sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<String>,
    /// Expiry, Unix seconds.
    exp: i64,
}

/// A signed-in console session: the cookie value and the identity behind it.
pub struct Session {
    /// The `Set-Cookie` value's payload (`<claims>.<mac>`).
    pub cookie: String,
    /// Who signed in.
    pub identity: Identity,
    /// Seconds until it expires.
    pub max_age: i64,
}

type HmacSha256 = hmac::Hmac<Sha256>;

impl Authenticator {
    /// The authenticator over `<data_dir>/auth` (token store and session key, created on first
    /// use with mode 0600) and an optional OIDC verifier.
    pub fn open(
        data_dir: &Path,
        oidc: Option<Arc<super::oidc::OidcVerifier>>,
    ) -> Result<Authenticator, TokenError> {
        let tokens = Arc::new(TokenStore::open(data_dir));
        let session_key = load_session_key(&data_dir.join("auth").join("session.key"))?;
        Ok(Authenticator {
            tokens,
            oidc,
            session_key,
            events: std::sync::OnceLock::new(),
            limits: super::limit::SignInLimits::default(),
            streams: Arc::new(super::limit::StreamCap::new(
                super::limit::DEFAULT_STREAMS_PER_HOLDER,
            )),
        })
    }

    /// The cap on open SSE streams per holder.
    pub fn streams(&self) -> &Arc<super::limit::StreamCap> {
        &self.streams
    }

    /// A slot for one more SSE stream of `id`, or 429 `too-many-streams`.
    pub fn open_stream(
        &self,
        id: &Identity,
    ) -> Result<super::limit::StreamSlot, Box<axum::response::Response>> {
        use axum::response::IntoResponse;
        let holder = format!("{}/{}", id.org.as_deref().unwrap_or("sovereign"), id.name);
        self.streams.open(&holder).map_err(|max| {
            Box::new(
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-streams",
                    format!("{} has {max} event streams open already (the most one holder may have); close one first", id.name),
                )
                .into_response(),
            )
        })
    }

    /// The sign-in rate limits (for `/metrics`).
    pub fn limits(&self) -> &super::limit::SignInLimits {
        &self.limits
    }

    /// The 429 for a client address that has spent its failed-check budget (checked before any of
    /// its credentials is). Clients of unknown address (in-process callers) are not limited.
    fn refusal(&self, extensions: &axum::http::Extensions) -> Option<axum::response::Response> {
        let key = client_of(extensions).map(super::limit::client_key)?;
        let wait = self.limits.failures.check(&key).err()?;
        Some(too_many(wait, "too many failed sign-ins from this address"))
    }

    /// Spends one failed check of the client address.
    fn count_failure(&self, extensions: &axum::http::Extensions) {
        if let Some(key) = client_of(extensions).map(super::limit::client_key) {
            let _ = self.limits.failures.spend(&key);
        }
    }

    /// Records failed sign-ins with `events` from now on (once; later calls are ignored).
    pub fn set_events(&self, events: Arc<super::auth_events::AuthEvents>) {
        let _ = self.events.set(events);
    }

    /// The recorder of token changes and failed sign-ins, once set.
    pub fn events(&self) -> Option<&Arc<super::auth_events::AuthEvents>> {
        self.events.get()
    }

    /// Records a failed sign-in (when a recorder is set). `credential` is only looked at to
    /// tell a JWT from a stored token; no part of it is recorded.
    pub fn sign_in_failed(
        &self,
        credential: Option<&str>,
        detail: &str,
        method: &axum::http::Method,
        path: &str,
        extensions: &axum::http::Extensions,
    ) {
        let Some(events) = self.events.get() else {
            return;
        };
        let reason = match credential {
            Some(c) if self.oidc.is_some() && super::oidc::looks_like_jwt(c) => "invalid-jwt",
            Some(_) => "unknown-token",
            None => "invalid-session",
        };
        let client = extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        events.sign_in_failed(super::auth_events::FailedSignIn {
            reason,
            detail: detail.to_owned(),
            method: method.to_string(),
            path: path.chars().take(256).collect(),
            client,
        });
    }

    /// The token store.
    pub fn tokens(&self) -> &Arc<TokenStore> {
        &self.tokens
    }

    /// The OIDC verifier, when configured.
    pub fn oidc(&self) -> Option<&super::oidc::OidcVerifier> {
        self.oidc.as_deref()
    }

    /// Verifies a bearer credential: a JWT goes to OIDC (when configured), anything else to the
    /// token store. Returns the identity and, for stored tokens, the record id.
    pub async fn verify_bearer(
        &self,
        token: &str,
    ) -> Result<(Identity, Option<String>), axum::response::Response> {
        if let Some(oidc) = self.oidc() {
            if super::oidc::looks_like_jwt(token) {
                return oidc
                    .verify(token)
                    .await
                    .map(|id| (id, None))
                    .map_err(super::oidc::OidcError::into_response);
            }
        }
        let tokens = self.tokens.clone();
        let token = token.to_string();
        // Reading the store may touch the disk.
        let found = tokio::task::spawn_blocking(move || tokens.verify_with_id(&token))
            .await
            .ok()
            .flatten();
        found
            .map(|(tid, id)| (id, Some(tid)))
            .ok_or_else(|| unauthorized("the token is not valid"))
    }

    /// Starts a console session for a verified bearer credential.
    pub fn start_session(&self, identity: Identity, tid: Option<String>, exp: i64) -> Session {
        let now = chrono::Utc::now().timestamp();
        let exp = exp.min(now + SESSION_TTL_SECS);
        let claims = match tid {
            Some(tid) => SessionClaims {
                tid: Some(tid),
                name: None,
                role: None,
                org: None,
                exp,
            },
            None => SessionClaims {
                tid: None,
                name: Some(identity.name.clone()),
                role: Some(identity.role),
                org: identity.org.clone(),
                exp,
            },
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = b64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let mac = b64.encode(self.mac(payload.as_bytes()));
        Session {
            cookie: format!("{payload}.{mac}"),
            identity,
            max_age: (exp - now).max(0),
        }
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.session_key)
            .expect("HMAC takes keys of any length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    /// The identity a session cookie stands for, while its MAC, expiry and token hold.
    pub async fn verify_session(&self, cookie: &str) -> Option<Identity> {
        let (payload, mac) = cookie.split_once('.')?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let given = b64.decode(mac).ok()?;
        let want = self.mac(payload.as_bytes());
        if !bool::from(given.as_slice().ct_eq(want.as_slice())) {
            return None;
        }
        let claims: SessionClaims = serde_json::from_slice(&b64.decode(payload).ok()?).ok()?;
        if claims.exp <= chrono::Utc::now().timestamp() {
            return None;
        }
        match claims.tid {
            Some(tid) => {
                let tokens = self.tokens.clone();
                tokio::task::spawn_blocking(move || tokens.identity_by_id(&tid))
                    .await
                    .ok()
                    .flatten()
            }
            None => Some(Identity {
                name: claims.name?,
                role: claims.role?,
                org: claims.org,
            }),
        }
    }

    /// Authenticates a request: `Authorization` (Bearer, or Basic with the token as password)
    /// first, else the session cookie. A cookie-authenticated write from another origin is
    /// refused (403 `cross-origin`).
    pub async fn authenticate(&self, parts: &Parts) -> Result<Identity, axum::response::Response> {
        let has_cookie = cookie_of(parts, SESSION_COOKIE).is_some();
        if token_of(parts).is_some() || has_cookie {
            if let Some(refused) = self.refusal(&parts.extensions) {
                return Err(refused);
            }
        }
        if let Some(token) = token_of(parts) {
            let verified = self.verify_bearer(&token).await.map(|(id, _)| id);
            if verified.is_err() {
                self.count_failure(&parts.extensions);
                self.sign_in_failed(
                    Some(&token),
                    "a bearer credential was refused",
                    &parts.method,
                    parts.uri.path(),
                    &parts.extensions,
                );
            }
            return verified;
        }
        let Some(cookie) = cookie_of(parts, SESSION_COOKIE) else {
            return Err(unauthorized(
                "this route needs a token: Authorization: Bearer <token>",
            ));
        };
        let Some(id) = self.verify_session(&cookie).await else {
            self.count_failure(&parts.extensions);
            self.sign_in_failed(
                None,
                "a session cookie was refused (expired, revoked or forged)",
                &parts.method,
                parts.uri.path(),
                &parts.extensions,
            );
            return Err(unauthorized(
                "the session has expired or its token was revoked; sign in again",
            ));
        };
        if !parts.method.is_safe() && !same_origin(&parts.headers) {
            use axum::response::IntoResponse;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "cross-origin",
                "a session cookie is accepted for writes only from this site",
            )
            .into_response());
        }
        Ok(id)
    }
}

fn load_session_key(path: &Path) -> Result<[u8; 32], TokenError> {
    let text = secret_file(path)?;
    let key: Option<[u8; 32]> = hex::decode(&text).ok().and_then(|k| k.try_into().ok());
    key.ok_or_else(|| TokenError::Corrupt(path.to_path_buf()))
}

/// The trimmed text of the secret file at `path`, created first (mode 0600, 32 random bytes in
/// hex, synced) when it does not exist. Never replaces a file another process wrote first.
pub fn secret_file(path: &Path) -> Result<String, TokenError> {
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let key: [u8; 32] = rand::random();
    let tmp = dir.join(format!(
        ".secret.{}.tmp",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(hex::encode(key).as_bytes())?;
        f.sync_all()?;
        // Never replace a key another process wrote first: link fails if it exists.
        let linked = std::fs::hard_link(&tmp, path);
        std::fs::remove_file(&tmp)?;
        match linked {
            Ok(()) => std::fs::File::open(dir)?.sync_all(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    };
    write().map_err(io)?;
    Ok(std::fs::read_to_string(path).map_err(io)?.trim().to_owned())
}

/// True unless the browser says the request comes from another site (`Sec-Fetch-Site`) or
/// names an `Origin` whose host differs from `Host`.
fn same_origin(h: &axum::http::HeaderMap) -> bool {
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    if let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        return origin_host.is_some() && origin_host == host;
    }
    true
}

/// The value of cookie `name`.
pub fn cookie_of(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// A token's (member's) name: it becomes a commit author and trailer, so 1-64 characters of
/// a-z, A-Z, 0-9, '-', '_', '.', '@' — no spaces, newlines or angle brackets.
pub fn valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// Anything that holds the [`Authenticator`] (so the extractor works on any state).
pub trait HasAuth {
    /// The authenticator.
    fn auth(&self) -> &Authenticator;
}

impl HasAuth for Authenticator {
    fn auth(&self) -> &Authenticator {
        self
    }
}

/// The token from `Authorization: Bearer …` or the password of `Authorization: Basic …`.
pub fn token_of(parts: &Parts) -> Option<String> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    if let Some(t) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        return Some(t.trim().to_string());
    }
    let b64 = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_string())
}

/// 401 with a challenge naming both schemes.
pub fn unauthorized(detail: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"Catalyst\", Bearer"),
    );
    r
}

/// 401 `invalid-token` for a JWT that failed validation; `detail` names what failed.
pub fn invalid_token(detail: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "invalid-token", detail).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

impl<S> FromRequestParts<std::sync::Arc<S>> for Identity
where
    S: HasAuth + Send + Sync + 'static,
{
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<S>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(id) = parts.extensions.get::<Identity>() {
            return Ok(id.clone());
        }
        state.auth().authenticate(parts).await
    }
}

/// Middleware for routes that are sovereign-admin business (the provisioning API, pool-domain
/// writes): 401 without a valid credential, 403 for any other role; the caller's [`Identity`]
/// is put in the request extensions. Apply with
/// `.route_layer(axum::middleware::from_fn_with_state(state, require_sovereign_admin::<S>))`.
pub async fn require_sovereign_admin<S>(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<S>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response
where
    S: HasAuth + Send + Sync + 'static,
{
    admit_sovereign_admin(state.auth(), req, next, |r| r).await
}

/// The same for console pages: a caller without a valid credential is redirected (303) to
/// `/login?next=<this page>` instead of answered 401.
pub async fn require_sovereign_admin_page<S>(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<S>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response
where
    S: HasAuth + Send + Sync + 'static,
{
    let target = page_target(&req);
    admit_sovereign_admin(state.auth(), req, next, move |rejection| {
        let error = match rejection.status() {
            StatusCode::UNAUTHORIZED => "",
            StatusCode::FORBIDDEN => "&error=forbidden",
            _ => return rejection,
        };
        see_other(&format!("/login?next={}{error}", percent_encode(&target)))
    })
    .await
}

/// Console pages for every signed-in caller: the caller's [`Identity`] and the console's
/// `Viewer` of it go into the request's extensions; a caller without a valid credential is redirected (303) to `/login?next=<this
/// page>`. What each page shows is the page's business (by the identity's role).
pub async fn require_signed_in_page<S>(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<S>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response
where
    S: HasAuth + Send + Sync + 'static,
{
    let target = page_target(&req);
    let (parts, body) = req.into_parts();
    match state.auth().authenticate(&parts).await {
        Ok(id) => {
            let mut req = axum::extract::Request::from_parts(parts, body);
            req.extensions_mut().insert(catalyst_console::Viewer {
                name: id.name.clone(),
                role: id.role.as_str().to_owned(),
                org: id.org.clone(),
            });
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        Err(rejection) if rejection.status() == StatusCode::UNAUTHORIZED => {
            see_other(&format!("/login?next={}", percent_encode(&target)))
        }
        Err(rejection) => rejection,
    }
}

/// The page a sign-in should return to: this request's path and query.
fn page_target(req: &axum::extract::Request) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into())
}

fn see_other(location: &str) -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = header::HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn admit_sovereign_admin(
    auth: &Authenticator,
    req: axum::extract::Request,
    next: axum::middleware::Next,
    on_reject: impl FnOnce(axum::response::Response) -> axum::response::Response,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let id = match auth.authenticate(&parts).await {
        Ok(id) => id,
        Err(rejection) => return on_reject(rejection),
    };
    if let Err(e) = id.authorize_sovereign() {
        return on_reject(e.into_response());
    }
    let mut req = axum::extract::Request::from_parts(parts, body);
    req.extensions_mut().insert(id);
    next.run(req).await
}

/// Percent-encodes everything but unreserved characters and `/`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A console redirect target: a local path (`/…`, never `//host` or a scheme), else `/`.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.bytes().any(|b| b.is_ascii_control()) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// The `exp` claim of a JWT that has already been verified.
pub(crate) fn jwt_exp(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()
}

fn identity_json(id: &Identity) -> crate::session::IdentityBody {
    crate::session::IdentityBody::from(id)
}

/// `POST /api/v1/session`: signs the console in. The body is JSON `{"token": "…"}` (answer 200
/// with the identity) or a form `token=…&next=/path` (answer 303 to `next`). Either way the
/// answer sets the HttpOnly session cookie, which never holds the token.
pub async fn session_create<S>(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<S>>,
    extensions: axum::http::Extensions,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response
where
    S: HasAuth + Send + Sync + 'static,
{
    use axum::response::IntoResponse;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    if !form && !content_type.starts_with("application/json") {
        // A cross-site `enctype="text/plain"` form could otherwise smuggle JSON in.
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send application/json {\"token\": \"…\"} or a form",
        )
        .into_response();
    }
    // Signing a browser in from another site (login CSRF) is refused, forms and JSON alike.
    if !same_origin(&headers) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross-origin",
            "sign in from this site's own login page",
        )
        .into_response();
    }
    #[derive(Deserialize)]
    struct Login {
        token: String,
        #[serde(default)]
        next: Option<String>,
    }
    let login = if form {
        serde_urlencoded::from_bytes::<Login>(&body).ok()
    } else {
        serde_json::from_slice::<Login>(&body).ok()
    };
    let Some(login) = login.filter(|l| !l.token.trim().is_empty()) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "send JSON {\"token\": \"…\"} or a form with a token field",
        )
        .into_response();
    };
    let token = login.token.trim();
    let auth = state.auth();
    let next = safe_next(login.next.as_deref());
    if let Some(refused) = auth.refusal(&extensions) {
        return refused;
    }
    let verified = auth.verify_bearer(token).await;
    if verified.is_err() {
        auth.count_failure(&extensions);
        auth.sign_in_failed(
            Some(token),
            "console sign-in with a token that is not valid",
            &axum::http::Method::POST,
            "/api/v1/session",
            &extensions,
        );
    }
    let (identity, tid) = match verified {
        Ok(found) => found,
        Err(_) if form => {
            return see_other(&format!(
                "/login?error=invalid&next={}",
                percent_encode(&next)
            ))
        }
        Err(rejection) => return rejection,
    };
    // Sessions per holder: a stolen token cannot mint cookies without bound.
    let holder = tid
        .clone()
        .unwrap_or_else(|| format!("oidc:{}", identity.name));
    if let Err(wait) = auth.limits.sign_ins.spend(&holder) {
        return too_many(wait, "too many console sign-ins for this holder");
    }
    let exp = jwt_exp(token).filter(|_| tid.is_none()).unwrap_or(i64::MAX);
    let session = auth.start_session(identity, tid, exp);
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session.cookie,
        session.max_age,
        if secure { "; Secure" } else { "" }
    );
    tracing::info!(name = %session.identity.name, role = session.identity.role.as_str(), "Console session started.");
    let mut response = if form {
        see_other(&next)
    } else {
        axum::Json(identity_json(&session.identity)).into_response()
    };
    if let Ok(v) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

/// The client address the server saw (absent for in-process callers).
fn client_of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// 429 `too-many-attempts` with `Retry-After`.
fn too_many(wait: std::time::Duration, why: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let secs = super::limit::retry_after_secs(wait);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-attempts",
        format!("{why}; try again in {secs} s"),
    )
    .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// `GET /api/v1/session`: who the caller is (by token or session cookie).
pub async fn session_get(id: Identity) -> axum::Json<crate::session::IdentityBody> {
    axum::Json(identity_json(&id))
}

/// `DELETE /api/v1/session`: signs the console out (clears the cookie).
pub async fn session_delete() -> axum::response::Response {
    let mut r = axum::response::Response::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    clear_session_cookie(r)
}

/// `POST /api/v1/session/end`: the console's Sign-out form (clears the cookie, 303 to
/// `/login`).
pub async fn session_end() -> axum::response::Response {
    clear_session_cookie(see_other("/login"))
}

fn clear_session_cookie(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_static(
            "catalyst_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hashed_at_rest_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path());
        let t = store.create(Role::OrgAdmin, Some("acme"), "ann").unwrap();
        let text = std::fs::read_to_string(dir.path().join("auth/tokens.json")).unwrap();
        assert!(!text.contains(&t) && !text.contains(t.trim_start_matches("cat_")));
        assert_eq!(store.verify(&t).unwrap().org.as_deref(), Some("acme"));
        assert!(store.verify("cat_nope").is_none());
        assert!(store.create(Role::OrgAdmin, None, "x").is_err());
        assert!(store
            .create(Role::OrgAdmin, Some("acme"), "a\nCatalyst-Actor: root")
            .is_err());
        assert!(store
            .create(Role::SovereignAdmin, Some("acme"), "x")
            .is_err());
        assert_eq!(store.revoke("acme", "ann").unwrap(), 1);
        assert!(store.verify(&t).is_none());
    }

    #[tokio::test]
    async fn the_sovereign_admin_middleware() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let st = std::sync::Arc::new(Authenticator::open(dir.path(), None).unwrap());
        let admin = st
            .tokens()
            .create(Role::SovereignAdmin, None, "root")
            .unwrap();
        let dev = st
            .tokens()
            .create(Role::OrgDeveloper, Some("acme"), "dev")
            .unwrap();
        let app = axum::Router::new()
            .route("/x", axum::routing::get(|| async { "ok" }))
            .route_layer(axum::middleware::from_fn_with_state(
                st.clone(),
                require_sovereign_admin::<Authenticator>,
            ));
        for (token, want) in [
            (None, StatusCode::UNAUTHORIZED),
            (Some("cat_bad"), StatusCode::UNAUTHORIZED),
            (Some(dev.as_str()), StatusCode::FORBIDDEN),
            (Some(admin.as_str()), StatusCode::OK),
        ] {
            let mut req = axum::http::Request::builder().uri("/x");
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let resp = app
                .clone()
                .oneshot(req.body(axum::body::Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), want, "{token:?}");
        }
    }

    #[test]
    fn concurrent_writers_through_separate_stores_lose_nothing() {
        // Two stores over one data dir stand for the server and `catalyst token create`.
        let dir = tempfile::tempdir().unwrap();
        let tokens: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|w| {
                    let path = dir.path();
                    scope.spawn(move || {
                        let store = TokenStore::open(path);
                        (0..10)
                            .map(|i| {
                                store
                                    .create(Role::OrgViewer, Some("acme"), &format!("w{w}-{i}"))
                                    .unwrap()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let store = TokenStore::open(dir.path());
        assert_eq!(tokens.len(), 40);
        for t in &tokens {
            assert!(store.verify(t).is_some(), "a token was lost");
        }
    }

    #[tokio::test]
    async fn sessions_are_signed_expire_and_end_with_their_token() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authenticator::open(dir.path(), None).unwrap();
        let token = auth
            .tokens()
            .create(Role::OrgAdmin, Some("acme"), "ann")
            .unwrap();
        let (id, tid) = auth.verify_bearer(&token).await.unwrap();
        let s = auth.start_session(id.clone(), tid.clone(), i64::MAX);
        assert!(!s.cookie.contains(&token) && !s.cookie.contains(token.trim_start_matches("cat_")));
        assert_eq!(s.max_age, SESSION_TTL_SECS);
        assert_eq!(auth.verify_session(&s.cookie).await, Some(id.clone()));
        // The key survives a restart; another data dir's key does not verify it.
        let again = Authenticator::open(dir.path(), None).unwrap();
        assert_eq!(again.verify_session(&s.cookie).await, Some(id.clone()));
        let other = tempfile::tempdir().unwrap();
        let stranger = Authenticator::open(other.path(), None).unwrap();
        assert_eq!(stranger.verify_session(&s.cookie).await, None);
        // Tampering with the claims or the MAC, or garbage, is worthless.
        let (payload, mac) = s.cookie.split_once('.').unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value =
            serde_json::from_slice(&b64.decode(payload).unwrap()).unwrap();
        claims["exp"] = serde_json::json!(i64::MAX);
        let forged = format!("{}.{mac}", b64.encode(claims.to_string()));
        assert_eq!(auth.verify_session(&forged).await, None);
        for junk in ["", ".", "a.b", "x", &format!("{payload}.")] {
            assert_eq!(auth.verify_session(junk).await, None, "{junk}");
        }
        // Expired.
        let old = auth.start_session(id.clone(), tid.clone(), chrono::Utc::now().timestamp() - 1);
        assert_eq!(auth.verify_session(&old.cookie).await, None);
        // An OIDC identity rides in the cookie itself.
        let oidc_id = Identity {
            name: "kc-user".into(),
            role: Role::SovereignAdmin,
            org: None,
        };
        let o = auth.start_session(oidc_id.clone(), None, chrono::Utc::now().timestamp() + 60);
        assert!(o.max_age <= 60);
        assert_eq!(auth.verify_session(&o.cookie).await, Some(oidc_id));
        // Revoking the token ends the session.
        assert_eq!(auth.tokens().revoke("acme", "ann").unwrap(), 1);
        assert_eq!(auth.verify_session(&s.cookie).await, None);
        // The key file is private.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("auth/session.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn redirects_after_sign_in_stay_on_this_site() {
        for (given, want) in [
            (Some("/sovereign/deployments"), "/sovereign/deployments"),
            (
                Some("/sovereign/provision/0123?x=1"),
                "/sovereign/provision/0123?x=1",
            ),
            (Some("//evil.example/x"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("/a\nb"), "/"),
            (Some(""), "/"),
            (None, "/"),
        ] {
            assert_eq!(safe_next(given), want, "{given:?}");
        }
    }

    #[test]
    fn cross_site_signals_are_refused() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            h
        };
        assert!(same_origin(&headers(&[])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("host", "c.example:8080"),
            ("origin", "http://c.example:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "c.example:8080"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "c.example"),
            ("origin", "null")
        ])));
    }
}
