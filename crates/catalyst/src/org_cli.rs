//! `catalyst token create` (offline, against the data dir) and `catalyst org|env|app …`, thin
//! clients of `/api/v1/orgs`.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use catalyst_api::orgs::auth::{Role, TokenSelector, TokenStore};
use serde_json::{json, Value};

use crate::table;

/// `catalyst token …`.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    cmd: TokenCmd,
}

#[derive(Debug, clap::Subcommand)]
enum TokenCmd {
    /// Print a new API token (stored hashed under --data-dir; works while the server is off).
    Create {
        /// The server's data directory.
        #[arg(long, env = "CATALYST_DATA_DIR", default_value = "./catalyst-data")]
        data_dir: PathBuf,
        /// sovereign-admin, org-admin, org-developer, org-viewer, security-officer, billing-admin.
        #[arg(long)]
        role: String,
        /// The Organization the role applies in (every role except sovereign-admin).
        #[arg(long)]
        org: Option<String>,
        /// Who holds the token (the author of the commits it makes).
        #[arg(long, default_value = "admin")]
        name: String,
    },
    /// List tokens: id, holder, role, Organization, created (never a token or its hash).
    List {
        /// The server's data directory.
        #[arg(long, env = "CATALYST_DATA_DIR", default_value = "./catalyst-data")]
        data_dir: PathBuf,
        /// Output: a table (text), json or yaml.
        #[arg(short = 'o', long = "output", default_value = "text")]
        output: String,
    },
    /// Revoke tokens, by --id or by holder (--name, with --org for Organization roles). A
    /// running server refuses them at once, and their console sessions end.
    Revoke {
        /// The server's data directory.
        #[arg(long, env = "CATALYST_DATA_DIR", default_value = "./catalyst-data")]
        data_dir: PathBuf,
        /// One token's id (from `token list`).
        #[arg(long, conflicts_with_all = ["name", "org"], required_unless_present = "name")]
        id: Option<String>,
        /// The holder whose tokens go.
        #[arg(long)]
        name: Option<String>,
        /// The holder's Organization (omit for sovereign-admin tokens).
        #[arg(long)]
        org: Option<String>,
    },
}

/// Runs `catalyst token …`.
pub fn run_token(args: TokenArgs) -> Result<()> {
    match args.cmd {
        TokenCmd::Create {
            data_dir,
            role,
            org,
            name,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}: use sovereign-admin, org-admin, org-developer, org-viewer, security-officer or billing-admin")
            })?;
            let token = TokenStore::open(&data_dir).create(role, org.as_deref(), &name)?;
            outln!("{token}");
        }
        TokenCmd::List { data_dir, output } => {
            let tokens = TokenStore::open(&data_dir).list()?;
            match output.as_str() {
                "json" => outln!("{}", serde_json::to_string_pretty(&tokens)?),
                "yaml" => out!(
                    "{}",
                    catalyst_blueprint::yaml::to_string(&serde_json::to_value(&tokens)?)
                ),
                "text" => {
                    let rows: Vec<Vec<String>> = tokens
                        .iter()
                        .map(|t| {
                            vec![
                                t.id.to_string(),
                                t.name.clone(),
                                t.role.as_str().to_owned(),
                                t.org.clone().unwrap_or_else(|| "-".to_owned()),
                                t.created.to_string(),
                            ]
                        })
                        .collect();
                    out!(
                        "{}",
                        table::render(&["ID", "NAME", "ROLE", "ORG", "CREATED"], &rows)
                    );
                }
                other => bail!("-o {other}: use text, json or yaml"),
            }
        }
        TokenCmd::Revoke {
            data_dir,
            id,
            name,
            org,
        } => {
            let which = match (id, name) {
                (Some(id), _) => TokenSelector::Id(id),
                (None, Some(name)) => TokenSelector::Holder { name, org },
                (None, None) => bail!("say which tokens: --id ID, or --name NAME [--org ORG]"),
            };
            let n = TokenStore::open(&data_dir).revoke_matching(&which)?;
            if n == 0 {
                bail!("no token matches {which:?}; `catalyst token list` shows them");
            }
            outln!("revoked {n} token(s)");
        }
    }
    Ok(())
}

/// How to reach the API; shared by every client verb (`org`, `env`, `app`, `deployment`).
#[derive(Debug, Clone, clap::Args)]
pub struct Client {
    /// Base URL of the Catalyst server.
    #[arg(
        long,
        global = true,
        env = "CATALYST_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// API token.
    #[arg(long, global = true, env = "CATALYST_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output: human text, or the API's answer as JSON or YAML.
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value = "text"
    )]
    pub(crate) output: Output,
}

/// `-o text|json|yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// Human text.
    Text,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// [`Client`] plus `--dry-run`, for the GitOps verbs.
#[derive(Debug, Clone, clap::Args)]
pub struct GitopsClient {
    #[command(flatten)]
    api: Client,
    /// Show the diff the change would commit; write nothing.
    #[arg(long, global = true)]
    dry_run: bool,
}

/// An error answer of the API, `{"error": code, "detail": text}`; shown as `code: detail`.
#[derive(Debug)]
pub(crate) struct ApiError {
    /// The HTTP status.
    pub(crate) status: reqwest::StatusCode,
    code: String,
    detail: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

/// The response when its status is a success, else its [`ApiError`] (a body that is not the
/// API's error JSON, say from a proxy, is named by its status).
pub(crate) async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ApiError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    Err(ApiError {
        status,
        code: text("error").unwrap_or_else(|| status.as_str().to_owned()),
        detail: text("detail")
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
    })
}

impl Client {
    /// A request to `<server>/api/v1<path>` carrying the token.
    pub(crate) fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}/api/v1{path}", self.server.trim_end_matches('/'));
        let req = reqwest::Client::new().request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request; the answer's JSON (`null` when it has none), or the API's error.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let resp = check(resp).await?;
        Ok(resp.json().await.unwrap_or(Value::Null))
    }

    /// A transport error, naming the server.
    pub(crate) fn unreachable(&self, e: reqwest::Error) -> anyhow::Error {
        anyhow::Error::new(e).context(format!("cannot reach {}", self.server))
    }

    /// Prints an answer: pretty JSON with `-o json`, else YAML.
    pub(crate) fn print(&self, v: &Value) {
        match self.output {
            Output::Json => outln!(
                "{}",
                serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("\"{e}\""))
            ),
            Output::Text | Output::Yaml => out!("{}", catalyst_blueprint::yaml::to_string(v)),
        }
    }
}

/// Ends a client verb: an error is printed as `error: …` on stderr and the exit code is 1.
pub(crate) fn report(result: Result<()>) -> Result<()> {
    if let Err(e) = result {
        crate::cli_out::fail(&e, 1);
    }
    Ok(())
}

/// `catalyst org …`.
#[derive(Debug, clap::Args)]
pub struct OrgArgs {
    #[command(flatten)]
    client: GitopsClient,
    #[command(subcommand)]
    cmd: OrgCmd,
}

#[derive(Debug, clap::Subcommand)]
enum OrgCmd {
    /// Create an Organization.
    Create {
        /// Name (`^[a-z][a-z0-9-]{2,31}$`).
        name: String,
        /// Contact e-mail.
        #[arg(long)]
        contact: Option<String>,
        /// Plan.
        #[arg(long)]
        plan: Option<String>,
    },
    /// List Organizations.
    List,
    /// Show an Organization.
    Get {
        /// Name.
        name: String,
    },
    /// Delete an Organization (it must have no Applications).
    Delete {
        /// Name.
        name: String,
    },
    /// List an Organization's members and their roles.
    Members {
        /// Organization.
        org: String,
    },
    /// Add a member (or change their role); prints their new token once.
    AddMember {
        /// Organization.
        org: String,
        /// Member name (the commit author): 1-64 of a-z, A-Z, 0-9, '-', '_', '.', '@'.
        name: String,
        /// org-admin, org-developer, org-viewer, security-officer or billing-admin.
        #[arg(long)]
        role: String,
    },
    /// Remove a member; their tokens stop working.
    RemoveMember {
        /// Organization.
        org: String,
        /// Member name.
        name: String,
    },
}

/// `catalyst env …`.
#[derive(Debug, clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    client: GitopsClient,
    /// Organization.
    #[arg(long, global = true, env = "CATALYST_ORG")]
    org: Option<String>,
    #[command(subcommand)]
    cmd: EnvCmd,
}

#[derive(Debug, clap::Subcommand)]
enum EnvCmd {
    /// Create Environment `{org}-{env_type}`.
    Create {
        /// prod, stg, uat, dev or poc.
        env_type: String,
        /// EnvironmentPolicy rules as a JSON list.
        #[arg(long)]
        rules: Option<String>,
    },
    /// List Environments.
    List,
    /// Show an Environment and its policy.
    Get {
        /// Env type.
        env_type: String,
    },
    /// Delete an Environment.
    Delete {
        /// Env type.
        env_type: String,
    },
}

/// `catalyst app …`.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    #[command(flatten)]
    client: GitopsClient,
    /// Organization.
    #[arg(long, global = true, env = "CATALYST_ORG")]
    org: Option<String>,
    #[command(subcommand)]
    cmd: AppCmd,
}

#[derive(Debug, clap::Subcommand)]
enum AppCmd {
    /// Install a Blueprint (with its dependencies) as an Application.
    Install {
        /// Application name.
        name: String,
        /// Blueprint (`bp-name`).
        #[arg(long)]
        blueprint: String,
        /// Version range.
        #[arg(long)]
        version: Option<String>,
        /// Env type.
        #[arg(long)]
        env: String,
        /// Values file (YAML or JSON).
        #[arg(long)]
        values: Option<PathBuf>,
        /// Use an existing Application for a dependency: BLUEPRINT=APP (repeatable).
        #[arg(long = "use-existing")]
        use_existing: Vec<String>,
        /// Values for a dependency: BLUEPRINT=FILE (repeatable).
        #[arg(long = "dependency-values")]
        dependency_values: Vec<String>,
    },
    /// List Applications.
    List,
    /// Show an Application.
    Get {
        /// Application name.
        name: String,
    },
    /// Replace the values of an Application in one Environment.
    SetValues {
        /// Application name.
        name: String,
        /// Env type.
        #[arg(long)]
        env: String,
        /// Values file (YAML or JSON).
        #[arg(long)]
        values: PathBuf,
    },
    /// Move to another Blueprint version.
    Upgrade {
        /// Application name.
        name: String,
        /// Env type.
        #[arg(long)]
        env: String,
        /// Version or range.
        #[arg(long)]
        version: String,
        /// Use an existing Application for a dependency the new version adds: BLUEPRINT=APP
        /// (repeatable).
        #[arg(long = "use-existing")]
        use_existing: Vec<String>,
        /// Values for a dependency the new version adds: BLUEPRINT=FILE (repeatable).
        #[arg(long = "dependency-values")]
        dependency_values: Vec<String>,
        /// Upgrade, in the same call, the existing dependency Applications the new version's
        /// requirements reject.
        #[arg(long = "with-dependencies")]
        with_dependencies: bool,
    },
    /// Uninstall from one Environment.
    Uninstall {
        /// Application name.
        name: String,
        /// Env type.
        #[arg(long)]
        env: String,
        /// Also uninstall the dependency Applications created for it that nothing else uses.
        #[arg(long)]
        cascade: bool,
    },
    /// Write a commit restoring an earlier one.
    Rollback {
        /// Application name.
        name: String,
        /// Env type.
        #[arg(long)]
        env: String,
        /// The commit to restore.
        #[arg(long)]
        to: String,
    },
    /// Approve a promotion.
    Approve {
        /// Application name.
        name: String,
        /// Source env type.
        #[arg(long)]
        from: String,
        /// Destination env type.
        #[arg(long)]
        to: String,
    },
    /// Promote to the next Environment (gated by its EnvironmentPolicy).
    Promote {
        /// Application name.
        name: String,
        /// Source env type.
        #[arg(long)]
        from: String,
        /// Destination env type.
        #[arg(long)]
        to: String,
    },
}

fn read_values(path: &PathBuf) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    catalyst_blueprint::yaml::parse_json(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

async fn send(
    c: &GitopsClient,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<()> {
    let mut path = path.to_owned();
    if c.dry_run && method != reqwest::Method::GET {
        path.push_str(if path.contains('?') {
            "&dryRun=true"
        } else {
            "?dryRun=true"
        });
    }
    let v = c.api.call(method, &path, body).await?;
    let commits = v.get("commits").and_then(Value::as_array);
    let Some(commits) = commits.filter(|_| c.api.output == Output::Text) else {
        c.api.print(&v);
        return Ok(());
    };
    for cm in commits {
        match cm["diff"].as_str() {
            Some(d) => outln!(
                "would commit to {} {}:\n{d}",
                cm["repo"].as_str().unwrap_or(""),
                cm["branch"].as_str().unwrap_or("")
            ),
            None => outln!(
                "{} {} {}",
                cm["repo"].as_str().unwrap_or(""),
                cm["branch"].as_str().unwrap_or(""),
                cm["commit"].as_str().unwrap_or("")
            ),
        }
    }
    if let Some(t) = v["token"].as_str() {
        outln!("token: {t}");
    }
    Ok(())
}

/// A `list` verb: a table of `key`'s items in `columns` by default, the whole answer with
/// `-o json|yaml`. An empty list prints the header alone and says so on stderr.
async fn list(c: &Client, path: &str, key: &str, columns: &[table::Column<'_>]) -> Result<()> {
    let v = c.call(reqwest::Method::GET, path, None).await?;
    if c.output != Output::Text {
        c.print(&v);
        return Ok(());
    }
    let items = v[key].as_array().cloned().unwrap_or_default();
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).collect();
    out!("{}", table::render(&headers, &table::rows(&items, columns)));
    if items.is_empty() {
        eprintln!("(no {key})");
    }
    Ok(())
}

/// Runs `catalyst org …`.
pub async fn run_org(a: OrgArgs) -> Result<()> {
    use reqwest::Method as M;
    match a.cmd {
        OrgCmd::Create {
            name,
            contact,
            plan,
        } => {
            send(
                &a.client,
                M::POST,
                "/orgs",
                Some(json!({ "name": name, "contact": contact, "plan": plan })),
            )
            .await
        }
        OrgCmd::List => {
            list(
                &a.client.api,
                "/orgs",
                "organizations",
                &[
                    ("NAME", "/metadata/name"),
                    ("CONTACT", "/spec/contact"),
                    ("PLAN", "/spec/plan"),
                ],
            )
            .await
        }
        OrgCmd::Get { name } => send(&a.client, M::GET, &format!("/orgs/{name}"), None).await,
        OrgCmd::Delete { name } => send(&a.client, M::DELETE, &format!("/orgs/{name}"), None).await,
        OrgCmd::Members { org } => {
            list(
                &a.client.api,
                &format!("/orgs/{org}/members"),
                "members",
                &[("NAME", "/name"), ("ROLE", "/role")],
            )
            .await
        }
        OrgCmd::AddMember { org, name, role } => {
            send(
                &a.client,
                M::POST,
                &format!("/orgs/{org}/members"),
                Some(json!({ "name": name, "role": role })),
            )
            .await
        }
        OrgCmd::RemoveMember { org, name } => {
            send(
                &a.client,
                M::DELETE,
                &format!("/orgs/{org}/members/{name}"),
                None,
            )
            .await
        }
    }
}

/// Runs `catalyst env …`.
pub async fn run_env(a: EnvArgs) -> Result<()> {
    use reqwest::Method as M;
    let org = a
        .org
        .as_deref()
        .context("--org (or CATALYST_ORG) is required")?;
    let base = format!("/orgs/{org}/environments");
    match a.cmd {
        EnvCmd::Create { env_type, rules } => {
            let rules: Value = match rules {
                Some(r) => serde_json::from_str(&r).context("--rules must be a JSON list")?,
                None => json!([]),
            };
            send(
                &a.client,
                M::POST,
                &base,
                Some(json!({ "envType": env_type, "policy": { "rules": rules } })),
            )
            .await
        }
        EnvCmd::List => {
            list(
                &a.client.api,
                &base,
                "environments",
                &[
                    ("NAME", "/environment/metadata/name"),
                    ("TYPE", "/environment/spec/envType"),
                    ("BRANCH", "/environment/spec/branch"),
                    ("POLICY", "/policy/spec/rules"),
                ],
            )
            .await
        }
        EnvCmd::Get { env_type } => {
            send(&a.client, M::GET, &format!("{base}/{env_type}"), None).await
        }
        EnvCmd::Delete { env_type } => {
            send(&a.client, M::DELETE, &format!("{base}/{env_type}"), None).await
        }
    }
}

/// Runs `catalyst app …`.
pub async fn run_app(a: AppArgs) -> Result<()> {
    use reqwest::Method as M;
    let org = a
        .org
        .as_deref()
        .context("--org (or CATALYST_ORG) is required")?;
    let base = format!("/orgs/{org}/applications");
    let c = &a.client;
    match a.cmd {
        AppCmd::Install {
            name,
            blueprint,
            version,
            env,
            values,
            use_existing,
            dependency_values,
        } => {
            let values = match values {
                Some(p) => read_values(&p)?,
                None => json!({}),
            };
            let (existing, dep_values) = dependency_flags(use_existing, dependency_values)?;
            send(c, M::POST, &base, Some(json!({ "name": name, "blueprint": blueprint, "version": version, "environment": env, "values": values, "useExisting": existing, "dependencyValues": dep_values }))).await
        }
        AppCmd::List => {
            list(
                &c.api,
                &base,
                "applications",
                &[
                    ("NAME", "/name"),
                    ("ENVIRONMENT", "/environment"),
                    ("BLUEPRINT", "/blueprint"),
                    ("VERSION", "/version"),
                    ("COMMIT", "/commit"),
                    ("DEPENDS-ON", "/dependsOn"),
                ],
            )
            .await
        }
        AppCmd::Get { name } => send(c, M::GET, &format!("{base}/{name}"), None).await,
        AppCmd::SetValues { name, env, values } => {
            send(
                c,
                M::PUT,
                &format!("{base}/{name}/values"),
                Some(json!({ "environment": env, "values": read_values(&values)? })),
            )
            .await
        }
        AppCmd::Upgrade {
            name,
            env,
            version,
            use_existing,
            dependency_values,
            with_dependencies,
        } => {
            let (existing, dep_values) = dependency_flags(use_existing, dependency_values)?;
            send(
                c,
                M::POST,
                &format!("{base}/{name}/upgrade"),
                Some(
                    json!({ "environment": env, "version": version, "useExisting": existing, "dependencyValues": dep_values, "withDependencies": with_dependencies }),
                ),
            )
            .await
        }
        AppCmd::Uninstall { name, env, cascade } => {
            send(
                c,
                M::DELETE,
                &format!("{base}/{name}?environment={env}&cascade={cascade}"),
                None,
            )
            .await
        }
        AppCmd::Rollback { name, env, to } => {
            send(
                c,
                M::POST,
                &format!("{base}/{name}/rollback"),
                Some(json!({ "environment": env, "to": to })),
            )
            .await
        }
        AppCmd::Approve { name, from, to } => {
            send(
                c,
                M::POST,
                &format!("{base}/{name}/approvals"),
                Some(json!({ "from": from, "to": to })),
            )
            .await
        }
        AppCmd::Promote { name, from, to } => {
            send(
                c,
                M::POST,
                &format!("{base}/{name}/promote"),
                Some(json!({ "from": from, "to": to })),
            )
            .await
        }
    }
}

/// `--use-existing BLUEPRINT=APP` and `--dependency-values BLUEPRINT=FILE` as the wire's
/// `useExisting` and `dependencyValues`.
fn dependency_flags(
    use_existing: Vec<String>,
    dependency_values: Vec<String>,
) -> Result<(
    serde_json::Map<String, Value>,
    serde_json::Map<String, Value>,
)> {
    let mut existing = serde_json::Map::new();
    for pair in use_existing {
        let Some((bp, app)) = pair.split_once('=') else {
            bail!("--use-existing takes BLUEPRINT=APP, got {pair:?}");
        };
        existing.insert(bp.to_string(), json!(app));
    }
    let mut dep_values = serde_json::Map::new();
    for pair in dependency_values {
        let Some((bp, file)) = pair.split_once('=') else {
            bail!("--dependency-values takes BLUEPRINT=FILE, got {pair:?}");
        };
        dep_values.insert(bp.to_string(), read_values(&PathBuf::from(file))?);
    }
    Ok((existing, dep_values))
}
