//! Canonical JSON: one encoding per value, whatever the order its maps were built in and
//! whatever features of `serde_json` some crate in the build turns on (`preserve_order`
//! keeps maps in insertion order). Action keys are digests of it.

use serde_json::Value;

/// `value` as compact JSON with every object's keys sorted (by their UTF-8 bytes), strings
/// escaped and numbers written as `serde_json` writes them. For maps already sorted this is
/// byte for byte what `serde_json::to_vec` writes without `preserve_order`.
pub fn to_canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// Writes `value`; recursion is bounded by the depth of values executor builds itself
/// (action key data, a handful of levels), never by input.
fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(key, out);
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal, escaped as `serde_json` escapes it.
fn string(s: &str, out: &mut String) {
    // Serializing a `str` cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_sorted_whatever_their_order_and_text_matches_serde_json() {
        let mut a = serde_json::Map::new();
        a.insert("b".into(), Value::from(1));
        a.insert("a".into(), serde_json::json!({"z": [true, null, 1.5], "y": "x\"\n\u{1}é"}));
        let mut b = serde_json::Map::new();
        b.insert("a".into(), serde_json::json!({"y": "x\"\n\u{1}é", "z": [true, null, 1.5]}));
        b.insert("b".into(), Value::from(1));
        let (a, b) = (Value::Object(a), Value::Object(b));
        assert_eq!(to_canonical_json(&a), to_canonical_json(&b));
        assert_eq!(to_canonical_json(&a), r#"{"a":{"y":"x\"\n\u0001é","z":[true,null,1.5]},"b":1}"#);
        // Without `preserve_order`, serde_json's own output is already canonical.
        assert_eq!(to_canonical_json(&b), serde_json::to_string(&b).expect("json"));
    }
}
