//! The dependency resolver and the install plan.
//!
//! One version per Blueprint: the highest visible version that satisfies every constraint on it.
//! The search is depth-first in discovery order, highest version first, and backtracks (within a
//! step budget) when a choice makes a later Blueprint unsatisfiable. `when` is evaluated against
//! the dependent's configuration (its schema defaults, the values its dependents pass, and the
//! caller's values). Diamonds unify on one version. A Blueprint the catalog lacks does not stop the
//! resolution: it is named in [`Plan::missing`] with everyone who requires it. A conflict is
//! explained PubGrub-style; a cycle is reported with its path. Nothing here does IO.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};

use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{Catalog, Entry, Lookup, Source, Viewer};
use crate::model::{BlueprintName, NameError};
use crate::range::{RangeError, VersionRange};

/// How many candidate versions the search may try before giving up.
pub const DEFAULT_STEP_BUDGET: usize = 200_000;

/// What the user asked for: `NAME[@RANGE]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// The Blueprint.
    pub name: BlueprintName,
    /// Acceptable versions.
    pub range: VersionRange,
}

/// A request that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Bad name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// Bad range.
    #[error(transparent)]
    Range(#[from] RangeError),
}

impl Request {
    /// Parses `name`, `bp-name`, `name@^1.2`.
    pub fn parse(s: &str) -> Result<Request, RequestError> {
        let (name, range) = match s.split_once('@') {
            Some((n, r)) => (n, VersionRange::parse(r)?),
            None => (s, VersionRange::any()),
        };
        Ok(Request {
            name: BlueprintName::parse(name.trim())?,
            range,
        })
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.range.is_any() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{} {}", self.name, self.range)
        }
    }
}

/// Resolver options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Who resolves (decides what is visible).
    pub viewer: Viewer,
    /// Values per Blueprint (for `when` and for rendering), before defaults.
    pub values: BTreeMap<BlueprintName, Value>,
    /// Search budget.
    pub step_budget: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            viewer: Viewer::default(),
            values: BTreeMap::new(),
            step_budget: DEFAULT_STEP_BUDGET,
        }
    }
}

/// A resolved dependency edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// The dependency.
    pub name: BlueprintName,
    /// The version chosen for it (`None` when the catalog lacks it).
    pub version: Option<Version>,
    /// The alias the dependent uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// A dependency not installed because its `when` was false.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The dependency.
    pub name: BlueprintName,
    /// The predicate.
    pub when: String,
}

/// One Blueprint in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// Name.
    pub name: BlueprintName,
    /// Chosen version.
    pub version: Version,
    /// Published artifact digest, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The catalog source.
    pub source: Source,
    /// Dependencies it will be installed after (in declaration order).
    pub depends_on: Vec<Edge>,
    /// Dependencies skipped by `when`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Its configuration: schema defaults ⊕ values passed by dependents ⊕ caller's values.
    pub values: Value,
    /// Outputs it advertises.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub outputs: Value,
    /// Its configSchema (render validates `values` against it).
    #[serde(skip)]
    pub config_schema: Option<Value>,
}

/// A Blueprint that is required but not installable from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    /// The Blueprint.
    pub name: BlueprintName,
    /// Who requires it, with which range (`request` for the caller).
    pub required_by: Vec<String>,
    /// Why it is missing.
    pub reason: String,
}

/// An install plan: layers in order; everything in a layer may install in parallel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// What was asked for.
    pub requests: Vec<String>,
    /// Layers, each sorted by name.
    pub layers: Vec<Vec<Planned>>,
    /// Required Blueprints the catalog lacks (the plan is incomplete when non-empty).
    #[serde(default)]
    pub missing: Vec<Missing>,
}

impl Plan {
    /// Every planned Blueprint in install order.
    pub fn iter(&self) -> impl Iterator<Item = &Planned> {
        self.layers.iter().flatten()
    }

    /// Looks up a planned Blueprint.
    pub fn get(&self, name: &BlueprintName) -> Option<&Planned> {
        self.iter().find(|p| &p.name == name)
    }

    /// Every planned Blueprint whose values do not satisfy its configSchema, with the errors.
    pub fn value_errors(&self) -> Vec<(BlueprintName, crate::schema::ValueError)> {
        let mut out = Vec::new();
        for p in self.iter() {
            if let Some(schema) = &p.config_schema {
                if let Ok(v) = crate::schema::validate_values(schema, &p.values) {
                    out.extend(v.errors.into_iter().map(|e| (p.name.clone(), e)));
                }
            }
        }
        out
    }

    /// Human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Install plan for {}:", self.requests.join(", "));
        for (i, layer) in self.layers.iter().enumerate() {
            let _ = writeln!(out, "  layer {}:", i + 1);
            for p in layer {
                let deps: Vec<String> = p
                    .depends_on
                    .iter()
                    .map(|e| match (&e.version, &e.alias) {
                        (Some(v), Some(a)) => format!("{} {v} as {a}", e.name),
                        (Some(v), None) => format!("{} {v}", e.name),
                        (None, _) => format!("{} (missing)", e.name),
                    })
                    .collect();
                let _ = write!(out, "    {} {}", p.name, p.version);
                if !deps.is_empty() {
                    let _ = write!(out, "  after {}", deps.join(", "));
                }
                for s in &p.skipped {
                    let _ = write!(out, "  (skipped {}: when {})", s.name, s.when);
                }
                out.push('\n');
            }
        }
        if !self.missing.is_empty() {
            let _ = writeln!(out, "Missing from the catalog (the plan is incomplete):");
            for m in &self.missing {
                let _ = writeln!(
                    out,
                    "  {}: {}; required by {}",
                    m.name,
                    m.reason,
                    m.required_by.join(", ")
                );
            }
        }
        out
    }
}

/// One step in a chain of requirements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The requirer (`None` for the caller's request).
    pub from: Option<(BlueprintName, Version)>,
    /// The Blueprint required.
    pub name: BlueprintName,
    /// The range required.
    pub range: String,
}

/// Why no version of a Blueprint fits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The Blueprint no version of which satisfies everything.
    pub name: BlueprintName,
    /// One chain of requirements per side, each from a request down to `name`.
    pub sides: Vec<Vec<Step>>,
    /// Visible versions of `name`.
    pub known_versions: Vec<Version>,
    /// The version chosen earlier that a side rejects, when that is the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen: Option<Version>,
    /// One line per other conflict met while trying alternatives.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
}

/// One line: who needs which range of what, and what exists.
fn summary(c: &Conflict) -> String {
    let needs: Vec<String> = c
        .sides
        .iter()
        .filter_map(|s| s.last())
        .map(|s| match &s.from {
            Some((n, v)) => format!("{n} {v} needs {}", s.range),
            None => format!("the request needs {}", s.range),
        })
        .collect();
    let known: Vec<String> = c.known_versions.iter().map(Version::to_string).collect();
    let chosen = c
        .chosen
        .as_ref()
        .map(|v| format!(", {v} already chosen"))
        .unwrap_or_default();
    format!(
        "{}: {} (versions: {}{chosen})",
        c.name,
        needs.join(", "),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// Why resolution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ResolveError {
    /// Incompatible requirements.
    #[error("{}", explain(.0))]
    Conflict(Box<Conflict>),
    /// The chosen versions depend on each other in a circle.
    #[error("dependency cycle: {}", path.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" -> "))]
    Cycle {
        /// The cycle, first element repeated at the end.
        path: Vec<BlueprintName>,
    },
    /// The search gave up.
    #[error(
        "gave up after trying {steps} versions; the last problem was:\n{}",
        explain(last)
    )]
    TooComplex {
        /// Versions tried.
        steps: usize,
        /// The last conflict seen.
        last: Box<Conflict>,
    },
}

fn step_text(s: &Step) -> String {
    let what = if s.range == "*" {
        s.name.to_string()
    } else {
        format!("{} {}", s.name, s.range)
    };
    match &s.from {
        None => format!("you asked for {what}"),
        Some((n, v)) => format!("{n} {v} depends on {what}"),
    }
}

/// The PubGrub-style explanation of a conflict.
pub fn explain(c: &Conflict) -> String {
    let mut out = format!("no version of {} satisfies every requirement\n", c.name);
    let mut first = true;
    for side in &c.sides {
        for step in side {
            let lead = if first { "because" } else { "and" };
            first = false;
            let _ = writeln!(out, "  {lead} {},", step_text(step));
        }
    }
    let ranges: Vec<String> = c
        .sides
        .iter()
        .filter_map(|s| s.last())
        .map(|s| s.range.clone())
        .collect();
    let known = if c.known_versions.is_empty() {
        "none".to_string()
    } else {
        c.known_versions
            .iter()
            .map(Version::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &c.chosen {
        Some(v) => {
            let _ = writeln!(
                out,
                "  and {} {v} was already chosen, which is not {} (versions: {known}),",
                c.name,
                ranges.last().cloned().unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "  and no version of {} is {} (versions: {known}),",
                c.name,
                ranges.join(" and ")
            );
        }
    }
    let mut roots: Vec<String> = c
        .sides
        .iter()
        .filter_map(|s| s.first())
        .map(|s| {
            if s.range == "*" {
                s.name.to_string()
            } else {
                format!("{} {}", s.name, s.range)
            }
        })
        .collect();
    roots.dedup();
    if roots.len() > 1 {
        let _ = writeln!(
            out,
            "  so {} cannot be installed together.",
            roots.join(" and ")
        );
    } else {
        let _ = writeln!(out, "  so {} cannot be installed.", roots.join(""));
    }
    if !c.also.is_empty() {
        let _ = writeln!(out, "  the alternatives tried fail too:");
        for line in &c.also {
            let _ = writeln!(out, "    {line}");
        }
    }
    let _ = write!(
        out,
        "  help: change the request ({}), or publish a version of {} that satisfies {}",
        roots.join(", "),
        c.name,
        ranges.join(" and ")
    );
    out
}

#[derive(Debug, Clone)]
struct Constraint {
    range: VersionRange,
    from: Option<(BlueprintName, Version)>,
    values: Option<Value>,
}

enum Op {
    Constraint(BlueprintName),
    Assign(BlueprintName),
    Order,
}

struct Frame {
    name: BlueprintName,
    candidates: Vec<usize>,
    next: usize,
    trail_mark: usize,
    cursor: usize,
    /// Decisions that explain why candidates of this name fail.
    culprits: BTreeSet<BlueprintName>,
}

struct Solver<'a> {
    catalog: &'a Catalog,
    opts: &'a Options,
    constraints: HashMap<BlueprintName, Vec<Constraint>>,
    assigned: HashMap<BlueprintName, &'a Entry>,
    /// The configuration each `when` was evaluated against when the name was assigned.
    decided_config: HashMap<BlueprintName, Value>,
    order: Vec<BlueprintName>,
    missing: BTreeMap<BlueprintName, String>,
    trail: Vec<Op>,
    steps: usize,
    first_conflict: Option<Conflict>,
}

/// Resolves `requests` against `catalog` into an install plan.
pub fn resolve(
    catalog: &Catalog,
    requests: &[Request],
    opts: &Options,
) -> Result<Plan, ResolveError> {
    let mut s = Solver {
        catalog,
        opts,
        constraints: HashMap::new(),
        assigned: HashMap::new(),
        decided_config: HashMap::new(),
        order: Vec::new(),
        missing: BTreeMap::new(),
        trail: Vec::new(),
        steps: 0,
        first_conflict: None,
    };
    for r in requests {
        s.add_constraint(
            &r.name,
            Constraint {
                range: r.range.clone(),
                from: None,
                values: None,
            },
        );
    }
    s.trail.clear();
    s.search()?;
    let plan = s.plan(requests);
    Ok(plan)
}

impl<'a> Solver<'a> {
    fn add_constraint(&mut self, name: &BlueprintName, c: Constraint) {
        let list = self.constraints.entry(name.clone()).or_default();
        if list.is_empty() {
            self.order.push(name.clone());
            self.trail.push(Op::Order);
        }
        list.push(c);
        self.trail.push(Op::Constraint(name.clone()));
    }

    fn undo_to(&mut self, mark: usize) {
        while self.trail.len() > mark {
            match self.trail.pop() {
                Some(Op::Constraint(n)) => {
                    if let Some(l) = self.constraints.get_mut(&n) {
                        l.pop();
                        if l.is_empty() {
                            self.constraints.remove(&n);
                        }
                    }
                }
                Some(Op::Assign(n)) => {
                    self.assigned.remove(&n);
                    self.decided_config.remove(&n);
                }
                Some(Op::Order) => {
                    self.order.pop();
                }
                None => break,
            }
        }
    }

    fn visible_versions(&self, name: &BlueprintName) -> Result<Vec<&'a Entry>, String> {
        match self.catalog.lookup(name, &self.opts.viewer) {
            Lookup::Found(v) => Ok(v),
            Lookup::Hidden(e) => Err(match &e.source {
                Source::Organization(o) => format!("private to Organization {o}"),
                _ => "private, and in no Organization's catalog".to_string(),
            }),
            Lookup::Missing => Err("not in the catalog".to_string()),
        }
    }

    /// The next undecided name at or after `cursor`, skipping missing ones.
    fn next_undecided(&mut self, mut cursor: usize) -> Option<(usize, BlueprintName)> {
        while cursor < self.order.len() {
            let name = self.order[cursor].clone();
            if !self.assigned.contains_key(&name) && !self.missing.contains_key(&name) {
                match self.visible_versions(&name) {
                    Ok(_) => return Some((cursor, name)),
                    Err(reason) => {
                        self.missing.insert(name, reason);
                    }
                }
            }
            cursor += 1;
        }
        None
    }

    /// Depth-first search with conflict-directed backjumping: when no version of a name works,
    /// the search jumps back to the latest decision that constrained it (the requirers of its
    /// constraints, and the dependencies whose chosen versions rejected a candidate), skipping
    /// unrelated decisions, and carries the remaining culprits along.
    fn search(&mut self) -> Result<(), ResolveError> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut cursor = 0;
        loop {
            let Some((at, name)) = self.next_undecided(cursor) else {
                return Ok(());
            };
            let versions = self.visible_versions(&name).unwrap_or_default();
            let cons = self.constraints.get(&name).cloned().unwrap_or_default();
            let candidates: Vec<usize> = versions
                .iter()
                .enumerate()
                .filter(|(_, e)| cons.iter().all(|c| c.range.matches(&e.blueprint.version)))
                .map(|(i, _)| i)
                .collect();
            if candidates.is_empty() {
                let conflict = self.conflict_no_version(&name, &cons, &versions);
                self.record(conflict);
            }
            let culprits = cons
                .iter()
                .filter_map(|c| c.from.as_ref().map(|(n, _)| n.clone()))
                .collect();
            stack.push(Frame {
                name,
                candidates,
                next: 0,
                trail_mark: self.trail.len(),
                cursor: at,
                culprits,
            });
            // Try candidates, backjumping through the stack on failure.
            loop {
                let Some(frame) = stack.last_mut() else {
                    return Err(self.failure());
                };
                if frame.next >= frame.candidates.len() {
                    let Some(failed) = stack.pop() else {
                        return Err(self.failure());
                    };
                    self.undo_to(failed.trail_mark);
                    let mut culprits = failed.culprits;
                    culprits.remove(&failed.name);
                    let Some(target) = stack.iter().rposition(|f| culprits.contains(&f.name))
                    else {
                        return Err(self.failure());
                    };
                    stack.truncate(target + 1);
                    let Some(frame) = stack.last_mut() else {
                        return Err(self.failure());
                    };
                    self.undo_to(frame.trail_mark);
                    culprits.remove(&frame.name);
                    frame.culprits.extend(culprits);
                    frame.next += 1;
                    continue;
                }
                self.steps += 1;
                if self.steps > self.opts.step_budget {
                    return Err(match self.failure() {
                        ResolveError::Conflict(last) => ResolveError::TooComplex {
                            steps: self.steps,
                            last,
                        },
                        other => other,
                    });
                }
                let name = frame.name.clone();
                let idx = frame.candidates[frame.next];
                let frame_cursor = frame.cursor;
                let versions = self.visible_versions(&name).unwrap_or_default();
                let entry = versions[idx];
                match self.try_assign(&name, entry) {
                    Ok(()) => {
                        cursor = frame_cursor + 1;
                        break;
                    }
                    Err(culprit) => {
                        if let Some(frame) = stack.last_mut() {
                            let m = frame.trail_mark;
                            frame.culprits.insert(culprit);
                            frame.next += 1;
                            self.undo_to(m);
                        }
                    }
                }
            }
        }
    }

    /// Keeps the first conflict as the explanation and one line for each later, different one
    /// (the alternatives the search tried), up to a handful.
    fn record(&mut self, conflict: Conflict) {
        match &mut self.first_conflict {
            None => self.first_conflict = Some(conflict),
            Some(first) => {
                let line = summary(&conflict);
                if line != summary(first) && !first.also.contains(&line) && first.also.len() < 6 {
                    first.also.push(line);
                }
            }
        }
    }

    fn failure(&self) -> ResolveError {
        match &self.first_conflict {
            Some(c) => ResolveError::Conflict(Box::new(c.clone())),
            // Unreachable in practice: every failed frame records a conflict first.
            None => ResolveError::Cycle { path: Vec::new() },
        }
    }

    /// Assigns `entry` to `name` and adds its dependencies' constraints. Fails with the
    /// dependency whose already chosen version one of them rejects.
    fn try_assign(&mut self, name: &BlueprintName, entry: &'a Entry) -> Result<(), BlueprintName> {
        self.assigned.insert(name.clone(), entry);
        self.trail.push(Op::Assign(name.clone()));
        let config = self.config_of(name, entry);
        let bp = &entry.blueprint;
        let active: Vec<bool> = bp
            .depends
            .iter()
            .map(|d| d.when.as_ref().is_none_or(|w| w.eval(&config)))
            .collect();
        self.decided_config.insert(name.clone(), config);
        for (dep, active) in bp.depends.iter().zip(active) {
            if !active {
                continue;
            }
            let c = Constraint {
                range: dep.version.clone(),
                from: Some((bp.name.clone(), bp.version.clone())),
                values: dep.values.clone(),
            };
            if let Some(chosen) = self.assigned.get(&dep.blueprint) {
                if !dep.version.matches(&chosen.blueprint.version) {
                    let chosen_v = chosen.blueprint.version.clone();
                    let mut cons = self
                        .constraints
                        .get(&dep.blueprint)
                        .cloned()
                        .unwrap_or_default();
                    cons.push(c);
                    let versions = self.visible_versions(&dep.blueprint).unwrap_or_default();
                    let mut conflict = self.conflict_no_version(&dep.blueprint, &cons, &versions);
                    conflict.chosen = Some(chosen_v);
                    self.record(conflict);
                    return Err(dep.blueprint.clone());
                }
            }
            self.add_constraint(&dep.blueprint, c);
        }
        Ok(())
    }

    fn config_of(&self, name: &BlueprintName, entry: &Entry) -> Value {
        let mut values = Value::Object(serde_json::Map::new());
        for c in self.constraints.get(name).into_iter().flatten() {
            if let Some(v) = &c.values {
                merge(&mut values, v);
            }
        }
        if let Some(v) = self.opts.values.get(name) {
            merge(&mut values, v);
        }
        entry.blueprint.config_with_defaults(&values)
    }

    /// The requirement chain from a request down to `(name, c)`.
    fn chain(&self, name: &BlueprintName, c: &Constraint) -> Vec<Step> {
        let mut steps = vec![Step {
            from: c.from.clone(),
            name: name.clone(),
            range: c.range.to_string(),
        }];
        let mut seen = BTreeSet::new();
        let mut cur = c.from.clone();
        while let Some((n, _)) = cur {
            if !seen.insert(n.clone()) {
                break;
            }
            // The first constraint on `n` is the one that brought it in.
            let Some(first) = self.constraints.get(&n).and_then(|l| l.first()) else {
                break;
            };
            steps.push(Step {
                from: first.from.clone(),
                name: n.clone(),
                range: first.range.to_string(),
            });
            cur = first.from.clone();
        }
        steps.reverse();
        steps
    }

    fn conflict_no_version(
        &self,
        name: &BlueprintName,
        cons: &[Constraint],
        versions: &[&Entry],
    ) -> Conflict {
        let known: Vec<Version> = versions
            .iter()
            .map(|e| e.blueprint.version.clone())
            .collect();
        let fits = |cs: &[&Constraint]| known.iter().any(|v| cs.iter().all(|c| c.range.matches(v)));
        // A single unsatisfiable constraint explains it alone; else the first incompatible pair.
        let mut picked: Vec<&Constraint> = Vec::new();
        if let Some(c) = cons.iter().find(|c| !fits(&[c])) {
            picked.push(c);
        } else {
            'pairs: for (i, a) in cons.iter().enumerate() {
                for b in &cons[i + 1..] {
                    if !fits(&[a, b]) {
                        picked = vec![a, b];
                        break 'pairs;
                    }
                }
            }
            if picked.is_empty() {
                picked = cons.iter().collect();
            }
        }
        Conflict {
            name: name.clone(),
            sides: picked.iter().map(|c| self.chain(name, c)).collect(),
            known_versions: known,
            chosen: None,
            also: Vec::new(),
        }
    }

    fn plan(&self, requests: &[Request]) -> Plan {
        // Dependency edges among chosen versions (when-filtered).
        let mut nodes: BTreeMap<BlueprintName, Planned> = BTreeMap::new();
        let mut required_by: BTreeMap<BlueprintName, Vec<String>> = BTreeMap::new();
        for r in requests {
            required_by
                .entry(r.name.clone())
                .or_default()
                .push(format!("request {r}"));
        }
        let empty = Value::Null;
        for (name, entry) in &self.assigned {
            let bp = &entry.blueprint;
            // Values include what dependents decided later pass; `when` is judged as the search
            // judged it, so the plan has exactly the edges the search followed.
            let config = self.config_of(name, entry);
            let decided = self.decided_config.get(name).unwrap_or(&empty);
            let mut depends_on = Vec::new();
            let mut skipped = Vec::new();
            for dep in &bp.depends {
                if let Some(w) = &dep.when {
                    if !w.eval(decided) {
                        skipped.push(Skipped {
                            name: dep.blueprint.clone(),
                            when: w.as_str().to_string(),
                        });
                        continue;
                    }
                }
                required_by
                    .entry(dep.blueprint.clone())
                    .or_default()
                    .push(format!("{} {} ({})", bp.name, bp.version, dep.version));
                if depends_on.iter().any(|e: &Edge| e.name == dep.blueprint) {
                    continue;
                }
                depends_on.push(Edge {
                    name: dep.blueprint.clone(),
                    version: self
                        .assigned
                        .get(&dep.blueprint)
                        .map(|e| e.blueprint.version.clone()),
                    alias: dep.alias.clone(),
                });
            }
            nodes.insert(
                name.clone(),
                Planned {
                    name: name.clone(),
                    version: bp.version.clone(),
                    digest: bp.digest.clone(),
                    source: entry.source.clone(),
                    depends_on,
                    skipped,
                    values: config,
                    outputs: bp.outputs.clone(),
                    config_schema: bp.config_schema.clone(),
                },
            );
        }
        let missing = self
            .missing
            .iter()
            .filter(|(name, _)| self.constraints.contains_key(*name))
            .map(|(name, reason)| Missing {
                name: name.clone(),
                required_by: required_by.get(name).cloned().unwrap_or_default(),
                reason: reason.clone(),
            })
            .collect();
        Plan {
            requests: requests.iter().map(Request::to_string).collect(),
            layers: layers(nodes),
            missing,
        }
    }
}

/// Kahn layering; names in a layer sorted. Callers check for cycles first.
fn layers(mut nodes: BTreeMap<BlueprintName, Planned>) -> Vec<Vec<Planned>> {
    let mut placed: BTreeSet<BlueprintName> = BTreeSet::new();
    let mut out = Vec::new();
    while !nodes.is_empty() {
        let ready: Vec<BlueprintName> = nodes
            .values()
            .filter(|p| {
                p.depends_on
                    .iter()
                    .all(|e| e.version.is_none() || placed.contains(&e.name) || e.name == p.name)
            })
            .map(|p| p.name.clone())
            .collect();
        if ready.is_empty() {
            // A cycle: put the rest in one last layer rather than loop (find_cycle reports it).
            out.push(std::mem::take(&mut nodes).into_values().collect());
            break;
        }
        let layer: Vec<Planned> = ready.iter().filter_map(|n| nodes.remove(n)).collect();
        placed.extend(ready);
        out.push(layer);
    }
    out
}

/// Finds a dependency cycle among the planned Blueprints, as a path whose first element is
/// repeated at the end.
pub fn find_cycle(plan: &Plan) -> Option<Vec<BlueprintName>> {
    let edges: BTreeMap<&BlueprintName, Vec<&BlueprintName>> = plan
        .iter()
        .map(|p| {
            (
                &p.name,
                p.depends_on
                    .iter()
                    .filter(|e| e.version.is_some())
                    .map(|e| &e.name)
                    .collect(),
            )
        })
        .collect();
    // Iterative DFS with colors: 1 = on the stack, 2 = done.
    let mut color: BTreeMap<&BlueprintName, u8> = BTreeMap::new();
    for start in edges.keys() {
        if color.contains_key(start) {
            continue;
        }
        let mut stack: Vec<(&BlueprintName, usize)> = vec![(start, 0)];
        color.insert(start, 1);
        while let Some((node, i)) = stack.last().copied() {
            let next = edges.get(node).and_then(|v| v.get(i)).copied();
            match next {
                None => {
                    color.insert(node, 2);
                    stack.pop();
                }
                Some(n) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    match color.get(n) {
                        Some(1) => {
                            let from = stack.iter().position(|(x, _)| *x == n).unwrap_or(0);
                            let mut path: Vec<BlueprintName> =
                                stack[from..].iter().map(|(x, _)| (*x).clone()).collect();
                            path.push(n.clone());
                            return Some(path);
                        }
                        Some(_) => {}
                        None => {
                            if edges.contains_key(n) {
                                color.insert(n, 1);
                                stack.push((n, 0));
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

/// Resolves and rejects cycles: the plan every caller wants.
pub fn resolve_plan(
    catalog: &Catalog,
    requests: &[Request],
    opts: &Options,
) -> Result<Plan, ResolveError> {
    let plan = resolve(catalog, requests, opts)?;
    if let Some(path) = find_cycle(&plan) {
        return Err(ResolveError::Cycle { path });
    }
    Ok(plan)
}

/// Deep-merges `over` into `base` (objects merge, everything else replaces).
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}
