//! `filegroup(name, srcs)`: names a set of files so other targets can refer to them at once.

use crate::rules::{AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{AttrSpec, AttrType, Target};

/// The `filegroup` rule.
pub struct Filegroup;

const ATTRS: &[AttrSpec] = &[AttrSpec {
    name: "srcs",
    ty: AttrType::LabelList,
    mandatory: false,
    doc: "Files or targets whose files the group provides, in this order.",
}];

impl Rule for Filegroup {
    fn kind(&self) -> &'static str {
        "filegroup"
    }
    fn doc(&self) -> &'static str {
        "Provides the files of `srcs` (source files and other targets' outputs) under one label. Runs no action."
    }
    fn attrs(&self) -> &'static [AttrSpec] {
        ATTRS
    }
    fn analyze(&self, target: &Target, ctx: &mut AnalysisContext<'_>) -> Result<Provided, AnalysisError> {
        let mut files = Vec::new();
        for label in target.label_list("srcs") {
            for file in &ctx.provided(label)?.files {
                if !files.contains(file) {
                    files.push(file.clone());
                }
            }
        }
        Ok(Provided { files, ..Default::default() })
    }
}
