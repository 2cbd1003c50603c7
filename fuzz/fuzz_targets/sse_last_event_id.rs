//! Where an SSE stream resumes (`catalyst-api` sse.rs `resume_from`, used by the deployment log
//! stream and the read side's event streams): a `Last-Event-ID` header, else `?lastEventId=`.
//! Anything but a (trimmed) run of decimal digits that fits a u64 is a 400 (a sign too), never a
//! panic; a number resumes after itself.
//!
//! Input: the header value, optionally followed by a 0xFF byte and the query value.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use catalyst_api::fuzzing::resume_from;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, query) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], std::str::from_utf8(&data[at + 1..]).ok()),
        None => (data, None),
    };
    let mut headers = HeaderMap::new();
    let header_text = match HeaderValue::from_bytes(header) {
        Ok(v) => {
            let text = v.to_str().ok().map(str::to_owned);
            headers.insert("last-event-id", v);
            text
        }
        Err(_) => None,
    };
    let from_query = resume_from(&HeaderMap::new(), query);
    let got = resume_from(&headers, query);
    // The header wins when it is readable text; otherwise the query decides.
    let raw = header_text.as_deref().or(query).map(str::trim);
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match (raw, &got) {
        (None | Some(""), Ok(None)) => {}
        (Some(s), Ok(Some(n))) => {
            assert!(digits(s), "{s:?} accepted");
            assert_eq!(s.parse::<u64>().ok(), Some(*n));
        }
        (Some(s), Err(e)) => {
            assert!(!digits(s) || s.parse::<u64>().is_err(), "{s:?} refused");
            assert_eq!(e.status.as_u16(), 400);
        }
        (raw, got) => panic!("{raw:?} gave {got:?}"),
    }
    if header_text.is_none() {
        assert_eq!(from_query.ok(), got.ok());
    }
});
