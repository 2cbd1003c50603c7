//! Integration tests for the Hetzner token check against a **local stand-in of the Hetzner
//! Cloud API** (an axum server on 127.0.0.1:0). The stand-in is not Hetzner: it only mimics the
//! status codes `GET /v1/servers` returns for a good, a bad and a forbidden token, plus a 500.
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use catalyst_core::Secret;
use catalyst_provision::hetzner::{HetznerClient, HetznerError, TokenCheck};

fn token(tag: char) -> String {
    std::iter::repeat_n(tag, 64).collect()
}

/// Authorization headers the stand-in has seen, in order.
type Seen = Arc<Mutex<Vec<String>>>;

async fn servers(State(seen): State<Seen>, headers: HeaderMap) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push(auth.clone());
    match auth.strip_prefix("Bearer ") {
        Some(t) if t == token('v') => StatusCode::OK,
        Some(t) if t == token('r') => StatusCode::UNAUTHORIZED,
        Some(t) if t == token('f') => StatusCode::FORBIDDEN,
        Some(t) if t == token('e') => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// Starts the stand-in Hetzner API; returns its base URL and the header log.
async fn stand_in() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/v1/servers", get(servers))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn status_mapping_against_stand_in() {
    let (base, seen) = stand_in().await;
    let client = HetznerClient::new(base).unwrap();

    let check = |t: char| {
        let client = client.clone();
        async move { client.check_token(&Secret::new(token(t))).await }
    };

    assert_eq!(check('v').await.unwrap(), TokenCheck::Valid);
    assert_eq!(check('r').await.unwrap(), TokenCheck::Rejected);
    assert_eq!(check('f').await.unwrap(), TokenCheck::Rejected);
    match check('e').await {
        Err(HetznerError::UnexpectedStatus(500)) => {}
        other => panic!("expected UnexpectedStatus(500), got {other:?}"),
    }

    let seen = seen.lock().unwrap().clone();
    let expected: Vec<String> = ['v', 'r', 'f', 'e']
        .iter()
        .map(|&t| format!("Bearer {}", token(t)))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn bearer_header_is_sent_exactly() {
    let (base, seen) = stand_in().await;
    // A trailing slash on the base must not produce `//v1/servers` (which the stand-in would 404).
    let client = HetznerClient::new(format!("{base}/")).unwrap();
    let t = token('v');
    assert_eq!(
        client.check_token(&Secret::new(t.clone())).await.unwrap(),
        TokenCheck::Valid
    );
    assert_eq!(*seen.lock().unwrap(), vec![format!("Bearer {t}")]);
}

#[tokio::test]
async fn unknown_path_is_unexpected_status() {
    let (base, _seen) = stand_in().await;
    let client = HetznerClient::new(format!("{base}/nope")).unwrap();
    match client.check_token(&Secret::new(token('v'))).await {
        Err(HetznerError::UnexpectedStatus(404)) => {}
        other => panic!("expected UnexpectedStatus(404), got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_port_gives_unreachable_without_token() {
    // Reserve a port, then free it so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let client = HetznerClient::new(format!("http://{addr}")).unwrap();
    let secret_text = format!("topsecret{}", token('x'));
    let err = client
        .check_token(&Secret::new(secret_text.clone()))
        .await
        .unwrap_err();
    let HetznerError::Unreachable(message) = &err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert!(!message.is_empty());
    for text in [message.clone(), err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("topsecret"), "{text}");
        assert!(!text.contains(&token('x')), "{text}");
    }
}
