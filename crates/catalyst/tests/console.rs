//! The web console served by the real binary, started the way the README says
//! (`catalyst serve --catalog examples/catalog`), and through `CATALYST_CATALOG`.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path, args: &[&str], env: &[(&str, String)]) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_catalyst"));
    cmd.current_dir(repo())
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--provisioner")
        .arg("dry-run")
        .args(args)
        .env_remove("CATALYST_DATABASE_URL")
        .env_remove("CATALYST_CATALOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("catalyst starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("catalyst exited early ({status})");
        }
        assert!(
            Instant::now() < deadline,
            "catalyst did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Served {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn serve_with_the_example_catalog_serves_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let s = serve(dir.path(), &["--catalog", "examples/catalog"], &[]);
    let c = client();
    let r = c.get(format!("{}/", s.base)).send().await.unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/sovereign/wizard");
    for (path, needle) in [
        ("/sovereign/wizard", "id=\"wizard-data\""),
        ("/sovereign/deployments", "No deployment yet"),
        ("/marketplace", "data-name=\"bp-gitea\""),
        ("/marketplace/bp-outline", "id=\"dep-tree\""),
    ] {
        let r = c.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }
    // The API is still there, next to the console.
    let r = c.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_catalog_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = repo().join("examples/catalog").display().to_string();
    let s = serve(dir.path(), &[], &[("CATALYST_CATALOG", catalog)]);
    let body = client()
        .get(format!("{}/marketplace", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("7 of 7 Blueprints"), "{body}");
    // Without a catalog the marketplace says how to give it one.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = serve(dir2.path(), &[], &[]);
    let body = client()
        .get(format!("{}/marketplace", s2.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("--catalog"));
}
