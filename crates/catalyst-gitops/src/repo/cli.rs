//! The `git` CLI backend: bare repositories driven through the plumbing (`hash-object`,
//! `update-index` on a private index, `write-tree`, `commit-tree`, `update-ref --stdin`), about
//! ten processes per repository write. Kept only to compare against the in-process backend
//! ([`super::gix`]) in `benches/install.rs` ([`super::Backend::Cli`]); nothing here spawns a
//! shell, and paths and refs come from validated names.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::{conflict, Actor, Changes, Prepared, EMPTY_TREE, ZERO};
use crate::GitopsError;

/// A repository seen through the `git` CLI.
pub(super) struct Cli<'a> {
    pub(super) path: &'a Path,
}

fn git_err(what: &str, out: &std::process::Output) -> GitopsError {
    GitopsError::Git(format!(
        "git {what} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

impl Cli<'_> {
    /// Creates the bare repository if it does not exist (HEAD → `main`).
    pub(super) fn init(&self) -> Result<(), GitopsError> {
        let out = Command::new("git")
            .args(["init", "--bare", "--quiet", "--initial-branch=main"])
            .arg(self.path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()?;
        if !out.status.success() {
            return Err(git_err("init", &out));
        }
        super::configure(self.path)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("--git-dir")
            .arg(self.path)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>, GitopsError> {
        self.run_env(args, input, &[])
    }

    fn run_env(
        &self,
        args: &[&str],
        input: Option<&[u8]>,
        env: &[(&str, &str)],
    ) -> Result<Vec<u8>, GitopsError> {
        let mut c = self.cmd();
        c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        if input.is_some() {
            c.stdin(Stdio::piped());
        }
        let mut child = c.spawn()?;
        if let Some(bytes) = input {
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(bytes)?;
            }
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(git_err(args.first().copied().unwrap_or(""), &out));
        }
        Ok(out.stdout)
    }

    fn run_text(&self, args: &[&str]) -> Result<String, GitopsError> {
        Ok(String::from_utf8_lossy(&self.run(args, None)?)
            .trim()
            .to_string())
    }

    /// The commit `branch` points at, if the branch exists.
    pub(super) fn head(&self, branch: &str) -> Result<Option<String>, GitopsError> {
        let out = self
            .cmd()
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}^{{commit}}"))
            .output()?;
        if !out.status.success() {
            return Ok(None);
        }
        Ok(Some(
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ))
    }

    /// Every branch with its commit.
    pub(super) fn branches(&self) -> Result<BTreeMap<String, String>, GitopsError> {
        let text = self.run_text(&[
            "for-each-ref",
            "--format=%(refname:strip=2) %(objectname)",
            "refs/heads/",
        ])?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(b, c)| (b.to_string(), c.to_string()))
            .collect())
    }

    /// The content of `path` at `rev`, if it exists there.
    pub(super) fn read(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>, GitopsError> {
        let out = self
            .cmd()
            .args(["cat-file", "blob"])
            .arg(format!("{rev}:{path}"))
            .output()?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// Every file path at `rev` (recursively), optionally under `prefix`.
    pub(super) fn list(&self, rev: &str, prefix: Option<&str>) -> Result<Vec<String>, GitopsError> {
        let mut args = vec!["ls-tree", "-r", "--name-only", "-z", rev];
        if let Some(p) = prefix {
            args.push("--");
            args.push(p);
        }
        let out = self.run(&args, None)?;
        Ok(out
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect())
    }

    /// Commit time (Unix seconds) of `rev`.
    pub(super) fn commit_time(&self, rev: &str) -> Result<i64, GitopsError> {
        self.run_text(&["show", "-s", "--format=%ct", rev])?
            .parse()
            .map_err(|_| GitopsError::Git(format!("cannot read the time of {rev}")))
    }

    /// True when `ancestor` is `rev` or one of its ancestors.
    pub(super) fn is_ancestor(&self, ancestor: &str, rev: &str) -> Result<bool, GitopsError> {
        let st = self
            .cmd()
            .args(["merge-base", "--is-ancestor", ancestor, rev])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(st.success())
    }

    /// Resolves `rev` to a full commit id, if it names a commit here.
    pub(super) fn resolve_commit(&self, rev: &str) -> Result<Option<String>, GitopsError> {
        let out = self
            .cmd()
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("{rev}^{{commit}}"))
            .output()?;
        Ok(out
            .status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
    }

    /// The tree of `rev`.
    pub(super) fn tree_of(&self, rev: &str) -> Result<String, GitopsError> {
        self.run_text(&["rev-parse", &format!("{rev}^{{tree}}")])
    }

    /// Writes the objects of a commit of `changes` on top of `parent` (no ref moves yet).
    /// `tree` overrides the tree (used by rollback).
    pub(super) fn prepare(
        &self,
        branch: &str,
        parent: Option<&str>,
        changes: &Changes,
        tree: Option<&str>,
        actor: &Actor,
        message: &str,
    ) -> Result<Prepared, GitopsError> {
        let tree = match tree {
            Some(t) => t.to_string(),
            None => self.write_tree(parent, changes)?,
        };
        let unchanged = match parent {
            Some(p) => self.tree_of(p)? == tree,
            None => false,
        };
        let mut args = vec!["commit-tree", tree.as_str()];
        if let Some(p) = parent {
            args.push("-p");
            args.push(p);
        }
        let env = [
            ("GIT_AUTHOR_NAME", actor.name.as_str()),
            ("GIT_AUTHOR_EMAIL", actor.email.as_str()),
            ("GIT_COMMITTER_NAME", "Catalyst"),
            ("GIT_COMMITTER_EMAIL", "catalyst@localhost"),
        ];
        let new = String::from_utf8_lossy(&self.run_env(&args, Some(message.as_bytes()), &env)?)
            .trim()
            .to_string();
        Ok(Prepared {
            branch: branch.to_string(),
            old: parent.map(str::to_string),
            new,
            unchanged,
        })
    }

    fn write_tree(&self, parent: Option<&str>, changes: &Changes) -> Result<String, GitopsError> {
        // A private index file per call: concurrent writers never share one.
        let nonce = hex::encode(rand::random::<[u8; 8]>());
        let index = self.path.join(format!("catalyst-index-{nonce}"));
        let staging = self.path.join(format!("catalyst-blobs-{nonce}"));
        let index_s = index.to_string_lossy().into_owned();
        let env = [("GIT_INDEX_FILE", index_s.as_str())];
        let result = (|| {
            match parent {
                Some(p) if !changes.replace_all => {
                    self.run_env(&["read-tree", p], None, &env)?;
                }
                _ => {
                    self.run_env(&["read-tree", "--empty"], None, &env)?;
                }
            }
            // All blobs in one `hash-object --stdin-paths` (one process, not one per file).
            let writes: Vec<(&String, &Vec<u8>)> = changes
                .files
                .iter()
                .filter_map(|(p, c)| c.as_ref().map(|c| (p, c)))
                .collect();
            let ids = self.hash_blobs(&staging, &writes)?;
            let mut info = Vec::new();
            for ((path, _), id) in writes.iter().zip(&ids) {
                info.extend_from_slice(format!("100644 {id}\t{path}\0").as_bytes());
            }
            for (path, content) in &changes.files {
                if content.is_none() {
                    info.extend_from_slice(format!("0 {ZERO}\t{path}\0").as_bytes());
                }
            }
            self.run_env(&["update-index", "-z", "--index-info"], Some(&info), &env)?;
            let tree = String::from_utf8_lossy(&self.run_env(&["write-tree"], None, &env)?)
                .trim()
                .to_string();
            if tree == EMPTY_TREE {
                // `write-tree` does not store the empty tree (Git knows it without the object),
                // but a commit of it (an uninstall's) then fails `git fsck` ("missing tree")
                // and clients that do not know it cannot check the commit out.
                self.run(&["hash-object", "-w", "-t", "tree", "--stdin"], Some(b""))?;
            }
            Ok(tree)
        })();
        let _ = std::fs::remove_file(&index);
        let _ = std::fs::remove_dir_all(&staging);
        result
    }

    fn hash_blobs(
        &self,
        staging: &Path,
        files: &[(&String, &Vec<u8>)],
    ) -> Result<Vec<String>, GitopsError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        std::fs::create_dir_all(staging)?;
        let mut list = String::new();
        for (i, (_, bytes)) in files.iter().enumerate() {
            let p = staging.join(i.to_string());
            std::fs::write(&p, bytes)?;
            list.push_str(&p.to_string_lossy());
            list.push('\n');
        }
        let out = self.run(
            &["hash-object", "-w", "--no-filters", "--stdin-paths"],
            Some(list.as_bytes()),
        )?;
        let ids: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect();
        if ids.len() != files.len() {
            return Err(GitopsError::Git(
                "git hash-object returned fewer ids than files".into(),
            ));
        }
        Ok(ids)
    }

    /// Moves every prepared branch in one ref transaction: all move or none does. A branch
    /// that moved since it was read is [`GitopsError::Conflict`].
    pub(super) fn update_refs(
        &self,
        prepared: &[Prepared],
        reason: &str,
    ) -> Result<(), GitopsError> {
        let mut script = String::from("start\n");
        for p in prepared {
            script.push_str(&format!(
                "update refs/heads/{} {} {}\n",
                p.branch,
                p.new,
                p.old.as_deref().unwrap_or(ZERO)
            ));
        }
        script.push_str("prepare\ncommit\n");
        let mut c = self.cmd();
        c.args(["update-ref", "--stdin", "-m", reason])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("but expected")
            || stderr.contains("reference already exists")
            || stderr.contains("unable to resolve reference")
            || stderr.contains("cannot lock ref")
        {
            return Err(conflict(self.path));
        }
        Err(git_err("update-ref", &out))
    }

    /// Restores branches to their previous commits (undoing [`Repo::update_refs`]), best effort.
    pub(super) fn undo_refs(&self, prepared: &[Prepared]) -> Result<(), GitopsError> {
        let mut script = String::from("start\n");
        for p in prepared {
            match &p.old {
                Some(old) => {
                    script.push_str(&format!("update refs/heads/{} {old} {}\n", p.branch, p.new))
                }
                None => script.push_str(&format!("delete refs/heads/{} {}\n", p.branch, p.new)),
            }
        }
        script.push_str("prepare\ncommit\n");
        self.run(
            &["update-ref", "--stdin", "-m", "catalyst: undo"],
            Some(script.as_bytes()),
        )
        .map(|_| ())
    }

    /// A unified diff between two commits (`None`: the empty tree), with `--stat` first.
    pub(super) fn diff(&self, old: Option<&str>, new: &str) -> Result<String, GitopsError> {
        let old = old.unwrap_or(EMPTY_TREE);
        let out = self.run(
            &[
                "diff-tree",
                "-p",
                "--no-color",
                "--no-renames",
                "--full-index",
                old,
                new,
            ],
            None,
        )?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// The commit message and author of `rev` (`%an <%ae>\n\n%B`).
    pub(super) fn show(&self, rev: &str) -> Result<String, GitopsError> {
        self.run_text(&["show", "-s", "--format=%an <%ae>%n%P%n%B", rev])
    }

    /// Commit ids on `branch`, newest first.
    pub(super) fn log(&self, branch: &str) -> Result<Vec<String>, GitopsError> {
        Ok(self
            .run_text(&["rev-list", &format!("refs/heads/{branch}")])?
            .lines()
            .map(str::to_string)
            .collect())
    }
}
