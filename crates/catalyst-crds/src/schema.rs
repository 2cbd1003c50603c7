//! Schemas the derive cannot infer from a Rust type: name patterns, enums whose values come from
//! `catalyst-core`, and free-form values (Helm values, JSON Schemas) that Kubernetes must keep
//! as they are (`x-kubernetes-preserve-unknown-fields`).
use catalyst_core::names::EnvType;
use catalyst_core::DeploymentStatus;
use schemars::{json_schema, Schema, SchemaGenerator};

/// An Organization or Application name (`catalyst_core::names`: 3–32 characters, a-z first,
/// then a-z, 0-9 and `-`). Reserved names are refused by the write path, not by the schema.
pub const SLUG: &str = "^[a-z][a-z0-9-]{2,31}$";
/// An Environment name, `<org>-<env type>`.
pub const ENVIRONMENT: &str = "^[a-z][a-z0-9-]{2,31}-(prod|stg|uat|dev|poc)$";
/// A Blueprint name as Catalyst writes it, `bp-<name>`.
pub const BLUEPRINT: &str = "^bp-[a-z][a-z0-9-]*$";
/// A semantic version (what `semver::Version` parses, build metadata included).
pub const SEMVER: &str =
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$";
/// An OCI digest Catalyst pins.
pub const DIGEST: &str = "^sha256:[0-9a-f]{64}$";
/// A Git commit id (SHA-1, or SHA-256 repositories).
pub const COMMIT: &str = "^[0-9a-f]{40}([0-9a-f]{24})?$";
/// A duration as `catalyst_gitops::policy::parse_duration` reads it (`90s`, `30m`, `72h`, `2d`).
pub const DURATION: &str = r"^\s*[0-9]+[smhd]?\s*$";
/// A five-field cron expression (the fields are checked by the write path).
pub const CRON: &str = r"^\s*\S+(\s+\S+){4}\s*$";
/// A member name (the API's rule: 1–64 characters of a-z, 0-9, `-`, `_`, `.`, `@`).
pub const MEMBER: &str = "^[a-z0-9._@-]{1,64}$";

/// Roles a member of an Organization may hold (every role but `sovereign-admin`).
pub const MEMBER_ROLES: [&str; 5] = [
    "org-admin",
    "org-developer",
    "org-viewer",
    "security-officer",
    "billing-admin",
];

fn pattern(p: &str) -> Schema {
    json_schema!({ "type": "string", "pattern": p })
}

/// `SLUG`.
pub fn slug(_: &mut SchemaGenerator) -> Schema {
    pattern(SLUG)
}

/// `ENVIRONMENT`.
pub fn environment(_: &mut SchemaGenerator) -> Schema {
    pattern(ENVIRONMENT)
}

/// A list of `ENVIRONMENT`s.
pub fn environments(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": { "type": "string", "pattern": ENVIRONMENT } })
}

/// `BLUEPRINT`.
pub fn blueprint(_: &mut SchemaGenerator) -> Schema {
    pattern(BLUEPRINT)
}

/// `SEMVER`.
pub fn semver(_: &mut SchemaGenerator) -> Schema {
    pattern(SEMVER)
}

/// `DIGEST`.
pub fn digest(_: &mut SchemaGenerator) -> Schema {
    pattern(DIGEST)
}

/// `COMMIT`.
pub fn commit(_: &mut SchemaGenerator) -> Schema {
    pattern(COMMIT)
}

/// `DURATION`.
pub fn duration(_: &mut SchemaGenerator) -> Schema {
    pattern(DURATION)
}

/// `CRON`.
pub fn cron(_: &mut SchemaGenerator) -> Schema {
    pattern(CRON)
}

/// `MEMBER`.
pub fn member(_: &mut SchemaGenerator) -> Schema {
    pattern(MEMBER)
}

/// One of `MEMBER_ROLES`.
pub fn member_role(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": MEMBER_ROLES })
}

/// An env type, from `EnvType::ALL`.
pub fn env_type(_: &mut SchemaGenerator) -> Schema {
    let all: Vec<&str> = EnvType::ALL.iter().map(|e| e.as_str()).collect();
    json_schema!({ "type": "string", "enum": all })
}

/// An env type's Git branch, from `EnvType::branch`.
pub fn branch(_: &mut SchemaGenerator) -> Schema {
    let all: Vec<&str> = EnvType::ALL.iter().map(|e| e.branch()).collect();
    json_schema!({ "type": "string", "enum": all })
}

/// A deployment status, from `DeploymentStatus::ALL`.
pub fn deployment_status(_: &mut SchemaGenerator) -> Schema {
    let all: Vec<&str> = DeploymentStatus::ALL.iter().map(|s| s.as_str()).collect();
    json_schema!({ "type": "string", "enum": all })
}

/// An RFC 3339 time.
pub fn time(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "date-time" })
}

/// A free-form object kept as written (Helm values, outputs, JSON Schemas).
pub fn free_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// A map of strings (labels).
pub fn string_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "additionalProperties": { "type": "string" } })
}
