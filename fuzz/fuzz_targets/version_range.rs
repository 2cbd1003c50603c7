//! Helm-style version ranges (`catalyst_blueprint::range`), as `depends[].version` and
//! `upgrades.from` carry them: parsing must not panic, and a parsed range must parse again from
//! its display form to the same range (the catalog stores and shows the text).
#![no_main]

use catalyst_blueprint::VersionRange;
use libfuzzer_sys::fuzz_target;
use semver::Version;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(range) = VersionRange::parse(text) else {
        return;
    };
    let shown = range.to_string();
    assert_eq!(shown, range.as_str());
    let again = VersionRange::parse(&shown)
        .unwrap_or_else(|e| panic!("{text:?} parsed, its display {shown:?} does not: {e}"));
    assert_eq!(again, range, "display round trip changed {text:?}");
    for v in [
        "0.0.0",
        "0.1.0",
        "1.0.0",
        "1.2.3",
        "1.2.3-rc.1",
        "2.0.0",
        "10.20.30",
    ] {
        let v = Version::parse(v).expect("a valid version");
        assert_eq!(range.matches(&v), again.matches(&v));
    }
    if range.is_any() {
        assert!(
            range.matches(&Version::new(1, 2, 3)),
            "{text:?} is any but misses 1.2.3"
        );
    }
});
