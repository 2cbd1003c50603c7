//! The event log's line format (`catalyst-spine` codec.rs), as start-up recovery reads a log
//! file after a crash: the scan stops at the first torn, corrupt, undecodable or out-of-sequence
//! line, and what it calls good is exactly what a rescan of that prefix finds clean.
#![no_main]

use catalyst_spine::{codec, CloudEvent};
use libfuzzer_sys::fuzz_target;

fn scan(bytes: &[u8]) -> (codec::Scan, usize) {
    let mut n = 0;
    let s = codec::scan(
        bytes,
        |e: &CloudEvent| e.catalystseq,
        |_| {
            n += 1;
            true
        },
    );
    (s, n)
}

fuzz_target!(|data: &[u8]| {
    let (s, n) = scan(data);
    let good = usize::try_from(s.good_len).expect("fits");
    assert!(good <= data.len());
    assert_eq!(s.last_seq, n as u64, "entries are numbered 1, 2, 3, …");
    if s.torn {
        assert!(s.problem.is_some() && !data[good..].contains(&b'\n'));
    }
    let (again, m) = scan(&data[..good]);
    assert_eq!(
        (again.good_len, again.last_seq, m),
        (s.good_len, s.last_seq, n)
    );
    assert!(again.problem.is_none(), "the good prefix rescans clean");
});
