//! Registrar responses (`catalyst-dns` registrar/): each of the five adapters (Cloudflare,
//! GoDaddy, OVH, Dynadot JSON; Namecheap XML) calls a local stand-in that answers with the
//! status and body under test, through the production registry, HTTP client and parsers.
//! Whatever comes back is a `RegistrarError` or a value, never a panic; name servers read back
//! are non-empty.
//!
//! Input: byte 0 picks the registrar, byte 1 the call (validate token, read or set name
//! servers), byte 2 the status; the rest is the body.
#![no_main]

use std::sync::OnceLock;

use catalyst_dns::registrar::{RegistrarUrls, Registry};
use catalyst_fuzz::{status_of, Answer, StandIn};
use libfuzzer_sys::fuzz_target;

/// A well-formed token for each adapter, so every call gets as far as the response.
const ADAPTERS: [(&str, &str, &str); 5] = [
    ("cloudflare", "cf-token", "application/json"),
    ("godaddy", "key:secret", "application/json"),
    ("ovh", "app:secret:consumer", "application/json"),
    ("dynadot", "key:secret", "application/json"),
    ("namecheap", "user:key:user:203.0.113.7", "application/xml"),
];

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::with_all(&RegistrarUrls::all_at(&StandIn::get().base)))
}

fuzz_target!(|data: &[u8]| {
    let [which, call, status, body @ ..] = data else {
        return;
    };
    let (name, token, content_type) = ADAPTERS[usize::from(*which) % ADAPTERS.len()];
    let stand_in = StandIn::get();
    stand_in.answer(Answer {
        status: status_of(*status),
        content_type,
        body: body.to_vec(),
    });
    let adapter = registry().get(name).expect("the adapter is registered");
    let ns = vec!["ns1.openova.io".to_string(), "ns2.openova.io".to_string()];
    stand_in.block_on(async {
        match call % 3 {
            0 => {
                let _ = adapter.validate_token(token, "example.com").await;
            }
            1 => {
                if let Ok(got) = adapter.get_nameservers(token, "example.com").await {
                    assert!(
                        got.iter().all(|n| !n.is_empty()),
                        "{name}: empty name server in {got:?}"
                    );
                }
            }
            _ => {
                let _ = adapter.set_nameservers(token, "example.com", &ns).await;
            }
        }
    });
});
