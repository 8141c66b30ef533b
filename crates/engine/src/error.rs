//! The one top-level error type and its exit codes.
//!
//! Each phase has its own error type, with the structure its messages need (labels,
//! `file:line:col` locations, causes): [`WorkspaceError`], [`LabelError`], [`LoadError`],
//! [`GraphError`], [`AnalysisFailure`], [`BuildError`], [`StoreError`]. Rule sets bring their
//! own (the image rules' `RulesError`) as [`Error::RuleSet`]. [`Error::exit_code`] is the one
//! place exit codes are chosen.

use crate::builder::BuildError;
use crate::graph::{AnalysisFailure, GraphError};
use crate::label::LabelError;
use crate::load::LoadError;
use crate::store::StoreError;
use crate::workspace::WorkspaceError;

/// Everything a command can fail with. Messages are complete sentences of product surface:
/// lowercase, names in backticks, the file:line:col or label involved, and the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// No workspace.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// A label or pattern does not parse.
    #[error(transparent)]
    Label(#[from] LabelError),
    /// A Starlark file failed to load or evaluate.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The target graph is wrong: unknown targets, cycles, missing files.
    #[error(transparent)]
    Graph(Box<GraphError>),
    /// A rule's analysis failed, or outputs collide.
    #[error(transparent)]
    Analysis(Box<AnalysisFailure>),
    /// Actions failed, or the build could not run them.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The cache directory or the output tree cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A rule set's own error (the image rules: the lockfile, `lock`, `push`, `verify`).
    #[error(transparent)]
    RuleSet(Box<dyn std::error::Error + Send + Sync>),
}

impl From<GraphError> for Error {
    fn from(e: GraphError) -> Self {
        Error::Graph(Box::new(e))
    }
}

impl From<AnalysisFailure> for Error {
    fn from(e: AnalysisFailure) -> Self {
        Error::Analysis(Box::new(e))
    }
}

impl Error {
    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Workspace(_)
            | Error::Label(_)
            | Error::Load(_)
            | Error::Graph(_)
            | Error::Analysis(_)
            | Error::Build(_)
            | Error::Store(_)
            | Error::RuleSet(_) => 1,
        }
    }
}
