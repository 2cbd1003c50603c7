//! The Blueprint YAML reader and model: `yaml::parse_documents`, `Blueprint::from_yaml` and
//! `lint` (what `catalyst blueprint lint` and the catalog loader run on a file), then the
//! canonical form: it must parse again to the same Blueprint and be a fixed point.
//!
//! Input: the `blueprint.yaml` text, optionally followed by a 0xFF byte and a `chart/Chart.yaml`.
#![no_main]

use catalyst_blueprint::lint::{lint, LintFile};
use catalyst_blueprint::{yaml, Blueprint, Catalog};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, chart) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let text = String::from_utf8_lossy(text).into_owned();
    let _ = yaml::parse_documents(&text);
    let report = lint(
        &[LintFile {
            file: "blueprint.yaml".into(),
            text: text.clone(),
            chart: chart.map(|c| {
                (
                    "chart/Chart.yaml".into(),
                    String::from_utf8_lossy(c).into_owned(),
                )
            }),
        }],
        &Catalog::new(),
    );
    let _ = (report.errors(), report.warnings());

    let Ok(bp) = Blueprint::from_yaml(&text) else {
        return;
    };
    let canonical = bp.to_canonical_yaml();
    let again = Blueprint::from_yaml(&canonical).unwrap_or_else(|e| {
        panic!(
            "the canonical form does not parse: {e}\n--- input\n{text}\n--- canonical\n{canonical}"
        )
    });
    assert_eq!(again.name, bp.name, "canonical form changed the name");
    assert_eq!(
        again.version, bp.version,
        "canonical form changed the version"
    );
    assert_eq!(
        again.to_canonical_yaml(),
        canonical,
        "the canonical form is not a fixed point"
    );
});
