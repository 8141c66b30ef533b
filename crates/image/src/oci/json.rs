//! Canonical JSON: the one way every OCI document is turned into bytes.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::digest::Digest;

/// A serialized JSON document and its digest: a blob ready for `blobs/sha256/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonBlob {
    /// The canonical JSON bytes ([`canonical_json`]).
    pub bytes: Vec<u8>,
    /// `sha256` of [`JsonBlob::bytes`].
    pub digest: Digest,
}

impl JsonBlob {
    /// Serializes `value` canonically and hashes the result.
    pub(crate) fn of<T: Serialize>(value: &T) -> Result<JsonBlob, serde_json::Error> {
        let bytes = canonical_json(value)?;
        Ok(JsonBlob { digest: Digest::of(&bytes), bytes })
    }

    /// The length of [`JsonBlob::bytes`], as a descriptor's `size`.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The bytes as text (canonical JSON is always UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or("<not utf-8>")
    }
}

/// Serializes `value` as compact JSON (no whitespace, no trailing newline) with the keys of
/// every object sorted bytewise.
///
/// The sort is done here rather than left to `serde_json::Map` being a `BTreeMap`: if any
/// crate in the build enabled serde_json's `preserve_order` feature, `Map` would keep
/// insertion order and a `HashMap`'s random order would leak into the digest.
pub fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = sort_keys(serde_json::to_value(value)?);
    serde_json::to_vec(&value)
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sort_keys(v))).collect::<Map<String, Value>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn keys_sorted_compact_no_newline() {
        let mut inner = HashMap::new();
        for k in ["zeta", "alpha", "mid", "Beta"] {
            inner.insert(k.to_owned(), vec![k.len()]);
        }
        let mut outer = HashMap::new();
        outer.insert("b", serde_json::json!({"y": 1, "x": inner}));
        outer.insert("a", serde_json::json!(null));
        let bytes = canonical_json(&outer).expect("serializes");
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            r#"{"a":null,"b":{"x":{"Beta":[4],"alpha":[5],"mid":[3],"zeta":[4]},"y":1}}"#
        );
    }
}
