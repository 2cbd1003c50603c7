//! Diagnostics in the style of rustc: `error[BP0010]: message`, `--> file:line:column`, the
//! source line with a caret, and a `help:` line. Codes are stable; see [`codes`].

use std::fmt::Write as _;

use serde::Serialize;

use crate::yaml::Pos;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails lint (exit 1).
    Error,
    /// Reported; fails lint only with `--deny-warnings`.
    Warning,
}

/// One finding, pointing at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, e.g. `BP0010`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The file (as given by the caller).
    pub file: String,
    /// 1-based line (0 when the problem has no place in the file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Stable diagnostic codes. Never renumber; retire codes instead.
pub mod codes {
    /// The file is not valid YAML.
    pub const YAML: &str = "BP0001";
    /// The document is not a Blueprint (kind/apiVersion/shape).
    pub const NOT_A_BLUEPRINT: &str = "BP0002";
    /// A field has the wrong type.
    pub const FIELD_TYPE: &str = "BP0003";
    /// Invalid Blueprint name.
    pub const NAME: &str = "BP0004";
    /// Missing or invalid semver version.
    pub const VERSION: &str = "BP0005";
    /// The name does not match the file or folder (`<name>.blueprint.yaml`, `<name>/blueprint.yaml`).
    pub const NAME_MISMATCH: &str = "BP0007";
    /// Version given both in `metadata.version` and `spec.version`, and they differ.
    pub const VERSION_TWICE: &str = "BP0006";
    /// Unknown visibility.
    pub const VISIBILITY: &str = "BP0010";
    /// Placement default is not one of the modes.
    pub const PLACEMENT_DEFAULT: &str = "BP0011";
    /// minRegions greater than maxRegions.
    pub const REGIONS_INVERTED: &str = "BP0012";
    /// Unknown placement mode.
    pub const PLACEMENT_MODE: &str = "BP0013";
    /// A Blueprint depends on itself.
    pub const SELF_DEPENDENCY: &str = "BP0020";
    /// A dependency range does not parse.
    pub const RANGE: &str = "BP0021";
    /// No known version satisfies a dependency range.
    pub const UNSATISFIABLE: &str = "BP0022";
    /// A dependency names a Blueprint not in the linted catalog.
    pub const UNKNOWN_DEPENDENCY: &str = "BP0023";
    /// The same dependency is declared twice.
    pub const DUPLICATE_DEPENDENCY: &str = "BP0024";
    /// A `when` expression does not parse.
    pub const WHEN: &str = "BP0025";
    /// An alias is invalid or used twice.
    pub const ALIAS: &str = "BP0026";
    /// `chart/Chart.yaml` version differs from the Blueprint version.
    pub const CHART_VERSION: &str = "BP0030";
    /// `chart/Chart.yaml` cannot be read as YAML.
    pub const CHART_YAML: &str = "BP0031";
    /// configSchema is not a valid JSON Schema.
    pub const SCHEMA: &str = "BP0040";
    /// A default does not validate against its own schema.
    pub const SCHEMA_DEFAULT: &str = "BP0041";
    /// An `upgrades.from`/`upgrades.blocks` entry does not parse.
    pub const UPGRADE_RANGE: &str = "BP0050";
    /// Two files define the same Blueprint version.
    pub const DUPLICATE_VERSION: &str = "BP0060";
    /// A private Blueprint outside an Organization catalog (nobody can see it).
    pub const PRIVATE_OUTSIDE_ORG: &str = "BP0061";
    /// The card has no title.
    pub const CARD_TITLE: &str = "BP0070";
    /// A plain `yes`/`no`/`on`/`off`: a string here, a boolean to YAML 1.1 readers such as Helm.
    pub const YAML11_BOOLEAN: &str = "BP0080";
}

impl Diagnostic {
    /// An error at `pos`.
    pub fn error(code: &'static str, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, file, pos, message)
    }

    /// A warning at `pos`.
    pub fn warning(code: &'static str, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, file, pos, message)
    }

    fn new(
        severity: Severity,
        code: &'static str,
        file: &str,
        pos: Pos,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders rustc-style; `source` (the file's text) adds the offending line with a caret.
    pub fn render(&self, source: Option<&str>) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{level}[{}]: {}\n", self.code, self.message);
        if self.line == 0 {
            let _ = writeln!(out, "  --> {}", self.file);
        } else {
            let _ = writeln!(out, "  --> {}:{}:{}", self.file, self.line, self.column);
        }
        let line_text = source
            .filter(|_| self.line > 0)
            .and_then(|s| s.lines().nth(self.line - 1));
        let gutter = self.line.to_string().len();
        if let Some(text) = line_text {
            let pad = " ".repeat(gutter);
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{} | {}", self.line, text.trim_end());
            let caret_at = text
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect::<String>();
            let width = text
                .chars()
                .skip(self.column.saturating_sub(1))
                .take_while(|c| !c.is_whitespace() && !matches!(c, '#' | ',' | ']' | '}'))
                .count()
                .max(1);
            let _ = writeln!(out, "{pad} | {caret_at}{}", "^".repeat(width));
        }
        if let Some(hint) = &self.hint {
            let pad = " ".repeat(gutter);
            let _ = writeln!(out, "{pad} = help: {hint}");
        }
        out
    }
}

/// Sorts diagnostics by file, line, column, code (the order lint prints them in).
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (&a.file, a.line, a.column, a.code, &a.message)
            .cmp(&(&b.file, b.line, b.column, b.code, &b.message))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc() {
        let d = Diagnostic::error(
            codes::VISIBILITY,
            "x/blueprint.yaml",
            Pos {
                line: 2,
                column: 15,
            },
            "unknown visibility \"public\"",
        )
        .with_hint("use one of: listed, unlisted, private");
        let text = d.render(Some("spec:\n  visibility: public # x\n"));
        assert_eq!(
            text,
            "error[BP0010]: unknown visibility \"public\"\n  --> x/blueprint.yaml:2:15\n  |\n2 |   visibility: public # x\n  |               ^^^^^^\n  = help: use one of: listed, unlisted, private\n"
        );
    }
}
