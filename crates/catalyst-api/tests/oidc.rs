//! OIDC bearer tokens against a local JWKS stand-in (an axum server on 127.0.0.1 serving EC
//! keys generated here; it stands in for an identity provider's `jwks_uri`): roles and
//! Organizations from claims, every validation failure named, opaque tokens unchanged, key
//! rotation and the refetch limit. The stand-in also serves `/.well-known/openid-configuration`
//! for issuer discovery: discovery success, a provider down at first use, an issuer mismatch.
#[path = "support/conform.rs"]
mod conform;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use catalyst_api::orgs::auth::{Authenticator, Role};
use catalyst_api::orgs::oidc::{OidcConfig, OidcVerifier};
use catalyst_api::orgs::{router, OrgApi};
use catalyst_blueprint::render::RenderOptions;
use catalyst_blueprint::Source;
use catalyst_gitops::Sovereign;
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};
use tower::ServiceExt;

const ISS: &str = "https://idp.example.test";
const AUD: &str = "catalyst";

/// An EC P-256 key: its JWK (public) and its signing key.
struct Key {
    kid: String,
    jwk: Value,
    enc: EncodingKey,
}

fn key(kid: &str) -> Key {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = secret
        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
        .unwrap()
        .to_string();
    let point = secret.public_key().to_encoded_point(false);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    Key {
        kid: kid.to_string(),
        jwk: json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        }),
        enc: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    }
}

/// A throwaway RSA-2048 key made for this test only (generating one per run is slow in debug
/// builds); it signs nothing but these tests' JWTs.
const TEST_ONLY_RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCxIIu+HfxC8uWa
AyZf8l55A4j4TGhz0zBnkNS3BxWu1iMrBCQwuN/YOku0Fr8E9B45SD1+IdB+CnNW
vqK/aOXanxAqgS56u5q3NCV/M3vmXDu8AQxRmOI4U8f4t3UCdojCVC7HNLW+1tci
dtaqSQxPSO1N6hAypGE2tCoU4fRs07dN93FvN9B0+LJpVnfSIxH9QhX0zfCGkiN7
RN9xzjjCxDGoHWmv26GoQpC8H5i8o1vZ43U7h+PRqlCBOTNEXwuXpqh60hgJQHtB
ABssNB4BkS9Is++JjtvSuDJ5KAVtrkZ5bxDjwzmDOu6HWLBYndYXDqoOpOgxl5+S
yjloKFIPAgMBAAECggEAKm1TS7y++gJYgOWUQZM6kd4I5wDWXDgP9h649QZbaT+d
uOYLDSibZZ3BGGgCZVtcCfiF0jqjSC2UpwiOzy5/MDi9lJDQ41EgpBV3jdp1KR6a
qFPP8ZOfTEK1OZwoCOj/pRyo/8peZlHrwjOZA7zvl+YuAWW5b4f0STgqhEoDVDWU
N9CQgh4HLS8RiTHFccZMdT7B5VLewBVikzwSj4fYMkEgb96vYfY3MYx1c9ut2OcE
k13mmxg6Qy2uNuiQo39FrG1Gi3hfenlpQZwKeqzcUgaDEtWn1Kz+WY7Hmkk02+Rl
PieLODQxx67+nQpE+jPfwn/ujWsvxACQrRQeGHhTkQKBgQDb5aWVe+13B8pWJlT5
nC6O/4El45iEdtzf/qPHcOd8CQFaelpbOxCobDuk+/ONZT7eNyGhdzcG+zId8ayT
d3n56HuiANj6Rcndj6rzTQNG3wmgY29qSr6/iF+YlFM9iFIOc8tMr+cebpo+3ivw
8WJJM9cSQU3/YnpeWkf8LwN2wwKBgQDONUN4bdGNdhTHK+SFGZ3Ib/QohgZ8rgWm
f2x0mxGZPPwaMAbYCvYz+qNtS3R0rispOGPL/PSi21zgIaeSdaZD0cH8tlRkVHU3
yOzZfB2EBA2OzvJZ1B0hwsb0F19H3JlKFQV+NqyeIdMKM4QPNLrRLbddIx9xjAS/
1yNfsDd6xQKBgQCCAvkvtKHl6nk7DlbXbfwpF+/n0vTt/MkCtq9mz95Ne5WNRSH/
JqDms3dgSIbrZp0RDU+ZA79JJWOwSJ9cYRuBIm9WjWG8N17u3G6ag0IYuO4cIi5R
jffRjnPW5nuAugSp/tSIdsgTOhmAaiNYxZ7y4O+cH3haMoNfHcnJ1JIbuQKBgQCb
THf04dg5Dp4VZlQjfahcBRy/zDhke/cbbsnyg7rcSpae7l6pJJBJk1Czhmk9WtJ8
p9BZF7fyUvz+e7olTl+aogXT2klyij0Bd1wRay0beKXxUKAq0NnjzDpkKJoEl/oG
VhCd/nVAXr7+5s9lWFP+J8z54vLSZB5LkK4+aYtO9QKBgEUDX2kSpesPjPRflTNH
TBqgDKp19oc7ZXAXP64JV26bCL0zDfFafbq/vqqirpLesWkG50BS8wlPqppuimCR
PesEYE+7kc0Y9PgZ6aR9dljJ6FVY22rMfxvk29s0UUYS7+L8uXEooO1+VcAofc7E
DbomnqoRC2ZIAPd0/cNrSePy
-----END PRIVATE KEY-----
";
const TEST_ONLY_RSA_N: &str = "sSCLvh38QvLlmgMmX_JeeQOI-Exoc9MwZ5DUtwcVrtYjKwQkMLjf2DpLtBa_BPQeOUg9fiHQfgpzVr6iv2jl2p8QKoEueruatzQlfzN75lw7vAEMUZjiOFPH-Ld1AnaIwlQuxzS1vtbXInbWqkkMT0jtTeoQMqRhNrQqFOH0bNO3TfdxbzfQdPiyaVZ30iMR_UIV9M3whpIje0Tfcc44wsQxqB1pr9uhqEKQvB-YvKNb2eN1O4fj0apQgTkzRF8Ll6aoetIYCUB7QQAbLDQeAZEvSLPviY7b0rgyeSgFba5GeW8Q48M5gzruh1iwWJ3WFw6qDqToMZefkso5aChSDw";

fn rsa_key(kid: &str) -> Key {
    Key {
        kid: kid.to_string(),
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": TEST_ONLY_RSA_N, "e": "AQAB"}),
        enc: EncodingKey::from_rsa_pem(TEST_ONLY_RSA_PEM.as_bytes()).unwrap(),
    }
}

/// The identity-provider stand-in: serves whatever keys the test puts in at `/jwks` and a
/// discovery document at `/.well-known/openid-configuration` (its `issuer` is `doc_issuer`,
/// the stand-in's own URL unless the test changes it); counts fetches; `down` makes both 503.
struct Jwks {
    url: String,
    /// `http://127.0.0.1:<port>`: the issuer whose discovery document this serves.
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    hits: Arc<AtomicUsize>,
    doc_issuer: Arc<Mutex<String>>,
    discovery_hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    /// Extra headers on every `/jwks` answer (`Cache-Control`, `Retry-After`).
    headers: Arc<Mutex<Vec<(&'static str, String)>>>,
}

async fn jwks_stand_in(keys: &[&Key]) -> Jwks {
    use axum::response::IntoResponse;
    let set = Arc::new(Mutex::new(
        keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>(),
    ));
    let hits = Arc::new(AtomicUsize::new(0));
    let discovery_hits = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer = format!("http://{addr}");
    let doc_issuer = Arc::new(Mutex::new(issuer.clone()));
    let headers: Arc<Mutex<Vec<(&'static str, String)>>> = Arc::default();
    let (s, h, d, hd) = (set.clone(), hits.clone(), down.clone(), headers.clone());
    let (di, dh, dd) = (doc_issuer.clone(), discovery_hits.clone(), down.clone());
    let jwks_uri = format!("{issuer}/jwks");
    let app = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let (s, h, d, hd) = (s.clone(), h.clone(), d.clone(), hd.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let mut resp = if d.load(Ordering::SeqCst) {
                        StatusCode::SERVICE_UNAVAILABLE.into_response()
                    } else {
                        axum::Json(json!({ "keys": *s.lock().unwrap() })).into_response()
                    };
                    for (name, value) in hd.lock().unwrap().iter() {
                        resp.headers_mut().insert(*name, value.parse().unwrap());
                    }
                    resp
                }
            }),
        )
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let (di, dh, dd, jwks_uri) = (di.clone(), dh.clone(), dd.clone(), jwks_uri.clone());
                async move {
                    dh.fetch_add(1, Ordering::SeqCst);
                    if dd.load(Ordering::SeqCst) {
                        return StatusCode::SERVICE_UNAVAILABLE.into_response();
                    }
                    let iss = di.lock().unwrap().clone();
                    axum::Json(json!({
                        "issuer": iss,
                        "jwks_uri": jwks_uri,
                        "authorization_endpoint": format!("{iss}/authorize"),
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                    }))
                    .into_response()
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Jwks {
        url: format!("{issuer}/jwks"),
        issuer,
        keys: set,
        hits,
        doc_issuer,
        discovery_hits,
        down,
        headers,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(role: &str, org: Option<&str>, name: &str) -> Value {
    let mut c = json!({
        "iss": ISS, "aud": AUD, "sub": "u-1", "preferred_username": name,
        "iat": now(), "exp": now() + 300, "catalyst_role": role,
    });
    if let Some(o) = org {
        c["catalyst_org"] = json!(o);
    }
    c
}

fn sign(k: &Key, claims: &Value) -> String {
    let alg = if k.jwk["kty"] == "RSA" {
        Algorithm::RS256
    } else {
        Algorithm::ES256
    };
    let mut h = Header::new(alg);
    h.kid = Some(k.kid.clone());
    jsonwebtoken::encode(&h, claims, &k.enc).unwrap()
}

struct Env {
    _dir: tempfile::TempDir,
    app: axum::Router,
    opaque: String,
}

async fn setup(jwks: &Jwks, min_refetch: Duration) -> Env {
    let mut config = OidcConfig::new(&jwks.url, ISS, AUD);
    config.min_refetch = min_refetch;
    setup_with(config).await
}

async fn setup_with(config: OidcConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let catalog_dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalyst-gitops/testdata/catalog");
    let catalog = catalyst_blueprint::load::load_catalog(&[(Source::Public, catalog_dir)])
        .unwrap()
        .0;
    let sovereign = Sovereign::open_with_spine(
        dir.path().join("git"),
        Arc::new(catalog),
        RenderOptions::default(),
        Some(Arc::new(
            catalyst_spine::FileLog::open(dir.path().join("events"))
                .unwrap()
                .0,
        )),
    )
    .unwrap();
    let auth = Arc::new(
        Authenticator::open(dir.path(), Some(Arc::new(OidcVerifier::new(config)))).unwrap(),
    );
    let opaque = auth
        .tokens()
        .create(Role::SovereignAdmin, None, "root")
        .unwrap();
    let api = Arc::new(OrgApi::new(Arc::new(sovereign), auth).unwrap());
    // The console's sign-in routes, as the main router mounts them.
    let session = axum::Router::new()
        .route(
            "/api/v1/session",
            axum::routing::post(catalyst_api::auth::session_create::<OrgApi>)
                .get(catalyst_api::auth::session_get),
        )
        .with_state(api.clone());
    let app = conform::conform(router(api).merge(session));
    Env {
        _dir: dir,
        app,
        opaque,
    }
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let b = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn jwt_roles_work_like_store_tokens_and_opaque_tokens_still_work() {
    let k1 = key("k1");
    let r1 = rsa_key("r1");
    let jwks = jwks_stand_in(&[&k1, &r1]).await;
    let env = setup(&jwks, Duration::from_secs(30)).await;

    // The opaque token from the store still works: it creates both Organizations.
    for name in ["acme", "globex"] {
        let (s, v) = send(
            &env.app,
            "POST",
            "/api/v1/orgs",
            &env.opaque,
            Some(json!({"name": name})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    // A sovereign-admin JWT creates an Organization.
    let root = sign(&k1, &claims("sovereign-admin", None, "root@idp"));
    let (s, v) = send(
        &env.app,
        "POST",
        "/api/v1/orgs",
        &root,
        Some(json!({"name": "initech"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // An org-admin JWT creates an Environment in its Organization and sees no other.
    let ann = sign(&k1, &claims("org-admin", Some("acme"), "ann"));
    let (s, v) = send(
        &env.app,
        "POST",
        "/api/v1/orgs/acme/environments",
        &ann,
        Some(json!({"envType": "dev"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs/globex/environments",
        &ann,
        Some(json!({"envType": "dev"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // An RS256 key works as well as an ES256 one.
    let dev = sign(&r1, &claims("org-developer", Some("acme"), "dev"));
    let (s, v) = send(
        &env.app,
        "GET",
        "/api/v1/orgs/acme/environments",
        &dev,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // …and an org-admin may not create Organizations.
    let (s, _) = send(
        &env.app,
        "POST",
        "/api/v1/orgs",
        &ann,
        Some(json!({"name": "umbrella"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // One JWKS fetch served every JWT.
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn invalid_jwts_are_401_naming_what_failed() {
    let k1 = key("k1");
    let stranger = key("k1"); // same kid, other key: bad signature
    let unknown = key("nobody");
    let jwks = jwks_stand_in(&[&k1]).await;
    let env = setup(&jwks, Duration::from_secs(30)).await;

    let mut expired = claims("org-admin", Some("acme"), "ann");
    expired["exp"] = json!(now() - 120);
    let mut early = claims("org-admin", Some("acme"), "ann");
    early["nbf"] = json!(now() + 600);
    let mut aud = claims("org-admin", Some("acme"), "ann");
    aud["aud"] = json!("someone-else");
    let mut iss = claims("org-admin", Some("acme"), "ann");
    iss["iss"] = json!("https://evil.example.test");
    let mut no_role = claims("org-admin", Some("acme"), "ann");
    no_role.as_object_mut().unwrap().remove("catalyst_role");
    let mut bad_role = claims("org-admin", Some("acme"), "ann");
    bad_role["catalyst_role"] = json!("god");
    let no_org = claims("org-admin", None, "ann");
    let mut leeway = claims("org-admin", Some("acme"), "ann");
    leeway["exp"] = json!(now() - 30);

    let cases: Vec<(String, &str)> = vec![
        (sign(&k1, &expired), "expired"),
        (sign(&k1, &early), "not yet valid"),
        (sign(&k1, &aud), "wrong audience"),
        (sign(&k1, &iss), "wrong issuer"),
        (
            sign(&unknown, &claims("org-admin", Some("acme"), "ann")),
            "unknown signing key",
        ),
        (
            sign(&stranger, &claims("org-admin", Some("acme"), "ann")),
            "bad signature",
        ),
        (sign(&k1, &no_role), "missing role claim catalyst_role"),
        (sign(&k1, &bad_role), "is not one of"),
        (sign(&k1, &no_org), "missing org claim catalyst_org"),
    ];
    for (token, want) in &cases {
        let (s, v) = send(&env.app, "GET", "/api/v1/orgs", token, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{want}: {v}");
        assert_eq!(v["error"], "invalid-token", "{want}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(want), "{want}: {detail}");
        assert!(
            !v.to_string().contains(token.as_str()),
            "the token is echoed"
        );
    }
    // Within the 60 s leeway an expired token still passes.
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &sign(&k1, &leeway), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A bad opaque token is still the store's plain 401.
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", "cat_nope", None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    // The first JWT fetched the JWKS; unknown kids within 30 s of that fetch do not refetch.
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
    let t = sign(&unknown, &claims("org-admin", Some("acme"), "ann"));
    let (s, _) = send(&env.app, "GET", "/api/v1/orgs", &t, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rotated_key_is_picked_up() {
    let k1 = key("k1");
    let k2 = key("k2");
    let jwks = jwks_stand_in(&[&k1]).await;
    let env = setup(&jwks, Duration::from_millis(200)).await;
    let viewer = |k: &Key| sign(k, &claims("org-viewer", Some("acme"), "vic"));
    let (s, _) = send(&env.app, "GET", "/api/v1/orgs", &viewer(&k1), None).await;
    assert_eq!(s, StatusCode::OK);
    // The provider rotates: k2 appears, k1 goes.
    *jwks.keys.lock().unwrap() = vec![k2.jwk.clone()];
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &viewer(&k2), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 2);
    // k1 is gone from the cache with the refetch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &viewer(&k1), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}

/// Issuer and audience only: the JWKS URL comes from the issuer's discovery document.
fn discovering(jwks: &Jwks, min_refetch: Duration) -> OidcConfig {
    let mut config = OidcConfig::discover(&jwks.issuer, AUD);
    config.min_refetch = min_refetch;
    config
}

fn claims_from(iss: &str, role: &str, org: Option<&str>, name: &str) -> Value {
    let mut c = claims(role, org, name);
    c["iss"] = json!(iss);
    c
}

#[tokio::test]
async fn the_jwks_url_is_discovered_from_the_issuer_and_a_provider_down_at_first_use_is_retried() {
    let k1 = key("k1");
    let jwks = jwks_stand_in(&[&k1]).await;
    // The provider is down when the first JWT arrives.
    jwks.down.store(true, Ordering::SeqCst);
    let env = setup_with(discovering(&jwks, Duration::from_secs(1))).await;
    let ann = sign(
        &k1,
        &claims_from(&jwks.issuer, "org-viewer", Some("acme"), "ann"),
    );
    let req = |token: &str| {
        Request::builder()
            .uri("/api/v1/orgs")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let resp = env.app.clone().oneshot(req(&ann)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "30");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"], "oidc-unavailable", "{v}");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("OIDC discovery failed"), "{detail}");
    assert!(
        detail.contains("/.well-known/openid-configuration"),
        "{detail}"
    );
    assert!(!v.to_string().contains(&ann), "the token is echoed");
    // Within the refetch interval the failure is answered again without asking the provider.
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &ann, None).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("oidc-unavailable"))
    );
    assert_eq!(jwks.discovery_hits.load(Ordering::SeqCst), 1);
    // Opaque tokens do not need the provider.
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &env.opaque, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The provider comes back: the next JWT after the interval discovers, fetches and passes.
    jwks.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &ann, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(jwks.discovery_hits.load(Ordering::SeqCst), 2);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
    // Discovery is done once: later JWTs (and the usual checks) use the cached keys.
    let (s, _) = send(&env.app, "GET", "/api/v1/orgs", &ann, None).await;
    assert_eq!(s, StatusCode::OK);
    let wrong_iss = sign(&k1, &claims("org-viewer", Some("acme"), "ann"));
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &wrong_iss, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("wrong issuer"),
        "{v}"
    );
    assert_eq!(jwks.discovery_hits.load(Ordering::SeqCst), 2);
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let k1 = key("k1");
    let jwks = jwks_stand_in(&[&k1]).await;
    *jwks.doc_issuer.lock().unwrap() = "https://evil.example.test".into();
    let env = setup_with(discovering(&jwks, Duration::from_secs(30))).await;
    let ann = sign(
        &k1,
        &claims_from(&jwks.issuer, "org-viewer", Some("acme"), "ann"),
    );
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &ann, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"], "oidc-unavailable");
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains("\"https://evil.example.test\" is not the configured issuer"),
        "{detail}"
    );
    assert!(detail.contains(&jwks.issuer), "{detail}");
    // The keys of a provider that is not ours were never fetched.
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 0);
    assert_eq!(jwks.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_is_discovered_under_it() {
    let k1 = key("k1");
    let jwks = jwks_stand_in(&[&k1]).await;
    let issuer = format!("{}/", jwks.issuer);
    // OIDC Discovery §4.1: the terminating '/' is removed before the well-known path; §4.3:
    // the document's issuer must still be exactly the configured one.
    *jwks.doc_issuer.lock().unwrap() = issuer.clone();
    let mut config = OidcConfig::discover(&issuer, AUD);
    config.min_refetch = Duration::from_secs(30);
    let env = setup_with(config).await;
    let ann = sign(
        &k1,
        &claims_from(&issuer, "org-viewer", Some("acme"), "ann"),
    );
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &ann, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(jwks.discovery_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_jwks_that_cannot_be_fetched_is_503_not_a_bad_token() {
    let k1 = key("k1");
    let jwks = jwks_stand_in(&[&k1]).await;
    jwks.down.store(true, Ordering::SeqCst);
    let env = setup(&jwks, Duration::from_secs(30)).await;
    let ann = sign(&k1, &claims("org-viewer", Some("acme"), "ann"));
    let (s, v) = send(&env.app, "GET", "/api/v1/orgs", &ann, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"], "oidc-unavailable");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("cannot fetch the signing keys"),
        "{v}"
    );
    assert_eq!(
        jwks.discovery_hits.load(Ordering::SeqCst),
        0,
        "a configured JWKS URL is not discovered"
    );
}

#[tokio::test]
async fn a_console_session_from_a_jwt_carries_its_identity_and_never_outlives_it() {
    let k1 = key("k1");
    let jwks = jwks_stand_in(&[&k1]).await;
    let env = setup(&jwks, Duration::from_secs(30)).await;
    let sign_in = |token: String| {
        let app = env.app.clone();
        async move {
            let resp = session_post(&app, token).await;
            let status = resp.status();
            let cookie = resp
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_string());
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            (status, cookie, body)
        }
    };
    let mut c = claims("org-admin", Some("acme"), "ann@idp");
    c["exp"] = json!(now() + 120);
    let jwt = sign(&k1, &c);
    let (status, cookie, body) = sign_in(jwt.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"name": "ann@idp", "role": "org-admin", "org": "acme"})
    );
    let cookie = cookie.expect("a session cookie");
    assert!(!cookie.contains(&jwt) && !cookie.contains(jwt.split('.').nth(2).unwrap()));
    let max_age: i64 = cookie
        .split(';')
        .find_map(|p| p.trim().strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((100..=120).contains(&max_age), "{cookie}");
    let req = Request::get("/api/v1/session")
        .header("cookie", cookie.split(';').next().unwrap())
        .body(Body::empty())
        .unwrap();
    let resp = env.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let who: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(who["name"], "ann@idp");

    // An expired JWT gets no session.
    let mut old = claims("org-admin", Some("acme"), "ann@idp");
    old["exp"] = json!(now() - 600);
    let (status, cookie, body) = sign_in(sign(&k1, &old)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid-token");
    assert!(cookie.is_none());
}

/// Console sign-ins are limited per holder: ten at once, then 429 with `Retry-After`; another
/// holder is unaffected.
#[tokio::test]
async fn console_sign_ins_are_limited_per_holder() {
    let k1 = key("k1");
    let jwks = jwks_stand_in(&[&k1]).await;
    let env = setup(&jwks, Duration::from_secs(30)).await;
    let sign_in = |token: String| {
        let app = env.app.clone();
        async move { session_post(&app, token).await }
    };
    let mut c = claims("org-viewer", Some("acme"), "eve@idp");
    c["exp"] = json!(now() + 120);
    let eve = sign(&k1, &c);
    for i in 0..10 {
        assert_eq!(sign_in(eve.clone()).await.status(), StatusCode::OK, "{i}");
    }
    let refused = sign_in(eve).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=6).contains(&wait), "{wait}");
    let bytes = refused.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"], "too-many-attempts", "{body}");
    let mut c = claims("org-viewer", Some("acme"), "ann@idp");
    c["exp"] = json!(now() + 120);
    assert_eq!(sign_in(sign(&k1, &c)).await.status(), StatusCode::OK);
}

/// `POST /api/v1/session` with `{"token": …}`.
async fn session_post(app: &axum::Router, token: String) -> axum::response::Response {
    let req = Request::post("/api/v1/session")
        .header("content-type", "application/json")
        .body(Body::from(json!({ "token": token }).to_string()))
        .unwrap();
    app.clone().oneshot(req).await.unwrap()
}

/// The JWKS's `Cache-Control: max-age` makes a rotated-out key stop working once the cached set
/// is stale, even for a kid the cache knows; a provider's `Retry-After` holds refetches back.
#[tokio::test]
async fn the_providers_cache_control_and_retry_after_are_honoured() {
    let (k1, k2) = (key("k1"), key("k2"));
    let jwks = jwks_stand_in(&[&k1]).await;
    jwks.headers
        .lock()
        .unwrap()
        .push(("cache-control", "public, max-age=1".into()));
    let env = setup(&jwks, Duration::from_millis(100)).await;
    let who = claims("org-viewer", Some("acme"), "ann");
    let (t1, t2) = (sign(&k1, &who), sign(&k2, &who));
    let (status, _) = send(&env.app, "GET", "/api/v1/orgs", &t1, None).await;
    assert_eq!(status, StatusCode::OK);
    // The provider rotates k1 out; the cached set is fresh for a second more.
    *jwks.keys.lock().unwrap() = vec![k2.jwk.clone()];
    let (status, _) = send(&env.app, "GET", "/api/v1/orgs", &t1, None).await;
    assert_eq!(status, StatusCode::OK, "fresh cache");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = send(&env.app, "GET", "/api/v1/orgs", &t1, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "stale cache refetched: {body}"
    );
    let (status, _) = send(&env.app, "GET", "/api/v1/orgs", &t2, None).await;
    assert_eq!(status, StatusCode::OK);

    // Down, asking for a minute: no refetch within it, however many tokens with new kids come.
    let k3 = key("k3");
    jwks.down.store(true, Ordering::SeqCst);
    jwks.headers
        .lock()
        .unwrap()
        .push(("retry-after", "60".into()));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let t3 = sign(&k3, &who);
    let (status, _) = send(&env.app, "GET", "/api/v1/orgs", &t3, None).await;
    assert_ne!(status, StatusCode::OK);
    let hits = jwks.hits.load(Ordering::SeqCst);
    jwks.down.store(false, Ordering::SeqCst);
    *jwks.keys.lock().unwrap() = vec![k2.jwk.clone(), k3.jwk.clone()];
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let (status, _) = send(&env.app, "GET", "/api/v1/orgs", &t3, None).await;
        assert_ne!(status, StatusCode::OK, "no refetch before Retry-After");
    }
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        hits,
        "no fetch within Retry-After"
    );
    // The stale set still serves the kid it has while the provider is unreachable.
    let (status, _) = send(&env.app, "GET", "/api/v1/orgs", &t2, None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "stale keys serve while the provider is away"
    );
}
