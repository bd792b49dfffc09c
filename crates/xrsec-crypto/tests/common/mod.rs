//! Loading the JSON known-answer vectors in `tests/vectors/`.

#![allow(dead_code)] // each test binary uses a different subset

use serde_json::Value;

/// The parsed vector file `tests/vectors/<name>`.
pub fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `cases` array of a vector file.
pub fn cases(file: &Value) -> &Vec<Value> {
    file["cases"].as_array().expect("cases array")
}

/// A hex field of a case, decoded.
pub fn hex(case: &Value, field: &str) -> Vec<u8> {
    let s = case[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no hex field {field}", id(case)));
    hex::decode(s).unwrap_or_else(|e| panic!("{}: {field}: {e}", id(case)))
}

/// An optional hex field.
pub fn opt_hex(case: &Value, field: &str) -> Option<Vec<u8>> {
    case.get(field)
        .and_then(Value::as_str)
        .map(|s| hex::decode(s).expect("hex"))
}

/// A string field.
pub fn str<'a>(case: &'a Value, field: &str) -> &'a str {
    case[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no string field {field}", id(case)))
}

/// An integer field.
pub fn int(case: &Value, field: &str) -> u64 {
    case[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{}: no integer field {field}", id(case)))
}

/// The case's name for messages.
pub fn id(case: &Value) -> String {
    match (case.get("id"), case.get("tcId")) {
        (Some(id), _) => id.as_str().unwrap_or("?").to_string(),
        (None, Some(tc)) => format!("tcId {tc}"),
        _ => "?".to_string(),
    }
}
