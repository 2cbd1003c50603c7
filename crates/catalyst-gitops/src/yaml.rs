//! The one module of this crate that knows YAML. It delegates to the Blueprint engine's YAML
//! module, so Catalyst reads and writes YAML through one implementation.
use serde_json::Value;

/// Serializes `value` as one YAML document (block style, YAML 1.1 booleans quoted).
pub fn to_string(value: &Value) -> String {
    catalyst_blueprint::yaml::to_string(value)
}

/// Parses one YAML document into JSON.
pub fn parse(text: &str) -> Result<Value, String> {
    catalyst_blueprint::yaml::parse_json(text).map_err(|e| e.to_string())
}
