//! The one place that knows YAML.
//!
//! Parsing goes through `saphyr-parser` events so every node keeps its line and column (lint
//! diagnostics point at them); emitting goes through `serde_norway`. Scalars are resolved with
//! the YAML 1.2 core schema. Anchors and aliases are resolved by copying the anchored node, up to
//! [`MAX_ALIAS_EXPANSION`] copied nodes and string bytes per stream (a "billion laughs" document
//! is refused instead of filling memory).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// A position in a source file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

/// A YAML node with the position it started at. Mappings keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: NodeValue,
    /// Where the node starts.
    pub pos: Pos,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `null`, `~` or empty.
    Null,
    /// `true`/`false`.
    Bool(bool),
    /// An integer or float.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping; keys are strings (non-string keys are rendered to strings), positions kept.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct YamlError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// What the parser said.
    pub message: String,
}

impl Node {
    /// A node without a meaningful position (built by code, not parsed).
    pub fn new(value: NodeValue) -> Node {
        Node {
            value,
            pos: Pos::default(),
        }
    }

    /// A string node.
    pub fn str(s: impl Into<String>) -> Node {
        Node::new(NodeValue::String(s.into()))
    }

    /// Looks up `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Looks up `key` in a mapping and returns the key node too (for its position).
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The string value, if this is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The items, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar rendered as text (numbers and booleans included), for fields that are strings
    /// in spirit but may be written unquoted (`version: 1.0` parses as a float).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            NodeValue::String(s) => Some(s.clone()),
            NodeValue::Number(n) => Some(n.to_string()),
            NodeValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A short name of the node's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON (positions dropped; key order becomes serde_json's).
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Number(n) => Value::Number(n.clone()),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Converts from JSON (objects in serde_json's key order).
    pub fn from_json(value: &Value) -> Node {
        Node::new(match value {
            Value::Null => NodeValue::Null,
            Value::Bool(b) => NodeValue::Bool(*b),
            Value::Number(n) => NodeValue::Number(n.clone()),
            Value::String(s) => NodeValue::String(s.clone()),
            Value::Array(a) => NodeValue::Seq(a.iter().map(Node::from_json).collect()),
            Value::Object(o) => NodeValue::Map(
                o.iter()
                    .map(|(k, v)| (Node::str(k.clone()), Node::from_json(v)))
                    .collect(),
            ),
        })
    }

    /// The text of a mapping key.
    pub fn key_text(&self) -> String {
        match &self.value {
            NodeValue::Null => "null".to_string(),
            NodeValue::Seq(_) | NodeValue::Map(_) => "<complex key>".to_string(),
            _ => self.scalar_text().unwrap_or_default(),
        }
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.value {
            NodeValue::Null => s.serialize_unit(),
            NodeValue::Bool(b) => s.serialize_bool(*b),
            NodeValue::Number(n) => n.serialize(s),
            NodeValue::String(v) => s.serialize_str(v),
            NodeValue::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            NodeValue::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&k.key_text(), v)?;
                }
                map.end()
            }
        }
    }
}

/// Parses every document of a YAML stream. Duplicate mapping keys are an error.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder {
        anchors: HashMap::new(),
        depth: 0,
        expanded: 0,
    };
    let mut parser = Parser::new_from_str(text);
    let mut docs = Vec::new();
    while let Some((event, span)) = next(&mut parser)? {
        match event {
            Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                let Some((ev, sp)) = next(&mut parser)? else {
                    break;
                };
                if matches!(ev, Event::DocumentEnd) {
                    docs.push(Node {
                        value: NodeValue::Null,
                        pos: pos(&sp),
                    });
                    continue;
                }
                docs.push(builder.node(&mut parser, ev, sp)?);
            }
            other => {
                return Err(YamlError {
                    pos: pos(&span),
                    message: format!("unexpected YAML event {other:?}"),
                })
            }
        }
    }
    Ok(docs)
}

/// Parses a single-document YAML text; an empty text is `null`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut docs = parse_documents(text)?;
    match docs.len() {
        0 => Ok(Node::new(NodeValue::Null)),
        1 => Ok(docs.remove(0)),
        _ => Err(YamlError {
            pos: docs[1].pos,
            message: "expected one YAML document, found several".to_string(),
        }),
    }
}

/// Parses a single YAML document straight to JSON.
pub fn parse_json(text: &str) -> Result<Value, YamlError> {
    parse(text).map(|n| n.to_json())
}

/// Words YAML 1.2 (this parser) reads as strings but YAML 1.1 readers (Helm, kubectl, PyYAML)
/// read as booleans.
const YAML11_BOOLEANS: [&str; 16] = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// Plain scalars that YAML 1.2 (this parser) reads as strings but YAML 1.1 readers (Helm, kubectl,
/// PyYAML) read as booleans: `yes`, `no`, `on`, `off`, `y`, `n` in their usual capitalizations.
/// Returns each one's position and text. Empty when the text does not parse.
pub fn yaml11_booleans(text: &str) -> Vec<(Pos, String)> {
    const WORDS: [&str; 16] = YAML11_BOOLEANS;
    let mut out = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else {
            return Vec::new();
        };
        if let Event::Scalar(v, ScalarStyle::Plain, _, None) = event {
            if WORDS.contains(&v.as_ref()) {
                out.push((pos(&span), v.into_owned()));
            }
        }
    }
    out
}

/// Serializes anything serializable as a YAML document (block style). Strings that YAML 1.1
/// readers would take for booleans (`Off`, `yes`, …) are quoted, so Helm and Flux read them back
/// as strings.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing our own value types cannot fail: all keys are strings.
    let text =
        serde_norway::to_string(value).unwrap_or_else(|e| format!("# cannot render YAML: {e}\n"));
    quote_yaml11_booleans(&text)
}

fn quote_yaml11_booleans(text: &str) -> String {
    let quote = |w: &str| {
        if YAML11_BOOLEANS.contains(&w) {
            format!("'{w}'")
        } else {
            w.to_string()
        }
    };
    let mut out = String::with_capacity(text.len());
    // Inside a block scalar (`|`, `>`), lines are content, not YAML.
    let mut block_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(bi) = block_indent {
            if indent > bi || line.trim().is_empty() {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            block_indent = None;
        }
        // Split off the indentation and any `- ` sequence markers.
        let mut head = &line[..indent];
        let mut rest = &line[indent..];
        while let Some(r) = rest.strip_prefix("- ") {
            head = &line[..line.len() - r.len()];
            rest = r;
        }
        let fixed = match rest.split_once(": ") {
            Some((k, v)) => format!("{head}{}: {}", quote(k), quote(v)),
            None => match rest.strip_suffix(':') {
                Some(k) => format!("{head}{}:", quote(k)),
                None => format!("{head}{}", quote(rest)),
            },
        };
        let last = fixed.trim_end().rsplit(' ').next().unwrap_or("");
        let is_block_marker = last.starts_with(['|', '>'])
            && last[1..]
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == '+');
        if is_block_marker {
            block_indent = Some(indent);
        }
        out.push_str(&fixed);
        out.push('\n');
    }
    out
}

type Next<'a> = Option<(Event<'a>, Span)>;

fn next<'a>(parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>) -> Result<Next<'a>, YamlError> {
    match parser.next_event() {
        None => Ok(None),
        Some(Ok(e)) => Ok(Some(e)),
        Some(Err(e)) => Err(YamlError {
            pos: Pos {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        }),
    }
}

/// Deeper documents are refused rather than risk the stack.
const MAX_DEPTH: usize = 200;

/// How much aliases may copy in one stream, in nodes plus string bytes: far more than any real
/// Blueprint or config repeats, far less than nine nested aliases of ten can (10^9 nodes).
pub const MAX_ALIAS_EXPANSION: usize = 100_000;

struct Builder {
    /// Anchored nodes and their [`weight`].
    anchors: HashMap<usize, (Node, usize)>,
    depth: usize,
    /// The weight copied by aliases so far.
    expanded: usize,
}

/// What copying a node costs: one per node plus the bytes of its strings.
fn weight(node: &Node) -> usize {
    1 + match &node.value {
        NodeValue::String(s) => s.len(),
        NodeValue::Seq(items) => items.iter().map(weight).sum(),
        NodeValue::Map(entries) => entries.iter().map(|(k, v)| weight(k) + weight(v)).sum(),
        _ => 0,
    }
}

impl Builder {
    fn node<'a>(
        &mut self,
        parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>,
        event: Event<'a>,
        span: Span,
    ) -> Result<Node, YamlError> {
        let at = pos(&span);
        if self.depth > MAX_DEPTH {
            return Err(YamlError {
                pos: at,
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        self.depth += 1;
        let node = self.node_inner(parser, event, at);
        self.depth -= 1;
        node
    }

    fn node_inner<'a>(
        &mut self,
        parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>,
        event: Event<'a>,
        at: Pos,
    ) -> Result<Node, YamlError> {
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tag_suffix = tag.as_ref().map(|t| t.suffix.clone());
                (
                    Node {
                        value: resolve_scalar(text, style, tag_suffix.as_deref()),
                        pos: at,
                    },
                    anchor,
                )
            }
            Event::Alias(id) => {
                let (node, cost) = self.anchors.get(&id).ok_or_else(|| YamlError {
                    pos: at,
                    message: "alias to an unknown anchor".to_string(),
                })?;
                self.expanded = self.expanded.saturating_add(*cost);
                if self.expanded > MAX_ALIAS_EXPANSION {
                    return Err(YamlError {
                        pos: at,
                        message: format!(
                            "aliases expand to more than {MAX_ALIAS_EXPANSION} nodes and bytes"
                        ),
                    });
                }
                return Ok(Node {
                    pos: at,
                    ..node.clone()
                });
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = next(parser)?.ok_or_else(|| eof(at))?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(parser, ev, sp)?);
                }
                (
                    Node {
                        value: NodeValue::Seq(items),
                        pos: at,
                    },
                    anchor,
                )
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Node, Node)> = Vec::new();
                // The keys so far (explicit and merged): a mapping of n keys costs O(n).
                let mut keys: std::collections::HashSet<String> = std::collections::HashSet::new();
                loop {
                    let (ev, sp) = next(parser)?.ok_or_else(|| eof(at))?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(parser, ev, sp)?;
                    let (ev, sp) = next(parser)?.ok_or_else(|| eof(at))?;
                    let value = self.node(parser, ev, sp)?;
                    if key.as_str() == Some("<<") {
                        merge_into(&mut entries, &mut keys, value);
                        continue;
                    }
                    let text = key.key_text();
                    if !keys.insert(text.clone()) {
                        return Err(YamlError {
                            pos: key.pos,
                            message: format!("duplicate key {text:?}"),
                        });
                    }
                    entries.push((key, value));
                }
                (
                    Node {
                        value: NodeValue::Map(entries),
                        pos: at,
                    },
                    anchor,
                )
            }
            other => {
                return Err(YamlError {
                    pos: at,
                    message: format!("unexpected YAML event {other:?}"),
                })
            }
        };
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), weight(&node)));
        }
        Ok(node)
    }
}

fn merge_into(
    entries: &mut Vec<(Node, Node)>,
    keys: &mut std::collections::HashSet<String>,
    value: Node,
) {
    let sources = match value.value {
        NodeValue::Map(_) => vec![value],
        NodeValue::Seq(items) => items,
        _ => Vec::new(),
    };
    for source in sources {
        if let NodeValue::Map(m) = source.value {
            for (k, v) in m {
                if keys.insert(k.key_text()) {
                    entries.push((k, v));
                }
            }
        }
    }
}

fn eof(at: Pos) -> YamlError {
    YamlError {
        pos: at,
        message: "unexpected end of YAML".to_string(),
    }
}

fn resolve_scalar(text: Cow<'_, str>, style: ScalarStyle, tag: Option<&str>) -> NodeValue {
    if let Some(tag) = tag {
        match tag {
            "str" => return NodeValue::String(text.into_owned()),
            "null" => return NodeValue::Null,
            _ => {}
        }
    }
    if style != ScalarStyle::Plain {
        return NodeValue::String(text.into_owned());
    }
    let t = text.as_ref();
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "true" | "True" | "TRUE" => return NodeValue::Bool(true),
        "false" | "False" | "FALSE" => return NodeValue::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(t) {
        return NodeValue::Number(n);
    }
    if looks_like_float(t) {
        if let Some(n) = t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
            return NodeValue::Number(n);
        }
    }
    NodeValue::String(text.into_owned())
}

fn parse_int(t: &str) -> Option<serde_json::Number> {
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v }.into())
}

fn looks_like_float(t: &str) -> bool {
    let body = t.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && body.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_scalars() {
        let n = parse("a: 1\nb:\n  - x\n  - 'true'\nc: true\nd: 1.5\ne: ~\n").unwrap();
        assert_eq!(n.get("a").unwrap().pos, Pos { line: 1, column: 4 });
        let b = n.get("b").unwrap().as_seq().unwrap();
        assert_eq!(b[1].pos, Pos { line: 4, column: 5 });
        assert_eq!(b[1].as_str(), Some("true"));
        assert_eq!(n.get("c").unwrap().value, NodeValue::Bool(true));
        assert_eq!(n.get("d").unwrap().to_json(), serde_json::json!(1.5));
        assert_eq!(n.get("e").unwrap().value, NodeValue::Null);
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
        let e = parse("a: [1, 2\n").unwrap_err();
        assert!(e.pos.line >= 1);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn anchors_resolve() {
        let n = parse("a: &x {k: v}\nb: *x\n").unwrap();
        assert_eq!(n.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn yaml11_booleans_are_quoted_on_output() {
        let n = parse("a: 'Off'\nOn: x\nl:\n- 'yes'\n- [no]\nt: |\n  Off\n  - on\n").unwrap();
        let text = to_string(&n);
        assert_eq!(
            text,
            "a: 'Off'\n'On': x\nl:\n- 'yes'\n- - 'no'\nt: |\n  Off\n  - on\n"
        );
        assert_eq!(parse(&text).unwrap().to_json(), n.to_json());
        assert!(yaml11_booleans(&text).is_empty());
    }

    #[test]
    fn emits_in_order() {
        let n = parse("z: 1\na: [x, 'y: z']\n").unwrap();
        assert_eq!(to_string(&n), "z: 1\na:\n- x\n- 'y: z'\n");
    }

    /// Found by the `blueprint_yaml` fuzz target (fuzz/corpus/blueprint_yaml/billion-laughs):
    /// nine levels of ten aliases each copied 10^9 nodes, and the reader ran out of memory.
    #[test]
    fn alias_expansion_is_bounded() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..9 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("aliases expand"), "{}", e.message);
        // Ordinary reuse still works.
        let n = parse("base: &b {replicas: 1}\nx: *b\ny: {<<: *b, mode: ha}\n").unwrap();
        assert_eq!(n.get("y").unwrap().to_json()["replicas"], 1);
    }
}
