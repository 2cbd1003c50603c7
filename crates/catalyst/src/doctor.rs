//! `catalyst doctor`: checks what `catalyst serve` with the same flags, variables and config
//! file would need — the data directory, PostgreSQL, NATS JetStream, the OCI registry,
//! PowerDNS, OpenTofu, the catalog — and says what to fix. Writes nothing but a probe file in
//! the data directory (removed again; the directory is created when missing) and, when no server
//! holds the directory, its lock file while it checks. Exit status 1 when a check failed.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::{find_binary, ProvisionerKind, ServeArgs};

/// What a check found.
enum Outcome {
    Ok(String),
    /// Works, but not as the user may expect; `.1` says what to do.
    Warn(String, String),
    /// Will not work; `.1` says what to do.
    Fail(String, String),
    /// Not configured.
    Skip(String),
}

/// Runs every check, prints one line each (and the fix under a failure or warning).
pub async fn run(args: ServeArgs) -> Result<()> {
    let checks: Vec<(&str, Outcome)> = vec![
        ("data directory", data_dir(&args.data_dir)),
        ("PostgreSQL", postgres(args.database_url.as_deref()).await),
        ("NATS JetStream", nats(args.nats_url.as_deref()).await),
        ("OCI registry", registry(&args).await),
        ("PowerDNS", powerdns(&args.pool).await),
        ("OpenTofu", tofu(&args).await),
        ("catalog", catalog(&args.catalog)),
    ];
    let mut failed = 0;
    for (what, outcome) in &checks {
        match outcome {
            Outcome::Ok(detail) => outln!("ok    {what}: {detail}"),
            Outcome::Skip(why) => outln!("-     {what}: {why}"),
            Outcome::Warn(detail, fix) => {
                outln!("warn  {what}: {detail}");
                outln!("      fix: {fix}");
            }
            Outcome::Fail(detail, fix) => {
                failed += 1;
                outln!("FAIL  {what}: {detail}");
                outln!("      fix: {fix}");
            }
        }
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} check(s) failed; `catalyst serve` with these settings would not work"
        );
    }
    Ok(())
}

fn data_dir(dir: &Path) -> Outcome {
    let fix = format!(
        "create {} and make it writable by this user, or pass --data-dir",
        dir.display()
    );
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Outcome::Fail(format!("cannot create {}: {e}", dir.display()), fix);
    }
    let probe = dir.join(format!(".doctor-{}", std::process::id()));
    let written =
        std::fs::write(&probe, b"probe").and_then(|()| std::fs::File::open(&probe)?.sync_all());
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = written {
        return Outcome::Fail(format!("cannot write in {}: {e}", dir.display()), fix);
    }
    let lock = std::fs::read_to_string(dir.join(crate::datadir::LOCK_FILE)).unwrap_or_default();
    match crate::datadir::DataDirLock::acquire(dir) {
        Ok(_) => Outcome::Ok(format!("{} is writable", dir.display())),
        Err(crate::datadir::LockError::InUse { .. }) => Outcome::Warn(
            format!(
                "{} is writable and in use by a running server ({})",
                dir.display(),
                lock.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            "nothing, if that server is the one you meant; a second `serve` on it will refuse"
                .into(),
        ),
        Err(e) => Outcome::Fail(e.to_string(), fix),
    }
}

async fn postgres(url: Option<&str>) -> Outcome {
    let Some(url) = url else {
        return Outcome::Skip("not configured (deployments are kept under --data-dir)".into());
    };
    match catalyst_store::postgres::probe(url).await {
        Ok(line) => Outcome::Ok(line),
        Err(e) => Outcome::Fail(
            e.to_string(),
            "start PostgreSQL or correct --database-url (CATALYST_DATABASE_URL)".into(),
        ),
    }
}

async fn nats(url: Option<&str>) -> Outcome {
    let Some(url) = url else {
        return Outcome::Skip("not configured (the event log is kept under --data-dir)".into());
    };
    match catalyst_spine::jetstream::probe(url).await {
        Ok(line) => Outcome::Ok(format!("{url}: {line}")),
        Err(e) => Outcome::Fail(
            e,
            "start nats-server with -js (JetStream) or correct --nats-url (CATALYST_NATS_URL)"
                .into(),
        ),
    }
}

/// A request error with its causes (`error sending request: connection refused`), without the URL.
fn cause(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

async fn registry(args: &ServeArgs) -> Outcome {
    let Some(registry) = &args.registry else {
        return Outcome::Skip(
            "not configured (Blueprint artifacts are kept under --data-dir/oci)".into(),
        );
    };
    let host = registry.split('/').next().unwrap_or(registry);
    let scheme = if args.registry_plain_http {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{host}/v2/");
    let fix = format!(
        "start the registry at {host} or correct --registry{}",
        if args.registry_plain_http {
            ""
        } else {
            " (add --registry-plain-http for a registry without TLS)"
        }
    );
    match http().get(&url).send().await {
        // 401 is a registry asking for credentials: it answers the distribution API.
        Ok(r) if r.status().is_success() || r.status() == 401 => Outcome::Ok(format!(
            "{url} answers the distribution API ({})",
            r.status()
        )),
        Ok(r) => Outcome::Fail(format!("{url} answered {}", r.status()), fix),
        Err(e) => Outcome::Fail(format!("{url}: {}", cause(e)), fix),
    }
}

async fn powerdns(pool: &crate::pool::PoolArgs) -> Outcome {
    let Some(base) = &pool.pdns_url else {
        return Outcome::Skip("not configured (pool names are kept, no DNS is published)".into());
    };
    let url = format!(
        "{}/api/v1/servers/{}",
        base.trim_end_matches('/'),
        pool.pdns_server_id
    );
    let mut req = http().get(&url);
    if let Some(key) = &pool.pdns_api_key {
        req = req.header("X-API-Key", key);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Outcome::Ok(format!("{url} answers")),
        Ok(r) if r.status() == 401 || r.status() == 403 => Outcome::Fail(
            format!("{url} refused the API key ({})", r.status()),
            "set --pdns-api-key (CATALYST_PDNS_API_KEY) to the server's api-key".into(),
        ),
        Ok(r) => Outcome::Fail(
            format!("{url} answered {}", r.status()),
            "check --pdns-server-id and that the API is enabled (api=yes, webserver=yes)".into(),
        ),
        Err(e) => Outcome::Fail(
            format!("{url}: {}", cause(e)),
            "start PowerDNS with its API enabled or correct --pdns-url".into(),
        ),
    }
}

async fn tofu(args: &ServeArgs) -> Outcome {
    let wanted = args.provisioner;
    if wanted == Some(ProvisionerKind::DryRun) {
        return Outcome::Skip("not needed (--provisioner dry-run)".into());
    }
    let Some(bin) = find_binary(&args.tofu_bin) else {
        let detail = format!("{} not found on PATH", args.tofu_bin.display());
        let fix = "install OpenTofu (https://opentofu.org) or set --tofu-bin".to_owned();
        return if wanted == Some(ProvisionerKind::Tofu) {
            Outcome::Fail(detail, fix)
        } else {
            Outcome::Warn(
                format!("{detail}: `serve` would fall back to dry runs (nothing applied)"),
                fix,
            )
        };
    };
    let version = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(&bin).arg("version").output(),
    )
    .await;
    match version {
        Ok(Ok(out)) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            Outcome::Ok(format!(
                "{}: {}",
                bin.display(),
                text.lines().next().unwrap_or("").trim()
            ))
        }
        Ok(Ok(out)) => Outcome::Fail(
            format!("`{} version` exited with {}", bin.display(), out.status),
            "reinstall OpenTofu or point --tofu-bin at a working binary".into(),
        ),
        Ok(Err(e)) => Outcome::Fail(
            format!("cannot run {}: {e}", bin.display()),
            "make --tofu-bin executable".into(),
        ),
        Err(_) => Outcome::Fail(
            format!("`{} version` did not finish within 10 s", bin.display()),
            "check the binary".into(),
        ),
    }
}

fn catalog(roots: &[std::path::PathBuf]) -> Outcome {
    if roots.is_empty() {
        return Outcome::Skip(
            "no --catalog (the marketplace is empty; installs need Blueprints)".into(),
        );
    }
    let missing: Vec<String> = roots
        .iter()
        .filter(|r| !r.is_dir())
        .map(|r| r.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Outcome::Fail(
            format!("not a directory: {}", missing.join(", ")),
            "point --catalog at a folder of Blueprints".into(),
        );
    }
    match catalyst_console::Catalog::load(roots) {
        Ok(c) if c.warnings().is_empty() => Outcome::Ok(format!("{} root(s) load", roots.len())),
        Ok(c) => Outcome::Warn(
            format!(
                "{} Blueprint(s) skipped: {}",
                c.warnings().len(),
                c.warnings()[0]
            ),
            "`catalyst blueprint lint <dir>` shows what is wrong".into(),
        ),
        Err(e) => Outcome::Fail(e.to_string(), "`catalyst blueprint lint <dir>`".into()),
    }
}
