//! `POST /api/v1/hooks/flux`: status from the clusters. Flux's notification-controller posts its
//! events here through a `generic-hmac` Provider whose Secret `token` is the Sovereign's webhook
//! key (`catalyst serve --flux-webhook-key-file`). The body is checked (`X-Signature`, HMAC of the
//! raw body, constant time) before it is read; a HelmRelease or Kustomization event about an
//! Environment — named by the Alert in `metadata["catalyst.openova.io/environment"]` (its
//! `spec.eventMetadata`), else by the object's namespace `<org>-<env>` — becomes one `flux.*`
//! event on the spine (its id is the body's digest, so Flux's re-deliveries are recorded once),
//! which turns the Application's card ready, failed or reconciling.
//!
//! Answers: 202 recorded; 200 `{"applied": false}` for events that carry no Application status
//! (a GitRepository's, say); 400 a malformed body; 401 a missing or wrong signature; 404 an
//! object that is no Application of that Environment (recorded for the audit log all the same);
//! 413 a body over 64 KiB.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use catalyst_spine::flux;
use sha2::{Digest, Sha256};

use super::OrgApi;
use crate::ApiError;

/// Largest body accepted (Flux events are a few KiB).
pub const FLUX_BODY_LIMIT: usize = 64 * 1024;

/// What a notification did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct FluxAnswer {
    /// Whether it changed an Application's status.
    pub applied: bool,
    /// The event it was recorded as (`catalystseq`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why nothing was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The handler.
#[utoipa::path(
    post,
    path = "/hooks/flux",
    tag = "hooks",
    security(("fluxSignature" = [])),
    request_body(content = Object, description = "An event of Flux's notification-controller (generic-hmac Provider): `involvedObject`, `severity`, `reason`, `message`, `metadata` (`revision`, `catalyst.openova.io/environment`, …)."),
    responses(
        (status = 200, description = "Valid, but about no Application (`applied: false`).", body = FluxAnswer),
        (status = 202, description = "Recorded; the Application's status follows.", body = FluxAnswer),
        (status = 400, description = "`invalid-body`: not a Flux event.", body = crate::error::ErrorBody),
        (status = 401, description = "`invalid-signature`: missing or wrong `X-Signature`.", body = crate::error::ErrorBody),
        (status = 404, description = "`not-found`: the object is no Application of this Sovereign (recorded for the audit log).", body = crate::error::ErrorBody),
        (status = 413, description = "`request-too-large`.", body = crate::error::ErrorBody),
        (status = 503, description = "`events-unavailable`: the event log could not record it.", body = crate::error::ErrorBody),
    )
)]
pub async fn flux_event(
    State(api): State<Arc<OrgApi>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body: Bytes = axum::body::to_bytes(body, FLUX_BODY_LIMIT)
        .await
        .map_err(|_| {
            api.metrics.webhook("invalid-body");
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request-too-large",
                format!("a Flux notification must be at most {FLUX_BODY_LIMIT} bytes"),
            )
        })?;
    let signature = headers.get("x-signature").and_then(|v| v.to_str().ok());
    if let Err(e) = flux::verify_signature(api.flux_key.as_bytes(), signature, &body) {
        tracing::warn!(error = %e, "Refused a Flux notification.");
        api.metrics.webhook("invalid-signature");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-signature",
            e.to_string(),
        ));
    }
    let event = flux::parse(&body).map_err(|e| {
        api.metrics.webhook("invalid-body");
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-body", e.to_string())
    })?;
    let id = format!("flux-{}", &hex::encode(Sha256::digest(&body))[..32]);
    let Some(draft) = event.to_draft(id, chrono::Utc::now()) else {
        api.metrics.webhook("ignored");
        return Ok((
            StatusCode::OK,
            Json(FluxAnswer {
                applied: false,
                seq: None,
                detail: Some(format!(
                    "{} {}/{} carries no Application status",
                    event.kind,
                    event.environment_name(),
                    event.name
                )),
            }),
        )
            .into_response());
    };
    let (org, env, app) = (
        draft.org.clone().unwrap_or_default(),
        draft.env.clone().unwrap_or_default(),
        event.name.clone(),
    );
    let read = api.read.clone();
    let (known, recorded) = tokio::task::spawn_blocking(move || {
        let known = read.read(|p| {
            p.applications(&org, Some(&env))
                .iter()
                .any(|c| c.name == app)
        });
        let recorded = read.spine().append(vec![draft.into_event()]);
        read.catch_up();
        (known, recorded)
    })
    .await
    .map_err(|_| ApiError::internal("the event log stopped"))?;
    let recorded = recorded.map_err(|e| {
        tracing::error!(error = %e, "Cannot record a Flux notification.");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "events-unavailable",
            e.to_string(),
        )
    })?;
    let seq = recorded.first().map(|e| e.catalystseq);
    if !known {
        api.metrics.webhook("unknown-object");
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "{} {}/{} is no Application of this Sovereign (recorded for the audit log)",
                event.kind,
                event.environment_name(),
                event.name
            ),
        ));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(FluxAnswer {
            applied: true,
            seq,
            detail: None,
        }),
    )
        .into_response())
}
