//! `GET /api/v1/deployments/{id}/logs`: the event stream.
//!
//! Every event is a `data:` frame carrying upstream's Event JSON, with `id: <seq>`. A client
//! resumes exactly after an event with `Last-Event-ID` (header) or `?lastEventId=`. The stream
//! ends with `event: done` and the deployment's state once the terminal state is stored, or
//! without it when the subscriber was cut off for lagging (it reconnects and resumes).
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::extract::{Path, Query};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use catalyst_core::{DeploymentId, Event};
use catalyst_provision::service::{Subscription, SubscriptionItem};
use futures::stream::{self, Stream};
use serde::Deserialize;

use crate::error::ApiError;
use crate::metrics::SubscriberGuard;
use crate::wire::{EventBody, StateBody};
use crate::AppState;

/// `?lastEventId=` alternative to the header (EventSource cannot set headers on first connect).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Resume after this event (`0`: from the start); the `Last-Event-ID` header wins.
    #[serde(rename = "lastEventId")]
    #[param(value_type = Option<u64>)]
    last_event_id: Option<String>,
}

/// Where a stream resumes: after the event `Last-Event-ID` (header) or `?lastEventId=` names
/// (0: from the start).
pub(crate) fn resume_point(headers: &HeaderMap, query: Option<&str>) -> Result<u64, ApiError> {
    Ok(resume_from(headers, query)?.unwrap_or(0))
}

/// [`resume_point`], `None` when the client named no event.
pub(crate) fn resume_from(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<u64>, ApiError> {
    let raw = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.map(str::to_owned));
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        // Digits only: an id this stream sent never has a sign.
        Some(s) => s
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "invalid-last-event-id",
                    "Last-Event-ID must be the numeric id of an event this stream sent",
                )
            }),
    }
}

struct StreamState {
    sub: Subscription,
    keepalive: Duration,
    ended: bool,
    _guard: SubscriberGuard,
    _slot: crate::orgs::limit::StreamSlot,
}

fn json_frame<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        format!("{{\"level\":\"error\",\"message\":\"failed to encode event: {e}\"}}")
    })
}

/// `id: <seq>\ndata: <json>\n\n` — the JSON never contains a raw newline, so one `data:` line
/// carries it.
fn encode_event(event: &Event) -> Bytes {
    Bytes::from(format!(
        "id: {}\ndata: {}\n\n",
        event.seq,
        json_frame(&EventBody::from(event))
    ))
}

/// One chunk per batch: every subscriber copies the same encoded frames, encoded once.
fn events_stream(state: StreamState) -> impl Stream<Item = Result<Bytes, Infallible>> {
    stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        let item = match tokio::time::timeout(st.keepalive, st.sub.next()).await {
            Err(_) => return Some((Ok(Bytes::from_static(b": keepalive\n\n")), st)),
            Ok(item) => item,
        };
        let chunk = match item {
            Some(SubscriptionItem::Events(events)) => {
                let mut buf = BytesMut::with_capacity(events.len() * 256);
                for p in &events {
                    buf.extend_from_slice(p.encoded(encode_event));
                }
                buf.freeze()
            }
            Some(SubscriptionItem::Done(view)) => {
                st.ended = true;
                Bytes::from(format!(
                    "event: done\ndata: {}\n\n",
                    json_frame(&StateBody::from(view.as_ref()))
                ))
            }
            Some(SubscriptionItem::CutOff) => {
                st.ended = true;
                Bytes::from(format!(
                    ": cut off: this subscriber fell behind; reconnect with Last-Event-ID: {}\n\n",
                    st.sub.cursor()
                ))
            }
            // The server is shutting down: say so, so the client resumes (elsewhere or after
            // the restart) from where it was.
            Some(SubscriptionItem::Closed) => {
                st.ended = true;
                Bytes::from(format!(
                    ": shutting down; reconnect with Last-Event-ID: {}\n\n",
                    st.sub.cursor()
                ))
            }
            None => return None,
        };
        Some((Ok(chunk), st))
    })
}

/// One server-sent event as a client's EventSource sees it (the schema of every
/// `text/event-stream` answer: each event, not the stream).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SseFrame {
    /// The event's sequence number (`Last-Event-ID` to resume after it).
    pub id: Option<String>,
    /// The event's type (absent: a plain message).
    pub event: Option<String>,
    /// The event's JSON.
    pub data: String,
}

/// The SSE handler.
#[utoipa::path(
    get,
    path = "/deployments/{id}/logs",
    tag = "deployments",
    params(
        ("id" = String, Path, description = "The deployment id"),
        LogsQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event's `seq`"),
    ),
    responses(
        (status = 200, description = "Server-sent events: `id:` is the event's `seq`, `data:` an event as in `GET …/events` (`event: done` ends a finished run); `: keepalive` comments while idle; on shutdown a final comment says which `Last-Event-ID` to resume with.",
            content_type = "text/event-stream", body = SseFrame),
        (status = 400, description = "`invalid-last-event-id`.", body = crate::error::ErrorBody),
    )
)]
pub async fn stream_logs(
    State(state): State<Arc<AppState>>,
    axum::Extension(caller): axum::Extension<crate::orgs::auth::Identity>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = DeploymentId::parse(&id).map_err(|_| ApiError::deployment_not_found())?;
    let after = resume_point(&headers, query.last_event_id.as_deref())?;
    let sub = state.service.subscribe(&id, after)?;
    let slot = match state.auth.open_stream(&caller) {
        Ok(slot) => slot,
        Err(refused) => return Ok(*refused),
    };
    let stream = events_stream(StreamState {
        sub,
        keepalive: state.keepalive,
        ended: false,
        _guard: state.metrics.subscriber(),
        _slot: slot,
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_digits_only_and_the_header_wins() {
        let mut h = HeaderMap::new();
        assert_eq!(resume_from(&h, None).unwrap(), None);
        assert_eq!(resume_from(&h, Some("7")).unwrap(), Some(7));
        h.insert("last-event-id", " 12 ".parse().unwrap());
        assert_eq!(resume_from(&h, Some("7")).unwrap(), Some(12));
        for bad in ["+5", "-1", "1e3", "x", "99999999999999999999999"] {
            h.insert("last-event-id", bad.parse().unwrap());
            let e = resume_from(&h, None).unwrap_err();
            assert_eq!(e.code, "invalid-last-event-id", "{bad}");
        }
    }
}
