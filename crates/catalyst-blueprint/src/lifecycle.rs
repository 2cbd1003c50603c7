//! Upgrade and uninstall plans for Blueprints already installed.
//!
//! An upgrade follows the target install plan's order (dependencies before dependents); a version
//! change is allowed when the target version's `upgrades.blocks` does not match the installed
//! version and its `upgrades.from` (when given) does. A blocked step holds everything that depends
//! on it. Uninstall removes dependents before dependencies and refuses to remove a Blueprint an
//! installed one still needs, unless asked to cascade.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use semver::Version;
use serde::Serialize;

use crate::catalog::{Catalog, Viewer};
use crate::model::BlueprintName;
use crate::resolve::Plan;

/// What happens to one Blueprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Newly installed.
    Install,
    /// Version changes.
    Upgrade,
    /// Version goes down.
    Downgrade,
    /// Unchanged.
    Keep,
    /// The version change is not allowed.
    Blocked,
    /// Waits for a blocked dependency.
    Held,
    /// Removed.
    Remove,
}

/// One step of an upgrade or uninstall plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The Blueprint.
    pub name: BlueprintName,
    /// What happens.
    pub action: Action,
    /// Installed version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Version>,
    /// Target version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Version>,
    /// Why (for blocked and held steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An ordered list of steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecyclePlan {
    /// Steps in execution order.
    pub steps: Vec<Step>,
    /// Installed Blueprints the target no longer needs (left in place).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unneeded: Vec<BlueprintName>,
}

impl LifecyclePlan {
    /// True when some step is blocked or held.
    pub fn is_blocked(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Blocked | Action::Held))
    }

    /// Human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.steps.iter().enumerate() {
            let versions = match (&s.from, &s.to) {
                (Some(a), Some(b)) if a != b => format!("{a} -> {b}"),
                (Some(a), _) => a.to_string(),
                (None, Some(b)) => b.to_string(),
                (None, None) => String::new(),
            };
            let action = serde_json::to_value(s.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = write!(out, "{:>3}. {action:<9} {} {versions}", i + 1, s.name);
            if let Some(r) = &s.reason {
                let _ = write!(out, "  ({r})");
            }
            out.push('\n');
        }
        for u in &self.unneeded {
            let _ = writeln!(out, "     no longer needed: {u} (left installed)");
        }
        out
    }
}

/// Plans the move from `installed` to `target` (a resolved install plan).
pub fn plan_upgrade(
    installed: &BTreeMap<BlueprintName, Version>,
    target: &Plan,
    catalog: &Catalog,
    viewer: &Viewer,
) -> LifecyclePlan {
    let mut steps = Vec::new();
    let mut stopped: BTreeMap<BlueprintName, BlueprintName> = BTreeMap::new();
    for p in target.iter() {
        let from = installed.get(&p.name).cloned();
        let blocked_dep = p.depends_on.iter().find_map(|e| {
            stopped
                .get(&e.name)
                .map(|root| (e.name.clone(), root.clone()))
        });
        let (action, reason) = match &from {
            None => (Action::Install, None),
            Some(v) if v == &p.version => (Action::Keep, None),
            Some(v) => match catalog.get(&p.name, &p.version, viewer) {
                Some(entry) => {
                    let up = &entry.blueprint.upgrades;
                    if let Some(r) = up.blocks.iter().find(|r| r.matches(v)) {
                        (
                            Action::Blocked,
                            Some(format!(
                                "{} {} blocks upgrades from {r}: no upgrade path from {v}; uninstall and reinstall",
                                p.name, p.version
                            )),
                        )
                    } else if !up.from.is_empty() && !up.from.iter().any(|r| r.matches(v)) {
                        let allowed: Vec<&str> = up.from.iter().map(|r| r.as_str()).collect();
                        (
                            Action::Blocked,
                            Some(format!(
                                "{} {} upgrades only from {}, not from {v}",
                                p.name,
                                p.version,
                                allowed.join(", ")
                            )),
                        )
                    } else if v > &p.version {
                        (Action::Downgrade, None)
                    } else {
                        (Action::Upgrade, None)
                    }
                }
                None => (Action::Upgrade, None),
            },
        };
        let (action, reason) = match (action, blocked_dep) {
            (Action::Keep, _) | (Action::Blocked, _) => (action, reason),
            (_, Some((dep, root))) => (
                Action::Held,
                Some(if dep == root {
                    format!("waits for {dep}, which is blocked")
                } else {
                    format!("waits for {dep}, held by blocked {root}")
                }),
            ),
            (a, None) => (a, reason),
        };
        match action {
            Action::Blocked => {
                stopped.insert(p.name.clone(), p.name.clone());
            }
            Action::Held => {
                let root = p
                    .depends_on
                    .iter()
                    .find_map(|e| stopped.get(&e.name).cloned())
                    .unwrap_or_else(|| p.name.clone());
                stopped.insert(p.name.clone(), root);
            }
            _ => {}
        }
        steps.push(Step {
            name: p.name.clone(),
            action,
            from,
            to: Some(p.version.clone()),
            reason,
        });
    }
    let unneeded = installed
        .keys()
        .filter(|n| target.get(n).is_none())
        .cloned()
        .collect();
    LifecyclePlan { steps, unneeded }
}

/// Why an uninstall cannot go ahead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum UninstallError {
    /// Something installed still needs a Blueprint being removed.
    #[error("{}", needed_text(needed))]
    StillNeeded {
        /// (removed Blueprint, installed dependents that need it)
        needed: Vec<(BlueprintName, Vec<BlueprintName>)>,
    },
    /// A Blueprint to remove is not installed.
    #[error("{0} is not installed")]
    NotInstalled(BlueprintName),
}

fn needed_text(needed: &[(BlueprintName, Vec<BlueprintName>)]) -> String {
    let mut out = String::new();
    for (n, by) in needed {
        let by: Vec<&str> = by.iter().map(BlueprintName::as_str).collect();
        let _ = writeln!(out, "{n} is still needed by {}", by.join(", "));
    }
    out.push_str("help: remove those too with --cascade, or uninstall them first");
    out
}

/// Plans removing `targets` from `installed`. Dependencies between installed Blueprints come
/// from the catalog entry of each installed version (all `depends`, ignoring `when`, so nothing
/// needed is removed); an installed version the catalog lacks is assumed to need nothing.
pub fn plan_uninstall(
    installed: &BTreeMap<BlueprintName, Version>,
    targets: &[BlueprintName],
    cascade: bool,
    catalog: &Catalog,
    viewer: &Viewer,
) -> Result<LifecyclePlan, UninstallError> {
    for t in targets {
        if !installed.contains_key(t) {
            return Err(UninstallError::NotInstalled(t.clone()));
        }
    }
    // needs[a] = installed Blueprints a depends on.
    let needs: BTreeMap<&BlueprintName, BTreeSet<&BlueprintName>> = installed
        .iter()
        .map(|(n, v)| {
            let deps = catalog
                .get(n, v, viewer)
                .map(|e| {
                    e.blueprint
                        .depends
                        .iter()
                        .filter_map(|d| installed.get_key_value(&d.blueprint).map(|(k, _)| k))
                        .collect()
                })
                .unwrap_or_default();
            (n, deps)
        })
        .collect();
    let mut remove: BTreeSet<&BlueprintName> = targets.iter().collect();
    if cascade {
        loop {
            let more: Vec<&BlueprintName> = needs
                .iter()
                .filter(|(n, deps)| !remove.contains(*n) && deps.iter().any(|d| remove.contains(d)))
                .map(|(n, _)| *n)
                .collect();
            if more.is_empty() {
                break;
            }
            remove.extend(more);
        }
    } else {
        let mut needed = Vec::new();
        for t in &remove {
            let by: Vec<BlueprintName> = needs
                .iter()
                .filter(|(n, deps)| !remove.contains(*n) && deps.contains(t))
                .map(|(n, _)| (*n).clone())
                .collect();
            if !by.is_empty() {
                needed.push(((*t).clone(), by));
            }
        }
        if !needed.is_empty() {
            return Err(UninstallError::StillNeeded { needed });
        }
    }
    // Reverse topological order: a Blueprint goes when nothing left in the set needs it.
    let mut left: BTreeSet<&BlueprintName> = remove.clone();
    let mut steps = Vec::new();
    while !left.is_empty() {
        let ready: Vec<&BlueprintName> = left
            .iter()
            .filter(|n| {
                !left
                    .iter()
                    .any(|other| other != *n && needs.get(other).is_some_and(|d| d.contains(*n)))
            })
            .copied()
            .collect();
        // A dependency cycle among installed Blueprints: remove the rest in name order.
        let ready = if ready.is_empty() {
            left.iter().copied().collect()
        } else {
            ready
        };
        for n in ready {
            left.remove(n);
            steps.push(Step {
                name: n.clone(),
                action: Action::Remove,
                from: installed.get(n).cloned(),
                to: None,
                reason: None,
            });
        }
    }
    Ok(LifecyclePlan {
        steps,
        unneeded: Vec::new(),
    })
}
