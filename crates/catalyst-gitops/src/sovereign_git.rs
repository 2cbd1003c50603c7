//! The system repositories of the Sovereigns this Catalyst provisions:
//! `system/sovereign-<deployment id>`, one per deployment (so a read token can be scoped to one
//! of them), holding `clusters/<fqdn>/`, the bootstrap tree [`crate::bootstrap::render`] makes.
//! Flux on the new Sovereign reconciles that folder from Catalyst's smart HTTP, so the cluster
//! is reproducible from Catalyst's own Git alone.
//!
//! A commit replaces the whole tree (the wizard's choice is the only input); rendering the same
//! choice again writes nothing. The ref update is compare-and-swap: two writers of the same
//! deployment (a retry racing another replica) cannot lose each other's commit, the later one
//! renders again on top.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use catalyst_blueprint::Catalog;

use crate::bootstrap::{self, BootstrapSettings, SovereignChoice};
use crate::repo::{message, Actor, Changes, Repo};
use crate::GitopsError;

/// The branch Flux follows.
pub const BRANCH: &str = "main";

/// What a commit of a bootstrap tree left in Git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapCommit {
    /// `system/sovereign-<id>`.
    pub repo: String,
    /// The branch ([`BRANCH`]).
    pub branch: String,
    /// The commit the branch is at.
    pub commit: String,
    /// The folder Flux applies, `./clusters/<fqdn>`.
    pub path: String,
    /// False when the tree was already there (nothing was written).
    pub changed: bool,
}

/// The committed tree of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapTree {
    /// `system/sovereign-<id>`.
    pub repo: String,
    /// The commit read.
    pub commit: String,
    /// Every file, path relative to the repository root (`clusters/<fqdn>/…`).
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The `system/sovereign-*` repositories under a Git root (`<data-dir>/git`).
#[derive(Debug, Clone)]
pub struct SovereignRepos {
    root: PathBuf,
    catalog: Arc<Catalog>,
    settings: BootstrapSettings,
}

/// `sovereign-<id>` for a deployment id made of lower-case letters, digits and hyphens.
pub fn repo_name(id: &str) -> Result<String, GitopsError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(format!("sovereign-{id}"))
    } else {
        Err(GitopsError::Invalid(format!(
            "{id:?} is not a deployment id"
        )))
    }
}

impl SovereignRepos {
    /// The repositories under `root` (the same root as [`crate::Sovereign`]'s), rendering from
    /// the bootstrap `catalog`.
    pub fn new(
        root: impl Into<PathBuf>,
        catalog: Arc<Catalog>,
        settings: BootstrapSettings,
    ) -> Self {
        SovereignRepos {
            root: root.into(),
            catalog,
            settings,
        }
    }

    /// The bootstrap catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The repository of deployment `id` (it may not exist yet).
    pub fn repo(&self, id: &str) -> Result<Repo, GitopsError> {
        Ok(Repo::at(
            self.root
                .join("system")
                .join(format!("{}.git", repo_name(id)?)),
        ))
    }

    /// The tree `choice` makes (paths relative to `clusters/<fqdn>/`), written nowhere: a
    /// component the catalog lacks, or values its configSchema refuses, fail here.
    pub fn render(
        &self,
        choice: &SovereignChoice,
    ) -> Result<BTreeMap<String, Vec<u8>>, GitopsError> {
        bootstrap::render(&self.catalog, choice, &self.settings)
    }

    /// Renders `choice` and commits it as `clusters/<fqdn>/` (the whole tree, replacing what
    /// was there) to `system/sovereign-<id>`, creating the repository.
    pub fn commit(
        &self,
        id: &str,
        choice: &SovereignChoice,
        actor: &Actor,
        request_id: &str,
    ) -> Result<BootstrapCommit, GitopsError> {
        let files = self.render(choice)?;
        let dir = format!("clusters/{}", choice.fqdn);
        let mut changes = Changes {
            replace_all: true,
            ..Changes::default()
        };
        for (path, bytes) in files {
            changes.put(format!("{dir}/{path}"), bytes);
        }
        let repo = self.repo(id)?;
        repo.init()?;
        let subject = format!("Bootstrap tree of {} (deployment {id})", choice.fqdn);
        let msg = message(&subject, request_id, actor);
        // Compare-and-swap; a writer that moved the branch meanwhile makes this one render on
        // top of its commit (the tree is the same function of the choice either way).
        let mut attempts = 0;
        loop {
            let head = repo.head(BRANCH)?;
            let p = repo.prepare(BRANCH, head.as_deref(), &changes, None, actor, &msg)?;
            let done = |commit: String, changed| BootstrapCommit {
                repo: format!("system/{}", repo_name(id).unwrap_or_default()),
                branch: BRANCH.to_owned(),
                commit,
                path: format!("./{dir}"),
                changed,
            };
            if p.unchanged {
                return Ok(done(head.unwrap_or_default(), false));
            }
            match repo.update_refs(std::slice::from_ref(&p), &subject) {
                Ok(()) => return Ok(done(p.new, true)),
                Err(GitopsError::Conflict(_)) if attempts < 3 => attempts += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The tree committed for deployment `id`, if any.
    pub fn tree(&self, id: &str) -> Result<Option<BootstrapTree>, GitopsError> {
        let repo = self.repo(id)?;
        let Some(commit) = repo.head(BRANCH)? else {
            return Ok(None);
        };
        let mut files = BTreeMap::new();
        for path in repo.list(&commit, None)? {
            if let Some(bytes) = repo.read(&commit, &path)? {
                files.insert(path, bytes);
            }
        }
        Ok(Some(BootstrapTree {
            repo: format!("system/{}", repo_name(id)?),
            commit,
            files,
        }))
    }

    /// Removes the repository of deployment `id` (the deployment is gone); true when one was.
    pub fn remove(&self, id: &str) -> Result<bool, GitopsError> {
        let repo = self.repo(id)?;
        if !repo.exists() {
            return Ok(false);
        }
        std::fs::remove_dir_all(repo.path())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_name_a_repository() {
        assert_eq!(repo_name("a1b2c3").unwrap(), "sovereign-a1b2c3");
        for bad in ["", "../x", "A", "a/b", "a.b", &"x".repeat(65)] {
            assert!(repo_name(bad).is_err(), "{bad}");
        }
    }
}
