//! The one top-level error type and its exit codes.

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
    #[error("{0}")]
    Graph(String),
    /// A download failed (after retries); the message names the URL.
    #[error("{0}")]
    Fetch(String),
    /// Content did not verify: a digest, size, identity or signature mismatch.
    #[error("{0}")]
    Verify(String),
    /// Pushing to a registry failed; the message names the registry and the fix.
    #[error("{0}")]
    Push(String),
    /// A rule's analysis failed.
    #[error("{0}")]
    Analysis(String),
    /// One or more actions failed; the message lists them.
    #[error("{0}")]
    Build(String),
    /// The cache directory or the output tree cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            _ => 1,
        }
    }
}
