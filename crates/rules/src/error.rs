//! The image rule set's errors: what `executor lock`, `push`, `verify` and the lockfile fail
//! with. They reach the command line as the engine's `Error::RuleSet`, exit code 1.

use crate::lockfile::LockfileError;

/// An error of the image rule set.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The lockfile cannot be read, parsed or written.
    #[error(transparent)]
    Lockfile(#[from] LockfileError),
    /// What the `BUILD` files ask for cannot be locked, or the lockfile does not pin it: an
    /// unknown repository, an unresolvable request, a stale or missing pin.
    #[error("{0}")]
    Lock(String),
    /// An apko lockfile cannot be imported.
    #[error("{0}")]
    Import(String),
    /// A download failed (after retries); the message names the URL.
    #[error("{0}")]
    Fetch(String),
    /// Content did not verify: a digest, size, identity or signature mismatch, or a rebuild
    /// that is not the release.
    #[error("{0}")]
    Verify(String),
    /// Talking to a registry failed; the message names the registry and the fix.
    #[error("{0}")]
    Registry(String),
    /// A built image or index cannot be read back.
    #[error("{0}")]
    Built(String),
}

impl From<RulesError> for executor_engine::Error {
    fn from(e: RulesError) -> Self {
        executor_engine::Error::RuleSet(Box::new(e))
    }
}

/// A [`RulesError::Lock`] as the engine's error.
pub(crate) fn lock_error(message: String) -> executor_engine::Error {
    RulesError::Lock(message).into()
}

/// A [`RulesError::Import`] as the engine's error.
pub(crate) fn import_error(message: String) -> executor_engine::Error {
    RulesError::Import(message).into()
}

/// A [`RulesError::Fetch`] as the engine's error.
pub(crate) fn fetch_error(message: String) -> executor_engine::Error {
    RulesError::Fetch(message).into()
}

/// A [`RulesError::Verify`] as the engine's error.
pub(crate) fn verify_error(message: String) -> executor_engine::Error {
    RulesError::Verify(message).into()
}

/// A [`RulesError::Registry`] as the engine's error.
pub(crate) fn registry_error(message: String) -> executor_engine::Error {
    RulesError::Registry(message).into()
}

/// A [`RulesError::Built`] as the engine's error.
pub(crate) fn built_error(message: String) -> executor_engine::Error {
    RulesError::Built(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_set_error_keeps_its_type_and_text_through_the_engine() {
        let error: executor_engine::Error = RulesError::Lockfile(LockfileError::Invalid {
            path: "executor.lock".into(),
            message: "version 9 is not supported".into(),
        })
        .into();
        assert_eq!(error.exit_code(), 1);
        assert_eq!(
            error.to_string(),
            "`executor.lock` is not a valid lockfile: version 9 is not supported\n  fix: run `executor lock` to write it again"
        );
        let executor_engine::Error::RuleSet(inner) = &error else { panic!("not a rule-set error: {error:?}") };
        assert!(matches!(inner.downcast_ref::<RulesError>(), Some(RulesError::Lockfile(_))));
        assert_eq!(executor_engine::Error::Usage("bad flag".into()).exit_code(), 2);
    }
}
