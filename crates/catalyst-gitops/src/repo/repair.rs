//! What recovery writes again from a journal that carries its call's objects, when a power
//! loss took writes that were not yet durable (they are fsynced in the background after the
//! call is answered, see [`super::Flusher`]): an object file emptied or gone, a ref file left
//! empty or with garbage, a reflog with a torn last line. Each repair is durable when it
//! returns. Only for the one process that writes the repositories, before it writes.
use std::path::Path;

use crate::GitopsError;

use super::{remove_if_there, sync_paths, write_atomic, Repo};

/// Writes the object file `path` again unless it holds exactly `data`; read-only, as git
/// keeps objects.
pub(crate) fn restore_object(path: &Path, data: &[u8]) -> Result<(), GitopsError> {
    use std::os::unix::fs::PermissionsExt as _;
    if std::fs::read(path).is_ok_and(|b| b == data) {
        return Ok(());
    }
    let Some(dir) = path.parent() else {
        return Err(GitopsError::Git(format!(
            "{} has no directory",
            path.display()
        )));
    };
    let new_dir = !dir.is_dir();
    std::fs::create_dir_all(dir)?;
    remove_if_there(path)?;
    write_atomic(path, data)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444))?;
    if new_dir {
        if let Some(up) = dir.parent() {
            sync_paths(&[up.to_path_buf()])?;
        }
    }
    tracing::warn!(object = %path.display(), "Wrote an object a power loss took again from its call's journal.");
    Ok(())
}

/// True when `text` is what a loose ref file holds: an object id or a symbolic ref.
fn is_ref(text: &[u8]) -> bool {
    let t = text.strip_suffix(b"\n").unwrap_or(text);
    t.starts_with(b"ref: ")
        || (t.len() == 40 && t.iter().all(|b| b.is_ascii_hexdigit()))
        || (t.len() == 64 && t.iter().all(|b| b.is_ascii_hexdigit()))
}

/// Removes the ref file of `branch` when it holds no ref (a power loss emptied it), and drops a
/// torn tail from its reflog; true when the ref file was removed (the branch then reads as
/// its packed value, or as missing).
pub(crate) fn repair_ref(repo: &Repo, branch: &str) -> Result<bool, GitopsError> {
    let file = repo.path().join("refs/heads").join(branch);
    let removed = match std::fs::read(&file) {
        Ok(text) if !is_ref(&text) => {
            std::fs::remove_file(&file)?;
            if let Some(dir) = file.parent() {
                sync_paths(&[dir.to_path_buf()])?;
            }
            tracing::warn!(r#ref = %file.display(), "Removed a ref file a power loss emptied; its call's journal sets it again.");
            true
        }
        _ => false,
    };
    let log = repo.path().join("logs/refs/heads").join(branch);
    if let Ok(text) = std::fs::read(&log) {
        let kept = whole_lines(&text);
        if kept.len() != text.len() {
            write_atomic(&log, &text[..kept.len()])?;
            tracing::warn!(reflog = %log.display(), "Dropped a reflog's torn tail.");
        }
    }
    Ok(removed)
}

/// The longest prefix of a reflog made of whole entries (`<old> <new> <who> <when>\t<why>\n`).
fn whole_lines(text: &[u8]) -> &[u8] {
    let mut end = 0;
    for line in text.split_inclusive(|b| *b == b'\n') {
        let ok = line.ends_with(b"\n")
            && line.len() > 82
            && line[..40].iter().all(u8::is_ascii_hexdigit)
            && line[40] == b' '
            && line[41..81].iter().all(u8::is_ascii_hexdigit)
            && line[81] == b' ';
        if !ok {
            break;
        }
        end += line.len();
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_reflog_lines_are_told_from_garbage() {
        assert!(is_ref(b"0123456789abcdef0123456789abcdef01234567\n"));
        assert!(is_ref(b"ref: refs/heads/main\n"));
        assert!(!is_ref(b""));
        assert!(!is_ref(b"\0\0\0\0"));
        assert!(!is_ref(b"0123456789abcdef\n"));
        let line = format!("{} {} A <a@b> 1 +0000\tx\n", "a".repeat(40), "b".repeat(40));
        let two = format!("{line}{line}");
        assert_eq!(whole_lines(two.as_bytes()).len(), two.len());
        let torn = format!("{line}{}", &line[..50]);
        assert_eq!(whole_lines(torn.as_bytes()).len(), line.len());
        let zeros = [line.as_bytes(), &[0u8; 30]].concat();
        assert_eq!(whole_lines(&zeros).len(), line.len());
    }
}
