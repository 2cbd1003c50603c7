//! Test support: a full `catalyst serve` app (API + console) on a loopback port, a paced
//! dry-run provisioner, a Hetzner stand-in, and a headless Chromium driven over WebDriver.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::routing::get;
use axum::Router;
use catalyst_api::auth::{Authenticator, Role};
use catalyst_api::AppState;
use catalyst_console::{Catalog, ConsoleState};
use catalyst_core::{DeploymentStatus, EventDraft, Level, ResourceProgress, ResourceState};
use catalyst_provision::dry_run::DryRunProvisioner;
use catalyst_provision::hetzner::HetznerClient;
use catalyst_provision::render::TofuSettings;
use catalyst_provision::service::{DeploymentService, ServiceConfig};
use catalyst_provision::{EventSink, ProvisionError, ProvisionJob, ProvisionOutput, Provisioner};
use catalyst_store::file::FileStore;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example catalog the README's run command uses.
pub fn example_catalog() -> Catalog {
    let c = Catalog::load(&[repo_root().join("examples/catalog")]).expect("example catalog loads");
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    c
}

/// The dry-run provisioner, slowed down: it first reports `lines` paced lines with per-resource
/// progress (as a real apply would), then runs the real dry run.
pub struct PacedDryRun {
    inner: DryRunProvisioner,
    lines: usize,
    pace: Duration,
}

impl PacedDryRun {
    /// `lines` lines, `pace` apart.
    pub fn new(dir: &Path, lines: usize, pace: Duration) -> Arc<Self> {
        let settings = TofuSettings::new(repo_root().join("infra/hetzner"), dir.join("runs"));
        Arc::new(PacedDryRun {
            inner: DryRunProvisioner::new(settings),
            lines,
            pace,
        })
    }
}

#[async_trait]
impl Provisioner for PacedDryRun {
    fn name(&self) -> &'static str {
        "paced-dry-run"
    }

    fn dry_run(&self) -> bool {
        true
    }

    async fn provision(
        &self,
        job: ProvisionJob,
        sink: EventSink,
        cancel: CancellationToken,
    ) -> Result<ProvisionOutput, ProvisionError> {
        sink.status(DeploymentStatus::Provisioning).await;
        sink.info("tofu-init", "Preparing (paced test run)").await;
        for i in 0..self.lines {
            let address = format!("hcloud_server.node[{}]", i % 3);
            let state = if i < 3 {
                ResourceState::Applying
            } else {
                ResourceState::Applied
            };
            let mut draft = EventDraft::new(
                chrono::Utc::now(),
                "tofu-apply",
                Level::Info,
                format!("paced line {i}: {address}"),
            );
            draft.resource = Some(ResourceProgress {
                address,
                resource_type: "hcloud_server".into(),
                action: "create".into(),
                state,
                elapsed_seconds: Some(i as u64),
            });
            sink.emit(draft).await;
            tokio::select! {
                _ = tokio::time::sleep(self.pace) => {}
                _ = cancel.cancelled() => return Err(ProvisionError::Cancelled),
            }
        }
        self.inner.provision(job, sink, cancel).await
    }
}

/// Answers Hetzner's `GET /v1/servers` with 200, so every token checks as valid.
pub async fn hetzner_stub() -> String {
    let app = Router::new().route(
        "/v1/servers",
        get(|| async { axum::Json(json!({"servers": []})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// The authenticator over `dir` and a new sovereign-admin token.
pub fn admin_auth(dir: &Path) -> (Arc<Authenticator>, String) {
    let auth = Arc::new(Authenticator::open(dir, None).unwrap());
    let token = auth
        .tokens()
        .create(Role::SovereignAdmin, None, "root")
        .unwrap();
    (auth, token)
}

/// The app `catalyst serve` runs: the API router merged with the console's routers, the
/// admin pages behind the sign-in guard.
pub fn app(
    service: Arc<DeploymentService>,
    hetzner_url: &str,
    catalog: Catalog,
    auth: Arc<Authenticator>,
) -> Router {
    let mut state = AppState::new(
        service.clone(),
        HetznerClient::new(hetzner_url).unwrap(),
        auth,
    );
    state.keepalive = Duration::from_secs(2);
    let state = Arc::new(state);
    let console = catalyst_console::routers(Arc::new(ConsoleState::new(service, catalog)));
    catalyst_api::router_with(
        state.clone(),
        [
            console.public,
            catalyst_api::guard_pages(&state, console.admin),
            catalyst_api::guard_member_pages(&state, console.members),
        ],
    )
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub service: Arc<DeploymentService>,
    /// A sovereign-admin token for this server's data dir.
    pub admin: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Starts on `addr` (port 0 for any) over the store in `dir`.
    pub async fn start(
        dir: &Path,
        addr: SocketAddr,
        provisioner: Arc<dyn Provisioner>,
        hetzner_url: &str,
    ) -> Server {
        let store = Arc::new(FileStore::open(dir.join("deployments")).expect("store opens"));
        let service = DeploymentService::start(store, provisioner, ServiceConfig::default())
            .await
            .expect("service starts");
        let (auth, admin) = admin_auth(dir);
        let app = app(service.clone(), hetzner_url, example_catalog(), auth);
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        let mut bound = None;
        for _ in 0..100 {
            if socket.bind(addr).is_ok() {
                bound = Some(());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bound.expect("the address can be bound");
        let listener = socket.listen(128).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown_service = service.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                    shutdown_service.shutdown(Duration::from_secs(5)).await;
                })
                .await;
        });
        Server {
            addr,
            service,
            admin,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops as `catalyst serve` does on SIGTERM: runs cancelled and recorded, streams closed.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                panic!("the server did not stop within 10 s");
            }
        }
    }

    /// Creates a deployment through the API; returns its id.
    pub async fn create(&self, label: &str, token: &str) -> String {
        let r = reqwest::Client::new()
            .post(self.url("/api/v1/deployments"))
            .bearer_auth(&self.admin)
            .json(&valid_request(label, token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let body: Value = r.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// `GET` a JSON path.
    pub async fn get_json(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the deployment is done.
    pub async fn wait_done(&self, id: &str) -> Value {
        for _ in 0..1800 {
            let body = self
                .get_json(&format!("/api/v1/deployments/{id}/events"))
                .await;
            if body["done"] == json!(true) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("deployment {id} did not finish");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A create request that validates.
pub fn valid_request(label: &str, token: &str) -> Value {
    json!({
        "orgName": "Acme", "orgEmail": "platform@acme.io",
        "sovereignFQDN": format!("{label}.omani.works"), "sovereignDomainMode": "pool",
        "sovereignPoolDomain": "omani.works", "sovereignSubdomain": label,
        "hetznerToken": token, "hetznerProjectID": "1",
        "regions": [{"provider": "hetzner", "cloudRegion": "fsn1", "controlPlaneSize": "cpx32", "workerSize": "cpx32", "workerCount": 1}],
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop"
    })
}

// ---- a TCP proxy that can cut every connection ------------------------------------------

/// Stands between the browser and a server: every connection can be cut at once (a network
/// blip, or a process that died), and the backend can change (a restarted server).
pub struct Proxy {
    /// Where the browser connects.
    pub addr: SocketAddr,
    backend: Arc<std::sync::Mutex<Option<SocketAddr>>>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

impl Proxy {
    /// Listens on a free port and forwards to `backend`.
    pub async fn start(backend: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let backend = Arc::new(std::sync::Mutex::new(Some(backend)));
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (b, c) = (backend.clone(), conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Some(to) = *b.lock().unwrap() else {
                    drop(inbound); // "down": the connection is refused
                    continue;
                };
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                c.lock().unwrap().push(handle.abort_handle());
            }
        });
        Proxy {
            addr,
            backend,
            conns,
            task,
        }
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Drops every open connection.
    pub fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Where new connections go (`None`: they are dropped).
    pub fn set_backend(&self, to: Option<SocketAddr>) {
        *self.backend.lock().unwrap() = to;
    }
}

// ---- browser ---------------------------------------------------------------------------

#[allow(unused_imports)]
pub use catalyst_testkit::browser::{browser, Browser};
