//! Wire bodies of the Organization routes: what a write answers ([`WrittenBody`]) and the
//! request bodies the handlers read.
use catalyst_gitops::Written;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// One commit a write made (or, in a dry run, would make).
#[derive(Debug, Serialize, ToSchema)]
pub struct CommitBody {
    /// Repository (`acme/web`, `system/catalyst-config`).
    pub repo: String,
    /// Branch.
    pub branch: String,
    /// The commit id (in a dry run: the id it would have had).
    pub commit: String,
    /// The diff (dry runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// What a write answers: its commits, one per repository touched (`ETag` is the last one), and
/// what it created.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WrittenBody {
    /// True when nothing was written (`?dryRun=true`): `commits` carry the diffs.
    pub dry_run: bool,
    /// The commits.
    pub commits: Vec<CommitBody>,
    /// The name of what was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A new member's role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A new member's token: shown once, stored hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl WrittenBody {
    /// The answer for `w`.
    pub fn of(w: Written) -> WrittenBody {
        WrittenBody {
            dry_run: w.dry_run,
            commits: w
                .commits
                .into_iter()
                .map(|c| CommitBody {
                    repo: c.repo,
                    branch: c.branch,
                    commit: c.commit,
                    diff: c.diff,
                })
                .collect(),
            name: None,
            role: None,
            token: None,
        }
    }

    /// Naming what was created.
    pub fn named(mut self, name: impl Into<String>) -> WrittenBody {
        self.name = Some(name.into());
        self
    }
}

/// `GET /api/v1/orgs/{org}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationBody {
    /// The `Organization` resource.
    #[schema(value_type = Object)]
    pub organization: Value,
    /// The head of `system/catalyst-config` (also the `ETag`).
    pub commit: Option<String>,
}

/// `GET /api/v1/orgs/{org}/members` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MembersBody {
    /// `{name, role}` of every member.
    #[schema(value_type = Vec<Object>)]
    pub members: Vec<Value>,
}

/// `POST /api/v1/orgs` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CreateOrgRequest {
    /// The Organization's name (a DNS label).
    name: String,
    /// Shown in the console.
    display_name: Option<String>,
}

/// `POST /api/v1/orgs/{org}/environments` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct CreateEnvRequest {
    /// `prod`, `stg`, `uat`, `dev` or `poc` (or `acme-dev`); `name` is accepted too.
    env_type: String,
    /// The EnvironmentPolicy: `{rules: [...]}` (approvals, soak, change windows).
    #[schema(value_type = Option<Object>)]
    policy: Option<Value>,
}

/// `POST /api/v1/orgs/{org}/members` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct AddMemberRequest {
    /// 1–64 characters of a-z, 0-9, `-`, `_`, `.`, `@`.
    name: String,
    /// `org-admin`, `org-developer`, `org-viewer`, `security-officer` or `billing-admin`.
    role: String,
}

/// `POST /api/v1/orgs/{org}/applications` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct InstallRequest {
    /// The new Application's name.
    name: String,
    /// The Environment (`dev` or `acme-dev`).
    environment: String,
    /// The Blueprint.
    blueprint: String,
    /// A version or range of the Blueprint (highest visible by default).
    version: Option<String>,
    /// Configuration values, validated against the Blueprint's configSchema.
    #[schema(value_type = Option<Object>)]
    values: Option<Value>,
    /// Blueprint name → the existing Application that satisfies that dependency.
    #[schema(value_type = Option<Object>)]
    use_existing: Option<Value>,
    /// Blueprint name → values for a dependency created alongside.
    #[schema(value_type = Option<Object>)]
    dependency_values: Option<Value>,
}

/// `PUT /api/v1/orgs/{org}/applications/{app}/values` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ValuesRequest {
    /// The Environment (or `?environment=`).
    environment: Option<String>,
    /// The new values (validated against the configSchema).
    #[schema(value_type = Object)]
    values: Value,
}

/// `POST /api/v1/orgs/{org}/applications/{app}/upgrade` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct UpgradeRequest {
    /// The Environment (or `?environment=`).
    environment: Option<String>,
    /// The version or range to move to.
    version: String,
    /// Also upgrade the dependencies the new version needs.
    with_dependencies: Option<bool>,
    /// Blueprint name → existing Application, for dependencies the new version adds.
    #[schema(value_type = Option<Object>)]
    use_existing: Option<Value>,
    /// Blueprint name → values, for dependencies the new version adds.
    #[schema(value_type = Option<Object>)]
    dependency_values: Option<Value>,
}

/// `POST /api/v1/orgs/{org}/applications/{app}/rollback` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct RollbackRequest {
    /// The Environment (or `?environment=`).
    environment: Option<String>,
    /// The commit to return to.
    to: String,
}

/// Body of approvals and promotions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PromotionRequest {
    /// The source Environment.
    from: String,
    /// The destination Environment.
    to: String,
}

/// `GET /api/v1/orgs/{org}/applications/{app}/promotion` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionBody {
    /// The source Environment (`acme-dev`).
    pub from: String,
    /// The destination Environment (`acme-stg`).
    pub to: String,
    /// The source commit a promotion would take (approvals are for this commit).
    pub source: String,
    /// The destination's EnvironmentPolicy rules (`[]`: none).
    #[schema(value_type = Vec<Object>)]
    pub rules: Value,
    /// The approvals given for `source`: `{by, time}` each.
    pub approvals: Vec<ApprovalBody>,
    /// True when a promotion would be allowed now.
    pub allowed: bool,
    /// The first rule not met (absent when `allowed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmet: Option<UnmetBody>,
}

/// One approval of a promotion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApprovalBody {
    /// Who approved (token name).
    pub by: String,
    /// When (RFC 3339).
    pub time: String,
}

/// A rule of an EnvironmentPolicy that is not met.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnmetBody {
    /// The rule kind (`pr-required`, `soak`, `change-window`, `re-score-gate`).
    pub rule: String,
    /// What it still needs, in words.
    pub detail: String,
}

impl PromotionBody {
    /// The answer for promotion state `p` from `from` to `to`.
    pub fn of(from: String, to: String, p: catalyst_gitops::Promotion) -> PromotionBody {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        PromotionBody {
            from,
            to,
            allowed: p.unmet.is_none(),
            approvals: p
                .approvals
                .iter()
                .map(|a| ApprovalBody {
                    by: text(a, "by"),
                    time: text(a, "time"),
                })
                .collect(),
            source: p.source,
            rules: p.rules,
            unmet: p.unmet.map(|(rule, detail)| UnmetBody { rule, detail }),
        }
    }
}
