//! Bearer tokens and roles. Tokens are random (`cat_` + 64 hex), shown once, and stored only as
//! SHA-256 hashes in `<data-dir>/auth/tokens.json`; verification compares hashes in constant
//! time. The file is re-read when it changes, so `catalyst token create` works offline against
//! the data dir of a running server.
use std::path::{Path, PathBuf};
use std::sync::Mutex;
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

/// The token store under a data dir.
pub struct TokenStore {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Vec<TokenRecord>)>,
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
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
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
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            // The name becomes a commit author and trailer: no spaces, newlines or angle brackets.
            return Err(TokenError::Invalid(
                "the name must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.', '@'".into(),
            ));
        }
        let token = format!("cat_{}", hex::encode(rand::random::<[u8; 32]>()));
        let mut records = self.load()?;
        records.push(TokenRecord {
            id: hex::encode(rand::random::<[u8; 8]>()),
            name: name.to_string(),
            role,
            org: org.map(str::to_string),
            sha256: hash(&token),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        });
        self.save(&records)?;
        Ok(token)
    }

    /// Revokes every token of member `name` in `org`; returns how many.
    pub fn revoke(&self, org: &str, name: &str) -> Result<usize, TokenError> {
        let mut records = self.load()?;
        let before = records.len();
        records.retain(|r| !(r.org.as_deref() == Some(org) && r.name == name));
        let n = before - records.len();
        if n > 0 {
            self.save(&records)?;
        }
        Ok(n)
    }

    /// The identity a token stands for.
    pub fn verify(&self, token: &str) -> Option<Identity> {
        let h = hash(token);
        let records = self.load().ok()?;
        let mut found = None;
        for r in &records {
            if bool::from(r.sha256.as_bytes().ct_eq(h.as_bytes())) {
                found = Some(Identity {
                    name: r.name.clone(),
                    role: r.role,
                    org: r.org.clone(),
                });
            }
        }
        found
    }
}

/// Anything that holds the token store (so the extractor works on any state).
pub trait HasTokens {
    /// The store.
    fn tokens(&self) -> &TokenStore;

    /// The OIDC verifier, when OIDC is configured: bearer tokens that are JWTs go there.
    fn oidc(&self) -> Option<&super::oidc::OidcVerifier> {
        None
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
    S: HasTokens + Send + Sync + 'static,
{
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &std::sync::Arc<S>,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = token_of(parts) else {
            return Err(unauthorized(
                "this route needs a token: Authorization: Bearer <token>",
            ));
        };
        if let Some(oidc) = state.oidc() {
            if super::oidc::looks_like_jwt(&token) {
                return oidc
                    .verify(&token)
                    .await
                    .map_err(super::oidc::OidcError::into_response);
            }
        }
        let store = state.clone();
        // Reading the store may touch the disk.
        let id = tokio::task::spawn_blocking(move || store.tokens().verify(&token))
            .await
            .ok()
            .flatten();
        id.ok_or_else(|| unauthorized("the token is not valid"))
    }
}

/// Middleware for routes that are sovereign-admin business (the provisioning API once it is
/// switched on): 401 without a valid token, 403 for any other role; the caller's [`Identity`]
/// is put in the request extensions. Apply with
/// `.route_layer(axum::middleware::from_fn_with_state(state, require_sovereign_admin::<S>))`.
pub async fn require_sovereign_admin<S>(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<S>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response
where
    S: HasTokens + Send + Sync + 'static,
{
    use axum::response::IntoResponse;
    let (mut parts, body) = req.into_parts();
    let id = match Identity::from_request_parts(&mut parts, &state).await {
        Ok(id) => id,
        Err(rejection) => return rejection,
    };
    if let Err(e) = id.authorize_sovereign() {
        return e.into_response();
    }
    let mut req = axum::extract::Request::from_parts(parts, body);
    req.extensions_mut().insert(id);
    next.run(req).await
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

    struct St(TokenStore);
    impl HasTokens for St {
        fn tokens(&self) -> &TokenStore {
            &self.0
        }
    }

    #[tokio::test]
    async fn the_sovereign_admin_middleware() {
        use tower::ServiceExt;
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path());
        let admin = store.create(Role::SovereignAdmin, None, "root").unwrap();
        let dev = store
            .create(Role::OrgDeveloper, Some("acme"), "dev")
            .unwrap();
        let st = std::sync::Arc::new(St(store));
        let app = axum::Router::new()
            .route("/x", axum::routing::get(|| async { "ok" }))
            .route_layer(axum::middleware::from_fn_with_state(
                st.clone(),
                require_sovereign_admin::<St>,
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
}
