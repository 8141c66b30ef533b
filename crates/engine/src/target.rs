//! Targets as loading produces them: a rule kind, a label and typed attribute values.
//!
//! A **rule** declares which attributes it takes ([`AttrSpec`]); calling it in a `BUILD` file
//! declares a **target** whose attributes are checked and converted here, once, into
//! [`AttrValue`]s. Later phases never see a raw Starlark value.

pub use executor_base::hints::did_you_mean;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::Value;

use crate::label::{Label, LabelContext, LabelError};
use crate::rules::DynRule;

/// The type of an attribute, which decides how a Starlark value is converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// A string.
    String,
    /// A list of strings.
    StringList,
    /// A dict from string to string.
    StringDict,
    /// One label, resolved against the declaring package.
    Label,
    /// A list of labels.
    LabelList,
    /// A dict from a string (such as a destination path) to a label.
    StringKeyedLabelDict,
    /// `True` or `False`.
    Bool,
    /// An integer.
    Int,
}

impl AttrType {
    /// How the type is named in error messages and docs.
    pub fn describe(self) -> &'static str {
        match self {
            AttrType::String => "a string",
            AttrType::StringList => "a list of strings",
            AttrType::StringDict => "a dict of string to string",
            AttrType::Label => "a label",
            AttrType::LabelList => "a list of labels",
            AttrType::StringKeyedLabelDict => "a dict of string to label",
            AttrType::Bool => "a bool",
            AttrType::Int => "an int",
        }
    }
}

/// One attribute a rule accepts.
#[derive(Debug, Clone, Copy)]
pub struct AttrSpec {
    /// The keyword used in `BUILD` files.
    pub name: &'static str,
    /// How the value is checked and converted.
    pub ty: AttrType,
    /// True if a target must set it.
    pub mandatory: bool,
    /// One line for `executor` docs and error messages.
    pub doc: &'static str,
}

/// A checked attribute value. Maps are `BTreeMap`s so that their order never depends on how
/// they were written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// [`AttrType::String`].
    String(String),
    /// [`AttrType::StringList`].
    StringList(Vec<String>),
    /// [`AttrType::StringDict`].
    StringDict(BTreeMap<String, String>),
    /// [`AttrType::Label`].
    #[serde(serialize_with = "serialize_label")]
    Label(Label),
    /// [`AttrType::LabelList`].
    #[serde(serialize_with = "serialize_labels")]
    LabelList(Vec<Label>),
    /// [`AttrType::StringKeyedLabelDict`].
    #[serde(serialize_with = "serialize_label_dict")]
    StringKeyedLabelDict(BTreeMap<String, Label>),
    /// [`AttrType::Bool`].
    Bool(bool),
    /// [`AttrType::Int`].
    Int(i64),
}

fn serialize_label<S: serde::Serializer>(label: &Label, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(label)
}

fn serialize_labels<S: serde::Serializer>(labels: &[Label], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(labels.iter().map(|l| l.to_string()))
}

fn serialize_label_dict<S: serde::Serializer>(map: &BTreeMap<String, Label>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, l)| (k, l.to_string())))
}

impl AttrValue {
    /// Every label the value mentions, in a fixed order.
    pub fn labels(&self) -> Vec<&Label> {
        match self {
            AttrValue::Label(l) => vec![l],
            AttrValue::LabelList(ls) => ls.iter().collect(),
            AttrValue::StringKeyedLabelDict(m) => m.values().collect(),
            _ => Vec::new(),
        }
    }
}

/// Where a target was declared, for error messages: `images/BUILD:3:1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location(pub String);

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A declared target: what a rule call in a `BUILD` file produced.
#[derive(Clone)]
pub struct Target {
    /// The target's label.
    pub label: Label,
    /// The rule it is a target of.
    pub rule: &'static dyn DynRule,
    /// Attributes that were set, except `name`; unset optional ones are absent. For queries
    /// and dependencies; analysis reads the typed attributes.
    pub attrs: BTreeMap<&'static str, AttrValue>,
    /// The rule's typed attributes ([`crate::rules::Rule::Attrs`]), converted and checked once.
    pub typed: Arc<dyn Any + Send + Sync>,
    /// The call site of the rule.
    pub location: Location,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("label", &self.label)
            .field("kind", &self.kind())
            .field("attrs", &self.attrs)
            .field("location", &self.location)
            .finish()
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label
            && self.kind() == other.kind()
            && self.attrs == other.attrs
            && self.location == other.location
    }
}

impl Eq for Target {}

impl Target {
    /// The rule kind, e.g. `write_file`.
    pub fn kind(&self) -> &'static str {
        self.rule.kind()
    }

    /// The typed attributes, if the target's rule has attributes of type `T`.
    pub fn typed_attrs<T: Any>(&self) -> Option<&T> {
        self.typed.downcast_ref::<T>()
    }

    /// Every label in the target's attributes (its direct dependencies, rule or file), sorted
    /// and deduplicated, with the attribute that names each first.
    pub fn deps(&self) -> Vec<(&'static str, &Label)> {
        let mut out: Vec<(&'static str, &Label)> = Vec::new();
        for (name, value) in &self.attrs {
            for label in value.labels() {
                if !out.iter().any(|(_, l)| *l == label) {
                    out.push((name, label));
                }
            }
        }
        out.sort_by(|a, b| a.1.cmp(b.1));
        out
    }
}

/// Why an attribute value was rejected. The message is completed with the call site by the
/// Starlark error that carries it.
#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    /// The rule has no such attribute.
    #[error("rule `{rule}` has no attribute `{attr}`{hint}")]
    Unknown { rule: &'static str, attr: String, hint: String },
    /// A mandatory attribute is missing.
    #[error("rule `{rule}` requires attribute `{attr}`")]
    Missing { rule: &'static str, attr: &'static str },
    /// The value has the wrong type.
    #[error("attribute `{attr}` of rule `{rule}` must be {expected}, got {got}")]
    Type { rule: &'static str, attr: &'static str, expected: &'static str, got: String },
    /// A label in the value does not parse.
    #[error("attribute `{attr}` of rule `{rule}`: {source}")]
    Label { rule: &'static str, attr: &'static str, source: LabelError },
    /// Positional arguments were given.
    #[error("rule `{rule}` takes keyword arguments only (write `{rule}(name = \"...\", ...)`)")]
    Positional { rule: &'static str },
}

fn type_name(value: Value) -> String {
    format!("`{}`", value.get_type())
}

fn to_string(rule: &'static str, spec: &AttrSpec, value: Value) -> Result<String, AttrError> {
    value.unpack_str().map(str::to_owned).ok_or_else(|| AttrError::Type {
        rule,
        attr: spec.name,
        expected: spec.ty.describe(),
        got: type_name(value),
    })
}

fn to_list<'v>(rule: &'static str, spec: &AttrSpec, value: Value<'v>) -> Result<Vec<Value<'v>>, AttrError> {
    if let Some(list) = ListRef::from_value(value) {
        return Ok(list.content().to_vec());
    }
    Err(AttrError::Type { rule, attr: spec.name, expected: spec.ty.describe(), got: type_name(value) })
}

fn to_dict<'v>(
    rule: &'static str,
    spec: &AttrSpec,
    value: Value<'v>,
) -> Result<Vec<(Value<'v>, Value<'v>)>, AttrError> {
    if let Some(dict) = DictRef::from_value(value) {
        return Ok(dict.iter().collect());
    }
    Err(AttrError::Type { rule, attr: spec.name, expected: spec.ty.describe(), got: type_name(value) })
}

/// Converts one Starlark value to the attribute's type. Labels resolve against `context`.
pub fn convert_attr(
    rule: &'static str,
    spec: &AttrSpec,
    value: Value,
    context: &LabelContext,
) -> Result<AttrValue, AttrError> {
    let elem_err = |what: &str, v: Value| AttrError::Type {
        rule,
        attr: spec.name,
        expected: spec.ty.describe(),
        got: format!("{what} {}", type_name(v)),
    };
    let label =
        |text: &str| Label::parse(text, context).map_err(|source| AttrError::Label { rule, attr: spec.name, source });
    Ok(match spec.ty {
        AttrType::String => AttrValue::String(to_string(rule, spec, value)?),
        AttrType::Bool => match value.unpack_bool() {
            Some(b) => AttrValue::Bool(b),
            None => return Err(AttrError::Type { rule, attr: spec.name, expected: "a bool", got: type_name(value) }),
        },
        AttrType::Int => match value.unpack_i32() {
            Some(i) => AttrValue::Int(i64::from(i)),
            None => return Err(AttrError::Type { rule, attr: spec.name, expected: "an int", got: type_name(value) }),
        },
        AttrType::StringList => {
            let items = to_list(rule, spec, value)?;
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                out.push(v.unpack_str().ok_or_else(|| elem_err("an element of type", v))?.to_owned());
            }
            AttrValue::StringList(out)
        }
        AttrType::Label => AttrValue::Label(label(&to_string(rule, spec, value)?)?),
        AttrType::LabelList => {
            let items = to_list(rule, spec, value)?;
            let mut out = Vec::with_capacity(items.len());
            for v in items {
                let l = label(v.unpack_str().ok_or_else(|| elem_err("an element of type", v))?)?;
                if out.contains(&l) {
                    return Err(AttrError::Label {
                        rule,
                        attr: spec.name,
                        source: LabelError {
                            what: "label",
                            text: v.unpack_str().unwrap_or_default().to_owned(),
                            reason: "it is listed twice".into(),
                        },
                    });
                }
                out.push(l);
            }
            AttrValue::LabelList(out)
        }
        AttrType::StringDict => {
            let mut out = BTreeMap::new();
            for (k, v) in to_dict(rule, spec, value)? {
                let k = k.unpack_str().ok_or_else(|| elem_err("a key of type", k))?;
                let v = v.unpack_str().ok_or_else(|| elem_err("a value of type", v))?;
                out.insert(k.to_owned(), v.to_owned());
            }
            AttrValue::StringDict(out)
        }
        AttrType::StringKeyedLabelDict => {
            let mut out = BTreeMap::new();
            for (k, v) in to_dict(rule, spec, value)? {
                let k = k.unpack_str().ok_or_else(|| elem_err("a key of type", k))?;
                let v = v.unpack_str().ok_or_else(|| elem_err("a value of type", v))?;
                out.insert(k.to_owned(), label(v)?);
            }
            AttrValue::StringKeyedLabelDict(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("srcz", ["srcs", "name"]), ", did you mean `srcs`?");
        assert_eq!(did_you_mean("statc", ["static", "hello"]), ", did you mean `static`?");
        assert_eq!(did_you_mean("zzzzzz", ["srcs", "name"]), "");
    }
}
