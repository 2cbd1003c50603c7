//! The CLI as a Unix tool: a closed stdout ends it quietly with status 141 (never a panic), logs
//! written to a file carry no colour codes, an error names each cause once, and a bad value in a
//! `--config` file names the file and the key.
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{repo, Catalyst};

/// The status a shell reports for a process that met a closed pipe (128 + SIGPIPE).
const BROKEN_PIPE: i32 = 141;

/// Runs `catalyst ARGS…` with stdout a pipe whose reader is already gone (as `| head -1` leaves
/// it once `head` has its line): every write fails with EPIPE, deterministically.
fn into_closed_pipe(args: &[&str], env: &[(&str, &str)]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_catalyst"));
    cmd.args(args)
        .current_dir(repo())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .env_remove("CATALYST_CATALOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn assert_quiet_broken_pipe(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(BROKEN_PIPE), "{what}: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{what}: {stderr}");
}

#[test]
fn a_closed_stdout_ends_the_cli_quietly() {
    for args in [
        &["blueprint", "lint", "examples/catalog", "-o", "json"][..],
        &["blueprint", "lint", "examples/catalog"],
        &["blueprint", "list", "--catalog", "examples/catalog"],
        &[
            "blueprint",
            "resolve",
            "bp-outline",
            "--catalog",
            "examples/catalog",
        ],
        &["--help"],
    ] {
        let out = into_closed_pipe(args, &[]);
        assert_quiet_broken_pipe(&out, &args.join(" "));
    }
}

#[test]
fn each_cause_is_named_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(["blueprint", "lint", "/nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(["blueprint", "resolve", "bp-outline", "--catalog", "/nope"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_bad_config_value_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalyst.yaml");
    std::fs::write(&file, "provisioner: dry-run\nlisten: notaport\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&file)
        .env_remove("CATALYST_LISTEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "config file {}: listen: invalid value \"notaport\"",
            file.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("--listen"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the settings are known to be good"
    );
}

fn has_escape_codes(path: &Path) -> bool {
    std::fs::read(path).unwrap().contains(&0x1b)
}

#[tokio::test]
async fn watch_into_a_closed_pipe_and_logs_without_colour() {
    let dir = tempfile::tempdir().unwrap();
    // Even when the environment asks for colour, a log that goes to a file has none.
    let c = Catalyst::start(
        dir.path(),
        &["--provisioner", "dry-run"],
        &[
            ("CLICOLOR_FORCE", "1".into()),
            ("TERM", "xterm-256color".into()),
        ],
    );
    let (status, created) = c
        .post_json(
            "/api/v1/deployments",
            &support::deployment_request("pipe", Some("hz-token")),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let env = [
        ("CATALYST_SERVER", c.base.as_str()),
        ("CATALYST_TOKEN", c.admin.as_str()),
    ];
    let out = into_closed_pipe(&["deployment", "watch", &id], &env);
    assert_quiet_broken_pipe(&out, "deployment watch");
    let out = into_closed_pipe(&["deployment", "list"], &env);
    assert_quiet_broken_pipe(&out, "deployment list");
    assert!(
        !has_escape_codes(&c.log_path),
        "{}",
        std::fs::read_to_string(&c.log_path).unwrap()
    );
}
