//! Shared by the binary's integration tests and benches: start the real `catalyst serve` on a
//! free loopback port, wait until it listens, stop it; its log goes to a file the test can read.
#![allow(dead_code)]

#[cfg(test)]
pub mod conform;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `X-Signature` Flux's `generic-hmac` Provider sends: `sha256=` + hex HMAC-SHA256(key, body).
pub fn flux_signature(key: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The OpenTofu stand-in of the provisioning tests.
pub fn standin_tofu() -> PathBuf {
    repo().join("crates/catalyst-provision/tests/standin/tofu")
}

/// `catalyst serve --help`.
pub fn serve_help() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The body of `POST /api/v1/deployments` the binary's tests send, for `<label>.omani.works`
/// (a pool-mode Sovereign), with `hetznerToken` when one is given.
pub fn deployment_request(label: &str, hetzner_token: Option<&str>) -> serde_json::Value {
    let mut body = serde_json::json!({
        "orgName": "Acme Financial",
        "orgEmail": "platform@acme.io",
        "sovereignFQDN": format!("{label}.omani.works"),
        "sovereignDomainMode": "pool",
        "sovereignPoolDomain": "omani.works",
        "sovereignSubdomain": label,
        "hetznerProjectID": "4711",
        "regions": [{"provider": "hetzner", "cloudRegion": "fsn1", "controlPlaneSize": "cpx32", "workerSize": "cpx22", "workerCount": 2}],
        "sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@acme"
    });
    if let Some(token) = hetzner_token {
        body["hetznerToken"] = serde_json::json!(token);
    }
    body
}

/// Whether `GET /healthz` on the port gets an HTTP answer.
fn answers_http(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut buf = [0u8; 8];
    matches!(s.read(&mut buf), Ok(n) if n > 0 && buf.starts_with(b"HTTP/"))
}

/// A running `catalyst serve`; killed when dropped.
pub struct Catalyst {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The port.
    pub port: u16,
    /// Where its stderr (the log) goes.
    pub log_path: PathBuf,
    /// A sovereign-admin token, made with `catalyst token create` before start-up.
    pub admin: String,
    /// In tests, the proxy `base` points at: it checks every answer against the OpenAPI
    /// description (benches talk to the server directly).
    #[cfg(test)]
    proxy: conform::Proxy,
}

/// Runs `catalyst ARGS…` in `dir`; returns (exit code, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(args)
        .current_dir(dir)
        .env_remove("CATALYST_TRUSTED_KEYS")
        .env_remove("CATALYST_TRUSTED_BUNDLES")
        .output()
        .expect("catalyst runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `catalyst token create --data-dir DIR --role ROLE [--org ORG] --name NAME`: the token.
pub fn create_token(data_dir: &Path, role: &str, org: Option<&str>, name: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_catalyst"));
    cmd.args(["token", "create", "--data-dir"])
        .arg(data_dir)
        .args(["--role", role, "--name", name]);
    if let Some(org) = org {
        cmd.args(["--org", org]);
    }
    let out = cmd.output().expect("catalyst token create runs");
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Catalyst {
    /// `catalyst serve --listen 127.0.0.1:<free> --data-dir DIR ARGS…` with `env`, without any
    /// `CATALYST_DATABASE_URL`/`CATALYST_CATALOG` of the caller's environment.
    pub fn start(data_dir: &Path, args: &[&str], env: &[(&str, String)]) -> Catalyst {
        Self::start_with(data_dir, args, |cmd| {
            for (k, v) in env {
                cmd.env(k, v);
            }
        })
    }

    /// Like [`Catalyst::start`], with the command adjusted by `configure` before it runs.
    pub fn start_with(
        data_dir: &Path,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Catalyst {
        let port = free_port();
        let log_path =
            std::env::temp_dir().join(format!("catalyst-test-{}-{port}.log", std::process::id()));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_catalyst"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env_remove("CATALYST_DATABASE_URL")
            .env_remove("CATALYST_CATALOG")
            .env_remove("CATALYST_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        configure(&mut cmd);
        let admin = create_token(data_dir, "sovereign-admin", None, "test-admin");
        let mut child = cmd.spawn().expect("catalyst starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("catalyst exited early ({status}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "catalyst did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The socket is bound before the store is restored; wait until the router answers.
        while !answers_http(port) {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("catalyst exited early ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "catalyst did not start serving");
            std::thread::sleep(Duration::from_millis(10));
        }
        let direct = format!("http://127.0.0.1:{port}");
        #[cfg(test)]
        let proxy = conform::Proxy::start(direct.clone());
        Catalyst {
            child,
            #[cfg(test)]
            base: proxy.base.clone(),
            #[cfg(not(test))]
            base: direct,
            port,
            log_path,
            admin,
            #[cfg(test)]
            proxy,
        }
    }

    /// An HTTP client that sends the sovereign-admin token and does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", self.admin).parse().unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The `/metrics` text (no token needed).
    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A dry-run server on `data_dir` with the example catalog (`examples/catalog`), run from
    /// the repository (the console's browser tests).
    pub fn console(data_dir: &Path, extra: &[&str]) -> Catalyst {
        let mut args = vec!["--provisioner", "dry-run", "--catalog", "examples/catalog"];
        args.extend_from_slice(extra);
        Self::start_with(data_dir, &args, |cmd| {
            cmd.current_dir(repo());
        })
    }

    /// Creates Organization `org` and, for each `(envType, policy)`, an Environment; panics
    /// unless each is created.
    pub async fn organization(&self, org: &str, envs: &[(&str, serde_json::Value)]) {
        let (status, v) = self
            .post_json("/api/v1/orgs", &serde_json::json!({"name": org}))
            .await;
        assert_eq!(status, 201, "{org}: {v}");
        for (env, policy) in envs {
            let (status, v) = self
                .post_json(
                    &format!("/api/v1/orgs/{org}/environments"),
                    &serde_json::json!({"envType": env, "policy": policy}),
                )
                .await;
            assert_eq!(status, 201, "{org}-{env}: {v}");
        }
    }

    /// Adds member `name` with `role` to `org`: their token.
    pub async fn member(&self, org: &str, name: &str, role: &str) -> String {
        let (status, v) = self
            .post_json(
                &format!("/api/v1/orgs/{org}/members"),
                &serde_json::json!({"name": name, "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{name}: {v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// `GET path` as the sovereign-admin: (status, the JSON answer or null).
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.client().get(self.url(path)).send().await.unwrap();
        (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// `POST path` with a JSON body as the sovereign-admin: (status, the JSON answer or null).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self
            .client()
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        (
            r.status().as_u16(),
            r.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Reads `GET /api/v1/events{query}` from the start (`Last-Event-ID: 0`) as the
    /// sovereign-admin until `until` holds for what arrived (10 s at most); the SSE text.
    pub async fn events_until(&self, query: &str, until: impl Fn(&str) -> bool) -> String {
        use futures::StreamExt;
        let resp = self
            .client()
            .get(self.url(&format!("/api/v1/events{query}")))
            .header("last-event-id", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.bytes_stream();
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !until(&text) {
            let chunk = tokio::time::timeout_at(deadline, body.next())
                .await
                .unwrap_or_else(|_| panic!("timed out; so far: {text}"))
                .unwrap()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    }

    /// `GET path` as the sovereign-admin, until `done` accepts the JSON answer (or `within`
    /// passes: a panic naming the last answer).
    pub async fn poll_json(
        &self,
        path: &str,
        within: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let v: serde_json::Value = self
                .client()
                .get(self.url(path))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap_or_default();
            if done(&v) {
                return v;
            }
            assert!(started.elapsed() < within, "{path} never got there: {v}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "catalyst did not exit in {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls `/readyz` until it answers 200; returns how long that took since `since`.
    pub fn wait_ready(&self, since: Instant) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ =
                    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.1 200") {
                    return since.elapsed();
                }
            }
            assert!(Instant::now() < deadline, "catalyst never became ready");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills it and waits.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Catalyst {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log_path);
        #[cfg(test)]
        {
            let violations = self.proxy.violations();
            if !violations.is_empty() && !std::thread::panicking() {
                panic!(
                    "{} answer(s) outside the OpenAPI description:\n{}",
                    violations.len(),
                    violations.join("\n")
                );
            }
        }
    }
}
