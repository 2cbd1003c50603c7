//! `GET /api/v1/deployments/{id}/logs`: the event stream.
//!
//! Every event is a `data:` frame carrying upstream's Event JSON, with `id: <seq>`. A client
//! resumes exactly after an event with `Last-Event-ID` (header) or `?lastEventId=`. The stream
//! ends with `event: done` and the deployment's state once the terminal state is stored, or
//! without it when the subscriber was cut off for lagging (it reconnects and resumes).
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use catalyst_core::DeploymentId;
use catalyst_provision::service::{Subscription, SubscriptionItem};
use futures::stream::{self, Stream};
use serde::Deserialize;

use crate::error::ApiError;
use crate::metrics::SubscriberGuard;
use crate::wire::{EventBody, StateBody};
use crate::AppState;

/// `?lastEventId=` alternative to the header (EventSource cannot set headers on first connect).
#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    #[serde(rename = "lastEventId")]
    last_event_id: Option<String>,
}

fn resume_point(headers: &HeaderMap, query: &LogsQuery) -> Result<u64, ApiError> {
    let raw = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query.last_event_id.clone());
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s.parse().map_err(|_| {
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
    pending: VecDeque<SseEvent>,
    ended: bool,
    _guard: SubscriberGuard,
}

fn json_frame<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        format!("{{\"level\":\"error\",\"message\":\"failed to encode event: {e}\"}}")
    })
}

fn events_stream(state: StreamState) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((Ok(ev), st));
            }
            if st.ended {
                return None;
            }
            match st.sub.next().await {
                Some(SubscriptionItem::Events(events)) => {
                    st.pending.extend(events.iter().map(|e| {
                        SseEvent::default()
                            .id(e.seq.to_string())
                            .data(json_frame(&EventBody::from(e)))
                    }));
                }
                Some(SubscriptionItem::Done(view)) => {
                    st.ended = true;
                    st.pending.push_back(
                        SseEvent::default()
                            .event("done")
                            .data(json_frame(&StateBody::from(view.as_ref()))),
                    );
                }
                Some(SubscriptionItem::CutOff) => {
                    st.ended = true;
                    st.pending.push_back(SseEvent::default().comment(format!(
                        "cut off: this subscriber fell behind; reconnect with Last-Event-ID: {}",
                        st.sub.cursor()
                    )));
                }
                Some(SubscriptionItem::Closed) | None => return None,
            }
        }
    })
}

/// The SSE handler.
pub async fn stream_logs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = DeploymentId::parse(&id).map_err(|_| ApiError::deployment_not_found())?;
    let after = resume_point(&headers, &query)?;
    let sub = state.service.subscribe(&id, after)?;
    let stream = events_stream(StreamState {
        sub,
        pending: VecDeque::new(),
        ended: false,
        _guard: state.metrics.subscriber(),
    });
    let sse =
        Sse::new(stream).keep_alive(KeepAlive::new().interval(state.keepalive).text("keepalive"));
    Ok((
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        sse,
    )
        .into_response())
}
