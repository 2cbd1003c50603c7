//! Git smart HTTP (`catalyst-api` orgs/git_http.rs). The server parses no pkt-lines itself —
//! `git upload-pack --stateless-rpc` reads the request and pushes are refused before any body
//! is read — so what is fuzzed is what the server does with the bytes: the request body as
//! handed to git (gunzipped when `Content-Encoding: gzip`, bounded) and the pkt-line framing of
//! the advertisement, checked by reading the frame back.
//!
//! Input: first byte bit 0 set = the body is declared gzip; the rest is the body (also framed
//! as one pkt-line when it is text short enough for one).
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use catalyst_api::fuzzing::{git_request_body, pkt_line};
use libfuzzer_sys::fuzz_target;

/// Largest pkt-line payload (65520 bytes of line, less the 4-byte length).
const MAX_PKT_DATA: usize = 65516;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    if flags & 1 == 1 {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    match git_request_body(&headers, body) {
        Ok(out) => {
            if flags & 1 == 0 {
                assert_eq!(out, body, "a plain body reaches git unchanged");
            }
            assert!(
                out.len() <= 4 * 16 * 1024 * 1024,
                "the gunzipped body is bounded"
            );
        }
        Err(e) => {
            assert_eq!(flags & 1, 1, "only a gzip body can be refused");
            assert_eq!(e.status.as_u16(), 400);
        }
    }

    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    if text.len() > MAX_PKT_DATA {
        return;
    }
    let frame = pkt_line(text);
    let len = std::str::from_utf8(&frame[..4])
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .expect("a pkt-line starts with four hex digits");
    assert!(frame[..4]
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
    assert_eq!(
        len,
        frame.len(),
        "the length prefix counts itself and the payload"
    );
    assert_eq!(&frame[4..], text.as_bytes());
});
