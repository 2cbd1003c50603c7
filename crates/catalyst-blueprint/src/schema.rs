//! configSchema: JSON Schema validation of an Application's values, defaults, and the
//! `x-catalyst-*` extensions the console renders forms from.

use serde::Serialize;
use serde_json::{Map, Value};

/// One validation problem in the values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValueError {
    /// JSON pointer into the values (`""` is the whole document).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
    /// JSON pointer into the schema, to the keyword that failed.
    pub schema_pointer: String,
}

/// An `x-catalyst-*` keyword found in a configSchema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extension {
    /// JSON pointer of the value in the Application's values the keyword applies to.
    pub pointer: String,
    /// The keyword, e.g. `x-catalyst-widget`.
    pub keyword: String,
    /// Its value.
    pub value: Value,
}

/// The result of validating values against a configSchema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validated {
    /// True when `errors` is empty.
    pub valid: bool,
    /// Every error, in document order.
    pub errors: Vec<ValueError>,
    /// The values with schema defaults applied.
    pub values: Value,
    /// The `x-catalyst-*` extensions of the schema.
    pub extensions: Vec<Extension>,
}

/// Why a configSchema cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configSchema is not a valid JSON Schema: {0}")]
pub struct SchemaError(pub String);

/// Checks that `schema` is a valid JSON Schema (against its meta-schema).
pub fn check_schema(schema: &Value) -> Result<(), SchemaError> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(SchemaError(
            "a schema is an object or a boolean".to_string(),
        ));
    }
    jsonschema::meta::validate(schema).map_err(|e| {
        let at = e.instance_path().to_string();
        SchemaError(if at.is_empty() {
            e.to_string()
        } else {
            format!("at {at}: {e}")
        })
    })?;
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| SchemaError(e.to_string()))
}

/// Validates `values` against `schema` after applying the schema's defaults.
pub fn validate_values(schema: &Value, values: &Value) -> Result<Validated, SchemaError> {
    check_schema(schema)?;
    let validator = jsonschema::validator_for(schema).map_err(|e| SchemaError(e.to_string()))?;
    let with_defaults = apply_defaults(schema, values);
    let mut errors: Vec<ValueError> = validator
        .iter_errors(&with_defaults)
        .map(|e| ValueError {
            pointer: e.instance_path().to_string(),
            message: e.to_string(),
            schema_pointer: e.schema_path().to_string(),
        })
        .collect();
    errors.sort_by(|a, b| (&a.pointer, &a.message).cmp(&(&b.pointer, &b.message)));
    errors.dedup();
    Ok(Validated {
        valid: errors.is_empty(),
        errors,
        values: with_defaults,
        extensions: extensions(schema),
    })
}

/// Fills in `default`s from `properties` (recursively). An absent object whose properties have
/// defaults is created; a value present in `values` always wins. `values: null` counts as `{}`.
pub fn apply_defaults(schema: &Value, values: &Value) -> Value {
    let mut out = if values.is_null() && is_object_schema(schema) {
        Value::Object(Map::new())
    } else {
        values.clone()
    };
    fill(schema, &mut out, 0);
    out
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("properties").is_some() || schema.get("type") == Some(&Value::from("object"))
}

fn fill(schema: &Value, value: &mut Value, depth: usize) {
    if depth > 64 {
        return;
    }
    let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        value.as_object_mut(),
    ) else {
        return;
    };
    for (key, sub) in props {
        match obj.get_mut(key) {
            Some(existing) => fill(sub, existing, depth + 1),
            None => {
                if let Some(d) = sub.get("default") {
                    let mut d = d.clone();
                    fill(sub, &mut d, depth + 1);
                    obj.insert(key.clone(), d);
                } else if sub.get("properties").is_some() {
                    let mut child = Value::Object(Map::new());
                    fill(sub, &mut child, depth + 1);
                    if child.as_object().is_some_and(|m| !m.is_empty()) {
                        obj.insert(key.clone(), child);
                    }
                }
            }
        }
    }
}

/// Every `x-catalyst-*` keyword, with the JSON pointer of the value it describes.
pub fn extensions(schema: &Value) -> Vec<Extension> {
    let mut out = Vec::new();
    walk_extensions(schema, "", &mut out, 0);
    out
}

fn walk_extensions(schema: &Value, pointer: &str, out: &mut Vec<Extension>, depth: usize) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if depth > 64 {
        return;
    }
    for (k, v) in obj {
        if k.starts_with("x-catalyst-") {
            out.push(Extension {
                pointer: pointer.to_string(),
                keyword: k.clone(),
                value: v.clone(),
            });
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            let p = format!("{pointer}/{}", escape(k));
            walk_extensions(sub, &p, out, depth + 1);
        }
    }
    if let Some(items) = obj.get("items") {
        walk_extensions(items, &format!("{pointer}/-"), out, depth + 1);
    }
}

/// A schema location whose `default` does not validate against the schema that declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDefault {
    /// JSON pointer of the subschema inside the configSchema (e.g. `/properties/port`).
    pub schema_pointer: String,
    /// Why.
    pub message: String,
}

/// Checks every `default` against the subschema it belongs to.
pub fn check_defaults(schema: &Value) -> Vec<BadDefault> {
    let mut out = Vec::new();
    walk_defaults(schema, "", &mut out, 0);
    out
}

fn walk_defaults(schema: &Value, pointer: &str, out: &mut Vec<BadDefault>, depth: usize) {
    let Some(obj) = schema.as_object() else {
        return;
    };
    if depth > 64 {
        return;
    }
    if let Some(d) = obj.get("default") {
        let mut sub = schema.clone();
        if let Some(m) = sub.as_object_mut() {
            m.remove("default");
            // `required` in a subschema concerns the caller's values, not the default itself.
            m.remove("required");
        }
        if let Ok(v) = jsonschema::validator_for(&sub) {
            if let Some(e) = v.iter_errors(d).next() {
                let at = e.instance_path().to_string();
                out.push(BadDefault {
                    schema_pointer: pointer.to_string(),
                    message: if at.is_empty() {
                        format!("default {d} is invalid: {e}")
                    } else {
                        format!("default {d} is invalid at {at}: {e}")
                    },
                });
            }
        }
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, sub) in props {
            walk_defaults(
                sub,
                &format!("{pointer}/properties/{}", escape(k)),
                out,
                depth + 1,
            );
        }
    }
    if let Some(items) = obj.get("items") {
        walk_defaults(items, &format!("{pointer}/items"), out, depth + 1);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = obj.get(key).and_then(Value::as_array) {
            for (i, sub) in list.iter().enumerate() {
                walk_defaults(sub, &format!("{pointer}/{key}/{i}"), out, depth + 1);
            }
        }
    }
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["host"],
            "properties": {
                "host": {"type": "string", "x-catalyst-widget": "hostname"},
                "replicas": {"type": "integer", "default": 1, "minimum": 1},
                "tls": {"type": "object", "properties": {"issuer": {"type": "string", "default": "le"}}},
                "plain": {"type": "object", "properties": {"x": {"type": "string"}}}
            }
        })
    }

    #[test]
    fn defaults_fill_without_overriding() {
        let v = apply_defaults(&schema(), &json!({"replicas": 3}));
        assert_eq!(v, json!({"replicas": 3, "tls": {"issuer": "le"}}));
        let v = apply_defaults(&schema(), &Value::Null);
        assert_eq!(v, json!({"replicas": 1, "tls": {"issuer": "le"}}));
    }

    #[test]
    fn every_error_has_a_pointer() {
        let r = validate_values(&schema(), &json!({"replicas": 0, "tls": {"issuer": 5}})).unwrap();
        assert!(!r.valid);
        let pointers: Vec<&str> = r.errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, vec!["", "/replicas", "/tls/issuer"]);
        assert_eq!(r.extensions.len(), 1);
        assert_eq!(r.extensions[0].pointer, "/host");
    }

    #[test]
    fn bad_schemas_and_defaults() {
        assert!(check_schema(&json!({"type": "strung"})).is_err());
        assert!(check_schema(&json!({"properties": {"a": {"minimum": "x"}}})).is_err());
        assert!(check_schema(&schema()).is_ok());
        let bad =
            check_defaults(&json!({"properties": {"n": {"type": "integer", "default": "x"}}}));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].schema_pointer, "/properties/n");
        assert!(check_defaults(&schema()).is_empty());
    }
}
