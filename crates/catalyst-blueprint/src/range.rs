//! Helm-style version ranges: `^1`, `~1.2`, `1.2.x`, `>=1.0 <2`, `>= 1.0, < 2`, `1.0 - 1.4`,
//! `a || b`, `*`, and exact versions (`1.2.3` means `=1.2.3`, as in Helm, not `^1.2.3` as in Cargo).

use std::fmt;

use semver::{Comparator, Op, Version, VersionReq};

/// A parsed version range: a disjunction of conjunctions of semver comparators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRange {
    raw: String,
    any_of: Vec<VersionReq>,
}

/// Why a range does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version range {range:?}: {reason}")]
pub struct RangeError {
    /// The text given.
    pub range: String,
    /// What is wrong with it.
    pub reason: String,
}

impl VersionRange {
    /// The range that matches every version (`*`).
    pub fn any() -> VersionRange {
        VersionRange {
            raw: "*".to_string(),
            any_of: vec![VersionReq::STAR],
        }
    }

    /// The range that matches exactly `v`.
    pub fn exact(v: &Version) -> VersionRange {
        VersionRange {
            raw: v.to_string(),
            any_of: vec![VersionReq {
                comparators: vec![exact_comparator(v)],
            }],
        }
    }

    /// Parses a Helm-style range.
    pub fn parse(text: &str) -> Result<VersionRange, RangeError> {
        let err = |reason: String| RangeError {
            range: text.to_string(),
            reason,
        };
        let raw = text.trim();
        if raw.is_empty() {
            return Err(err("empty range".to_string()));
        }
        let mut any_of = Vec::new();
        for alt in raw.split("||") {
            let alt = alt.trim();
            if alt.is_empty() {
                return Err(err("empty alternative around `||`".to_string()));
            }
            any_of.push(parse_conjunction(alt).map_err(err)?);
        }
        Ok(VersionRange {
            raw: raw.to_string(),
            any_of,
        })
    }

    /// Whether `v` satisfies the range.
    pub fn matches(&self, v: &Version) -> bool {
        self.any_of.iter().any(|r| r.matches(v))
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether this is `*`.
    pub fn is_any(&self) -> bool {
        self.any_of.iter().any(|r| r.comparators.is_empty())
    }
}

impl fmt::Display for VersionRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl serde::Serialize for VersionRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

fn exact_comparator(v: &Version) -> Comparator {
    Comparator {
        op: Op::Exact,
        major: v.major,
        minor: Some(v.minor),
        patch: Some(v.patch),
        pre: v.pre.clone(),
    }
}

fn parse_conjunction(alt: &str) -> Result<VersionReq, String> {
    // Hyphen range: `1.2 - 1.4.5` means `>=1.2.0, <=1.4.5`.
    let words: Vec<&str> = alt
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() == 3 && words[1] == "-" {
        let lo = parse_comparator(&format!(">={}", words[0]))?;
        let hi = parse_comparator(&format!("<={}", words[2]))?;
        return Ok(VersionReq {
            comparators: vec![lo, hi],
        });
    }
    let mut comparators = Vec::new();
    let mut pending_op: Option<&str> = None;
    for w in words {
        if matches!(w, ">=" | "<=" | ">" | "<" | "=" | "^" | "~" | "~>") {
            if pending_op.is_some() {
                return Err(format!("two operators in a row near {w:?}"));
            }
            pending_op = Some(w);
            continue;
        }
        let token = match pending_op.take() {
            Some(op) => format!("{op}{w}"),
            None => w.to_string(),
        };
        if matches!(token.as_str(), "*" | "x" | "X") {
            continue;
        }
        comparators.push(parse_comparator(&token)?);
    }
    if let Some(op) = pending_op {
        return Err(format!("operator {op:?} without a version"));
    }
    Ok(VersionReq { comparators })
}

fn parse_comparator(token: &str) -> Result<Comparator, String> {
    let token = token.strip_prefix('v').unwrap_or(token);
    let (op, rest) = split_op(token);
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    if rest.is_empty() {
        return Err(format!("operator {op:?} without a version"));
    }
    let op = if op == "~>" { "~" } else { op };
    // A bare version without wildcards is exact in Helm.
    let op = if op.is_empty() && !has_wildcard(rest) && rest.split('.').count() == 3 {
        "="
    } else {
        op
    };
    let normalized = format!("{op}{}", rest.replace(['X', '*'], "x"));
    Comparator::parse(&normalized).map_err(|e| format!("{token:?}: {e}"))
}

fn split_op(token: &str) -> (&str, &str) {
    for op in [">=", "<=", "~>", ">", "<", "=", "^", "~"] {
        if let Some(rest) = token.strip_prefix(op) {
            return (op, rest.trim());
        }
    }
    ("", token)
}

fn has_wildcard(s: &str) -> bool {
    s.split('.').any(|p| matches!(p, "x" | "X" | "*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(range: &str, yes: &[&str], no: &[&str]) {
        let r = VersionRange::parse(range).unwrap_or_else(|e| panic!("{e}"));
        for v in yes {
            assert!(
                r.matches(&Version::parse(v).unwrap()),
                "{range} should match {v}"
            );
        }
        for v in no {
            assert!(
                !r.matches(&Version::parse(v).unwrap()),
                "{range} should not match {v}"
            );
        }
    }

    #[test]
    fn helm_ranges() {
        check("^1", &["1.0.0", "1.9.3"], &["0.9.0", "2.0.0"]);
        check("^1.1", &["1.1.0", "1.4.0"], &["1.0.9", "2.0.0"]);
        check("~1.2", &["1.2.0", "1.2.9"], &["1.3.0"]);
        check("1.2.x", &["1.2.0", "1.2.7"], &["1.3.0"]);
        check("0.x", &["0.1.0"], &["1.0.0"]);
        check(">=1.0 <2", &["1.0.0", "1.99.0"], &["0.9.0", "2.0.0"]);
        check(">= 1.0, < 2", &["1.5.0"], &["2.0.0"]);
        check("1.2.3", &["1.2.3"], &["1.2.4", "1.3.0"]);
        check("=1.2.3", &["1.2.3"], &["1.2.4"]);
        check("^1 || ^3", &["1.0.0", "3.1.0"], &["2.0.0"]);
        check("*", &["0.0.1", "9.9.9"], &[]);
        check("1.0 - 1.4.5", &["1.0.0", "1.4.5"], &["1.4.6"]);
    }

    #[test]
    fn bad_ranges() {
        for r in ["", "^", ">= ", "abc", "1.2.3.4", "^1 ||", ">= >= 1"] {
            assert!(VersionRange::parse(r).is_err(), "{r:?} should not parse");
        }
    }
}
