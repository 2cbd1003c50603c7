//! Console sign-in routes of the provisioning router: the described, concrete handlers over
//! the generic ones in `orgs::auth`.
use std::sync::Arc;

use axum::extract::State;
use axum::http::{Extensions, HeaderMap};
use axum::response::Response;
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{self, Identity};
use crate::AppState;

/// Who the caller is.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityBody {
    /// The token's (or OIDC subject's) name.
    pub name: String,
    /// `sovereign-admin`, `org-admin`, `org-developer`, `org-viewer`, `security-officer` or
    /// `billing-admin`.
    pub role: String,
    /// The Organization an Organization-scoped caller belongs to.
    pub org: Option<String>,
}

impl From<&Identity> for IdentityBody {
    fn from(id: &Identity) -> Self {
        IdentityBody {
            name: id.name.clone(),
            role: id.role.as_str().to_owned(),
            org: id.org.clone(),
        }
    }
}

/// `POST /api/v1/session` body (JSON, or the same fields as a form).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    /// A Catalyst token or an OIDC ID token.
    pub token: String,
    /// Where a form sign-in goes next (a path on this site).
    pub next: Option<String>,
}

/// `POST /api/v1/session`: signs the console in.
#[utoipa::path(
    post,
    path = "/session",
    tag = "session",
    security(()),
    request_body(content(
        (SignIn = "application/json"),
        (SignIn = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Signed in (JSON); the HttpOnly session cookie is set.", body = IdentityBody,
            headers(("Set-Cookie" = String, description = "`catalyst_session=…; HttpOnly; SameSite=Strict`"))),
        (status = 303, description = "Signed in (form): to `next`; or back to `/login?error=invalid` when the token is not valid.",
            headers(("Location" = String))),
        (status = 400, description = "`invalid-request`: no token.", body = crate::error::ErrorBody),
        (status = 401, description = "`unauthorized`: the token is not valid.", body = crate::error::ErrorBody),
        (status = 403, description = "`cross-origin`: sign in from this site's own login page.", body = crate::error::ErrorBody),
        (status = 415, description = "`unsupported-media-type`: neither JSON nor a form.", body = crate::error::ErrorBody),
        (status = 429, description = "`too-many-attempts`: too many failed sign-ins from this address, or sign-ins for this holder.", body = crate::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn session_create(
    state: State<Arc<AppState>>,
    extensions: Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    auth::session_create::<AppState>(state, extensions, headers, body).await
}

/// `GET /api/v1/session`: who the caller is (by token or session cookie).
#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    responses((status = 200, description = "The caller.", body = IdentityBody))
)]
pub async fn session_get(id: Identity) -> Json<IdentityBody> {
    Json(IdentityBody::from(&id))
}

/// `DELETE /api/v1/session`: signs the console out (clears the cookie).
#[utoipa::path(
    delete,
    path = "/session",
    tag = "session",
    security(()),
    responses((status = 204, description = "Signed out; the cookie is cleared."))
)]
pub async fn session_delete() -> Response {
    auth::session_delete().await
}

/// `POST /api/v1/session/end`: the console's Sign-out form (clears the cookie, 303 to
/// `/login`).
#[utoipa::path(
    post,
    path = "/session/end",
    tag = "session",
    security(()),
    responses((status = 303, description = "Signed out; to `/login`.", headers(("Location" = String))))
)]
pub async fn session_end() -> Response {
    auth::session_end().await
}
