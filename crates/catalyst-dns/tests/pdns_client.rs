//! The PowerDNS client against a scripted HTTP stand-in: headers, retries on 5xx with backoff,
//! no retry on 4xx, idempotent create/delete, error texts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use catalyst_dns::{DnsError, PowerDns};

type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

async fn stand_in(answers: Vec<(u16, &'static str)>) -> (String, Seen, Arc<AtomicUsize>) {
    let seen: Seen = Arc::default();
    let n = Arc::new(AtomicUsize::new(0));
    let (s, c) = (seen.clone(), n.clone());
    let answers = Arc::new(answers);
    let app = axum::Router::new().fallback(move |m: Method, uri: Uri, h: HeaderMap| {
        let (s, c, answers) = (s.clone(), c.clone(), answers.clone());
        async move {
            let key = h.get("x-api-key").map(|v| v.to_str().unwrap().to_owned());
            s.lock()
                .unwrap()
                .push((m.to_string(), uri.path().to_owned(), key));
            let i = c.fetch_add(1, Ordering::SeqCst).min(answers.len() - 1);
            let (status, body) = answers[i];
            (StatusCode::from_u16(status).unwrap(), body)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen, n)
}

fn client(base: &str) -> PowerDns {
    PowerDns::new(base, "k3y", "").unwrap().with_backoff(vec![
        Duration::ZERO,
        Duration::from_millis(10),
        Duration::from_millis(20),
    ])
}

#[tokio::test]
async fn create_sends_the_key_and_retries_5xx() {
    let (base, seen, n) = stand_in(vec![(500, "{}"), (201, "{}")]).await;
    client(&base)
        .create_zone("Acme.Omani.Works", &["ns1.x".into()])
        .await
        .unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[1],
        (
            "POST".into(),
            "/api/v1/servers/localhost/zones".into(),
            Some("k3y".into())
        )
    );
}

#[tokio::test]
async fn existing_zone_and_missing_zone_are_successes() {
    let (base, _, _) = stand_in(vec![(409, r#"{"error":"Conflict"}"#)]).await;
    client(&base).create_zone("a.b", &[]).await.unwrap();
    let (base, seen, _) = stand_in(vec![(404, "")]).await;
    client(&base)
        .delete_zone("omantel.omani.works")
        .await
        .unwrap();
    assert_eq!(
        seen.lock().unwrap()[0].1,
        "/api/v1/servers/localhost/zones/omantel.omani.works."
    );
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_names_the_upstream_error() {
    let (base, _, n) = stand_in(vec![(422, r#"{"error":"RRset a.b. IN A: bad content"}"#)]).await;
    let e = client(&base)
        .patch("a.b", &[catalyst_dns::pdns::RrSet::delete("a.b", "A")])
        .await
        .unwrap_err();
    assert_eq!(n.load(Ordering::SeqCst), 1);
    assert!(
        matches!(&e, DnsError::PowerDns(m) if m.contains("status 422") && m.contains("bad content")),
        "{e}"
    );
}

#[tokio::test]
async fn a_permanent_5xx_gives_up_after_every_attempt() {
    let (base, _, n) = stand_in(vec![(502, "bad gateway")]).await;
    let e = client(&base).delete_zone("a.b").await.unwrap_err();
    assert_eq!(n.load(Ordering::SeqCst), 3);
    assert!(e.to_string().contains("502"), "{e}");
    assert!(!e.to_string().contains("k3y"));
}

#[tokio::test]
async fn an_empty_patch_makes_no_call_and_unreachable_is_an_error() {
    let (base, _, n) = stand_in(vec![(200, "")]).await;
    client(&base).patch("a.b", &[]).await.unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 0);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = client(&format!("http://127.0.0.1:{port}"))
        .zone_exists("a.b")
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("powerdns api GET"), "{e}");
}

#[tokio::test]
async fn zone_exists_reads_200_and_404() {
    let (base, _, _) = stand_in(vec![(200, "{}"), (404, "")]).await;
    let c = client(&base);
    assert!(c.zone_exists("a.b").await.unwrap());
    assert!(!c.zone_exists("a.b").await.unwrap());
}
