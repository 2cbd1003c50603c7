//! `git push` over smart HTTP (`catalyst-gitops` push.rs): the receive-pack request the server
//! parses itself — pkt-line commands `old new ref[\0caps]`, a flush, then the pack. Any bytes
//! either parse or are refused with an error (never a panic); what parses keeps the limits
//! (1–64 commands, 40-hex ids, a ref name of 1–255 bytes), its pack is the body's tail, and the
//! commands framed again parse to the same commands.
#![no_main]

use catalyst_gitops::push::parse_request;
use libfuzzer_sys::fuzz_target;

fn is_oid(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn pkt(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:04x}", data.len() + 4).as_bytes());
    out.extend_from_slice(data);
}

fuzz_target!(|data: &[u8]| {
    let Ok(req) = parse_request(data) else {
        return;
    };
    assert!((1..=64).contains(&req.commands.len()));
    for c in &req.commands {
        assert!(is_oid(&c.old) && is_oid(&c.new), "{c:?}");
        assert!(!c.refname.is_empty() && c.refname.len() <= 255, "{c:?}");
    }
    assert!(data.ends_with(req.pack), "the pack is the body's tail");

    // Framed again (capabilities on the first line), the commands parse the same.
    let mut again = Vec::new();
    for (i, c) in req.commands.iter().enumerate() {
        let mut line = format!("{} {} {}", c.old, c.new, c.refname).into_bytes();
        if i == 0 && !req.caps.is_empty() {
            line.push(0);
            line.extend_from_slice(
                req.caps
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .as_bytes(),
            );
        }
        line.push(b'\n');
        if line.len() + 4 > 0xffff {
            return;
        }
        pkt(&mut again, &line);
    }
    again.extend_from_slice(b"0000");
    again.extend_from_slice(req.pack);
    let back = parse_request(&again).expect("a request framed again parses");
    assert_eq!(back.commands, req.commands);
    assert_eq!(back.pack, req.pack);
});
