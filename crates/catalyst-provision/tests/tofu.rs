//! The OpenTofu provisioner driven against the stand-in `tofu` (tests/standin/tofu).
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use catalyst_core::{DeploymentStatus, Level, ResourceState};
use catalyst_provision::render::TFVARS_FILE;
use catalyst_provision::tofu::{phase, TofuProvisioner};
use catalyst_provision::{ProvisionError, Provisioner};
use common::*;
use tokio_util::sync::CancellationToken;

/// Writes the stand-in's configuration for runs under `work_root`.
fn configure(work_root: &Path, lines: &[(&str, String)]) {
    std::fs::create_dir_all(work_root).unwrap();
    let text: String = lines.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
    std::fs::write(work_root.join("standin-tofu.env"), text).unwrap();
}

fn provisioner(work_root: &Path) -> TofuProvisioner {
    TofuProvisioner::new(standin(), settings(work_root))
}

/// True while `pid` is a process that is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            !matches!(state, Some("Z" | "X") | None)
        }
        Err(_) => false,
    }
}

async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn success_reports_statuses_progress_and_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("invocations.log");
    configure(
        tmp.path(),
        &[("STANDIN_TOFU_LOG", log.display().to_string())],
    );
    let prov = provisioner(tmp.path());
    assert_eq!(prov.name(), "tofu");
    assert!(!prov.dry_run());

    let (result, messages) = run(&prov, job(), CancellationToken::new(), 16).await;
    let output = result.expect("provision succeeds");
    assert_eq!(output.control_plane_ip.as_deref(), Some("203.0.113.10"));
    assert_eq!(output.load_balancer_ip.as_deref(), Some("203.0.113.20"));

    assert_eq!(
        statuses(&messages),
        [
            DeploymentStatus::Provisioning,
            DeploymentStatus::TofuApplying,
            DeploymentStatus::FluxBootstrapping
        ]
    );
    // The status changes sit between the right announcements.
    let order: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            catalyst_provision::SinkMessage::Status(s) => Some(s.as_str().to_owned()),
            catalyst_provision::SinkMessage::Event(e) if e.phase != phase::TOFU => {
                Some(e.phase.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "provisioning",
            "tofu-init",
            "tofu-applying",
            "tofu-plan",
            "tofu-apply",
            "tofu-output",
            "flux-bootstrapping",
            "flux-bootstrap"
        ]
    );

    let events = events(&messages);
    let init = events.iter().find(|e| e.phase == phase::TOFU_INIT).unwrap();
    assert_eq!(init.message, "Initialising OpenTofu working directory");
    let flux = events.last().unwrap();
    assert_eq!(flux.phase, phase::FLUX_BOOTSTRAP);
    assert!(flux.message.contains("omantel.omani.works"));

    // Per-resource progress, from apply_start / apply_complete.
    let network: Vec<_> = events
        .iter()
        .filter_map(|e| e.resource.as_ref())
        .filter(|r| r.address == "hcloud_network.main")
        .collect();
    assert_eq!(network.len(), 2, "{network:?}");
    assert_eq!(network[0].state, ResourceState::Applying);
    assert_eq!(network[0].resource_type, "hcloud_network");
    assert_eq!(network[0].action, "create");
    assert_eq!(network[1].state, ResourceState::Applied);
    assert_eq!(network[1].elapsed_seconds, Some(2));
    assert!(events.iter().any(|e| e
        .resource
        .as_ref()
        .is_some_and(|r| r.address == "hcloud_server.control_plane[0]")));
    // Machine-readable lines keep their message; stderr lines arrive as warnings.
    assert!(events
        .iter()
        .any(|e| e.phase == phase::TOFU && e.message.starts_with("Apply complete!")));
    let stderr: Vec<_> = events
        .iter()
        .filter(|e| e.message.starts_with("standin-tofu: running"))
        .collect();
    assert_eq!(stderr.len(), 4, "every command streams its stderr");
    assert!(stderr.iter().all(|e| e.level == Level::Warn));

    // The commands, in order, with the machine-readable flags.
    let invocations = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        invocations.lines().collect::<Vec<_>>(),
        [
            "init -input=false -no-color -json",
            "plan -input=false -no-color -json",
            "apply -input=false -no-color -json -auto-approve",
            "output -json -no-color",
        ]
    );

    // Keyed by id, private, and the token is in no file and no event.
    let workdir = tmp.path().join(ID);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&workdir), 0o700);
    assert_eq!(mode(&workdir.join(TFVARS_FILE)), 0o600);
    assert_eq!(mode(&workdir.join("main.tf")), 0o600);
    assert_absent_from_files(tmp.path(), TOKEN);
    for e in &events {
        assert!(!serde_json::to_string(e).unwrap().contains(TOKEN));
    }
}

#[tokio::test]
async fn a_retry_reuses_the_working_directory() {
    let tmp = tempfile::tempdir().unwrap();
    configure(tmp.path(), &[]);
    let prov = provisioner(tmp.path());
    for attempt in 1..=2 {
        let mut job = job();
        job.attempt = attempt;
        let (result, _) = run(&prov, job, CancellationToken::new(), 16).await;
        result.expect("provision succeeds");
    }
    assert!(tmp.path().join(ID).join("terraform.tfstate").is_file());
}

#[tokio::test]
async fn failure_at_plan_is_a_step_error_with_the_diagnostic() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("invocations.log");
    configure(
        tmp.path(),
        &[
            ("STANDIN_TOFU_FAIL_AT", "plan".into()),
            ("STANDIN_TOFU_LOG", log.display().to_string()),
        ],
    );
    let (result, messages) = run(
        &provisioner(tmp.path()),
        job(),
        CancellationToken::new(),
        16,
    )
    .await;
    match result {
        Err(ProvisionError::Step { step, message }) => {
            assert_eq!(step, "tofu plan");
            assert!(message.starts_with("exited with status 1: "), "{message}");
            assert!(
                message.contains("Stand-in failure during plan")
                    && message
                        .contains("STANDIN_TOFU_FAIL_AT=plan told the stand-in to fail here."),
                "{message}"
            );
        }
        other => panic!("expected a step error, got {other:?}"),
    }
    assert_eq!(
        statuses(&messages),
        [
            DeploymentStatus::Provisioning,
            DeploymentStatus::TofuApplying
        ]
    );
    let diag = events(&messages)
        .into_iter()
        .find(|e| e.level == Level::Error)
        .expect("the diagnostic is an error event");
    assert_eq!(diag.phase, phase::TOFU);
    assert_eq!(
        diag.message,
        "Error: Stand-in failure during plan — STANDIN_TOFU_FAIL_AT=plan told the stand-in to fail here. (main.tf:12)"
    );
    let invocations = std::fs::read_to_string(&log).unwrap();
    assert!(
        !invocations.contains("apply"),
        "apply must not run after a failed plan"
    );
}

#[tokio::test]
async fn a_missing_binary_is_a_step_error() {
    let tmp = tempfile::tempdir().unwrap();
    let prov = TofuProvisioner::new(tmp.path().join("no-such-tofu"), settings(tmp.path()));
    let (result, _) = run(&prov, job(), CancellationToken::new(), 16).await;
    match result {
        Err(ProvisionError::Step { step, message }) => {
            assert_eq!(step, "tofu init");
            assert!(message.contains("could not start"), "{message}");
        }
        other => panic!("expected a step error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_configuration_fails_staging() {
    let tmp = tempfile::tempdir().unwrap();
    let mut settings = settings(tmp.path());
    settings.module_dir = tmp.path().join("empty");
    std::fs::create_dir_all(&settings.module_dir).unwrap();
    let prov = TofuProvisioner::new(standin(), settings);
    let (result, messages) = run(&prov, job(), CancellationToken::new(), 16).await;
    match result {
        Err(ProvisionError::Step { step, message }) => {
            assert_eq!(step, "stage tofu module");
            assert!(message.contains("no *.tf files"), "{message}");
        }
        other => panic!("expected a step error, got {other:?}"),
    }
    assert_eq!(statuses(&messages), [DeploymentStatus::Provisioning]);
}

async fn cancel_while_hanging(ignore_term: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("sleep.pid");
    let mut config = vec![
        ("STANDIN_TOFU_HANG_AT", "apply".to_owned()),
        ("STANDIN_TOFU_PIDFILE", pidfile.display().to_string()),
    ];
    if ignore_term {
        config.push(("STANDIN_TOFU_IGNORE_TERM", "1".into()));
    }
    configure(tmp.path(), &config);
    let prov = provisioner(tmp.path()).with_kill_grace(Duration::from_millis(800));
    let cancel = CancellationToken::new();
    let running = {
        let cancel = cancel.clone();
        tokio::spawn(async move { run(&prov, job(), cancel, 16).await })
    };

    let pid: i32 = wait_for_file(&pidfile).await.trim().parse().unwrap();
    assert!(alive(pid), "the stand-in's sleep is running");
    let cancelled_at = Instant::now();
    cancel.cancel();
    let (result, messages) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("cancellation is prompt")
        .unwrap();
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(5),
        "took {:?}",
        cancelled_at.elapsed()
    );
    assert!(
        matches!(result, Err(ProvisionError::Cancelled)),
        "{result:?}"
    );
    assert!(
        !alive(pid),
        "the grandchild sleep {pid} was killed with its group"
    );
    assert!(events(&messages)
        .iter()
        .any(|e| e.message == "Stand-in hanging during apply"));
    assert!(!statuses(&messages).contains(&DeploymentStatus::FluxBootstrapping));
}

#[tokio::test]
async fn cancel_kills_the_process_group() {
    cancel_while_hanging(false).await;
}

#[tokio::test]
async fn cancel_escalates_to_sigkill() {
    cancel_while_hanging(true).await;
}

#[tokio::test]
async fn a_cancelled_token_stops_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("invocations.log");
    configure(
        tmp.path(),
        &[("STANDIN_TOFU_LOG", log.display().to_string())],
    );
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (result, _) = run(&provisioner(tmp.path()), job(), cancel, 16).await;
    assert!(matches!(result, Err(ProvisionError::Cancelled)));
    assert!(!log.exists(), "no tofu process was started");
}

#[tokio::test]
async fn every_output_line_arrives_once_in_order() {
    const N: usize = 5000;
    let tmp = tempfile::tempdir().unwrap();
    configure(tmp.path(), &[("STANDIN_TOFU_APPLY_LINES", N.to_string())]);
    // A tiny channel: the readers must wait for the consumer, never drop.
    let (result, messages) =
        run(&provisioner(tmp.path()), job(), CancellationToken::new(), 2).await;
    result.expect("provision succeeds");
    let progress: Vec<usize> = events(&messages)
        .iter()
        .filter_map(|e| {
            let rest = e.message.split_once("[progress ")?.1;
            rest.split_once('/')?.0.parse().ok()
        })
        .collect();
    assert_eq!(progress, (1..=N).collect::<Vec<_>>());
    // The last lines before exit made it too.
    let events = events(&messages);
    let tail: Vec<_> = events
        .iter()
        .filter(|e| e.phase == phase::TOFU)
        .map(|e| e.message.as_str())
        .filter(|m| m.starts_with("Apply complete!") || m.starts_with("Outputs:"))
        .collect();
    assert_eq!(tail.len(), 2);
}
