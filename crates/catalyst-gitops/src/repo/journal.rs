//! A call's journal file: the caller's document (one line of JSON: the planned ref moves and
//! whatever the caller keeps with them), then the bytes of every object file the call adds —
//! loose objects, a pack and its index — so that the journal alone, once durable, can make
//! the call again after a power loss: the objects need not be durable before the call is
//! answered (they are fsynced later, in the background, see [`super::Flusher`]).
//!
//! ```text
//! <doc>\n
//! CATALYST-OBJECTS <count>\n
//! <path length> <data length>\n<path><data>      (count times)
//! END <crc32 of everything before, 8 hex digits>\n
//! ```
//!
//! A journal cut short (a crash while it was written: the call was not answered and no ref
//! moved) fails its checksum and is told apart from a whole one. A journal that is the document
//! alone (written before journals carried objects, or rewritten as aborted) has no objects.

use std::path::{Path, PathBuf};

const OBJECTS: &[u8] = b"CATALYST-OBJECTS ";
const END: &[u8] = b"END ";

/// Appends the objects section after `doc` (which must hold no line break).
pub(crate) fn encode(doc: &[u8], objects: &[(&Path, &[u8])]) -> Vec<u8> {
    let size: usize = objects
        .iter()
        .map(|(p, d)| p.as_os_str().len() + d.len() + 24)
        .sum();
    let mut out = Vec::with_capacity(doc.len() + size + 64);
    out.extend_from_slice(doc);
    out.push(b'\n');
    out.extend_from_slice(OBJECTS);
    out.extend_from_slice(format!("{}\n", objects.len()).as_bytes());
    for (path, data) in objects {
        let path = path.as_os_str().as_encoded_bytes();
        out.extend_from_slice(format!("{} {}\n", path.len(), data.len()).as_bytes());
        out.extend_from_slice(path);
        out.extend_from_slice(data);
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    out.extend_from_slice(END);
    out.extend_from_slice(format!("{:08x}\n", crc.sum()).as_bytes());
    out
}

/// What a journal file holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// The document alone: no objects carried.
    Doc(&'a [u8]),
    /// The document and every object file of the call (absolute path, bytes).
    Whole(&'a [u8], Vec<(PathBuf, &'a [u8])>),
    /// Cut short or damaged: the call was never answered.
    Torn,
}

/// Reads a journal file's bytes.
pub(crate) fn decode(bytes: &[u8]) -> Decoded<'_> {
    let Some(nl) = bytes.iter().position(|b| *b == b'\n') else {
        return Decoded::Doc(bytes);
    };
    let (doc, rest) = (&bytes[..nl], &bytes[nl + 1..]);
    if rest.is_empty() {
        return Decoded::Doc(doc);
    }
    objects(bytes, nl + 1).map_or(Decoded::Torn, |o| Decoded::Whole(doc, o))
}

/// The objects section starting at `at`, checked against its trailing checksum.
fn objects(bytes: &[u8], at: usize) -> Option<Vec<(PathBuf, &[u8])>> {
    // The trailer: "END " + 8 hex digits + "\n".
    let trailer = END.len() + 9;
    let body_end = bytes.len().checked_sub(trailer).filter(|e| *e >= at)?;
    let tail = &bytes[body_end..];
    if !tail.starts_with(END) || tail.last() != Some(&b'\n') {
        return None;
    }
    let want =
        u32::from_str_radix(std::str::from_utf8(&tail[END.len()..trailer - 1]).ok()?, 16).ok()?;
    let mut crc = flate2::Crc::new();
    crc.update(&bytes[..body_end]);
    if crc.sum() != want {
        return None;
    }
    let mut rest = bytes[at..body_end].strip_prefix(OBJECTS)?;
    let count: usize = line(&mut rest)?.parse().ok()?;
    let mut out = Vec::with_capacity(count.min(4096));
    for _ in 0..count {
        let head = line(&mut rest)?;
        let (p, d) = head.split_once(' ')?;
        let (p, d): (usize, usize) = (p.parse().ok()?, d.parse().ok()?);
        if rest.len() < p.checked_add(d)? {
            return None;
        }
        let path = std::str::from_utf8(&rest[..p]).ok()?;
        out.push((PathBuf::from(path), &rest[p..p + d]));
        rest = &rest[p + d..];
    }
    rest.is_empty().then_some(out)
}

/// The text up to the next line break (consumed with it).
fn line<'a>(rest: &mut &'a [u8]) -> Option<&'a str> {
    let nl = rest.iter().position(|b| *b == b'\n')?;
    let text = std::str::from_utf8(&rest[..nl]).ok()?;
    *rest = &rest[nl + 1..];
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_document_alone_has_no_objects() {
        assert_eq!(decode(br#"{"moves":[]}"#), Decoded::Doc(br#"{"moves":[]}"#));
        assert_eq!(decode(b"{}\n"), Decoded::Doc(b"{}"));
    }

    #[test]
    fn objects_come_back_and_a_cut_is_torn() {
        let a = Path::new("/d/acme/web.git/objects/ab/cdef");
        let b = Path::new("/d/acme/web.git/objects/pack/pack-1.pack");
        let bytes = encode(b"{\"x\":1}", &[(a, b"\x00\x01zz\n\n"), (b, b"")]);
        assert_eq!(
            decode(&bytes),
            Decoded::Whole(
                b"{\"x\":1}",
                vec![
                    (a.to_path_buf(), &b"\x00\x01zz\n\n"[..]),
                    (b.to_path_buf(), &b""[..])
                ]
            )
        );
        for cut in 9..bytes.len() {
            assert_eq!(decode(&bytes[..cut]), Decoded::Torn, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(decode(&flipped), Decoded::Torn);
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(
            doc in "[a-z{}\":,]{0,40}",
            objects in proptest::collection::vec(("[a-z/]{1,30}", proptest::collection::vec(any::<u8>(), 0..200)), 0..8),
        ) {
            let paths: Vec<PathBuf> = objects.iter().map(|(p, _)| PathBuf::from(format!("/{p}"))).collect();
            let refs: Vec<(&Path, &[u8])> = paths.iter().zip(&objects).map(|(p, (_, d))| (p.as_path(), d.as_slice())).collect();
            let bytes = encode(doc.as_bytes(), &refs);
            let want: Vec<(PathBuf, &[u8])> = refs.iter().map(|(p, d)| (p.to_path_buf(), *d)).collect();
            prop_assert_eq!(decode(&bytes), Decoded::Whole(doc.as_bytes(), want));
        }
    }
}
