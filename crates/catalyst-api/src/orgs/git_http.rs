//! Git smart HTTP for `/git/<org>/<app>.git` and `/git/system/catalyst-config.git`: the API
//! token is the basic-auth password. Fetches are spoken by `git upload-pack --stateless-rpc`,
//! the reference implementation; this module only frames the advertisement and pipes bodies.
//! Pushes (`git-receive-pack`) are judged by `catalyst_gitops::push` with the API's rules:
//! org-developer and above push Application repositories, sovereign-admin
//! `system/catalyst-config`; every other repository is read-only.
use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use crate::extract::{Path, Query};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use subtle::ConstantTimeEq;

use super::auth::{Identity, Right};
use super::OrgApi;
use crate::ApiError;

/// `?service=…` of `info/refs`.
#[derive(Debug, Deserialize)]
pub struct ServiceQuery {
    service: Option<String>,
}

fn read_only() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "read-only",
        "this repository is read-only over HTTP",
    )
}

/// Who may push where: the repository must be readable (else 404 as for a fetch), an
/// Application repository needs the right to write Applications (403 for org-viewer and the
/// other read-only roles), `system/catalyst-config` sovereign-admin, and nothing else under
/// `system/` is ever pushable.
fn resolve_push(api: &OrgApi, id: &Identity, org: &str, repo: &str) -> Result<(), ApiError> {
    resolve(api, id, org, repo)?;
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    if org == "system" {
        if name != "catalyst-config" {
            return Err(read_only());
        }
        return id.authorize_sovereign();
    }
    id.authorize(org, Right::WriteApps)
}

fn repo_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not-found", "repository not found")
}

/// The [`Identity`] a deployment's read token stands for: it names no Organization a role
/// applies in, so it authorizes nothing but reading that deployment's repository
/// ([`resolve`] checks it by name).
fn deployment_identity(repo: &str) -> Identity {
    Identity {
        name: format!("{repo} read token"),
        role: super::auth::Role::OrgViewer,
        org: Some(format!("system/{repo}")),
    }
}

/// The [`Identity`] Flux's Git read token stands for (`--flux-git-token-file`, the
/// `catalyst-git` Secret's password): it names no Organization a role applies in, so it
/// authorizes nothing but fetching this Sovereign's repositories ([`resolve`] checks it by
/// name) — never a push, never the API, never a provisioned Sovereign's bootstrap repository.
fn flux_identity() -> Identity {
    Identity {
        name: "flux read token".into(),
        role: super::auth::Role::OrgViewer,
        org: Some("system/flux".into()),
    }
}

/// Middleware on `/git`: a request for `/git/system/sovereign-<id>.git/…` carrying that
/// deployment's read token (the basic-auth password) is let in as the deployment's reader,
/// and any request carrying Flux's Git read token as [`flux_identity`]; everything else is
/// authenticated as usual by the handlers.
pub async fn deployment_reader(
    State(api): State<Arc<OrgApi>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    if let Some(presented) = super::auth::token_of(&parts) {
        let repo = parts
            .uri
            .path()
            .strip_prefix("/git/system/")
            .and_then(|rest| rest.split('/').next())
            .and_then(|r| r.strip_suffix(".git"))
            .filter(|r| r.starts_with("sovereign-"))
            .map(str::to_owned);
        let flux = &api.flux_git_token;
        if !flux.is_empty() && bool::from(presented.as_bytes().ct_eq(flux.as_bytes())) {
            parts.extensions.insert(flux_identity());
        } else if let (Some(git), Some(repo)) = (&api.sovereign_git, repo) {
            let id = repo.trim_start_matches("sovereign-");
            if git.verify(id, &presented) {
                parts.extensions.insert(deployment_identity(&repo));
            }
        }
    }
    next.run(axum::extract::Request::from_parts(parts, body))
        .await
}

/// Which repository, if the caller may read it.
fn resolve(api: &OrgApi, id: &Identity, org: &str, repo: &str) -> Result<PathBuf, ApiError> {
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    if org == "system" && name.starts_with("sovereign-") && *id == deployment_identity(name) {
        // That deployment's read token: this repository only.
    } else if *id == flux_identity() && !(org == "system" && name != "catalyst-config") {
        // Flux's read token: system/catalyst-config and every Application repository.
    } else if org == "system" {
        id.authorize_sovereign().map_err(|_| repo_not_found())?;
    } else {
        id.authorize(org, Right::ReadApps).map_err(|e| {
            if e.status == StatusCode::FORBIDDEN {
                e
            } else {
                repo_not_found()
            }
        })?;
    }
    api.sovereign.git_dir(org, name).ok_or_else(repo_not_found)
}

pub(crate) fn pkt_line(s: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", s.len() + 4).into_bytes();
    v.extend_from_slice(s.as_bytes());
    v
}

async fn upload_pack(dir: PathBuf, advertise: bool, input: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("upload-pack").arg("--stateless-rpc");
    if advertise {
        cmd.arg("--advertise-refs");
    }
    cmd.arg(&dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| ApiError::internal(format!("cannot run git: {e}")))?;
    let mut stdin = child.stdin.take();
    // Feed stdin while stdout is drained, so a large request cannot deadlock on full pipes.
    let feeder = tokio::spawn(async move {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input).await;
        }
        drop(stdin);
    });
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| ApiError::internal(format!("git upload-pack: {e}")))?;
    let _ = feeder.await;
    if !out.status.success() && out.stdout.is_empty() {
        tracing::warn!(stderr = %String::from_utf8_lossy(&out.stderr), "git upload-pack failed.");
        return Err(ApiError::internal("git upload-pack failed"));
    }
    Ok(out.stdout)
}

/// `GET /git/{org}/{repo}/info/refs?service=git-upload-pack`.
#[utoipa::path(
    get,
    path = "/git/{org}/{repo}/info/refs",
    tag = "git",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("org" = String, Path, description = "The Organization (`system` for system/catalyst-config)"),
        ("repo" = String, Path, description = "The repository, `<app>.git`"),
        ("service" = Option<String>, Query, description = "`git-upload-pack` (fetch) or `git-receive-pack` (push)"),
    ),
    responses(
        (status = 200, description = "The ref advertisement (smart HTTP).", content(
            (Vec<u8> = "application/x-git-upload-pack-advertisement"),
            (Vec<u8> = "application/x-git-receive-pack-advertisement"),
        )),
        (status = 403, description = "`dumb-http-unsupported`, `read-only` (a repository that is never pushable), or `forbidden` (the role does not allow reading, or pushing).", body = crate::error::ErrorBody),
        (status = 404, description = "`not-found`.", body = crate::error::ErrorBody),
    )
)]
pub async fn info_refs(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path((org, repo)): Path<(String, String)>,
    Query(q): Query<ServiceQuery>,
) -> Response {
    match q.service.as_deref() {
        Some("git-upload-pack") => {}
        Some("git-receive-pack") => return receive_pack_refs(api, id, org, repo).await,
        _ => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "dumb-http-unsupported",
                "only the smart HTTP protocol is served (git-upload-pack)",
            )
            .into_response()
        }
    }
    let dir = match resolve(&api, &id, &org, &repo) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    match upload_pack(dir, true, Vec::new()).await {
        Ok(refs) => advertisement("git-upload-pack", refs),
        Err(e) => e.into_response(),
    }
}

/// A smart HTTP ref advertisement of `service` (`git-upload-pack`, `git-receive-pack`).
fn advertisement(service: &'static str, refs: Vec<u8>) -> Response {
    let mut body = pkt_line(&format!("# service={service}\n"));
    body.extend_from_slice(b"0000");
    body.extend_from_slice(&refs);
    let content_type = format!("application/x-{service}-advertisement");
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache".to_owned()),
        ],
        Body::from(body),
    )
        .into_response()
}

/// The request body as `git upload-pack` reads it: gunzipped when `Content-Encoding: gzip`.
pub(crate) fn request_body(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let limit = (super::GIT_BODY_LIMIT as u64) * 4;
    // One byte past the limit tells a body that is too large from one that fits exactly.
    if flate2::read::GzDecoder::new(body)
        .take(limit + 1)
        .read_to_end(&mut out)
        .is_err()
    {
        return Err(ApiError::invalid_body("the gzip body does not decode"));
    }
    if out.len() as u64 > limit {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "request-too-large",
            format!("a Git request must decode to at most {limit} bytes"),
        ));
    }
    Ok(out)
}

/// `POST /git/{org}/{repo}/git-upload-pack`.
#[utoipa::path(
    post,
    path = "/git/{org}/{repo}/git-upload-pack",
    tag = "git",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("org" = String, Path, description = "The Organization (`system` for system/catalyst-config)"),
        ("repo" = String, Path, description = "The repository, `<app>.git`"),
    ),
    request_body(content = Vec<u8>, content_type = "application/x-git-upload-pack-request"),
    responses(
        (status = 200, description = "The pack.", content_type = "application/x-git-upload-pack-result", body = Vec<u8>),
        (status = 404, description = "`not-found`.", body = crate::error::ErrorBody),
    )
)]
pub async fn upload_pack_rpc(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path((org, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dir = match resolve(&api, &id, &org, &repo) {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let input = match request_body(&headers, &body) {
        Ok(input) => input,
        Err(e) => return e.into_response(),
    };
    match upload_pack(dir, false, input).await {
        Ok(out) => (
            [
                (header::CONTENT_TYPE, "application/x-git-upload-pack-result"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            Body::from(out),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The `git-receive-pack` advertisement, for a caller who may push.
async fn receive_pack_refs(api: Arc<OrgApi>, id: Identity, org: String, repo: String) -> Response {
    if let Err(e) = resolve_push(&api, &id, &org, &repo) {
        return e.into_response();
    }
    match super::run(&api, move |s| s.receive_pack_refs(&org, &repo)).await {
        Ok(refs) => advertisement("git-receive-pack", refs),
        Err(e) => e.into_response(),
    }
}

/// `POST /git/{org}/{repo}/git-receive-pack`: a push, judged with the API's rules.
#[utoipa::path(
    post,
    path = "/git/{org}/{repo}/git-receive-pack",
    tag = "git",
    security(("basic" = []), ("bearer" = [])),
    params(
        ("org" = String, Path, description = "The Organization (`system` for system/catalyst-config)"),
        ("repo" = String, Path, description = "The repository, `<app>.git`"),
    ),
    request_body(content = Vec<u8>, content_type = "application/x-git-receive-pack-request"),
    responses(
        (status = 200, description = "report-status (in side-band-64k when asked): `ok <ref>` for each accepted ref, `ng <ref> <reason>` for each refused one, the refusal's `<file>: <json-pointer>: <message>` lines on the progress band.", content_type = "application/x-git-receive-pack-result", body = Vec<u8>),
        (status = 403, description = "`read-only` (a repository that is never pushable) or `forbidden` (the role may not push here).", body = crate::error::ErrorBody),
        (status = 404, description = "`not-found`.", body = crate::error::ErrorBody),
        (status = 413, description = "`request-too-large`.", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid-request`: not a receive-pack request.", body = crate::error::ErrorBody),
    )
)]
pub async fn receive_pack(
    State(api): State<Arc<OrgApi>>,
    id: Identity,
    Path((org, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = resolve_push(&api, &id, &org, &repo) {
        return e.into_response();
    }
    let input = match request_body(&headers, &body) {
        Ok(input) => input,
        Err(e) => return e.into_response(),
    };
    let c = super::call(&id, &headers, &super::Flags::default());
    let started = std::time::Instant::now();
    let (o, r) = (org.clone(), repo.clone());
    match super::run(&api, move |s| s.receive_pack(&c, &o, &r, &input)).await {
        Ok(out) => {
            tracing::info!(org = %org, repository = %repo, actor = %id.name, elapsed_ms = started.elapsed().as_millis() as u64, "Served a git push.");
            (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/x-git-receive-pack-result",
                    ),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                Body::from(out),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_gzip_body_decodes_up_to_the_limit_and_past_it_is_refused_not_cut() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_body(&headers, b"0000").unwrap(), b"0000");
        headers.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(
            request_body(&headers, &gzip(b"0009done\n")).unwrap(),
            b"0009done\n"
        );
        let limit = super::super::GIT_BODY_LIMIT * 4;
        assert_eq!(
            request_body(&headers, &gzip(&vec![b'0'; limit]))
                .unwrap()
                .len(),
            limit
        );
        let e = request_body(&headers, &gzip(&vec![b'0'; limit + 1])).unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::PAYLOAD_TOO_LARGE, "request-too-large")
        );
        let e = request_body(&headers, b"not gzip").unwrap_err();
        assert_eq!(e.code, "invalid-body");
    }
}
