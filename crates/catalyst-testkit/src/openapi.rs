//! Checks an HTTP answer against the API's OpenAPI description: the route and method are
//! described, the status is one the operation lists, the content type is one it lists for that
//! status, and a JSON body validates against that response's schema (JSON Schema 2020-12, with
//! the description's own `components` for `$ref`s). Tests run every answer they receive through
//! [`Conformance::check`].
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The checker over one description; cheap to clone, validators are compiled once per response.
#[derive(Clone)]
pub struct Conformance {
    spec: Arc<Value>,
    /// Path templates split into segments (`None` = a parameter).
    templates: Arc<Vec<(String, Vec<Option<String>>)>>,
    compiled: Arc<Mutex<HashMap<String, Arc<jsonschema::Validator>>>>,
}

/// What was checked.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// The answer conforms (its body was validated when it had one).
    Conforms,
    /// The path is not a described route, and the answer is a fallback 404/405.
    Undescribed,
}

fn escape(pointer_part: &str) -> String {
    // A JSON pointer part, percent-encoded for a URI fragment.
    pointer_part
        .replace('~', "~0")
        .replace('/', "~1")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

impl Conformance {
    /// A checker for `spec` (the OpenAPI document).
    pub fn new(spec: Value) -> Conformance {
        let templates = spec["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .keys()
                    .map(|p| {
                        let segs = p
                            .split('/')
                            .map(|s| {
                                if s.starts_with('{') && s.ends_with('}') {
                                    None
                                } else {
                                    Some(s.to_owned())
                                }
                            })
                            .collect();
                        (p.clone(), segs)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Conformance {
            spec: Arc::new(spec),
            templates: Arc::new(templates),
            compiled: Arc::default(),
        }
    }

    /// The described route `path` (no query) matches: the one with the fewest parameters.
    pub fn route(&self, path: &str) -> Option<&str> {
        let segs: Vec<&str> = path.split('/').collect();
        self.templates
            .iter()
            .filter(|(_, t)| {
                t.len() == segs.len()
                    && t.iter().zip(&segs).all(|(t, s)| match t {
                        Some(lit) => lit == s,
                        None => !s.is_empty(),
                    })
            })
            .min_by_key(|(_, t)| t.iter().filter(|s| s.is_none()).count())
            .map(|(p, _)| p.as_str())
    }

    /// Checks one answer. `body` is `None` for a stream whose body was not read.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<Checked, String> {
        let method = method.to_ascii_lowercase();
        let Some(route) = self.route(path) else {
            return if status == 404 || status == 405 {
                Ok(Checked::Undescribed)
            } else {
                Err(format!(
                    "{method} {path}: answered {status}, but no described route matches"
                ))
            };
        };
        let op = &self.spec["paths"][route][&method];
        if op.is_null() {
            return if status == 405 {
                Ok(Checked::Undescribed)
            } else {
                Err(format!(
                    "{method} {route}: the method is not described (answered {status})"
                ))
            };
        }
        let status_key = status.to_string();
        let response = &op["responses"][&status_key];
        let response = if response.is_null() {
            &op["responses"]["default"]
        } else {
            response
        };
        if response.is_null() {
            let listed: Vec<&String> = op["responses"]
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            return Err(format!(
                "{method} {route}: status {status} is not described (described: {listed:?}); body: {}",
                body.map(String::from_utf8_lossy).unwrap_or_default()
            ));
        }
        let content = response["content"].as_object();
        let media = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|c| !c.is_empty());
        let (Some(content), Some(media)) = (content, media.as_deref()) else {
            let empty = body.is_none_or(|b| b.is_empty());
            return if content.is_none_or(|c| c.is_empty()) && empty {
                Ok(Checked::Conforms)
            } else if content.is_none_or(|c| c.is_empty()) {
                Err(format!(
                    "{method} {route} {status}: a body was sent, but none is described"
                ))
            } else if empty {
                Err(format!(
                    "{method} {route} {status}: the described body is missing"
                ))
            } else {
                Err(format!(
                    "{method} {route} {status}: the answer has no content type"
                ))
            };
        };
        if !content.contains_key(media) {
            return Err(format!(
                "{method} {route} {status}: content type {media} is not described ({:?})",
                content.keys().collect::<Vec<_>>()
            ));
        }
        let (Some(body), true) = (body, media == "application/json") else {
            return Ok(Checked::Conforms);
        };
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "{method} {route} {status}: the body is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        })?;
        let pointer = format!(
            "#/paths/{}/{method}/responses/{status_key}/content/{}/schema",
            escape(route),
            escape(media)
        );
        let validator = self.validator(&pointer)?;
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(Checked::Conforms)
        } else {
            Err(format!(
                "{method} {route} {status}: the body does not match the described schema: {}; body: {value}",
                errors.join("; ")
            ))
        }
    }

    fn validator(&self, pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
        if let Some(v) = self.compiled.lock().unwrap().get(pointer) {
            return Ok(v.clone());
        }
        // The whole description is the root, so `#/components/...` references resolve.
        let mut root = (*self.spec).clone();
        root["$ref"] = Value::String(pointer.to_owned());
        root["$schema"] = Value::String("https://json-schema.org/draft/2020-12/schema".into());
        let v = Arc::new(
            jsonschema::draft202012::new(&root)
                .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?,
        );
        self.compiled
            .lock()
            .unwrap()
            .insert(pointer.to_owned(), v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Conformance {
        Conformance::new(json!({
            "openapi": "3.1.0",
            "paths": {
                "/api/v1/things/{id}": {"get": {"responses": {
                    "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                    "204": {"description": "none"}
                }}},
                "/api/v1/things/special": {"get": {"responses": {
                    "200": {"description": "ok", "content": {"text/event-stream": {"schema": {"type": "string"}}}}
                }}}
            },
            "components": {"schemas": {"Thing": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}
        }))
    }

    #[test]
    fn answers_are_checked_by_route_status_type_and_schema() {
        let c = spec();
        assert_eq!(
            c.route("/api/v1/things/special"),
            Some("/api/v1/things/special")
        );
        assert_eq!(c.route("/api/v1/things/x"), Some("/api/v1/things/{id}"));
        let ok = c.check(
            "GET",
            "/api/v1/things/x",
            200,
            Some("application/json"),
            Some(br#"{"name":"a"}"#),
        );
        assert_eq!(ok, Ok(Checked::Conforms));
        assert!(c
            .check(
                "GET",
                "/api/v1/things/x",
                200,
                Some("application/json"),
                Some(br#"{"name":1}"#)
            )
            .unwrap_err()
            .contains("does not match"));
        assert!(c
            .check(
                "GET",
                "/api/v1/things/x",
                500,
                Some("application/json"),
                Some(b"{}")
            )
            .unwrap_err()
            .contains("not described"));
        assert!(c
            .check(
                "GET",
                "/api/v1/things/x",
                200,
                Some("text/plain"),
                Some(b"x")
            )
            .is_err());
        assert_eq!(
            c.check("GET", "/api/v1/things/x", 204, None, Some(b"")),
            Ok(Checked::Conforms)
        );
        assert_eq!(
            c.check(
                "GET",
                "/api/v1/things/special",
                200,
                Some("text/event-stream"),
                None
            ),
            Ok(Checked::Conforms)
        );
        assert_eq!(
            c.check("GET", "/api/v1/nothing", 404, None, None),
            Ok(Checked::Undescribed)
        );
        assert!(c.check("GET", "/api/v1/nothing", 200, None, None).is_err());
        assert!(c
            .check("POST", "/api/v1/things/x", 200, None, None)
            .is_err());
    }
}
