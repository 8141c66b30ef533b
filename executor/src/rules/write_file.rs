//! `write_file(name, out, content)`: writes a string to a file. It exercises the whole engine
//! (keys, cache, materialization) and gives later rules small generated inputs.

use std::sync::Arc;

use crate::action::{Action, ActionContext, ActionError, ActionExec, OutputKind, OutputSpec};
use crate::rules::{package_relative, AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{AttrSpec, AttrType, Target};

/// The `write_file` rule.
pub struct WriteFile;

const ATTRS: &[AttrSpec] = &[
    AttrSpec { name: "out", ty: AttrType::String, mandatory: true, doc: "Output file name, relative to the package." },
    AttrSpec { name: "content", ty: AttrType::String, mandatory: false, doc: "The file's text (default empty)." },
    AttrSpec {
        name: "is_executable",
        ty: AttrType::Bool,
        mandatory: false,
        doc: "Materialize with mode 0755 instead of 0644.",
    },
];

impl Rule for WriteFile {
    fn kind(&self) -> &'static str {
        "write_file"
    }
    fn doc(&self) -> &'static str {
        "Writes `content` to `executor-out/<package>/<out>`."
    }
    fn attrs(&self) -> &'static [AttrSpec] {
        ATTRS
    }
    fn check(&self, target: &Target) -> Result<(), String> {
        let out = target.string("out").unwrap_or_default();
        crate::label::TargetName::new(out)
            .map(|_| ())
            .map_err(|e| format!("attribute `out` of rule `write_file` must be a relative path: {}", e.reason))
    }
    fn analyze(&self, target: &Target, ctx: &mut AnalysisContext<'_>) -> Result<Provided, AnalysisError> {
        let out = target.string("out").unwrap_or_default();
        let executable = target.bool_or("is_executable", false);
        let files = ctx.graph.add(Action {
            owner: target.label.clone(),
            inputs: Vec::new(),
            outputs: vec![OutputSpec {
                path: crate::rules::output_root(&target.label, &package_relative(target.label.package.as_str(), out)),
                kind: OutputKind::File { executable },
            }],
            exec: Arc::new(WriteFileExec { content: target.string("content").unwrap_or_default().to_owned() }),
        });
        Ok(Provided { files, ..Default::default() })
    }
}

/// The action: write fixed bytes.
#[derive(Debug)]
struct WriteFileExec {
    content: String,
}

impl ActionExec for WriteFileExec {
    fn mnemonic(&self) -> &'static str {
        "WriteFile"
    }
    fn version(&self) -> u32 {
        1
    }
    fn key_data(&self) -> serde_json::Value {
        serde_json::json!({ "content": self.content })
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        std::fs::write(&ctx.outputs[0], self.content.as_bytes())?;
        Ok(())
    }
}
