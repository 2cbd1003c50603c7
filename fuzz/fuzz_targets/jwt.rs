//! JWT and JWKS parsing (`catalyst-api` orgs/oidc.rs): a JWK set as the provider serves it,
//! a bearer token checked against it exactly as `OidcVerifier::verify` checks it (header,
//! algorithm, kid, signature, iss/aud/exp/nbf, claim mapping), the discovery document, and the
//! `Cache-Control`/`Retry-After` values of the JWKS response. An accepted token must map to a
//! well-formed identity.
//!
//! Input: the JWKS body, a 0xFF byte, the token. Seeds carry a real RS256 set and token.
#![no_main]

use std::sync::OnceLock;

use catalyst_api::auth::{valid_token_name, Role};
use catalyst_api::fuzzing::{jwks_uri_of, jwt_exp, max_age, retry_after, OidcCheck};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://id.example.test";

fn check() -> &'static OidcCheck {
    static CHECK: OnceLock<OidcCheck> = OnceLock::new();
    CHECK.get_or_init(|| OidcCheck::new(ISSUER, "catalyst"))
}

fuzz_target!(|data: &[u8]| {
    let (jwks, token) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let token = String::from_utf8_lossy(token);
    if let Ok(id) = check().verify(jwks, &token) {
        assert!(valid_token_name(&id.name), "accepted name {:?}", id.name);
        assert_eq!(id.org.is_none(), id.role == Role::SovereignAdmin);
        assert!(jwt_exp(&token).is_some(), "a verified token has an exp");
    }
    let _ = jwt_exp(&token);

    if let Ok(uri) = jwks_uri_of(jwks, ISSUER) {
        assert!(uri.starts_with("https://") || uri.starts_with("http://"));
    }
    let text = String::from_utf8_lossy(jwks);
    if let Some(age) = max_age(&text) {
        assert!(age.as_secs() <= 24 * 3600);
    }
    if let Some(wait) = retry_after(&text) {
        assert!(wait.as_secs() <= 3600);
    }
});
