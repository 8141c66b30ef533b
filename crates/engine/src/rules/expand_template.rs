//! `expand_template(name, template, out, substitutions, is_executable)`: a file made from a
//! template by replacing strings, as Bazel Skylib's rule of that name.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, Input, OutputKind, OutputSpec};
use crate::label::Label;
use crate::rules::{output_path, AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{AttrSpec, AttrType, Target};

/// The `expand_template` rule.
pub struct ExpandTemplate;

/// The attributes of an `expand_template` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// A label providing one file.
    pub template: Label,
    /// Output file name, relative to the package.
    pub out: String,
    /// Strings to replace and their replacements.
    #[serde(default)]
    pub substitutions: BTreeMap<String, String>,
    /// Mode 0755 instead of 0644.
    #[serde(default)]
    pub is_executable: bool,
}

impl Rule for ExpandTemplate {
    type Attrs = Attrs;
    const KIND: &'static str = "expand_template";
    const DOC: &'static str = "Writes `executor-out/<package>/<out>`: the `template` file with every occurrence of each key of `substitutions` replaced by its value. Replacement is one pass from the start of the file, taking the longest key that matches at each position, so a replacement is never itself replaced and the order of the keys does not matter.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec {
            name: "template",
            ty: AttrType::Label,
            mandatory: true,
            doc: "The template: a label providing one file.",
        },
        AttrSpec {
            name: "out",
            ty: AttrType::String,
            mandatory: true,
            doc: "Output file name, relative to the package.",
        },
        AttrSpec {
            name: "substitutions",
            ty: AttrType::StringDict,
            mandatory: false,
            doc: "String to replace -> its replacement (`{\"{VERSION}\": \"1.2\"}`).",
        },
        AttrSpec {
            name: "is_executable",
            ty: AttrType::Bool,
            mandatory: false,
            doc: "Materialize as executable: mode 0555 instead of 0444 (outputs are read-only).",
        },
    ];

    fn check(&self, attrs: &Attrs) -> Result<(), String> {
        crate::rules::check_out(Self::KIND, &attrs.out)?;
        if attrs.substitutions.contains_key("") {
            return Err("attribute `substitutions` of rule `expand_template`: a key must not be empty".into());
        }
        Ok(())
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let provided = ctx.provided(&attrs.template)?;
        let [template] = &provided.files[..] else {
            return Err(AnalysisError(format!(
                "attribute `template`: `{}` must provide exactly one file, it provides {}",
                attrs.template,
                provided.files.len()
            )));
        };
        let files = ctx.graph.add(Action {
            owner: target.label.clone(),
            inputs: vec![Input::new("template", template.clone())],
            outputs: vec![OutputSpec {
                path: output_path(&target.label, &attrs.out),
                kind: OutputKind::File { executable: attrs.is_executable },
            }],
            exec: Arc::new(ExpandTemplateExec { substitutions: attrs.substitutions.clone() }),
        });
        Ok(Provided::files(files))
    }
}

/// The action: one pass of replacements over the template's bytes.
#[derive(Debug, Serialize)]
struct ExpandTemplateExec {
    substitutions: BTreeMap<String, String>,
}

impl ActionExec for ExpandTemplateExec {
    fn mnemonic(&self) -> &'static str {
        "ExpandTemplate"
    }
    fn version(&self) -> u32 {
        1
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let template = std::fs::read(ctx.input("template")?)?;
        std::fs::write(&ctx.outputs[0], expand(&template, &self.substitutions))?;
        Ok(())
    }
}

/// Replaces, in one pass from the start, the longest key matching at each position.
fn expand(template: &[u8], substitutions: &BTreeMap<String, String>) -> Vec<u8> {
    let mut keys: Vec<(&[u8], &[u8])> =
        substitutions.iter().filter(|(k, _)| !k.is_empty()).map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
    keys.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
    let mut out = Vec::with_capacity(template.len());
    let mut i = 0;
    while i < template.len() {
        match keys.iter().find(|(k, _)| template[i..].starts_with(k)) {
            Some((k, v)) => {
                out.extend_from_slice(v);
                i += k.len();
            }
            None => {
                out.push(template[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expand;
    use std::collections::BTreeMap;

    fn subs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn one_pass_longest_key_first() {
        let s = subs(&[("{A}", "{B}"), ("{B}", "b"), ("{AB}", "long")]);
        // A replacement is not replaced again; the longest key wins where keys overlap.
        assert_eq!(expand(b"x{A}y{B}z{AB}", &s), b"x{B}ybzlong");
        assert_eq!(expand(b"", &s), b"");
        assert_eq!(expand(b"no keys here", &s), b"no keys here");
        // Bytes that are not UTF-8 pass through.
        assert_eq!(expand(b"\xff{B}\xfe", &s), b"\xffb\xfe");
    }
}
