//! Shared helpers of the binary benchmarks: start the real `catalyst`, wait for it, stop it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A bench scratch directory on the real disk (not tmpfs).
pub fn scratch() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-tmp");
    std::fs::create_dir_all(&root).unwrap();
    tempfile::tempdir_in(root).unwrap()
}

/// The OpenTofu stand-in of the tests.
pub fn standin_tofu() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalyst-provision/tests/standin/tofu")
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `catalyst serve`.
pub struct Catalyst {
    pub child: Child,
    pub base: String,
    pub port: u16,
}

impl Catalyst {
    pub fn spawn(data_dir: &Path, args: &[&str], env: &[(&str, String)]) -> Catalyst {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_catalyst"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("CATALYST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Catalyst {
            child: cmd.spawn().unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            port,
        }
    }

    /// Polls `/readyz` until 200; returns how long that took since `since`.
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
}

impl Drop for Catalyst {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Median of a few durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
