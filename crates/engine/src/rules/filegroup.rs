//! `filegroup(name, srcs)`: names a set of files so other targets can refer to them at once.

use serde::Deserialize;

use crate::label::Label;
use crate::rules::{AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{AttrSpec, AttrType, Target};

/// The `filegroup` rule.
pub struct Filegroup;

/// The attributes of a `filegroup` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// Files or targets, in order.
    #[serde(default)]
    pub srcs: Vec<Label>,
}

impl Rule for Filegroup {
    type Attrs = Attrs;
    const KIND: &'static str = "filegroup";
    const DOC: &'static str =
        "Provides the files of `srcs` (source files and other targets' outputs) under one label. Runs no action.";
    const ATTRS: &'static [AttrSpec] = &[AttrSpec {
        name: "srcs",
        ty: AttrType::LabelList,
        mandatory: false,
        doc: "Files or targets whose files the group provides, in this order.",
    }];

    fn analyze(&self, _: &Target, attrs: &Attrs, ctx: &mut AnalysisContext<'_>) -> Result<Provided, AnalysisError> {
        let mut files = Vec::new();
        for label in &attrs.srcs {
            for file in &ctx.provided(label)?.files {
                if !files.contains(file) {
                    files.push(file.clone());
                }
            }
        }
        Ok(Provided::files(files))
    }
}
