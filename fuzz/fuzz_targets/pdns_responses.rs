//! PowerDNS responses (`catalyst-dns` pdns.rs): the production client calls a local stand-in
//! that answers every request with the status and body under test — zone lookups and
//! creation, cryptokey listing, DNSSEC signing, DS records — and the DNSSEC helpers read what
//! it parsed. Errors are `DnsError`s, never panics.
//!
//! Input: byte 0 picks the call, byte 1 the status; the rest is the body.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use catalyst_dns::pdns::{ds_of, is_signed, PowerDns};
use catalyst_fuzz::{status_of, Answer, StandIn};
use libfuzzer_sys::fuzz_target;

fn client() -> &'static PowerDns {
    static CLIENT: OnceLock<PowerDns> = OnceLock::new();
    CLIENT.get_or_init(|| {
        PowerDns::new(&StandIn::get().base, "fuzz-key", "localhost")
            .expect("a client")
            // One attempt: a 5xx answers at once instead of sleeping through the backoff.
            .with_backoff(vec![Duration::ZERO])
    })
}

fuzz_target!(|data: &[u8]| {
    let [call, status, body @ ..] = data else {
        return;
    };
    let stand_in = StandIn::get();
    stand_in.answer(Answer {
        status: status_of(*status),
        content_type: "application/json",
        body: body.to_vec(),
    });
    let pdns = client();
    let zone = "acme.omani.works";
    let ns = ["ns1.openova.io".to_string(), "ns2.openova.io".to_string()];
    stand_in.block_on(async {
        match call % 6 {
            0 => {
                if let Ok(keys) = pdns.cryptokeys(zone).await {
                    let _ = is_signed(&keys);
                    let ds = ds_of(&keys);
                    assert!(ds.len() <= keys.iter().map(|k| k.ds.len()).sum::<usize>());
                }
            }
            1 => {
                let _ = pdns.zone_exists(zone).await;
            }
            2 => {
                let _ = pdns.create_zone(zone, &ns).await;
            }
            3 => {
                let _ = pdns.ensure_signed(zone).await;
            }
            4 => {
                let _ = pdns.ds_records(zone).await;
            }
            _ => {
                let _ = pdns.ensure_signed_zone(zone, &ns).await;
            }
        }
    });
});
