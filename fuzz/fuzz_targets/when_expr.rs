//! `depends[].when` predicates (`catalyst_blueprint::when`): parsing must not panic (nor blow
//! the stack on deep nesting), evaluation is total, and a parsed predicate parses again from its
//! text to the same predicate.
//!
//! Input: the expression, optionally followed by a 0xFF byte and a JSON config to evaluate it
//! against (else a fixed one).
#![no_main]

use catalyst_blueprint::when::When;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let (expr, config) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (
            &data[..at],
            serde_json::from_slice::<Value>(&data[at + 1..]).ok(),
        ),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(expr) else {
        return;
    };
    let Ok(when) = When::parse(text) else {
        return;
    };
    let again = When::parse(when.as_str())
        .unwrap_or_else(|e| panic!("{text:?} parsed, its text does not: {e}"));
    assert_eq!(again, when);
    let config = config.unwrap_or_else(|| {
        json!({"postgres": {"mode": "embedded", "replicas": 2}, "ha": true, "name": "", "list": []})
    });
    assert_eq!(when.eval(&config), again.eval(&config));
    let _ = when.eval(&Value::Null);
});
