//! Lenient conversion of an upstream (Go) deployment record file into a record and its events.
//!
//! The upstream format (one JSON file per deployment, the whole history inside) is decoded field
//! by field without validation: what is missing or mistyped becomes empty. Credential fields
//! (`hetznerToken`, `dynadotKey`, `dynadotSecret`, `registrarToken`) are never read.

use catalyst_core::deployment::PoolReservation;
use catalyst_core::{
    DeploymentId, DeploymentRecord, DeploymentSpec, DeploymentStatus, DomainMode, Event,
    EventDraft, Level, ProvisionResult, RegionSpec,
};
use chrono::{DateTime, Datelike, Utc};
use serde_json::Value;

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn non_empty(v: &Value, key: &str) -> Option<String> {
    Some(text(v, key)).filter(|s| !s.is_empty())
}

fn count(v: &Value, key: &str) -> u32 {
    let n = match v.get(key) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// An RFC 3339 time; Go's zero time (`0001-01-01T00:00:00Z`) and garbage are `None`.
fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    let s = v.get(key)?.as_str()?;
    let t = DateTime::parse_from_rfc3339(s.trim())
        .ok()?
        .with_timezone(&Utc);
    (t.year() > 1).then_some(t)
}

fn level(s: &str) -> Level {
    match s.trim().to_ascii_lowercase().as_str() {
        "warn" | "warning" => Level::Warn,
        "error" => Level::Error,
        _ => Level::Info,
    }
}

fn region(provider: String, r: &Value) -> RegionSpec {
    RegionSpec {
        provider: if provider.is_empty() {
            "hetzner".into()
        } else {
            provider
        },
        cloud_region: text(r, "cloudRegion"),
        control_plane_size: text(r, "controlPlaneSize"),
        worker_size: text(r, "workerSize"),
        worker_count: count(r, "workerCount"),
    }
}

fn spec(req: &Value) -> DeploymentSpec {
    let domain_mode =
        DomainMode::parse(&text(req, "sovereignDomainMode")).unwrap_or(DomainMode::ByoManual);
    let mut regions: Vec<RegionSpec> = req
        .get("regions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|r| r.is_object())
                .map(|r| region(text(r, "provider"), r))
                .collect()
        })
        .unwrap_or_default();
    if regions.is_empty() {
        // The legacy singular fields (always at least one region, so `primary()` is safe).
        regions.push(RegionSpec {
            provider: "hetzner".into(),
            cloud_region: text(req, "region"),
            control_plane_size: text(req, "controlPlaneSize"),
            worker_size: text(req, "workerSize"),
            worker_count: count(req, "workerCount"),
        });
    }
    let pool = domain_mode == DomainMode::Pool;
    DeploymentSpec {
        org_name: text(req, "orgName"),
        org_email: text(req, "orgEmail"),
        sovereign_fqdn: text(req, "sovereignFQDN").to_ascii_lowercase(),
        domain_mode,
        pool_domain: non_empty(req, "sovereignPoolDomain").filter(|_| pool),
        subdomain: non_empty(req, "sovereignSubdomain").filter(|_| pool),
        hetzner_project_id: text(req, "hetznerProjectID"),
        regions,
        ha_enabled: flag(req, "haEnabled"),
        ssh_public_key: text(req, "sshPublicKey"),
        components: Vec::new(),
    }
}

/// Decodes an upstream record file. Errors (not JSON, not an object, empty or invalid id) are
/// messages for a load warning; the file is then left in place.
pub(crate) fn convert(bytes: &[u8]) -> Result<(DeploymentRecord, Vec<Event>), String> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not decodable as an upstream record: {e}; left in place"))?;
    if !v.is_object() {
        return Err("not a JSON object, so not an upstream record; left in place".into());
    }
    let raw_id = text(&v, "id");
    if raw_id.is_empty() {
        return Err("upstream record has an empty id; left in place".into());
    }
    let id = DeploymentId::parse(&raw_id)
        .map_err(|e| format!("upstream record has an {e}; left in place"))?;

    let null = Value::Null;
    let req = v.get("request").unwrap_or(&null);
    let spec = spec(req);

    let raw_events: &[Value] = v
        .get("events")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let started = time(&v, "startedAt")
        .or_else(|| raw_events.first().and_then(|e| time(e, "time")))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let events: Vec<Event> = raw_events
        .iter()
        .zip(1u64..)
        .map(|(e, seq)| {
            EventDraft::new(
                time(e, "time").unwrap_or(started),
                text(e, "phase"),
                level(&text(e, "level")),
                e.get("message").and_then(Value::as_str).unwrap_or(""),
            )
            .sequenced(seq)
        })
        .collect();

    let mut error = non_empty(&v, "error");
    let raw_status = text(&v, "status");
    let status = DeploymentStatus::parse(&raw_status).unwrap_or_else(|| {
        error.get_or_insert_with(|| format!("unknown upstream status {raw_status:?}"));
        DeploymentStatus::Failed
    });
    let result = v.get("result").filter(|r| r.is_object()).map(|r| {
        let fqdn = non_empty(r, "sovereignFQDN").unwrap_or_else(|| spec.sovereign_fqdn.clone());
        ProvisionResult {
            control_plane_ip: non_empty(r, "controlPlaneIP"),
            load_balancer_ip: non_empty(r, "loadBalancerIP"),
            console_url: non_empty(r, "consoleURL")
                .unwrap_or_else(|| format!("https://console.{fqdn}")),
            gitops_repo_url: non_empty(r, "gitopsRepoURL")
                .unwrap_or_else(|| format!("https://gitea.{fqdn}")),
            sovereign_fqdn: fqdn,
            dry_run: false,
        }
    });
    let token = text(&v, "pdmReservationToken");
    let pool_domain = text(&v, "pdmPoolDomain");
    let subdomain = text(&v, "pdmSubdomain");
    let reservation = if token.is_empty() && pool_domain.is_empty() && subdomain.is_empty() {
        None
    } else {
        Some(PoolReservation {
            pool_domain,
            subdomain,
            reservation_token: token,
        })
    };

    let record = DeploymentRecord {
        id,
        status,
        spec,
        result,
        error,
        started_at: started,
        finished_at: time(&v, "finishedAt"),
        last_seq: events.len() as u64,
        dry_run: false,
        reservation,
        status_seq: 0,
    };
    Ok((record, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_leniently() {
        let json = r#"{"id":"00112233aabbccdd","status":"ready",
            "request":{"orgName":"Omantel","orgEmail":"a@b.co","sovereignFQDN":"K8S.Example.com",
              "sovereignDomainMode":"byo","hetznerToken":"<redacted>","region":"nbg1",
              "controlPlaneSize":"cpx32","workerCount":2,"workerSize":"cpx42"},
            "result":{"sovereignFQDN":"k8s.example.com","controlPlaneIP":"","loadBalancerIP":"1.2.3.4",
              "consoleURL":"https://console.k8s.example.com","gitopsRepoURL":"https://gitea.k8s.example.com"},
            "startedAt":"2025-01-02T03:04:05.123456789Z","finishedAt":"0001-01-01T00:00:00Z",
            "events":[{"time":"2025-01-02T03:04:06Z","phase":"tofu","level":"warn","message":"x"}],
            "pdmReservationToken":"tok","pdmPoolDomain":"omani.works","pdmSubdomain":"k8s"}"#;
        let (r, ev) = convert(json.as_bytes()).unwrap();
        assert_eq!(r.spec.domain_mode, DomainMode::ByoManual);
        assert_eq!(r.spec.sovereign_fqdn, "k8s.example.com");
        assert_eq!(r.spec.regions[0].provider, "hetzner");
        assert_eq!(r.spec.regions[0].worker_count, 2);
        assert_eq!(r.finished_at, None);
        assert_eq!(r.result.as_ref().unwrap().control_plane_ip, None);
        assert_eq!(
            r.result.as_ref().unwrap().load_balancer_ip.as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(r.reservation.as_ref().unwrap().reservation_token, "tok");
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].seq, 1);
        assert_eq!(ev[0].draft.level, Level::Warn);
        assert_eq!(r.last_seq, 1);
    }

    #[test]
    fn rejects_garbage() {
        assert!(convert(b"not json").is_err());
        assert!(convert(b"[]").is_err());
        assert!(convert(br#"{"id":""}"#).is_err());
        assert!(convert(br#"{"id":"../x"}"#).is_err());
        assert!(convert(br#"{"id":"00112233aabbccdd","events":null}"#).is_ok());
    }
}
