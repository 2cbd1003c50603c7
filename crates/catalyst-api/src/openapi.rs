//! The OpenAPI 3.1 description of the API, generated — never hand-kept: every route is
//! registered through `utoipa-axum` from its handler's `#[utoipa::path]` annotation (so a route
//! cannot exist without its description), and every body schema is derived from the type the
//! handler serializes. What every route shares (authentication failures, rate limits, request
//! size, timeouts, internal errors) is added here once, from each operation's own facts: its
//! security, request body and streaming. Served at `GET /api/v1/openapi.json`; printed by
//! `catalyst openapi`.
use std::sync::{Arc, OnceLock};

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Type,
};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ErrorBody;

/// The base of every documented route.
pub const PREFIX: &str = "/api/v1";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Catalyst API",
        description = "The control plane of a Catalyst Sovereign: provisioning new Sovereigns \
            (deployments), pool domains and registrars, Organizations, their Environments, members \
            and Applications installed from Blueprints, and the read side (projection, event \
            streams, audit). Every error is `{\"error\": code, \"detail\": text}`. Every write to \
            Organizations is one Git commit per repository touched; `?dryRun=true` answers with \
            the diff instead, and `If-Match: <commit>` makes a write conditional.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, crate::error::FieldErrorBody)),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "deployments", description = "Provisioning new Sovereigns (OpenTofu → k3s → Flux)."),
        (name = "wizard", description = "Checks the provisioning wizard runs before anything is created."),
        (name = "pool", description = "Pool domains (PowerDNS) and registrars."),
        (name = "session", description = "Console sign-in and identity."),
        (name = "organizations", description = "Organizations, Environments and members (commits to system/catalyst-config)."),
        (name = "applications", description = "Applications installed from Blueprints (commits to the Application repositories)."),
        (name = "read", description = "The read side: the projection, event streams and the audit log."),
        (name = "hooks", description = "Notifications from Flux."),
        (name = "git", description = "The Sovereign's Git repositories over smart HTTP (read-only)."),
        (name = "meta", description = "This description."),
    )
)]
struct ApiDoc;

/// The whole description.
pub fn document() -> OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let (_, provisioning) = OpenApiRouter::<Arc<crate::AppState>>::new()
        .nest(PREFIX, crate::api_routes())
        .split_for_parts();
    let (_, orgs) = OpenApiRouter::<Arc<crate::orgs::OrgApi>>::new()
        .nest(
            PREFIX,
            crate::orgs::api_routes().merge(crate::orgs::hook_routes()),
        )
        .merge(crate::orgs::git_routes())
        .split_for_parts();
    doc.merge(provisioning);
    doc.merge(orgs);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A Catalyst token (`catalyst token create`, or a member's token) or an OIDC \
                     ID token from the configured issuer.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            crate::auth::SESSION_COOKIE,
            "The console's HttpOnly session cookie (`POST /api/v1/session`).",
        ))),
    );
    components.add_security_scheme(
        "basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "Git over smart HTTP (`/git/{org}/{repo}.git`): any user name, a Catalyst \
                     token as the password.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "fluxSignature",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Signature",
            "`sha256=<hex HMAC-SHA256 of the body>` keyed with the Flux Provider's token \
             (`--flux-webhook-key-file`).",
        ))),
    );
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_shared_responses(op);
        }
    }
    doc
}

/// The description as JSON, rendered once.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the OpenAPI description serializes")
    })
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "This description (OpenAPI 3.1).", content_type = "application/json", body = Object))
)]
pub async fn serve() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        json(),
    )
        .into_response()
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

fn retry_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer))
                    .description(Some("Seconds to wait before trying again."))
                    .build(),
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// Whether the operation has a parameter in `place`.
fn takes(op: &Operation, place: ParameterIn) -> bool {
    op.parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == place)
}

/// Whether the operation needs a credential (its own security, or the document's default).
fn authenticated(op: &Operation) -> bool {
    match &op.security {
        None => true,
        Some(reqs) => !reqs.iter().any(|r| *r == SecurityRequirement::default()),
    }
}

fn streams(op: &Operation) -> bool {
    op.responses.responses.values().any(|r| match r {
        RefOr::T(r) => r.content.contains_key("text/event-stream"),
        RefOr::Ref(_) => false,
    })
}

/// The answers every operation can give besides its own: added where the operation does not
/// describe that status itself.
fn add_shared_responses(op: &mut Operation) {
    let mut shared: Vec<(&str, RefOr<utoipa::openapi::Response>)> = vec![
        (
            "500",
            error_response("`internal`: an unexpected failure (details are in the server's log)."),
        ),
        (
            "503",
            error_response(
                "`timeout` (the request took longer than 60 s), `store-unavailable` or another \
                 backend that is away; nothing was changed — try again.",
            ),
        ),
    ];
    if op.request_body.is_some() {
        shared.push((
            "400",
            error_response("`invalid-body`: the body is not the JSON this route takes."),
        ));
        shared.push((
            "413",
            error_response("`request-too-large`: the body is larger than the route accepts."),
        ));
    }
    if authenticated(op) {
        shared.push((
            "401",
            error_response("`unauthorized`: no credential, or one that is not valid."),
        ));
        shared.push((
            "403",
            error_response("`forbidden`: the caller's role does not allow this."),
        ));
        shared.push((
            "429",
            retry_response(
                "`too-many-attempts`: too many failed sign-ins from this address or for this \
                 holder; wait `Retry-After` seconds.",
            ),
        ));
    }
    if takes(op, ParameterIn::Query) {
        shared.push((
            "400",
            error_response("`invalid-query`: the query string does not decode (a repeated or malformed parameter)."),
        ));
    }
    if takes(op, ParameterIn::Path) {
        shared.push((
            "404",
            error_response("`not-found`: what the path names does not exist (or is not visible to the caller)."),
        ));
    }
    if streams(op) {
        shared.push((
            "429",
            retry_response("`too-many-streams`: this holder already has 64 open streams."),
        ));
    }
    for (status, response) in shared {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert(response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_is_openapi_3_1_and_names_every_group_of_routes() {
        let v: serde_json::Value = serde_json::from_str(json()).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        let paths = v["paths"].as_object().unwrap();
        for p in [
            "/api/v1/deployments",
            "/api/v1/deployments/{id}/logs",
            "/api/v1/pool/{domain}/reserve",
            "/api/v1/orgs",
            "/api/v1/orgs/{org}/applications/{app}/promote",
            "/api/v1/orgs/{org}/events",
            "/api/v1/hooks/flux",
            "/api/v1/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p} is not described");
        }
        let schemes = v["components"]["securitySchemes"].as_object().unwrap();
        for s in ["bearer", "session", "basic"] {
            assert!(schemes.contains_key(s), "{s}");
        }
        // A write names its conditional and request-id headers and its refusals.
        let add = &v["paths"]["/api/v1/orgs/{org}/members"]["post"];
        let headers: Vec<&str> = add["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(headers, ["If-Match", "X-Request-Id"]);
        for status in ["201", "409", "422", "401", "403", "404", "413", "429"] {
            assert!(add["responses"][status].is_object(), "{status}");
        }
        // Every operation answers JSON errors with their status codes.
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(responses.contains_key("500"), "{method} {path}");
                assert!(
                    responses
                        .keys()
                        .any(|s| s.starts_with('2') || s.starts_with('3')),
                    "{method} {path} describes no success"
                );
            }
        }
    }
}
