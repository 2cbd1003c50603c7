//! `depends[].when` predicates: `{{ .config.postgres.mode == 'embedded' }}`.
//!
//! A small, total language: paths (`.config.a.b`, also `.Values.a`/`.values.a`), string, number,
//! boolean and null literals, `==`, `!=`, `&&`/`and`, `||`/`or`, `!`/`not`, parentheses. A bare path
//! is true when it is present and not `false`, `null`, `0`, `""`, `[]` or `{}`. A missing path is `null`.

use serde_json::Value;

/// A parsed `when` predicate.
#[derive(Debug, Clone, PartialEq)]
pub struct When {
    raw: String,
    expr: Expr,
}

/// Why a predicate does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `when` expression {text:?}: {reason}")]
pub struct WhenError {
    /// The expression.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

/// Longest expression accepted: real predicates have a handful of tokens, and the bound keeps
/// the recursion of parsing, evaluation and drop shallow.
pub const MAX_TOKENS: usize = 256;

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Path(Vec<String>),
    Lit(Value),
    Not(Box<Expr>),
    Eq(Box<Expr>, Box<Expr>, bool),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Path(Vec<String>),
    Lit(Value),
    Op(&'static str),
}

impl When {
    /// Parses a predicate (with or without `{{ }}`).
    pub fn parse(text: &str) -> Result<When, WhenError> {
        let err = |reason: &str| WhenError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let mut body = text.trim();
        if let Some(inner) = body.strip_prefix("{{").and_then(|b| b.strip_suffix("}}")) {
            body = inner
                .trim()
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
        }
        let toks = tokenize(body).map_err(|r| err(&r))?;
        if toks.is_empty() {
            return Err(err("empty expression"));
        }
        // Parsing, evaluating and dropping recurse once per nesting level or operand.
        if toks.len() > MAX_TOKENS {
            return Err(err(&format!("longer than {MAX_TOKENS} tokens")));
        }
        let mut p = P { toks, at: 0 };
        let expr = p.or().map_err(|r| err(&r))?;
        if p.at != p.toks.len() {
            return Err(err("unexpected trailing tokens"));
        }
        Ok(When {
            raw: text.to_string(),
            expr,
        })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Evaluates against the dependent's configuration (its values with defaults applied).
    pub fn eval(&self, config: &Value) -> bool {
        truthy(&eval(&self.expr, config))
    }
}

fn eval(e: &Expr, config: &Value) -> Value {
    match e {
        Expr::Path(p) => {
            let mut cur = config;
            for seg in p {
                match cur.get(seg) {
                    Some(v) => cur = v,
                    None => return Value::Null,
                }
            }
            cur.clone()
        }
        Expr::Lit(v) => v.clone(),
        Expr::Not(x) => Value::Bool(!truthy(&eval(x, config))),
        Expr::Eq(a, b, eq) => Value::Bool(loose_eq(&eval(a, config), &eval(b, config)) == *eq),
        Expr::And(a, b) => Value::Bool(truthy(&eval(a, config)) && truthy(&eval(b, config))),
        Expr::Or(a, b) => Value::Bool(truthy(&eval(a, config)) || truthy(&eval(b, config))),
    }
}

fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        if let Some(op) = ["==", "!=", "&&", "||"].into_iter().find(|o| *o == two) {
            out.push(Tok::Op(op));
            i += 2;
            continue;
        }
        match c {
            '!' | '(' | ')' => {
                out.push(Tok::Op(match c {
                    '!' => "!",
                    '(' => "(",
                    _ => ")",
                }));
                i += 1;
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|x| *x == c)
                    .ok_or("unterminated string")?;
                out.push(Tok::Lit(Value::String(
                    chars[i + 1..i + 1 + end].iter().collect(),
                )));
                i += end + 2;
            }
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.'))
                {
                    i += 1;
                }
                let path: Vec<String> = chars[start..i]
                    .iter()
                    .collect::<String>()
                    .split('.')
                    .map(str::to_string)
                    .collect();
                if path.iter().any(String::is_empty) {
                    return Err("empty path segment".to_string());
                }
                let path = match path.first().map(String::as_str) {
                    Some("config" | "Values" | "values") => path[1..].to_vec(),
                    _ => path,
                };
                out.push(Tok::Path(path));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n: f64 = text.parse().map_err(|_| format!("bad number {text:?}"))?;
                out.push(Tok::Lit(
                    serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
                ));
            }
            c if c.is_alphabetic() => {
                let start = i;
                while i < chars.len() && chars[i].is_alphanumeric() {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.as_str() {
                    "true" => Tok::Lit(Value::Bool(true)),
                    "false" => Tok::Lit(Value::Bool(false)),
                    "null" | "nil" => Tok::Lit(Value::Null),
                    "and" => Tok::Op("&&"),
                    "or" => Tok::Op("||"),
                    "not" => Tok::Op("!"),
                    "eq" => Tok::Op("=="),
                    "ne" => Tok::Op("!="),
                    _ => return Err(format!("unknown word {word:?}")),
                });
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<Tok>,
    at: usize,
}

impl P {
    fn peek_op(&self, op: &str) -> bool {
        matches!(self.toks.get(self.at), Some(Tok::Op(o)) if *o == op)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.peek_op("||") {
            self.at += 1;
            l = Expr::Or(Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.cmp()?;
        while self.peek_op("&&") {
            self.at += 1;
            l = Expr::And(Box::new(l), Box::new(self.cmp()?));
        }
        Ok(l)
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.unary()?;
        for (op, eq) in [("==", true), ("!=", false)] {
            if self.peek_op(op) {
                self.at += 1;
                return Ok(Expr::Eq(Box::new(l), Box::new(self.unary()?), eq));
            }
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_op("!") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek_op("(") {
            self.at += 1;
            let e = self.or()?;
            if !self.peek_op(")") {
                return Err("missing `)`".to_string());
            }
            self.at += 1;
            return Ok(e);
        }
        match self.toks.get(self.at).cloned() {
            Some(Tok::Path(p)) => {
                self.at += 1;
                Ok(Expr::Path(p))
            }
            Some(Tok::Lit(v)) => {
                self.at += 1;
                Ok(Expr::Lit(v))
            }
            Some(Tok::Op(o)) => Err(format!("unexpected `{o}`")),
            None => Err("unexpected end of expression".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(expr: &str, config: Value, expect: bool) {
        let w = When::parse(expr).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.eval(&config), expect, "{expr} against {config}");
    }

    #[test]
    fn predicates() {
        let c = json!({"postgres": {"mode": "embedded"}, "n": 3, "on": true});
        check("{{ .config.postgres.mode == 'embedded' }}", c.clone(), true);
        check(
            "{{ .config.postgres.mode != 'embedded' }}",
            c.clone(),
            false,
        );
        check(".Values.on && .n == 3", c.clone(), true);
        check("not .missing", c.clone(), true);
        check("(.missing || .on) and !false", c.clone(), true);
        check(".postgres.mode == \"external\"", c, false);
    }

    /// Found by the `when_expr` fuzz target (fuzz/corpus/when_expr/deep-*): deep nesting or a
    /// long chain of operands recursed once per level and overflowed the stack.
    #[test]
    fn long_expressions_are_refused_not_a_stack_overflow() {
        let deep = format!("{}.a{}", "(".repeat(20_000), ")".repeat(20_000));
        let nots = format!("{}.a", "!".repeat(60_000));
        let chain = vec![".a"; 20_000].join(" && ");
        for e in [deep, nots, chain] {
            let err = When::parse(&e).unwrap_err();
            assert!(err.reason.contains("tokens"), "{}", err.reason);
        }
        let nested = format!("{}.on{}", "(".repeat(100), ")".repeat(100));
        check(&nested, json!({"on": true}), true);
    }

    #[test]
    fn rejects_garbage() {
        for e in ["", "{{ }}", ".a ==", "(.a", ".a .b", "foo", "'x", ".a..b"] {
            assert!(When::parse(e).is_err(), "{e:?} should not parse");
        }
    }
}
