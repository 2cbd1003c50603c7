//! Test support: a scripted provisioner stand-in, a server on a loopback port, an SSE reader.
#![allow(dead_code)]

pub mod conform;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use catalyst_api::auth::{Authenticator, Role};
use catalyst_api::AppState;
use catalyst_core::{DeploymentStatus, Level};
use catalyst_provision::hetzner::HetznerClient;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_provision::{EventSink, ProvisionError, ProvisionJob, ProvisionOutput, Provisioner};
use catalyst_store::file::FileStore;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// What the scripted provisioner does.
#[derive(Clone)]
pub struct Script {
    /// Log lines emitted during "apply".
    pub lines: usize,
    /// Pause between lines.
    pub pace: Duration,
    /// Fail after the lines with this message.
    pub fail: Option<String>,
    /// Wait for a permit from `gate` before finishing (lets a test hold a run in flight).
    pub gate: Option<Arc<Semaphore>>,
    /// Wait for a permit from this gate after that many lines.
    pub mid_gate: Option<(usize, Arc<Semaphore>)>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            lines: 5,
            pace: Duration::ZERO,
            fail: None,
            gate: None,
            mid_gate: None,
        }
    }
}

/// A provisioner stand-in for tests: emits the status changes of the real pipeline and
/// `lines` log lines, then succeeds, fails or waits, as scripted.
pub struct ScriptedProvisioner {
    pub script: std::sync::Mutex<Script>,
    pub runs: AtomicUsize,
    pub tokens: std::sync::Mutex<Vec<String>>,
}

impl ScriptedProvisioner {
    pub fn new(script: Script) -> Arc<Self> {
        Arc::new(ScriptedProvisioner {
            script: std::sync::Mutex::new(script),
            runs: AtomicUsize::new(0),
            tokens: std::sync::Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl Provisioner for ScriptedProvisioner {
    fn name(&self) -> &'static str {
        "scripted-test-stand-in"
    }

    fn dry_run(&self) -> bool {
        false
    }

    async fn provision(
        &self,
        job: ProvisionJob,
        sink: EventSink,
        cancel: CancellationToken,
    ) -> Result<ProvisionOutput, ProvisionError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.tokens
            .lock()
            .unwrap()
            .push(job.hetzner_token.expose().to_owned());
        let script = self.script.lock().unwrap().clone();
        sink.status(DeploymentStatus::Provisioning).await;
        sink.info("tofu-init", "Initialising OpenTofu working directory")
            .await;
        sink.status(DeploymentStatus::TofuApplying).await;
        sink.info("tofu-apply", "Applying").await;
        for i in 0..script.lines {
            if cancel.is_cancelled() {
                return Err(ProvisionError::Cancelled);
            }
            if let Some((at, gate)) = &script.mid_gate {
                if i == *at {
                    gate.acquire().await.expect("gate open").forget();
                }
            }
            sink.log("tofu", Level::Info, format!("line {i}")).await;
            if !script.pace.is_zero() {
                tokio::time::sleep(script.pace).await;
            }
        }
        if let Some(gate) = &script.gate {
            tokio::select! {
                permit = gate.acquire() => { permit.expect("gate open").forget(); }
                _ = cancel.cancelled() => return Err(ProvisionError::Cancelled),
            }
        }
        if let Some(msg) = script.fail {
            return Err(ProvisionError::step("tofu apply", msg));
        }
        sink.status(DeploymentStatus::FluxBootstrapping).await;
        sink.info("flux-bootstrap", "Flux bootstrapping").await;
        Ok(ProvisionOutput {
            control_plane_ip: Some("203.0.113.10".into()),
            load_balancer_ip: Some("203.0.113.20".into()),
        })
    }
}

/// The authenticator over `dir` and a new sovereign-admin token.
pub fn admin_auth(dir: &Path) -> (Arc<Authenticator>, String) {
    let auth = Arc::new(Authenticator::open(dir, None).expect("token store opens"));
    let token = auth
        .tokens()
        .create(Role::SovereignAdmin, None, "root")
        .expect("token created");
    (auth, token)
}

/// `app` as a caller holding `token` sees it: requests without an `Authorization` header get
/// `Bearer <token>`.
pub fn as_caller(app: axum::Router, token: &str) -> axum::Router {
    let bearer: axum::http::HeaderValue = format!("Bearer {token}").parse().unwrap();
    conform::conform(app).layer(axum::middleware::map_request(
        move |mut req: axum::extract::Request| {
            let bearer = bearer.clone();
            async move {
                if !req
                    .headers()
                    .contains_key(axum::http::header::AUTHORIZATION)
                {
                    req.headers_mut()
                        .insert(axum::http::header::AUTHORIZATION, bearer);
                }
                req
            }
        },
    ))
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub service: Arc<DeploymentService>,
    /// Sends the sovereign-admin token with every request.
    pub client: reqwest::Client,
    /// The authenticator (make other roles' tokens with it).
    pub auth: Arc<Authenticator>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(dir: &Path, provisioner: Arc<dyn Provisioner>) -> Server {
        Self::start_with(dir, provisioner, ServiceConfig::default()).await
    }

    pub async fn start_with(
        dir: &Path,
        provisioner: Arc<dyn Provisioner>,
        config: ServiceConfig,
    ) -> Server {
        Self::start_full(dir, provisioner, config, Duration::from_secs(15)).await
    }

    pub async fn start_full(
        dir: &Path,
        provisioner: Arc<dyn Provisioner>,
        config: ServiceConfig,
        keepalive: Duration,
    ) -> Server {
        let store = Arc::new(FileStore::open(dir.join("deployments")).expect("store opens"));
        let service = DeploymentService::start(store, provisioner, config)
            .await
            .expect("service starts");
        let (auth, admin) = admin_auth(dir);
        let mut state = AppState::new(
            service.clone(),
            HetznerClient::new("http://127.0.0.1:9").unwrap(),
            auth.clone(),
        );
        state.keepalive = keepalive;
        let state = Arc::new(state);
        let app = conform::conform(catalyst_api::router(state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {admin}").parse().unwrap(),
        );
        Server {
            addr,
            service,
            client: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
            auth,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn create(&self, fqdn_label: &str) -> String {
        let (status, body) = self
            .post("/api/v1/deployments", valid_request(fqdn_label))
            .await;
        assert_eq!(status, 201, "create failed: {body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Follows the SSE stream until it ends; returns the frames.
    pub async fn follow(&self, id: &str, last_event_id: Option<u64>) -> Vec<Frame> {
        let mut req = self
            .client
            .get(self.url(&format!("/api/v1/deployments/{id}/logs")));
        if let Some(l) = last_event_id {
            req = req.header("Last-Event-ID", l.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        read_sse(resp).await
    }

    pub async fn wait_done(&self, id: &str) -> Value {
        // Generous: CI runs this beside other heavy tests on 2 cores.
        for _ in 0..2400 {
            let (_, body) = self.get(&format!("/api/v1/deployments/{id}/events")).await;
            if body["done"] == json!(true) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("deployment {id} did not finish");
    }
}

pub const TOKEN: &str = "hcloud-test-token-0123456789abcdef0123456789abcdef0123456789abcdef-SECRET";

pub fn valid_request(label: &str) -> Value {
    json!({
        "orgName": "Acme Financial",
        "orgEmail": "platform@acme.io",
        "sovereignFQDN": format!("{label}.omani.works"),
        "sovereignDomainMode": "pool",
        "sovereignPoolDomain": "omani.works",
        "sovereignSubdomain": label,
        "hetznerToken": TOKEN,
        "hetznerProjectID": "4711",
        "region": "fsn1",
        "controlPlaneSize": "cpx32",
        "workerSize": "cpx32",
        "workerCount": 1,
        "haEnabled": false,
        "regions": [{"provider": "hetzner", "cloudRegion": "fsn1", "controlPlaneSize": "cpx32", "workerSize": "cpx32", "workerCount": 1}],
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@acme"
    })
}

/// One SSE frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub data: Value,
}

/// Reads SSE frames until the server closes the stream.
pub async fn read_sse(resp: reqwest::Response) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(pos) = buf.find("\n\n") {
            let block: String = buf.drain(..pos + 2).collect();
            if let Some(f) = parse_block(&block) {
                frames.push(f);
            }
        }
    }
    frames
}

pub fn parse_block(block: &str) -> Option<Frame> {
    let mut id = None;
    let mut event = None;
    let mut data = String::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event:") {
            event = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if data.is_empty() {
        return None;
    }
    Some(Frame {
        id,
        event,
        data: serde_json::from_str(&data).expect("data is JSON"),
    })
}

/// Every file under `dir`, as bytes, for secret scans.
pub fn all_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}
