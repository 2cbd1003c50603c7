//! Flux webhook bodies (`POST /api/v1/hooks/flux`, `catalyst-api` orgs/hooks.rs, parsed by
//! `catalyst-spine` flux.rs): the `X-Signature` check, the notification parser, the `flux.*`
//! event it becomes, that event through the log's line codec, and the projection applying it.
//! A body signed with the key always verifies; a parsed notification's event survives the log
//! round trip unchanged.
//!
//! Input: the body, optionally followed by a 0xFF byte and an `X-Signature` value to check.
#![no_main]

use catalyst_fuzz::split_ff;
use catalyst_spine::{codec, flux, CloudEvent, Projection};
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const KEY: &[u8] = b"fuzz-webhook-key";

fuzz_target!(|data: &[u8]| {
    let (body, signature) = split_ff(data);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(KEY).expect("any key length");
    mac.update(body);
    let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    flux::verify_signature(KEY, Some(&good), body).expect("a body signed with the key verifies");
    if let Some(sig) = signature {
        let _ = flux::verify_signature(KEY, Some(&String::from_utf8_lossy(sig)), body);
    }

    let Ok(event) = flux::parse(body) else {
        return;
    };
    let _ = (event.outcome(), event.target(), event.environment_name());
    // As the handler names it: the body's digest.
    let id = format!("flux-{}", &hex::encode(Sha256::digest(body))[..32]);
    let received = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let Some(draft) = event.to_draft(id, received) else {
        return;
    };
    let mut ce = draft.into_event();
    ce.catalystseq = 1;
    let line = codec::encode(std::slice::from_ref(&ce)).expect("an event encodes");
    let back: CloudEvent =
        codec::parse(&line[..line.len() - 1]).expect("an encoded event parses back");
    assert_eq!(back, ce, "the log changed the event");
    let mut projection = Projection::new();
    projection.apply(&ce);
    let _ = projection.to_json();
});
