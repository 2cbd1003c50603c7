//! `catalyst blueprint …`: lint, fmt, validate-values, list, resolve, render, plan-upgrade,
//! plan-uninstall. Reads files, calls the pure engine in `catalyst-blueprint`, prints.
//!
//! Exit codes: 0 ok, 1 problems found (lint errors, invalid values, conflicts, blocked or
//! refused plans, incomplete plans), 2 usage or IO problems.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use catalyst_blueprint::catalog::{Catalog, Source, Viewer};
use catalyst_blueprint::diag::Severity;
use catalyst_blueprint::lifecycle::{plan_uninstall, plan_upgrade};
use catalyst_blueprint::lint::lint;
use catalyst_blueprint::load::{discover, load_catalog, read, read_all};
use catalyst_blueprint::model::parse_blueprint_text;
use catalyst_blueprint::render::{render, to_yaml_stream, RenderOptions};
use catalyst_blueprint::resolve::{resolve_plan, Options, Plan, Request};
use catalyst_blueprint::{schema, yaml, BlueprintName};
use clap::{Subcommand, ValueEnum};
use semver::Version;
use serde::Serialize;
use serde_json::{json, Value};

/// Blueprint commands.
#[derive(Debug, clap::Args)]
pub struct BlueprintArgs {
    #[command(subcommand)]
    command: BlueprintCommand,
}

#[derive(Debug, Subcommand)]
enum BlueprintCommand {
    /// Check Blueprint files, folders or catalog roots; rustc-style diagnostics.
    Lint(LintArgs),
    /// Rewrite Blueprint files in the canonical form (comments are not kept).
    Fmt(FmtArgs),
    /// Validate an Application's values against a Blueprint's configSchema; print them with
    /// defaults applied.
    ValidateValues(ValidateArgs),
    /// List the Blueprints a catalog shows (listed, plus the viewer's private ones).
    List(ListArgs),
    /// Resolve Blueprints and their dependencies into an install plan.
    Resolve(ResolveArgs),
    /// Resolve, then print the Flux objects (OCIRepository + HelmRelease per Blueprint).
    Render(RenderArgs),
    /// Plan upgrading installed Blueprints to what the requests resolve to.
    PlanUpgrade(UpgradeArgs),
    /// Plan uninstalling Blueprints (dependents first); refuses if something still needs them.
    PlanUninstall(UninstallArgs),
    /// Artifact verbs: package, push, pull, sign, verify, mirror, inspect (artifact_cli.rs).
    #[command(flatten)]
    Artifact(crate::artifact_cli::ArtifactCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MachineOutput {
    Yaml,
    Json,
}

#[derive(Debug, clap::Args)]
struct CatalogArgs {
    /// Public catalog root: a folder of Blueprint folders or `*.blueprint.yaml` files (repeatable).
    #[arg(long = "catalog", value_name = "DIR")]
    public: Vec<PathBuf>,
    /// Sovereign-curated catalog root (repeatable).
    #[arg(long = "sovereign-catalog", value_name = "DIR")]
    sovereign: Vec<PathBuf>,
    /// Organization-private catalog root, `ORG=DIR` (repeatable).
    #[arg(long = "org-catalog", value_name = "ORG=DIR")]
    org: Vec<String>,
    /// Resolve and list as this Organization (sees its private Blueprints).
    #[arg(long = "as-org", value_name = "ORG")]
    as_org: Option<String>,
}

#[derive(Debug, clap::Args)]
struct LintArgs {
    /// Blueprint files, Blueprint folders or catalog roots.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Further catalog roots dependencies may come from (not linted).
    #[arg(long = "catalog", value_name = "DIR")]
    catalog: Vec<PathBuf>,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct FmtArgs {
    /// Blueprint files, Blueprint folders or catalog roots.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Change nothing; exit 1 when a file is not in canonical form.
    #[arg(long)]
    check: bool,
    /// Print the canonical form instead of rewriting files.
    #[arg(long)]
    stdout: bool,
}

#[derive(Debug, clap::Args)]
struct ValidateArgs {
    /// The Blueprint: a `blueprint.yaml` file or a Blueprint folder.
    blueprint: PathBuf,
    /// The Application's values (YAML or JSON).
    values: PathBuf,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Include unlisted Blueprints.
    #[arg(long)]
    all: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct ResolveInputArgs {
    /// Blueprints to install: `NAME` or `NAME@RANGE` (e.g. `bp-matrix@^1`).
    requests: Vec<String>,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// Values: `FILE` for every requested Blueprint, or `NAME=FILE` for one (repeatable).
    #[arg(long = "values", value_name = "[NAME=]FILE")]
    values: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct ResolveArgs {
    #[command(flatten)]
    input: ResolveInputArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct RenderArgs {
    #[command(flatten)]
    input: ResolveInputArgs,
    /// Render this install plan (`resolve -o json|yaml` output) instead of resolving requests.
    /// With --catalog, values are checked against each Blueprint's configSchema.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["requests", "values"])]
    plan: Option<PathBuf>,
    /// OCI registry path the Blueprints are published under.
    #[arg(long, default_value = "oci://ghcr.io/openova-io")]
    registry: String,
    /// Namespace of the Flux objects.
    #[arg(long, default_value = "flux-system")]
    namespace: String,
    /// Registry pull secret (empty for none).
    #[arg(long, default_value = "ghcr-pull")]
    pull_secret: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "yaml")]
    output: MachineOutput,
}

#[derive(Debug, clap::Args)]
struct UpgradeArgs {
    #[command(flatten)]
    input: ResolveInputArgs,
    /// What is installed now, `NAME@VERSION` (repeatable).
    #[arg(long = "installed", value_name = "NAME@VERSION")]
    installed: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Debug, clap::Args)]
struct UninstallArgs {
    /// Blueprints to uninstall.
    #[arg(required = true)]
    names: Vec<String>,
    #[command(flatten)]
    catalog: CatalogArgs,
    /// What is installed now, `NAME@VERSION` (repeatable).
    #[arg(long = "installed", value_name = "NAME@VERSION", required = true)]
    installed: Vec<String>,
    /// Also uninstall everything that depends on them.
    #[arg(long)]
    cascade: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

/// Runs a blueprint command and exits with its code (0, 1, or 2 for usage/IO problems).
pub fn run(args: BlueprintArgs) -> Result<()> {
    let code = match dispatch(args) {
        Ok(code) => code,
        Err(e) => crate::cli_out::fail(&e, 2),
    };
    crate::cli_out::flush_stdout();
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

fn dispatch(args: BlueprintArgs) -> Result<i32> {
    match args.command {
        BlueprintCommand::Lint(a) => cmd_lint(a),
        BlueprintCommand::Fmt(a) => cmd_fmt(a),
        BlueprintCommand::ValidateValues(a) => cmd_validate(a),
        BlueprintCommand::List(a) => cmd_list(a),
        BlueprintCommand::Resolve(a) => cmd_resolve(a),
        BlueprintCommand::Render(a) => cmd_render(a),
        BlueprintCommand::PlanUpgrade(a) => cmd_upgrade(a),
        BlueprintCommand::PlanUninstall(a) => cmd_uninstall(a),
        BlueprintCommand::Artifact(a) => crate::artifact_cli::run_blueprint(a),
    }
}

fn print_machine<T: Serialize>(output: Output, value: &T) {
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("\"{e}\""))
        ),
        _ => out!("{}", yaml::to_string(value)),
    }
}

fn cmd_lint(a: LintArgs) -> Result<i32> {
    let files = read_all(&a.paths)?;
    let known = if a.catalog.is_empty() {
        Catalog::new()
    } else {
        let roots: Vec<(Source, PathBuf)> = a
            .catalog
            .iter()
            .map(|p| (Source::Public, p.clone()))
            .collect();
        load_catalog(&roots)?.0
    };
    let report = lint(&files, &known);
    let failed = report.errors() > 0 || (a.deny_warnings && report.warnings() > 0);
    match a.output {
        Output::Text => {
            let texts: BTreeMap<&str, &str> = files
                .iter()
                .map(|f| (f.file.as_str(), f.text.as_str()))
                .chain(
                    files
                        .iter()
                        .filter_map(|f| f.chart.as_ref())
                        .map(|(p, t)| (p.as_str(), t.as_str())),
                )
                .collect();
            let mut out = String::new();
            for d in &report.diagnostics {
                out.push_str(&d.render(texts.get(d.file.as_str()).copied()));
                out.push('\n');
            }
            out.push_str(&format!(
                "{} file{} checked: {} error{}, {} warning{}\n",
                report.files,
                plural(report.files),
                report.errors(),
                plural(report.errors()),
                report.warnings(),
                plural(report.warnings())
            ));
            out!("{out}");
        }
        o => print_machine(
            o,
            &json!({
                "files": report.files,
                "errors": report.errors(),
                "warnings": report.warnings(),
                "diagnostics": report.diagnostics,
            }),
        ),
    }
    Ok(i32::from(failed))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn cmd_fmt(a: FmtArgs) -> Result<i32> {
    let mut unformatted = 0;
    let mut invalid = 0;
    for root in &a.paths {
        for path in discover(root)? {
            let f = read(&path)?;
            let mut diags = Vec::new();
            let Some(bp) = parse_blueprint_text(&f.text, &f.file, &mut diags) else {
                for d in diags.iter().filter(|d| d.severity == Severity::Error) {
                    eprint!("{}", d.render(Some(&f.text)));
                }
                invalid += 1;
                continue;
            };
            let canonical = bp.to_canonical_yaml();
            if f.text.contains('#') && !a.check && canonical != f.text {
                eprintln!(
                    "note: {}: comments are not kept in the canonical form",
                    f.file
                );
            }
            if a.stdout {
                out!("---\n{canonical}");
            } else if canonical != f.text {
                if a.check {
                    outln!("{} is not in canonical form", f.file);
                } else {
                    std::fs::write(&path, &canonical)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    outln!("formatted {}", f.file);
                }
                unformatted += 1;
            }
        }
    }
    if invalid > 0 {
        return Ok(1);
    }
    Ok(i32::from(a.check && unformatted > 0))
}

fn load_one(path: &Path) -> Result<catalyst_blueprint::Blueprint> {
    let files = discover(path)?;
    let [file] = files.as_slice() else {
        bail!(
            "{} holds {} Blueprints; name one",
            path.display(),
            files.len()
        );
    };
    let f = read(file)?;
    let mut diags = Vec::new();
    parse_blueprint_text(&f.text, &f.file, &mut diags).ok_or_else(|| {
        let text: Vec<String> = diags.iter().map(|d| d.render(Some(&f.text))).collect();
        anyhow!("{} is not a valid Blueprint:\n{}", f.file, text.join(""))
    })
}

fn read_values(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    yaml::parse_json(&text).with_context(|| format!("{} is not valid YAML", path.display()))
}

fn cmd_validate(a: ValidateArgs) -> Result<i32> {
    let bp = load_one(&a.blueprint)?;
    let values = read_values(&a.values)?;
    let schema = bp
        .config_schema
        .clone()
        .unwrap_or_else(|| json!({"type": "object"}));
    let result = match schema::validate_values(&schema, &values) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", bp.name);
            return Ok(1);
        }
    };
    match a.output {
        Output::Text => {
            for e in &result.errors {
                let at = if e.pointer.is_empty() {
                    "/"
                } else {
                    &e.pointer
                };
                eprintln!("error: {at}: {}", e.message);
            }
            if result.valid {
                eprintln!("{} {}: values are valid", bp.name, bp.version);
            } else {
                eprintln!(
                    "{} {}: {} error{}",
                    bp.name,
                    bp.version,
                    result.errors.len(),
                    plural(result.errors.len())
                );
            }
            out!("{}", yaml::to_string(&result.values));
        }
        o => print_machine(o, &result),
    }
    Ok(i32::from(!result.valid))
}

fn viewer_and_catalog(c: &CatalogArgs) -> Result<(Catalog, Viewer)> {
    let mut roots: Vec<(Source, PathBuf)> = Vec::new();
    roots.extend(c.public.iter().map(|p| (Source::Public, p.clone())));
    roots.extend(c.sovereign.iter().map(|p| (Source::Sovereign, p.clone())));
    for spec in &c.org {
        let (org, dir) = spec
            .split_once('=')
            .ok_or_else(|| anyhow!("--org-catalog {spec:?}: expected ORG=DIR"))?;
        roots.push((Source::Organization(org.to_string()), PathBuf::from(dir)));
    }
    if roots.is_empty() {
        bail!("no catalog given; pass --catalog DIR (or --sovereign-catalog, --org-catalog)");
    }
    let (catalog, diags) = load_catalog(&roots)?;
    for d in &diags {
        let what = match d.severity {
            Severity::Error => "skipping ",
            Severity::Warning => "",
        };
        eprintln!(
            "warning: {what}{}:{}:{}: {}",
            d.file, d.line, d.column, d.message
        );
    }
    Ok((
        catalog,
        Viewer {
            organization: c.as_org.clone(),
        },
    ))
}

fn cmd_list(a: ListArgs) -> Result<i32> {
    let (catalog, viewer) = viewer_and_catalog(&a.catalog)?;
    let rows: Vec<Value> = catalog
        .list(&viewer, a.all)
        .into_iter()
        .map(|e| {
            json!({
                "name": e.blueprint.name,
                "version": e.blueprint.version.to_string(),
                "visibility": e.blueprint.visibility,
                "source": e.source.to_string(),
                "title": e.blueprint.card.title,
                "summary": e.blueprint.card.summary,
                "category": e.blueprint.card.category,
            })
        })
        .collect();
    match a.output {
        Output::Text => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let summary = match r["summary"].as_str().map(str::trim) {
                        Some(s) if !s.is_empty() => s,
                        _ => r["title"].as_str().unwrap_or(""),
                    };
                    let summary = crate::table::cell(&Value::from(summary));
                    vec![
                        crate::table::cell(&r["name"]),
                        crate::table::cell(&r["version"]),
                        crate::table::cell(&r["visibility"]),
                        summary.chars().take(70).collect(),
                    ]
                })
                .collect();
            out!(
                "{}",
                crate::table::render(&["NAME", "VERSION", "VISIBILITY", "SUMMARY"], &table)
            );
        }
        o => print_machine(o, &rows),
    }
    Ok(0)
}

/// Resolves the requests against the catalog the arguments name; the outer error is a usage or
/// IO problem, the inner one a resolution failure.
fn build_plan(
    input: &ResolveInputArgs,
    catalog: &Catalog,
    viewer: &Viewer,
) -> Result<std::result::Result<Plan, catalyst_blueprint::ResolveError>> {
    if input.requests.is_empty() {
        bail!("name at least one Blueprint to install (NAME or NAME@RANGE)");
    }
    let requests = input
        .requests
        .iter()
        .map(|r| Request::parse(r).with_context(|| format!("bad request {r:?}")))
        .collect::<Result<Vec<_>>>()?;
    let mut values = BTreeMap::new();
    for spec in &input.values {
        let (names, file): (Vec<BlueprintName>, &str) = match spec.split_once('=') {
            Some((n, f)) => (vec![BlueprintName::parse(n)?], f),
            None => (
                requests.iter().map(|r| r.name.clone()).collect(),
                spec.as_str(),
            ),
        };
        let v = read_values(Path::new(file))?;
        for n in names {
            values.insert(n, v.clone());
        }
    }
    let opts = Options {
        viewer: viewer.clone(),
        values,
        ..Options::default()
    };
    Ok(resolve_plan(catalog, &requests, &opts))
}

fn report_resolve_error(e: &catalyst_blueprint::ResolveError, output: Output) -> i32 {
    match output {
        Output::Text => eprintln!("error: {e}"),
        o => print_machine(o, &json!({ "error": e, "message": e.to_string() })),
    }
    1
}

fn cmd_resolve(a: ResolveArgs) -> Result<i32> {
    let (catalog, viewer) = viewer_and_catalog(&a.input.catalog)?;
    let plan = match build_plan(&a.input, &catalog, &viewer)? {
        Ok(p) => p,
        Err(e) => return Ok(report_resolve_error(&e, a.output)),
    };
    for (name, e) in plan.value_errors() {
        let at = if e.pointer.is_empty() {
            "/"
        } else {
            &e.pointer
        };
        eprintln!(
            "warning: {name} values {at}: {} (render will refuse; pass --values {name}=FILE)",
            e.message
        );
    }
    match a.output {
        Output::Text => out!("{}", plan.to_text()),
        o => print_machine(o, &plan),
    }
    Ok(i32::from(!plan.missing.is_empty()))
}

fn cmd_render(a: RenderArgs) -> Result<i32> {
    let output = match a.output {
        MachineOutput::Json => Output::Json,
        MachineOutput::Yaml => Output::Yaml,
    };
    let plan = match &a.plan {
        Some(file) => read_plan(file, &a.input.catalog)?,
        None => {
            let (catalog, viewer) = viewer_and_catalog(&a.input.catalog)?;
            match build_plan(&a.input, &catalog, &viewer)? {
                Ok(p) => p,
                Err(e) => return Ok(report_resolve_error(&e, Output::Text)),
            }
        }
    };
    let opts = RenderOptions {
        registry: a.registry,
        namespace: a.namespace,
        pull_secret: Some(a.pull_secret).filter(|s| !s.is_empty()),
        ..RenderOptions::default()
    };
    match render(&plan, &opts) {
        Ok(objects) => {
            match output {
                Output::Json => print_machine(Output::Json, &objects),
                _ => out!("{}", to_yaml_stream(&objects)),
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("error: {e}");
            for m in &plan.missing {
                eprintln!(
                    "  {}: {}; required by {}",
                    m.name,
                    m.reason,
                    m.required_by.join(", ")
                );
            }
            Ok(1)
        }
    }
}

/// Reads a plan file; with catalog roots, attaches each Blueprint's configSchema (and digest,
/// when the plan lacks it) from the catalog.
fn read_plan(file: &Path, c: &CatalogArgs) -> Result<Plan> {
    let value = read_values(file)?;
    let mut plan: Plan = serde_json::from_value(value)
        .with_context(|| format!("{} is not an install plan", file.display()))?;
    if c.public.is_empty() && c.sovereign.is_empty() && c.org.is_empty() {
        return Ok(plan);
    }
    let (catalog, viewer) = viewer_and_catalog(c)?;
    for p in plan.layers.iter_mut().flatten() {
        let entry = catalog
            .get(&p.name, &p.version, &viewer)
            .ok_or_else(|| anyhow!("{} {} is not in the catalog", p.name, p.version))?;
        p.config_schema = entry.blueprint.config_schema.clone();
        if p.digest.is_none() {
            p.digest = entry.blueprint.digest.clone();
        }
    }
    Ok(plan)
}

fn parse_installed(list: &[String]) -> Result<BTreeMap<BlueprintName, Version>> {
    let mut out = BTreeMap::new();
    for item in list {
        for part in item.split(',').filter(|p| !p.trim().is_empty()) {
            let (n, v) = part
                .trim()
                .split_once('@')
                .ok_or_else(|| anyhow!("--installed {part:?}: expected NAME@VERSION"))?;
            let v = Version::parse(v).with_context(|| format!("--installed {part:?}"))?;
            out.insert(BlueprintName::parse(n)?, v);
        }
    }
    Ok(out)
}

fn cmd_upgrade(a: UpgradeArgs) -> Result<i32> {
    let installed = parse_installed(&a.installed)?;
    let (catalog, viewer) = viewer_and_catalog(&a.input.catalog)?;
    let plan = match build_plan(&a.input, &catalog, &viewer)? {
        Ok(p) => p,
        Err(e) => return Ok(report_resolve_error(&e, a.output)),
    };
    let up = plan_upgrade(&installed, &plan, &catalog, &viewer);
    match a.output {
        Output::Text => {
            out!("{}", up.to_text());
            for m in &plan.missing {
                outln!(
                    "     missing: {} ({}); required by {}",
                    m.name,
                    m.reason,
                    m.required_by.join(", ")
                );
            }
        }
        o => print_machine(
            o,
            &json!({ "steps": up.steps, "unneeded": up.unneeded, "missing": plan.missing }),
        ),
    }
    Ok(i32::from(up.is_blocked() || !plan.missing.is_empty()))
}

fn cmd_uninstall(a: UninstallArgs) -> Result<i32> {
    let installed = parse_installed(&a.installed)?;
    let (catalog, viewer) = viewer_and_catalog(&a.catalog)?;
    let targets = a
        .names
        .iter()
        .map(|n| BlueprintName::parse(n))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    match plan_uninstall(&installed, &targets, a.cascade, &catalog, &viewer) {
        Ok(p) => {
            match a.output {
                Output::Text => out!("{}", p.to_text()),
                o => print_machine(o, &p),
            }
            Ok(0)
        }
        Err(e) => {
            match a.output {
                Output::Text => eprintln!("error: {e}"),
                o => print_machine(o, &json!({ "error": e, "message": e.to_string() })),
            }
            Ok(1)
        }
    }
}
