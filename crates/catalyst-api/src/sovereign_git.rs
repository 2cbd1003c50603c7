//! The bootstrap repositories of the Sovereigns this Catalyst provisions, on the HTTP side:
//! committing a deployment's tree before its run ([`BootstrapPublisher`]), and the read token
//! that opens `system/sovereign-<id>` alone.
//!
//! The token is derived, never stored: `cgt_` + hex(HMAC-SHA256(key, "system/sovereign-<id>")),
//! with the key of `--sovereign-git-key-file` (every replica reads the same one). It reaches
//! OpenTofu through its environment only, so no file under the data directory, tfvars file or
//! log holds it; it stops opening anything once the deployment (and so its repository) is
//! deleted, and a new key revokes every one.
use std::sync::Arc;

use catalyst_core::{DeploymentId, DeploymentSpec, Secret};
use catalyst_gitops::bootstrap::SovereignChoice;
use catalyst_gitops::sovereign_git::{repo_name, SovereignRepos, BRANCH};
use catalyst_gitops::Actor;
use catalyst_provision::{BootstrapPublisher, GitSource};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Prefix of a deployment's read token.
pub const TOKEN_PREFIX: &str = "cgt_";

/// The repositories, the key their tokens derive from, and the URL Sovereigns reach them at.
pub struct SovereignGit {
    repos: SovereignRepos,
    key: String,
    public_url: String,
}

impl std::fmt::Debug for SovereignGit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SovereignGit")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

fn mac(key: &str, id: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("system/sovereign-{id}").as_bytes());
    mac
}

/// The read token of deployment `id`'s repository under `key`.
pub fn deployment_token(key: &str, id: &str) -> Secret {
    Secret::new(format!(
        "{TOKEN_PREFIX}{}",
        hex::encode(mac(key, id).finalize().into_bytes())
    ))
}

impl SovereignGit {
    /// `repos` served at `<public_url>/git/system/sovereign-<id>.git`, tokens under `key`.
    pub fn new(repos: SovereignRepos, key: &str, public_url: &str) -> Self {
        SovereignGit {
            repos,
            key: key.to_owned(),
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The repositories.
    pub fn repos(&self) -> &SovereignRepos {
        &self.repos
    }

    /// The smart HTTP URL of deployment `id`'s repository.
    pub fn url(&self, id: &str) -> String {
        format!("{}/git/system/sovereign-{id}.git", self.public_url)
    }

    /// The read token of deployment `id`'s repository.
    pub fn token(&self, id: &str) -> Secret {
        deployment_token(&self.key, id)
    }

    /// True when `presented` is deployment `id`'s read token (constant-time comparison).
    pub fn verify(&self, id: &str, presented: &str) -> bool {
        let Some(hex_mac) = presented.strip_prefix(TOKEN_PREFIX) else {
            return false;
        };
        let Ok(bytes) = hex::decode(hex_mac) else {
            return false;
        };
        repo_name(id).is_ok() && mac(&self.key, id).verify_slice(&bytes).is_ok()
    }
}

/// What the wizard chose, as the bootstrap tree takes it.
pub fn choice_of(spec: &DeploymentSpec) -> SovereignChoice {
    SovereignChoice {
        fqdn: spec.sovereign_fqdn.clone(),
        region: spec.primary().cloud_region.clone(),
        components: spec.components.clone(),
    }
}

impl BootstrapPublisher for SovereignGit {
    fn publish(&self, id: &DeploymentId, spec: &DeploymentSpec) -> Result<GitSource, String> {
        let actor = Actor {
            name: "Catalyst".to_owned(),
            email: "catalyst@localhost".to_owned(),
        };
        let done = self
            .repos
            .commit(
                id.as_str(),
                &choice_of(spec),
                &actor,
                &format!("deployment-{id}"),
            )
            .map_err(|e| e.to_string())?;
        Ok(GitSource {
            url: self.url(id.as_str()),
            branch: BRANCH.to_owned(),
            path: done.path,
            commit: done.commit,
            token: self.token(id.as_str()),
        })
    }
}

/// `GET /api/v1/deployments/{id}/bootstrap` answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct BootstrapBody {
    /// `system/sovereign-<id>`.
    pub repo: String,
    /// Its smart HTTP URL (Flux on the Sovereign reads it with the deployment's token).
    pub url: String,
    /// The branch Flux follows.
    pub branch: String,
    /// The folder Flux applies (`./clusters/<fqdn>`).
    pub path: String,
    /// The commit the branch is at.
    pub commit: String,
    /// Every file of the tree (path → UTF-8 text).
    pub files: std::collections::BTreeMap<String, String>,
}

/// `GET /api/v1/deployments/{id}/bootstrap`: the bootstrap tree Catalyst committed for a
/// deployment (what `catalyst sovereign render --deployment ID` writes out).
#[utoipa::path(
    get,
    path = "/deployments/{id}/bootstrap",
    tag = "deployments",
    params(("id" = String, Path, description = "The deployment id")),
    responses(
        (status = 200, description = "The committed tree.", body = BootstrapBody),
        (status = 404, description = "`deployment-not-found`, or `not-found`: no tree was committed for it (yet).", body = crate::error::ErrorBody),
    )
)]
pub async fn get_bootstrap(
    axum::extract::State(state): axum::extract::State<Arc<crate::AppState>>,
    crate::extract::Path(id): crate::extract::Path<String>,
) -> Result<axum::Json<BootstrapBody>, crate::ApiError> {
    use axum::http::StatusCode;
    let id = crate::handlers::parse_id(&id)?;
    state.service.view(&id)?;
    let not_found = || {
        crate::ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no bootstrap tree was committed for this deployment (yet)",
        )
    };
    let git = state.sovereign_git.clone().ok_or_else(not_found)?;
    let key = id.as_str().to_owned();
    let tree = {
        let git = git.clone();
        tokio::task::spawn_blocking(move || git.repos().tree(&key))
            .await
            .map_err(|e| crate::ApiError::internal(e.to_string()))?
            .map_err(crate::orgs::gitops_error)?
    }
    .ok_or_else(not_found)?;
    let path = tree
        .files
        .keys()
        .find_map(|p| p.strip_prefix("clusters/")?.split('/').next())
        .map(|fqdn| format!("./clusters/{fqdn}"))
        .unwrap_or_default();
    Ok(axum::Json(BootstrapBody {
        repo: tree.repo,
        url: git.url(id.as_str()),
        branch: BRANCH.to_owned(),
        path,
        commit: tree.commit,
        files: tree
            .files
            .into_iter()
            .map(|(p, b)| (p, String::from_utf8_lossy(&b).into_owned()))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_its_own_deployment_only() {
        let repos = SovereignRepos::new(
            "/nonexistent",
            Arc::new(catalyst_blueprint::Catalog::new()),
            Default::default(),
        );
        let g = SovereignGit::new(repos, "k1", "https://c.example/");
        let t = g.token("aaaa");
        assert!(t.expose().starts_with(TOKEN_PREFIX));
        assert!(g.verify("aaaa", t.expose()));
        assert!(!g.verify("bbbb", t.expose()));
        assert!(!g.verify("aaaa", &t.expose()[..t.expose().len() - 2]));
        assert!(!g.verify("aaaa", "cgt_zz"));
        assert!(!g.verify("../x", t.expose()));
        let other = SovereignGit::new(
            SovereignRepos::new(
                "/x",
                Arc::new(catalyst_blueprint::Catalog::new()),
                Default::default(),
            ),
            "k2",
            "https://c.example",
        );
        assert!(!other.verify("aaaa", t.expose()));
        assert_eq!(
            g.url("aaaa"),
            "https://c.example/git/system/sovereign-aaaa.git"
        );
    }
}
