//! `catalyst sovereign render` through the real binary: it writes the bootstrap tree of
//! `catalog/bootstrap/` in the bootstrap order, and `kubectl kustomize` builds the tree and every
//! component's folder.

use std::path::Path;
use std::process::Command;

fn render(args: &[&str], out: &Path) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_catalyst"))
        .current_dir(catalyst_testkit::repo_root())
        .args(["sovereign", "render"])
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn sovereign_render_writes_a_tree_kubectl_kustomize_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tree");
    let (code, stdout, err) = render(&["--fqdn", "omantel.omani.works", "--region", "fsn1"], &out);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.contains("clusters/omantel.omani.works/"), "{stdout}");
    let root = std::fs::read_to_string(out.join("kustomization.yaml")).unwrap();
    let listed: Vec<&str> = root.lines().filter_map(|l| l.strip_prefix("- ")).collect();
    let expected: Vec<String> = catalyst_testkit::BOOTSTRAP_ORDER
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{:02}-{n}.yaml", i + 1))
        .collect();
    assert_eq!(listed, expected);
    let hr = std::fs::read_to_string(out.join("10-gitea/helmrelease.yaml")).unwrap();
    assert!(hr.contains("sovereignFQDN: omantel.omani.works"), "{hr}");

    // A second render into the same folder is refused rather than mixed with the first.
    let (code, _, err) = render(&["--fqdn", "a.example.com", "--region", "fsn1"], &out);
    assert_eq!(code, 1);
    assert!(err.contains("is not empty"), "{err}");
    // An unknown component is refused, naming it.
    let (code, _, err) = render(
        &[
            "--fqdn",
            "a.example.com",
            "--region",
            "fsn1",
            "--components",
            "nope",
        ],
        &tmp.path().join("other"),
    );
    assert_eq!(code, 1);
    assert!(err.contains("bp-nope"), "{err}");

    let Some(kubectl) = catalyst_testkit::kubectl() else {
        return;
    };
    let build = |dir: &Path| {
        let o = Command::new(&kubectl)
            .arg("kustomize")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "kubectl kustomize {}: {}",
            dir.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let built = build(&out);
    assert_eq!(built.split("\n---\n").count(), 12, "{built}");
    for folder in listed {
        let built = build(&out.join(folder.trim_end_matches(".yaml")));
        assert!(
            built.contains("kind: OCIRepository") && built.contains("kind: HelmRelease"),
            "{folder}: {built}"
        );
    }
}
