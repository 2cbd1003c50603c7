//! Every answer the binary's tests receive is checked against the API's OpenAPI description:
//! [`Catalyst::start`](super::Catalyst::start) puts this proxy in front of the real server (its
//! `base` is the proxy's), which forwards each request unchanged — from the same client address,
//! so per-address limits still see the test's addresses — and checks every `/api/v1` and `/git`
//! answer (route, status, content type, JSON body by schema; streams by status and type)
//! with `catalyst_testkit::openapi::Conformance` over `catalyst openapi`. What does not conform
//! is collected, and the test fails when its server is dropped. Only tests use it: benches talk
//! to the server directly.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::Response;
use catalyst_testkit::openapi::Conformance;
use futures::StreamExt;

fn checker() -> &'static Conformance {
    static C: OnceLock<Conformance> = OnceLock::new();
    C.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_catalyst"))
            .arg("openapi")
            .output()
            .expect("catalyst openapi runs");
        assert!(out.status.success(), "catalyst openapi failed");
        Conformance::new(serde_json::from_slice(&out.stdout).expect("the description is JSON"))
    })
}

/// A running checking proxy.
pub struct Proxy {
    /// `http://127.0.0.1:<port>` of the proxy.
    pub base: String,
    violations: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Upstream {
    base: String,
    /// One client per client address, bound to it.
    clients: Mutex<HashMap<IpAddr, reqwest::Client>>,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn client(&self, ip: IpAddr) -> reqwest::Client {
        self.clients
            .lock()
            .unwrap()
            .entry(ip)
            .or_insert_with(|| {
                reqwest::Client::builder()
                    .local_address(ip)
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .build()
                    .unwrap()
            })
            .clone()
    }
}

/// Headers that belong to one connection, not to the message. (`Host` goes through unchanged:
/// the server compares a browser's `Origin` with it.)
fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::CONTENT_LENGTH,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
    ]
    .contains(name)
}

async fn forward(
    State(up): State<Arc<Upstream>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let target = format!(
        "{}{}",
        up.base,
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    );
    let headers = req.headers().clone();
    let body = axum::body::to_bytes(req.into_body(), 256 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let mut out = up.client(peer.ip()).request(method.clone(), target);
    for (k, v) in &headers {
        if !hop_by_hop(k) {
            out = out.header(k, v);
        }
    }
    let resp = match out.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            let mut r = Response::new(Body::from(format!("conformance proxy: {e}")));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            return r;
        }
    };
    let status = resp.status();
    let mut answer = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if !hop_by_hop(k) {
            answer = answer.header(k, v);
        }
    }
    let checked = path.starts_with("/api/v1/") || path.starts_with("/git/");
    let content_type = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let record = |result: Result<_, String>| {
        if let Err(e) = result {
            up.violations.lock().unwrap().push(e);
        }
    };
    if content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        if checked {
            record(checker().check(
                method.as_str(),
                &path,
                status.as_u16(),
                content_type.as_deref(),
                None,
            ));
        }
        let stream = resp
            .bytes_stream()
            .map(|c| c.map_err(std::io::Error::other));
        return answer.body(Body::from_stream(stream)).unwrap();
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    if checked {
        record(checker().check(
            method.as_str(),
            &path,
            status.as_u16(),
            content_type.as_deref(),
            Some(&bytes),
        ));
    }
    answer.body(Body::from(bytes)).unwrap()
}

impl Proxy {
    /// A proxy in front of `upstream` (`http://127.0.0.1:<port>`).
    pub fn start(upstream: String) -> Proxy {
        checker();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let violations = Arc::new(Mutex::new(Vec::new()));
        let up = Arc::new(Upstream {
            base: upstream,
            clients: Mutex::default(),
            violations: violations.clone(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().fallback(forward).with_state(up);
                let _ = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        Proxy {
            base,
            violations,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Answers that did not conform so far.
    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Open streams would hold a graceful stop: the thread is left to end with the process.
        drop(self.thread.take());
    }
}
