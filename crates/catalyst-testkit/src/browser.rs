//! Headless Chromium (Debian's `chromium` + `chromium-driver`) driven over WebDriver with
//! fantoccini, for the browser tests of every crate; screenshots go to
//! `target/console-screenshots/`. Without Chromium a test skips with a printed reason, unless
//! `CATALYST_REQUIRE_SERVICES=1`.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::repo_root;

fn which(names: &[&str]) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    for name in names {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Headless Chromium behind a chromedriver this test started.
pub struct Browser {
    /// The WebDriver session.
    pub client: fantoccini::Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts Chromium, or says why not: `None` (with a printed reason) when Chromium or
/// chromedriver is missing, unless `CATALYST_REQUIRE_SERVICES=1`, which makes that a failure.
pub async fn browser() -> Option<Browser> {
    let chromium = which(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = which(&["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        crate::skip_or_fail(
            crate::Need::Chromium,
            "chromium or chromedriver is not on PATH",
        );
        return None;
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    }))
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut last_err = String::new();
    for _ in 0..300 {
        let mut builder = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        );
        builder.capabilities(caps.clone());
        match builder.connect(&url).await {
            Ok(client) => {
                return Some(Browser {
                    client,
                    driver: child,
                    _profile: profile,
                })
            }
            Err(e) => last_err = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot start a Chromium session: {last_err}");
}

impl Browser {
    /// Runs `script` (a function body) and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("script runs")
    }

    /// Waits until `expr` (a JS expression) is truthy.
    pub async fn wait_for(&self, expr: &str, what: &str) {
        let script = format!("return !!({expr});");
        // Generous: CI runs this beside other heavy tests on 2 cores.
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while std::time::Instant::now() < deadline {
            if self.js(&script).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self
            .screenshot(&format!("timeout-{}", what.replace(' ', "-")))
            .await;
        panic!("timed out waiting for {what} ({expr})");
    }

    /// The element `css` finds, scrolled to the middle of the viewport (clear of sticky bars).
    async fn scrolled_to(&self, css: &str) -> fantoccini::elements::Element {
        let el = self
            .client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        self.client
            .execute(
                "arguments[0].scrollIntoView({block: 'center'});",
                vec![serde_json::to_value(&el).unwrap()],
            )
            .await
            .unwrap();
        el
    }

    /// Sets an input's value the way typing does (fires `input`).
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.scrolled_to(css).await;
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Clicks an element (scrolled to the middle of the viewport first, clear of the
    /// wizard's sticky footer).
    pub async fn click(&self, css: &str) {
        let el = self.scrolled_to(css).await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Signs in through the console's login page (`base` is `http://host:port` of a server or
    /// proxy): opening a guarded page redirects to `/login?next=…`, the form posts the token,
    /// and the browser lands back on the page with the session cookie set.
    pub async fn sign_in(&self, base: &str, token: &str, page: &str) {
        self.client.goto(&format!("{base}{page}")).await.unwrap();
        self.wait_for(
            "location.pathname === '/login' && !!document.getElementById('token')",
            "the login page",
        )
        .await;
        self.type_into("#token", token).await;
        self.click("#login-submit").await;
        self.wait_for(
            &format!(
                "location.pathname === {}",
                json!(page.split('?').next().unwrap_or(page))
            ),
            "the page after signing in",
        )
        .await;
    }

    /// Saves a PNG under `target/console-screenshots/<name>.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}
