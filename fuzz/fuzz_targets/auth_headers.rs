//! Credentials as requests carry them (`catalyst-api` orgs/auth.rs): `Authorization` (Bearer,
//! or Basic with the token as password), the session cookie among others, the JWT-shape test
//! that routes a bearer token to OIDC, and the console's post-sign-in redirect target, which
//! must stay on this site whatever it is given.
#![no_main]

use axum::http::{header, HeaderValue, Request};
use catalyst_api::auth::{cookie_of, safe_next, token_of, SESSION_COOKIE};
use catalyst_api::orgs::oidc::looks_like_jwt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let next = safe_next(Some(&text));
    assert!(
        next.starts_with('/') && !next.starts_with("//"),
        "redirect to {next:?}"
    );
    assert!(!next.contains('\\') && !next.bytes().any(|b| b.is_ascii_control()));
    let _ = looks_like_jwt(&text);

    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let (parts, ()) = Request::builder()
        .header(header::AUTHORIZATION, value.clone())
        .header(header::COOKIE, value)
        .body(())
        .expect("a request")
        .into_parts();
    if let Some(token) = token_of(&parts) {
        // A bearer token is a piece of the header; a Basic password comes out of base64.
        assert!(token.len() <= data.len());
    }
    if let Some(v) = cookie_of(&parts, SESSION_COOKIE) {
        assert!(!v.starts_with('"') && !v.ends_with('"'));
    }
});
