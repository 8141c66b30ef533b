//! `write_file(name, out, content)`: writes a string to a file. It exercises the whole engine
//! (keys, cache, materialization) and gives later rules small generated inputs.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, OutputKind, OutputSpec};
use crate::rules::{output_path, AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{AttrSpec, AttrType, Target};

/// The `write_file` rule.
pub struct WriteFile;

/// The attributes of a `write_file` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// Output file name, relative to the package.
    pub out: String,
    /// The file's text.
    #[serde(default)]
    pub content: String,
    /// Mode 0755 instead of 0644.
    #[serde(default)]
    pub is_executable: bool,
}

impl Rule for WriteFile {
    type Attrs = Attrs;
    const KIND: &'static str = "write_file";
    const DOC: &'static str = "Writes `content` to `executor-out/<package>/<out>`.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec {
            name: "out",
            ty: AttrType::String,
            mandatory: true,
            doc: "Output file name, relative to the package.",
        },
        AttrSpec { name: "content", ty: AttrType::String, mandatory: false, doc: "The file's text (default empty)." },
        AttrSpec {
            name: "is_executable",
            ty: AttrType::Bool,
            mandatory: false,
            doc: "Materialize as executable: mode 0555 instead of 0444 (outputs are read-only).",
        },
    ];

    fn check(&self, attrs: &Attrs) -> Result<(), String> {
        crate::rules::check_out(Self::KIND, &attrs.out)
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let files = ctx.graph.add(Action {
            owner: target.label.clone(),
            inputs: Vec::new(),
            outputs: vec![OutputSpec {
                path: output_path(&target.label, &attrs.out),
                kind: OutputKind::File { executable: attrs.is_executable },
            }],
            exec: Arc::new(WriteFileExec { content: attrs.content.clone() }),
        });
        Ok(Provided::files(files))
    }
}

/// The action: write fixed bytes.
#[derive(Debug, Serialize)]
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
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        std::fs::write(&ctx.outputs[0], self.content.as_bytes())?;
        Ok(())
    }
}
