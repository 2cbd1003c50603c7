//! The README's pool-domain walk-through, end to end: `catalyst serve` pointed at a private
//! PowerDNS creates and signs the pool zones, reserves and commits a name over HTTP, and the
//! name answers over DNS, signed and delegated; the API key never reaches the log.

#[path = "../../catalyst-dns/tests/support/mod.rs"]
mod dns_support;

mod support;

use dns_support::{answers, dig_status, Pdns};
use serde_json::{json, Value};
use support::{serve_help, Catalyst};

fn start(data_dir: &std::path::Path, pdns: &Pdns) -> Catalyst {
    let args = [
        "--provisioner",
        "dry-run",
        "--pdns-url",
        pdns.api_url.as_str(),
        "--nameservers",
        "ns1.example.net,ns2.example.net",
    ];
    Catalyst::start(
        data_dir,
        &args,
        &[
            ("CATALYST_PDNS_API_KEY", pdns.api_key.clone()),
            ("CATALYST_RESERVATION_TTL", "2m".to_owned()),
        ],
    )
}

#[tokio::test]
async fn serve_reserves_commits_and_the_name_resolves() {
    let Some(pdns) = Pdns::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path(), &pdns);
    let http = c.client();
    let status: Value = http
        .get(format!("{}/api/v1/pool", c.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["dnsManaged"], true);
    assert_eq!(status["store"], "sqlite");
    // Parent zones were created and signed at start-up.
    assert_eq!(pdns.zones().await, ["omani.works", "openova.io"]);
    assert!(answers(&pdns.dig("omani.works", "SOA"))
        .iter()
        .any(|(_, t, _)| t == "RRSIG"));

    let r = http
        .post(format!("{}/api/v1/pool/omani.works/reserve", c.base))
        .json(&json!({"subdomain": "omantel"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let r = http
        .post(format!("{}/api/v1/pool/omani.works/commit", c.base))
        .json(&json!({"subdomain": "omantel", "reservationToken": v["reservationToken"], "sovereignFQDN": "omantel.omani.works", "loadBalancerIP": "192.0.2.44"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out = pdns.dig("console.omantel.omani.works", "A");
    let got = answers(&out);
    assert!(
        got.iter().any(|(_, t, d)| t == "A" && d == "192.0.2.44"),
        "{out}"
    );
    assert!(got.iter().any(|(_, t, _)| t == "RRSIG"), "signed: {out}");
    assert_eq!(
        pdns.rrset("omani.works", "omantel.omani.works", "NS").await,
        ["ns1.example.net.", "ns2.example.net."]
    );
    assert!(answers(&pdns.dig("omantel.omani.works", "DS"))
        .iter()
        .any(|(_, t, _)| t == "DS"));

    let r = http
        .delete(format!(
            "{}/api/v1/pool/omani.works/release?sub=omantel",
            c.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        dig_status(&pdns.dig("console.omantel.omani.works", "A")),
        "NXDOMAIN"
    );

    c.stop();
    let log = c.log();
    assert!(
        !log.contains(&pdns.api_key),
        "the PowerDNS API key reached the log"
    );
}

#[test]
fn help_lists_the_pool_flags() {
    let text = serve_help();
    for flag in [
        "--pool-domains",
        "--nameservers",
        "--reservation-ttl",
        "--pdns-url",
        "--pdns-api-key",
        "--pdns-server-id",
        "CATALYST_NAMESERVERS",
        "CATALYST_RESERVATION_TTL",
        "CATALYST_PDNS_URL",
        "CATALYST_PDNS_API_KEY",
        "CATALYST_PDNS_SERVER_ID",
    ] {
        assert!(text.contains(flag), "--help mentions {flag}:\n{text}");
    }
}
