//! The Hetzner OpenTofu module, built into the binary so `catalyst serve` needs no checkout.
use std::io::Write;
use std::path::{Path, PathBuf};

/// Every file of `infra/hetzner/`, by name.
pub const FILES: &[(&str, &str)] = &[
    (
        "versions.tf",
        include_str!("../../../infra/hetzner/versions.tf"),
    ),
    (
        "variables.tf",
        include_str!("../../../infra/hetzner/variables.tf"),
    ),
    ("main.tf", include_str!("../../../infra/hetzner/main.tf")),
    (
        "cloudinit.tf",
        include_str!("../../../infra/hetzner/cloudinit.tf"),
    ),
    (
        "outputs.tf",
        include_str!("../../../infra/hetzner/outputs.tf"),
    ),
    (
        "cloudinit-control-plane.tftpl",
        include_str!("../../../infra/hetzner/cloudinit-control-plane.tftpl"),
    ),
    (
        "cloudinit-worker.tftpl",
        include_str!("../../../infra/hetzner/cloudinit-worker.tftpl"),
    ),
];

/// Writes the module into `dir` (replacing what is there) and returns `dir`.
pub fn materialize(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in FILES {
        let tmp = dir.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_module_matches_the_repository() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/hetzner");
        let mut on_disk: Vec<String> = std::fs::read_dir(&repo)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tf") || n.ends_with(".tftpl"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "update FILES when the module changes");
    }

    #[test]
    fn materialize_writes_every_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = materialize(&dir.path().join("m")).unwrap();
        for (name, text) in FILES {
            assert_eq!(std::fs::read_to_string(out.join(name)).unwrap(), *text);
        }
    }
}
