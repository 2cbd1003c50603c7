//! Test and benchmark support: a private PowerDNS on loopback and a PostgreSQL schema per test.
//! Shared by the catalyst-dns tests, its benchmark and the catalyst-api pool tests (`#[path]`).
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use catalyst_testkit::Need;

/// Skips (says why, returns `None`) or, under `CATALYST_REQUIRE_SERVICES=1`, fails when a service
/// is missing.
#[track_caller]
pub fn missing<T>(need: Need, why: &str) -> Option<T> {
    catalyst_testkit::skip_or_fail(need, why);
    None
}

const SCHEMA: &str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";

fn find_pdns() -> Option<PathBuf> {
    ["/usr/sbin/pdns_server", "/usr/bin/pdns_server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("pdns_server"))
                    .find(|p| p.is_file())
            })
        })
}

fn schema_sql() -> Result<String, String> {
    if let Ok(s) = std::fs::read_to_string(SCHEMA) {
        return Ok(s);
    }
    let gz = format!("{SCHEMA}.gz");
    if Path::new(&gz).is_file() {
        let out = Command::new("gzip")
            .args(["-dc", &gz])
            .output()
            .map_err(|e| format!("gzip: {e}"))?;
        return String::from_utf8(out.stdout).map_err(|e| e.to_string());
    }
    Err(format!("{SCHEMA} not found (package pdns-backend-sqlite3)"))
}

/// A port free on 127.0.0.1 for both UDP and TCP.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A PowerDNS authoritative server of our own: sqlite3 backend in a temp dir, DNSSEC on, API on
/// a free port with a random key, DNS on another free port. Killed on drop.
pub struct Pdns {
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub api_url: String,
    /// The API key.
    pub api_key: String,
    /// UDP/TCP address serving DNS.
    pub dns: SocketAddr,
}

impl Pdns {
    /// Starts one, or `None` (skipped) when PowerDNS is not installed.
    pub fn start() -> Option<Pdns> {
        let Some(bin) = find_pdns() else {
            return missing(Need::PowerDns, "pdns_server not found");
        };
        let sql = match schema_sql() {
            Ok(s) => s,
            Err(e) => return missing(Need::PowerDns, &format!("sqlite3 backend: {e}")),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("pdns.sqlite3");
        rusqlite::Connection::open(&db)
            .and_then(|c| c.execute_batch(&sql))
            .expect("create the PowerDNS sqlite schema");
        let mut p = Pdns {
            dir,
            bin,
            child: None,
            api_url: String::new(),
            api_key: format!("test-{:016x}", rand::random::<u64>()),
            dns: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        // A port picked as free can be taken before PowerDNS binds it: try fresh ports again.
        let mut last = String::new();
        for _ in 0..5 {
            let (api_port, dns_port) = (free_port(), free_port());
            p.write_conf(&db, api_port, dns_port);
            p.api_url = format!("http://127.0.0.1:{api_port}");
            p.dns = SocketAddr::from(([127, 0, 0, 1], dns_port));
            match p.try_resume() {
                Ok(()) => return Some(p),
                Err(e) => last = e,
            }
        }
        panic!("PowerDNS did not start: {last}");
    }

    fn write_conf(&self, db: &Path, api_port: u16, dns_port: u16) {
        let conf = format!(
            "launch=gsqlite3\n\
             gsqlite3-database={db}\n\
             gsqlite3-dnssec=yes\n\
             local-address=127.0.0.1\n\
             local-port={dns_port}\n\
             api=yes\n\
             api-key={key}\n\
             webserver=yes\n\
             webserver-address=127.0.0.1\n\
             webserver-port={api_port}\n\
             webserver-allow-from=127.0.0.0/8\n\
             daemon=no\n\
             guardian=no\n\
             disable-syslog=yes\n\
             socket-dir={dir}\n\
             default-soa-edit-signed=INCEPTION-EPOCH\n\
             cache-ttl=0\n\
             negquery-cache-ttl=0\n\
             query-cache-ttl=0\n\
             zone-cache-refresh-interval=0\n\
             receiver-threads=1\n\
             distributor-threads=1\n\
             loglevel=3\n",
            db = db.display(),
            key = self.api_key,
            dir = self.dir.path().display(),
        );
        std::fs::write(self.dir.path().join("pdns.conf"), conf).expect("write pdns.conf");
    }

    /// Starts the server again (same config, ports and data) and waits until the API answers.
    pub fn resume(&mut self) {
        if let Err(e) = self.try_resume() {
            panic!("{e}");
        }
    }

    fn try_resume(&mut self) -> Result<(), String> {
        let log = std::fs::File::create(self.dir.path().join("pdns.log")).expect("log file");
        let child = Command::new(&self.bin)
            .arg(format!("--config-dir={}", self.dir.path().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn pdns_server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr: SocketAddr = self.api_url["http://".len()..].parse().expect("api addr");
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!("pdns_server exited ({status}): {}", self.log()));
            }
            if Instant::now() > deadline {
                self.pause();
                return Err(format!("PowerDNS did not start in time: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (the data stays).
    pub fn pause(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pdns.log")).unwrap_or_default()
    }

    /// A client of ours for this server, with short retries.
    pub fn client(&self) -> catalyst_dns::PowerDns {
        catalyst_dns::PowerDns::new(&self.api_url, &self.api_key, "localhost")
            .expect("client")
            .with_backoff(vec![
                Duration::ZERO,
                Duration::from_millis(50),
                Duration::from_millis(100),
            ])
    }

    /// `dig +dnssec +norec` against this server; the whole output.
    pub fn dig(&self, name: &str, rtype: &str) -> String {
        let out = Command::new("dig")
            .args([
                "+dnssec",
                "+norec",
                "+time=2",
                "+tries=1",
                &format!("@{}", self.dns.ip()),
                "-p",
                &self.dns.port().to_string(),
                name,
                rtype,
            ])
            .output();
        match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => {
                catalyst_testkit::skip_or_fail(Need::Dig, format!("the dig part: {e}"));
                String::from("dig-missing")
            }
        }
    }

    /// Names of the zones the server holds (without trailing dots).
    pub async fn zones(&self) -> Vec<String> {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/servers/localhost/zones", self.api_url))
            .header("X-API-Key", &self.api_key)
            .send()
            .await
            .expect("list zones")
            .json()
            .await
            .expect("zones json");
        let mut z: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|z| {
                z["name"]
                    .as_str()
                    .map(|n| n.trim_end_matches('.').to_owned())
            })
            .collect();
        z.sort();
        z
    }

    /// The RRsets of `zone` named `name` of type `rtype` (contents).
    pub async fn rrset(&self, zone: &str, name: &str, rtype: &str) -> Vec<String> {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{}/api/v1/servers/localhost/zones/{zone}.",
                self.api_url
            ))
            .header("X-API-Key", &self.api_key)
            .send()
            .await
            .expect("get zone")
            .json()
            .await
            .expect("zone json");
        v["rrsets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["name"] == format!("{name}.") && r["type"] == rtype)
            .flat_map(|r| r["records"].as_array().cloned().unwrap_or_default())
            .filter_map(|r| r["content"].as_str().map(str::to_owned))
            .collect()
    }
}

impl Drop for Pdns {
    fn drop(&mut self) {
        self.pause();
    }
}

/// Parses the ANSWER section of dig output into (name, type, data) triples.
pub fn answers(dig: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut in_answer = false;
    for line in dig.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            in_answer = true;
            continue;
        }
        if in_answer {
            if line.trim().is_empty() || line.starts_with(";;") {
                break;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() >= 5 {
                out.push((
                    f[0].trim_end_matches('.').to_owned(),
                    f[3].to_owned(),
                    f[4..].join(" "),
                ));
            }
        }
    }
    out
}

/// The `status:` of dig output (`NOERROR`, `NXDOMAIN`, …).
pub fn dig_status(dig: &str) -> String {
    dig.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
        .to_owned()
}

/// PostgreSQL for tests: a fresh schema, dropped afterwards.
pub mod pg {
    /// Drops the schema when the test ends.
    pub struct SchemaGuard {
        pub url: String,
        pub schema: String,
    }

    impl Drop for SchemaGuard {
        fn drop(&mut self) {
            let url = self.url.clone();
            let schema = self.schema.clone();
            catalyst_testkit::clean_up(async move {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        }
    }

    /// The test database URL.
    pub fn url() -> String {
        match std::env::var("CATALYST_TEST_DATABASE_URL") {
            Ok(u) if !u.trim().is_empty() => u,
            _ => "postgres://postgres@127.0.0.1:5432/test".to_owned(),
        }
    }

    /// A store in a random schema, or `None` (skipped) when PostgreSQL is unreachable.
    pub async fn store() -> Option<(catalyst_dns::PgAllocationStore, SchemaGuard)> {
        let url = url();
        let schema = format!("catalyst_dns_test_{:016x}", rand::random::<u64>());
        match catalyst_dns::PgAllocationStore::connect_in_schema(&url, &schema).await {
            Ok(s) => Some((s, SchemaGuard { url, schema })),
            Err(e) => super::missing(super::Need::Postgres, &format!("{url}: {e}")),
        }
    }
}
