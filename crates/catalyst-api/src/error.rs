//! The one error shape every route answers with: `{"error": code, "detail": text}`.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use catalyst_provision::service::ServiceError;
use serde::Serialize;

/// An API error: a status, a stable code and a human detail (plus the field, for validation).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What was wrong and what to do.
    pub detail: String,
    /// The request field at fault, for validation errors.
    pub field: Option<String>,
    /// Every field error, for validation errors.
    pub fields: Vec<FieldErrorBody>,
}

/// One field error in a validation response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldErrorBody {
    /// Field path in the request (wire spelling).
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// For a values error: the Blueprint whose values `field` (a JSON pointer) is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blueprint: Option<String>,
}

/// The body of every error answer. Some routes add context (a registrar error adds
/// `registrar` and `domain`); clients read `error` and `detail`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// Stable machine-readable code (`not-found`, `invalid-field`, `too-many-attempts`, …).
    pub error: &'a str,
    /// What was wrong and what to do, in plain words.
    pub detail: &'a str,
    /// The request field at fault (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    /// Every field error (validation errors).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<FieldErrorBody>)]
    pub fields: &'a [FieldErrorBody],
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            field: None,
            fields: Vec::new(),
        }
    }

    /// 404 for a deployment id that does not exist (or is not an id at all).
    pub fn deployment_not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "deployment not found")
    }

    /// 400 for a body that is not the expected JSON.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-body", detail)
    }

    /// 422 naming every invalid field.
    pub fn validation(errors: Vec<catalyst_core::FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid-field",
            detail,
            field: errors.first().map(|e| e.field.clone()),
            fields: errors
                .into_iter()
                .map(|e| FieldErrorBody {
                    blueprint: None,
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        }
    }

    /// 500 without internals in the body (they go to the log).
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let detail = e.to_string();
        match e {
            ServiceError::NotFound => ApiError::deployment_not_found(),
            ServiceError::InFlight => ApiError::new(StatusCode::CONFLICT, "in-flight", detail),
            ServiceError::Finished(_) => {
                ApiError::new(StatusCode::CONFLICT, "already-finished", detail)
            }
            ServiceError::NotFinished(_) => {
                ApiError::new(StatusCode::CONFLICT, "still-running", detail)
            }
            ServiceError::CredentialRequired => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "credential-required",
                    detail,
                );
                err.field = Some("hetznerToken".into());
                err
            }
            ServiceError::UnknownPhase(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "unknown-phase", detail)
            }
            ServiceError::SubdomainConflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "subdomain-conflict", detail)
            }
            ServiceError::NamesUnavailable(_) => {
                tracing::warn!(error = %detail, "The pool-domain manager could not reserve a name.");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "pdm-unavailable",
                    "the pool-domain manager could not reserve the name; nothing was created — try again",
                )
            }
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "Store failure while serving a request.");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "the deployment store could not complete the operation; nothing was changed — try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            detail: &self.detail,
            field: self.field.as_deref(),
            fields: &self.fields,
        };
        (self.status, Json(body)).into_response()
    }
}
