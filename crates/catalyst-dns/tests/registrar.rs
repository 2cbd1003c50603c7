//! Registrar adapters against local HTTP stand-ins that assert each request's method, path,
//! headers (OVH: the signature) and answer with the documented responses and errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use catalyst_dns::registrar::{
    cloudflare::Cloudflare, dynadot::Dynadot, godaddy::GoDaddy, namecheap::Namecheap, ovh,
    ovh::Ovh, propagation_hint, Registrar, RegistrarError, RegistrarUrls, Registry,
};
use serde_json::{json, Value};

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: String,
    url: String,
}

type Answer = (u16, String);
type Responder = Arc<dyn Fn(&Seen) -> Answer + Send + Sync>;

struct StandIn {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StandIn {
    async fn start(respond: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> StandIn {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let respond: Responder = Arc::new(respond);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let (s, b) = (seen.clone(), base.clone());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (seen, respond, base) = (s.clone(), respond.clone(), b.clone());
                async move {
                    let req = Seen {
                        method: method.to_string(),
                        path: uri.path().to_owned(),
                        query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                            .into_owned()
                            .collect(),
                        headers: headers
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                            .collect(),
                        body: String::from_utf8_lossy(&body).into_owned(),
                        url: format!("{base}{uri}"),
                    };
                    let (status, text) = respond(&req);
                    seen.lock().unwrap().push(req);
                    (StatusCode::from_u16(status).unwrap(), text).into_response()
                }
            },
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        StandIn { base, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn ns() -> Vec<String> {
    vec!["ns1.openova.io".into(), "ns2.openova.io".into()]
}

fn http() -> reqwest::Client {
    catalyst_dns::registrar::http_client()
}

/// The token never leaks into an error's text.
fn assert_clean(e: &RegistrarError, token: &str) {
    for part in token.split(':').filter(|p| p.len() > 3) {
        assert!(
            !format!("{e} {e:?}").contains(part),
            "error leaks the token: {e:?}"
        );
    }
}

// ---------------------------------------------------------------- Cloudflare

fn cf_ok(result: Value) -> Answer {
    (
        200,
        json!({"success": true, "errors": [], "result": result}).to_string(),
    )
}

#[tokio::test]
async fn cloudflare_validate_set_get() {
    let s = StandIn::start(|r| {
        assert_eq!(r.headers["authorization"], "Bearer cf-token-123");
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/cloudflare/user/tokens/verify") => cf_ok(json!({"status": "active"})),
            ("GET", "/cloudflare/zones") => {
                assert_eq!(r.query["name"], "example.com");
                cf_ok(json!([{"id": "z1", "name": "Example.com"}]))
            }
            ("PATCH", "/cloudflare/zones/z1") => {
                let b: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(
                    b["name_servers"],
                    json!(["ns1.openova.io", "ns2.openova.io"])
                );
                cf_ok(json!({"id": "z1"}))
            }
            ("GET", "/cloudflare/zones/z1") => {
                cf_ok(json!({"id": "z1", "name_servers": ["ns1.openova.io", "ns2.openova.io"]}))
            }
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let cf = Cloudflare::new(&format!("{}/cloudflare", s.base), http());
    cf.validate_token("cf-token-123", "example.com")
        .await
        .unwrap();
    cf.set_nameservers("cf-token-123", "example.com", &ns())
        .await
        .unwrap();
    assert_eq!(
        cf.get_nameservers("cf-token-123", "example.com")
            .await
            .unwrap(),
        ns()
    );
    assert!(cf
        .set_nameservers("cf-token-123", "example.com", &[])
        .await
        .is_err());
    assert_eq!(s.seen().len(), 6);
}

#[tokio::test]
async fn cloudflare_errors() {
    let s = StandIn::start(|r| match r.headers["authorization"].as_str() {
        "Bearer bad" => (
            401,
            json!({"success": false, "errors": [{"code": 10000, "message": "auth"}]}).to_string(),
        ),
        "Bearer slow" => (429, "{}".into()),
        "Bearer down" => (503, "{}".into()),
        _ if r.path.ends_with("/verify") => cf_ok(json!({})),
        _ => cf_ok(json!([])),
    })
    .await;
    let cf = Cloudflare::new(&format!("{}/cloudflare", s.base), http());
    assert_eq!(
        cf.validate_token("", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    assert_eq!(
        cf.validate_token("bad", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    assert_eq!(
        cf.validate_token("slow", "example.com").await,
        Err(RegistrarError::RateLimited)
    );
    assert_eq!(
        cf.validate_token("down", "example.com").await,
        Err(RegistrarError::ApiUnavailable)
    );
    assert_eq!(
        cf.validate_token("good", "example.com").await,
        Err(RegistrarError::DomainNotInAccount)
    );
    assert_eq!(
        cf.set_nameservers("good", "example.com", &ns()).await,
        Err(RegistrarError::DomainNotInAccount)
    );
}

// ---------------------------------------------------------------- GoDaddy

#[tokio::test]
async fn godaddy_validate_set_get_and_errors() {
    let s = StandIn::start(|r| {
        let auth = r.headers["authorization"].as_str();
        if auth == "sso-key bad:key" {
            return (
                401,
                json!({"code": "UNABLE_TO_AUTHENTICATE", "message": "no"}).to_string(),
            );
        }
        if auth == "sso-key slow:key" {
            return (429, "{}".into());
        }
        assert_eq!(auth, "sso-key key:secret");
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/godaddy/v1/domains") => {
                assert_eq!(r.query["statuses"], "ACTIVE");
                assert_eq!(r.query["limit"], "1000");
                (
                    200,
                    json!([{"domain": "example.com", "status": "ACTIVE"}]).to_string(),
                )
            }
            ("PATCH", "/godaddy/v1/domains/example.com") => {
                assert_eq!(r.headers["content-type"], "application/json");
                let b: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(b["nameServers"].as_array().unwrap().len(), 2);
                (204, String::new())
            }
            ("GET", "/godaddy/v1/domains/example.com") => (
                200,
                json!({"nameServers": ["ns1.openova.io", "ns2.openova.io"]}).to_string(),
            ),
            ("PATCH", "/godaddy/v1/domains/missing.com") => (
                404,
                json!({"code": "NOT_FOUND", "message": "x"}).to_string(),
            ),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let g = GoDaddy::new(&format!("{}/godaddy", s.base), http());
    let t = "key:secret";
    g.validate_token(t, "example.com").await.unwrap();
    assert_eq!(
        g.validate_token(t, "other.com").await,
        Err(RegistrarError::DomainNotInAccount)
    );
    g.set_nameservers(t, "example.com", &ns()).await.unwrap();
    assert_eq!(g.get_nameservers(t, "example.com").await.unwrap(), ns());
    let e = g
        .set_nameservers(t, "missing.com", &ns())
        .await
        .unwrap_err();
    assert_eq!(e, RegistrarError::DomainNotInAccount);
    assert_eq!(
        g.validate_token("nocolon", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    assert_eq!(
        g.validate_token("bad:key", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    assert_eq!(
        g.validate_token("slow:key", "example.com").await,
        Err(RegistrarError::RateLimited)
    );
    assert!(g.set_nameservers(t, "example.com", &[]).await.is_err());
    assert_eq!(
        catalyst_dns::registrar::godaddy::OTE_BASE_URL,
        "https://api.ote-godaddy.com"
    );
}

// ---------------------------------------------------------------- OVH

#[tokio::test]
async fn ovh_signs_every_request() {
    let s = StandIn::start(|r| {
        let h = &r.headers;
        if h["x-ovh-application"] == "slow" {
            return (429, "{}".into());
        }
        if h["x-ovh-application"] == "bad" {
            return (
                401,
                json!({"errorCode": "INVALID_CREDENTIAL", "httpCode": "401", "message": "x"})
                    .to_string(),
            );
        }
        assert_eq!(h["x-ovh-application"], "app");
        assert_eq!(h["x-ovh-consumer"], "consumer");
        let ts: i64 = h["x-ovh-timestamp"].parse().unwrap();
        let want = ovh::signature("appsecret", "consumer", &r.method, &r.url, &r.body, ts);
        assert_eq!(
            h["x-ovh-signature"], want,
            "signature of {} {}",
            r.method, r.url
        );
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/ovh/1.0/domain") => (200, json!(["example.com"]).to_string()),
            ("POST", "/ovh/1.0/domain/example.com/nameServers/update") => {
                let b: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(
                    b,
                    json!({"nameServers": [{"host": "ns1.openova.io"}, {"host": "ns2.openova.io"}]})
                );
                (200, json!({"id": 1}).to_string())
            }
            ("GET", "/ovh/1.0/domain/example.com/nameServer") => (200, json!([11, 12]).to_string()),
            ("GET", "/ovh/1.0/domain/example.com/nameServer/11") => {
                (200, json!({"host": "ns1.openova.io"}).to_string())
            }
            ("GET", "/ovh/1.0/domain/example.com/nameServer/12") => {
                (200, json!({"host": "ns2.openova.io"}).to_string())
            }
            ("POST", "/ovh/1.0/domain/gone.com/nameServers/update") => {
                (404, json!({"message": "not found"}).to_string())
            }
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let o = Ovh::new(&format!("{}/ovh/1.0", s.base), http());
    let t = "app:appsecret:consumer";
    o.validate_token(t, "example.com").await.unwrap();
    assert_eq!(
        o.validate_token(t, "other.com").await,
        Err(RegistrarError::DomainNotInAccount)
    );
    o.set_nameservers(t, "example.com", &ns()).await.unwrap();
    assert_eq!(o.get_nameservers(t, "example.com").await.unwrap(), ns());
    assert_eq!(
        o.set_nameservers(t, "gone.com", &ns()).await,
        Err(RegistrarError::DomainNotInAccount)
    );
    assert_eq!(
        o.validate_token("app:secret", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    let e = o
        .validate_token("bad:appsecret:consumer", "example.com")
        .await
        .unwrap_err();
    assert_eq!(e, RegistrarError::InvalidToken);
    assert_clean(&e, "bad:appsecret:consumer");
    assert_eq!(
        o.validate_token("slow:x:y", "example.com").await,
        Err(RegistrarError::RateLimited)
    );
    assert!(o.set_nameservers(t, "example.com", &[]).await.is_err());
}

// ---------------------------------------------------------------- Dynadot

fn dyn_header(envelope: &str, status: &str, error: &str, extra: Value) -> Answer {
    let mut v = json!({ envelope: {"ResponseHeader": {"ResponseCode": if status == "success" {"0"} else {"-1"}, "Status": status, "Error": error}}});
    if let (Some(o), Some(e)) = (v[envelope].as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    (200, v.to_string())
}

#[tokio::test]
async fn dynadot_commands_and_errors() {
    let s = StandIn::start(|r| {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/dynadot/api3.json");
        let q = &r.query;
        match (q["key"].as_str(), q["command"].as_str(), q["domain"].as_str()) {
            ("bad", _, _) => dyn_header("DomainInfoResponse", "error", "Invalid API key", json!({})),
            ("slow", _, _) => (429, String::new()),
            ("k", "domain_info", "example.com") => {
                assert_eq!(q["secret"], "s");
                dyn_header(
                    "DomainInfoResponse",
                    "success",
                    "",
                    json!({"DomainInfo": {"NameServerSettings": {"NameServers": [{"ServerName": "ns1.openova.io"}, {"ServerName": "ns2.openova.io"}, {"ServerName": ""}]}}}),
                )
            }
            ("k", "set_ns", "example.com") => {
                assert_eq!((q["ns0"].as_str(), q["ns1"].as_str()), ("ns1.openova.io", "ns2.openova.io"));
                dyn_header("SetNsResponse", "success", "", json!({}))
            }
            ("k", "set_ns", "other.com") => dyn_header("SetNsResponse", "error", "Domain not in your account", json!({})),
            other => panic!("unexpected {other:?}"),
        }
    })
    .await;
    let d = Dynadot::new(&format!("{}/dynadot/api3.json", s.base), http());
    d.validate_token("k:s", "example.com").await.unwrap();
    d.set_nameservers("k:s", "example.com", &ns())
        .await
        .unwrap();
    assert_eq!(d.get_nameservers("k:s", "example.com").await.unwrap(), ns());
    assert_eq!(
        d.set_nameservers("k:s", "other.com", &ns()).await,
        Err(RegistrarError::DomainNotInAccount)
    );
    assert_eq!(
        d.validate_token("bad:s", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    assert_eq!(
        d.validate_token("slow:s", "example.com").await,
        Err(RegistrarError::RateLimited)
    );
    assert_eq!(
        d.validate_token("nosecret", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    assert!(d.set_nameservers("k:s", "example.com", &[]).await.is_err());
}

// ---------------------------------------------------------------- Namecheap

fn nc_ok(inner: &str) -> Answer {
    (
        200,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><ApiResponse Status="OK" xmlns="http://api.namecheap.com/xml.response"><Errors /><CommandResponse>{inner}</CommandResponse></ApiResponse>"#
        ),
    )
}

fn nc_err(number: &str, msg: &str) -> Answer {
    (
        200,
        format!(
            r#"<?xml version="1.0"?><ApiResponse Status="ERROR" xmlns="http://api.namecheap.com/xml.response"><Errors><Error Number="{number}">{msg}</Error></Errors></ApiResponse>"#
        ),
    )
}

#[tokio::test]
async fn namecheap_commands_and_errors() {
    let s = StandIn::start(|r| {
        let q = &r.query;
        assert_eq!(r.headers["accept"], "application/xml");
        if q["ApiKey"] == "bad" {
            return nc_err("1011102", "API Key is invalid");
        }
        if q["ApiKey"] == "slow" {
            return nc_err("500000", "Too many requests");
        }
        assert_eq!((q["ApiUser"].as_str(), q["UserName"].as_str(), q["ClientIp"].as_str()), ("user", "name", "192.0.2.7"));
        match q["Command"].as_str() {
            "namecheap.users.getBalances" => nc_ok("<UserGetBalancesResult AvailableBalance=\"1\"/>"),
            "namecheap.domains.getList" => match q["Page"].as_str() {
                "1" => nc_ok(&format!(
                    "<DomainGetListResult>{}</DomainGetListResult><Paging><TotalItems>101</TotalItems><CurrentPage>1</CurrentPage><PageSize>100</PageSize></Paging>",
                    (0..100).map(|i| format!("<Domain Name=\"d{i}.com\"/>")).collect::<String>()
                )),
                _ => nc_ok("<DomainGetListResult><Domain Name=\"Example.com\"/></DomainGetListResult><Paging><TotalItems>101</TotalItems></Paging>"),
            },
            "namecheap.domains.dns.setCustom" => {
                assert_eq!((q["SLD"].as_str(), q["TLD"].as_str()), ("example", "com"));
                assert_eq!(q["Nameservers"], "ns1.openova.io,ns2.openova.io");
                nc_ok("<DomainDNSSetCustomResult Domain=\"example.com\" Updated=\"true\"/>")
            }
            "namecheap.domains.dns.getList" => nc_ok("<DomainDNSGetListResult Domain=\"example.com\" IsUsingOurDNS=\"false\"><Nameserver>ns1.openova.io</Nameserver><Nameserver>ns2.openova.io</Nameserver></DomainDNSGetListResult>"),
            other => panic!("unexpected {other}"),
        }
    })
    .await;
    let n = Namecheap::new(&format!("{}/namecheap", s.base), http());
    let t = "user:key:name:192.0.2.7";
    n.validate_token(t, "example.com").await.unwrap();
    assert_eq!(
        n.validate_token(t, "nope.com").await,
        Err(RegistrarError::DomainNotInAccount)
    );
    n.set_nameservers(t, "example.com", &ns()).await.unwrap();
    assert_eq!(n.get_nameservers(t, "example.com").await.unwrap(), ns());
    assert!(matches!(
        n.set_nameservers(t, "weird", &ns()).await,
        Err(RegistrarError::Other(_))
    ));
    assert_eq!(
        n.validate_token("user:bad:name:1.2.3.4", "example.com")
            .await,
        Err(RegistrarError::InvalidToken)
    );
    assert_eq!(
        n.validate_token("user:slow:name:1.2.3.4", "example.com")
            .await,
        Err(RegistrarError::RateLimited)
    );
    assert_eq!(
        n.validate_token("lonely", "example.com").await,
        Err(RegistrarError::InvalidToken)
    );
    assert!(catalyst_dns::registrar::namecheap::SANDBOX_BASE_URL.contains("sandbox"));
}

#[tokio::test]
async fn unreachable_registrar_is_api_unavailable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let reg = Registry::with_all(&RegistrarUrls::all_at(&format!("http://127.0.0.1:{port}")));
    for name in reg.names() {
        let token = "aaaa:bbbb:cccc";
        let e = reg
            .get(name)
            .unwrap()
            .validate_token(token, "example.com")
            .await
            .unwrap_err();
        assert_eq!(e, RegistrarError::ApiUnavailable, "{name}");
        assert_clean(&e, token);
    }
}

#[test]
fn registry_and_hints() {
    let reg = Registry::with_all(&RegistrarUrls::default());
    assert_eq!(
        reg.names(),
        ["cloudflare", "dynadot", "godaddy", "namecheap", "ovh"]
    );
    assert!(reg.get("gandi").is_none());
    for name in reg.names().into_iter().chain(["other"]) {
        assert!(!propagation_hint(name).is_empty());
    }
    assert!(RegistrarUrls::default()
        .ovh
        .starts_with("https://eu.api.ovh.com/1.0"));
}
