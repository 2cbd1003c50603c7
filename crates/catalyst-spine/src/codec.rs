//! The checksummed line format of every append-only log Catalyst keeps (the event spine's and
//! each deployment's): `<crc32 of the json, 8 lower-case hex digits> <json>\n`. Pure: encoding,
//! parsing and scanning bytes; the files are the adapters' business.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes `items` as log lines.
pub fn encode<T: Serialize>(items: &[T]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(items.len() * 256);
    for item in items {
        let json = serde_json::to_vec(item).map_err(|e| e.to_string())?;
        let crc = crc32fast::hash(&json);
        out.extend_from_slice(format!("{crc:08x} ").as_bytes());
        out.extend_from_slice(&json);
        out.push(b'\n');
    }
    Ok(out)
}

fn parse_hex8(b: &[u8]) -> Option<u32> {
    if b.len() != 8 {
        return None;
    }
    let mut v: u32 = 0;
    for &c in b {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | u32::from(d);
    }
    Some(v)
}

/// Parses one line (without its newline).
pub fn parse<T: DeserializeOwned>(line: &[u8]) -> Result<T, String> {
    if line.len() < 10 || line[8] != b' ' {
        return Err("malformed line".into());
    }
    let crc = parse_hex8(&line[..8]).ok_or("malformed checksum")?;
    let json = &line[9..];
    if crc32fast::hash(json) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_slice::<T>(json).map_err(|e| format!("undecodable entry: {e}"))
}

/// What a scan of a log found: where its last good line ends and what was wrong after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Bytes of whole, valid, consecutive entries from the start.
    pub good_len: u64,
    /// Sequence number of the last good entry (0 = none).
    pub last_seq: u64,
    /// What was wrong after `good_len`, when the scan did not reach a clean end.
    pub problem: Option<String>,
    /// Whether that problem is only a torn tail: no complete line follows `good_len`, which is
    /// what a crash mid-append leaves. Anything else (a complete line that is damaged or out of
    /// sequence, such as two writers' `seq N`) may hold acknowledged entries.
    pub torn: bool,
}

/// Scans a log from the start, calling `visit` for each good entry until it returns false.
/// Entries must carry the sequence numbers 1, 2, 3, … (`seq_of`); the scan stops at the first
/// torn, corrupt, undecodable or out-of-sequence line.
pub fn scan<T: DeserializeOwned>(
    bytes: &[u8],
    seq_of: impl Fn(&T) -> u64,
    mut visit: impl FnMut(T) -> bool,
) -> Scan {
    let mut pos = 0usize;
    let mut last = 0u64;
    let problem = loop {
        if pos >= bytes.len() {
            break None;
        }
        let rest = &bytes[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break Some(format!(
                "last line (at byte {pos}) has no newline: torn write"
            ));
        };
        let entry: T = match parse(&rest[..nl]) {
            Ok(e) => e,
            Err(p) => break Some(format!("line at byte {pos}: {p}")),
        };
        let seq = seq_of(&entry);
        if last.checked_add(1) != Some(seq) {
            break Some(format!(
                "line at byte {pos}: sequence {seq} does not follow {last}"
            ));
        }
        last = seq;
        pos += nl + 1;
        if !visit(entry) {
            break None;
        }
    };
    let torn = problem.is_some() && !bytes[pos..].contains(&b'\n');
    Scan {
        good_len: pos as u64,
        last_seq: last,
        problem,
        torn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct E {
        seq: u64,
        text: String,
    }

    fn entries(n: u64) -> Vec<E> {
        (1..=n)
            .map(|seq| E {
                seq,
                text: format!("entry {seq}\nwith a newline inside"),
            })
            .collect()
    }

    fn all(bytes: &[u8]) -> (Vec<E>, Scan) {
        let mut out = Vec::new();
        let s = scan(
            bytes,
            |e: &E| e.seq,
            |e| {
                out.push(e);
                true
            },
        );
        (out, s)
    }

    #[test]
    fn torn_damaged_and_out_of_sequence_are_told_apart() {
        let bytes = encode(&entries(3)).unwrap();
        let (got, s) = all(&bytes);
        assert_eq!(got, entries(3));
        assert_eq!(
            (s.good_len, s.last_seq, s.problem),
            (bytes.len() as u64, 3, None)
        );

        // A crash mid-append: a partial last line.
        let mut torn = bytes.clone();
        torn.extend_from_slice(b"0123abcd {\"seq\":4");
        let (got, s) = all(&torn);
        assert_eq!(
            (got.len(), s.good_len, s.torn),
            (3, bytes.len() as u64, true)
        );

        // Two writers: a complete line repeating seq 3.
        let mut twice = encode(&entries(3)).unwrap();
        twice.extend(encode(&entries(3)[2..]).unwrap());
        let (_, s) = all(&twice);
        assert!(!s.torn);
        assert!(s.problem.unwrap().contains("sequence 3 does not follow 3"));

        // A flipped byte inside a complete line.
        let mut bad = bytes.clone();
        bad[12] ^= 1;
        let (got, s) = all(&bad);
        assert_eq!((got.len(), s.good_len, s.torn), (0, 0, false));
        assert!(s.problem.unwrap().contains("checksum"));
    }

    #[test]
    fn hex8() {
        assert_eq!(parse_hex8(b"0000000a"), Some(10));
        assert_eq!(parse_hex8(b"0000000A"), None);
        assert_eq!(parse_hex8(b"0000000"), None);
    }

    proptest! {
        /// Any prefix of a log scans to the whole lines it holds, and is torn exactly when it
        /// ends inside a line.
        #[test]
        fn every_prefix_scans_to_its_whole_lines(n in 1u64..8, cut in 0usize..2000) {
            let bytes = encode(&entries(n)).unwrap();
            let cut = cut.min(bytes.len());
            let (got, s) = all(&bytes[..cut]);
            let whole = bytes[..cut].iter().filter(|&&b| b == b'\n').count();
            prop_assert_eq!(got.len(), whole);
            prop_assert_eq!(s.torn, s.problem.is_some());
            prop_assert_eq!(s.problem.is_some(), cut > 0 && bytes[cut - 1] != b'\n');
        }

        /// Garbage never panics the parser.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = all(&bytes);
        }
    }
}
