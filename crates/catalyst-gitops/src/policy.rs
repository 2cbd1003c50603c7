//! EnvironmentPolicy rules: validation when a policy is written, evaluation when a promotion
//! asks for the destination. Pure: the caller passes the clock, the source's change time and
//! the recorded approvals.
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use serde_json::Value;

/// Facts a promotion is judged on.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Now.
    pub now: DateTime<Utc>,
    /// When the source branch last changed.
    pub source_changed: DateTime<Utc>,
    /// Approvers (token names) recorded for the source commit being promoted.
    pub approvals: Vec<String>,
}

/// Parses `90s`, `30m`, `72h`, `2d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30m, 72h or 2d"))?;
    let n = n.min(10 * 365 * 86_400);
    Ok(match unit {
        "" | "s" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use s, m, h or d")),
    })
}

/// One cron field as the set of values it matches.
fn cron_field(s: &str, min: u32, max: u32) -> Result<Vec<bool>, String> {
    let mut set = vec![false; max as usize + 1];
    for part in s.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, st)) => (
                r,
                st.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("bad step in {part:?}"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                a.parse().map_err(|_| format!("bad value {a:?}"))?,
                b.parse().map_err(|_| format!("bad value {b:?}"))?,
            )
        } else {
            let v: u32 = range.parse().map_err(|_| format!("bad value {range:?}"))?;
            (v, if step > 1 { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("{part:?} is outside {min}-{max}"));
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v = v.saturating_add(step);
        }
    }
    Ok(set)
}

/// A parsed five-field cron expression (minute hour day-of-month month day-of-week).
#[derive(Debug, Clone)]
pub struct Cron {
    minute: Vec<bool>,
    hour: Vec<bool>,
    dom: Vec<bool>,
    month: Vec<bool>,
    dow: Vec<bool>,
    dom_any: bool,
    dow_any: bool,
}

impl Cron {
    /// Parses `"0 14 * * 2,4"`.
    pub fn parse(s: &str) -> Result<Cron, String> {
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!("cron {s:?} must have five fields"));
        }
        let mut dow = cron_field(f[4], 0, 7)?;
        if dow[7] {
            dow[0] = true;
        }
        Ok(Cron {
            minute: cron_field(f[0], 0, 59)?,
            hour: cron_field(f[1], 0, 23)?,
            dom: cron_field(f[2], 1, 31)?,
            month: cron_field(f[3], 1, 12)?,
            dow,
            dom_any: f[2] == "*",
            dow_any: f[4] == "*",
        })
    }

    /// True when the cron fires at `t`'s minute.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let dom = self.dom[t.day() as usize];
        let dow = self.dow[t.weekday().num_days_from_sunday() as usize];
        let day = match (self.dom_any, self.dow_any) {
            (false, false) => dom || dow,
            _ => dom && dow,
        };
        self.minute[t.minute() as usize]
            && self.hour[t.hour() as usize]
            && self.month[t.month() as usize]
            && day
    }
}

/// Checks a rule list; returns what is wrong with the first bad rule.
pub fn validate_rules(rules: &Value) -> Result<(), String> {
    let Some(list) = rules.as_array() else {
        return Err("rules must be a list".to_string());
    };
    for (i, r) in list.iter().enumerate() {
        let at = format!("rules[{i}]");
        // First what the EnvironmentPolicy CRD says of a rule (the committed resource must
        // pass it): known fields only, their types and patterns.
        if let Some(e) = rule_validator().and_then(|v| v.iter_errors(r).next()) {
            let pointer = e.instance_path().to_string();
            let pointer = if pointer.is_empty() {
                "/".into()
            } else {
                pointer
            };
            return Err(format!("{at}: {pointer}: {e}"));
        }
        let s = |k: &str| r.get(k).and_then(Value::as_str);
        match s("kind") {
            Some("pr-required") => {
                if r.get("minApprovals").and_then(Value::as_u64).is_none() {
                    return Err(format!("{at}: pr-required needs minApprovals (a number)"));
                }
            }
            Some("soak") => {
                parse_duration(s("duration").unwrap_or("")).map_err(|e| format!("{at}: {e}"))?;
            }
            Some("change-window") => {
                Cron::parse(s("cron").unwrap_or("")).map_err(|e| format!("{at}: {e}"))?;
                parse_duration(s("duration").unwrap_or("")).map_err(|e| format!("{at}: {e}"))?;
            }
            Some("re-score-gate") => {}
            other => {
                return Err(format!(
                    "{at}: unknown kind {other:?}; use pr-required, soak, change-window or re-score-gate"
                ))
            }
        }
    }
    Ok(())
}

/// A strict validator of one rule: the `rules` items of the EnvironmentPolicy CRD's schema,
/// unknown fields refused as the API server would prune them.
fn rule_validator() -> Option<&'static jsonschema::Validator> {
    use std::sync::OnceLock;
    static RULE: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    RULE.get_or_init(|| {
        let crd = catalyst_crds::documents()
            .into_iter()
            .find(|c| c["spec"]["names"]["kind"] == "EnvironmentPolicy")?;
        let schema = catalyst_crds::strict_version_schema(&crd, catalyst_crds::VERSION)?;
        let items = schema.pointer("/properties/spec/properties/rules/items")?;
        jsonschema::validator_for(items).ok()
    })
    .as_ref()
}

/// The first rule the facts do not satisfy, as `(kind, why)`.
pub fn unmet(rules: &Value, facts: &Facts) -> Option<(String, String)> {
    for r in rules.as_array().into_iter().flatten() {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        match s("kind") {
            "pr-required" => {
                let need = r.get("minApprovals").and_then(Value::as_u64).unwrap_or(1) as usize;
                if facts.approvals.len() < need {
                    return Some((
                        "pr-required".into(),
                        format!(
                            "needs {need} approval(s) of the source commit, has {}",
                            facts.approvals.len()
                        ),
                    ));
                }
            }
            "soak" => {
                let d = parse_duration(s("duration")).unwrap_or_else(|_| Duration::zero());
                let soaked = facts.now - facts.source_changed;
                if soaked < d {
                    return Some((
                        "soak".into(),
                        format!(
                            "the source changed {}s ago; it must soak for {}",
                            soaked.num_seconds(),
                            s("duration")
                        ),
                    ));
                }
            }
            "change-window" => {
                let open = match (Cron::parse(s("cron")), parse_duration(s("duration"))) {
                    (Ok(cron), Ok(d)) => {
                        let minutes = d.num_minutes().min(7 * 24 * 60);
                        let now = facts.now.with_second(0).unwrap_or(facts.now);
                        (0..=minutes).any(|m| cron.matches(now - Duration::minutes(m)))
                    }
                    _ => false,
                };
                if !open {
                    return Some((
                        "change-window".into(),
                        format!(
                            "outside the change window (cron {:?}, duration {})",
                            s("cron"),
                            s("duration")
                        ),
                    ));
                }
            }
            "re-score-gate" => {
                return Some((
                    "re-score-gate".into(),
                    "no RE score is available for this Application yet".into(),
                ))
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn cron_windows() {
        let c = Cron::parse("0 14 * * 2,4").unwrap();
        // 2026-11-24 is a Tuesday.
        assert!(c.matches(Utc.with_ymd_and_hms(2026, 11, 24, 14, 0, 0).unwrap()));
        assert!(!c.matches(Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap()));
        let rules = serde_json::json!([{"kind": "change-window", "cron": "0 14 * * 2,4", "duration": "2h"}]);
        let facts = |h, m| Facts {
            now: Utc.with_ymd_and_hms(2026, 11, 24, h, m, 0).unwrap(),
            source_changed: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
            approvals: vec![],
        };
        assert!(unmet(&rules, &facts(15, 30)).is_none());
        assert_eq!(unmet(&rules, &facts(16, 30)).unwrap().0, "change-window");
        assert!(Cron::parse("61 * * * *").is_err());
        assert!(Cron::parse("59/4294967295 * * * *").is_ok());
        assert!(Cron::parse("* * * * *").is_ok());
        assert!(parse_duration("999999999999d").is_ok());
        assert!(validate_rules(&serde_json::json!([{"kind": "nope"}])).is_err());
        // What the CRD refuses is refused here too: an unknown field, a wrong type.
        let typo = validate_rules(
            &serde_json::json!([{"kind": "pr-required", "minApprovals": 1, "minAprovals": 2}]),
        );
        assert!(
            typo.as_ref()
                .is_err_and(|e| e.starts_with("rules[0]: /: ") && e.contains("minAprovals")),
            "{typo:?}"
        );
        let negative = validate_rules(
            &serde_json::json!([{"kind": "soak", "duration": "1h"}, {"kind": "pr-required", "minApprovals": -1}]),
        );
        assert!(
            negative
                .as_ref()
                .is_err_and(|e| e.starts_with("rules[1]: /minApprovals: ")),
            "{negative:?}"
        );
        assert!(validate_rules(
            &serde_json::json!([{"kind": "pr-required", "minApprovals": 2, "approvers": ["ann"]}])
        )
        .is_ok());
    }
}
