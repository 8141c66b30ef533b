//! The one error for a file-system operation on a path: what was attempted, on which path,
//! and the operating system's answer. Every crate's error enum carries it as is, so the
//! message reads the same everywhere: ``cannot write `executor-out/a`: Permission denied``.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A failed operation on `path`.
#[derive(Debug)]
pub struct PathError {
    /// What was attempted, as the message starts: `cannot write`.
    pub what: &'static str,
    /// The path.
    pub path: PathBuf,
    /// Why it failed.
    pub source: io::Error,
}

impl PathError {
    /// A failure to do `what` (`cannot write`) on `path`.
    pub fn new(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PathError { what, path: path.into(), source }
    }

    /// A closure for `map_err`: `.map_err(PathError::on("cannot read", &path))`.
    pub fn on<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PathError + 'a {
        move |source| PathError::new(what, path, source)
    }

    /// The operating system's error kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`: {}", self.what, self.path.display(), self.source)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_attempt_the_path_and_the_cause() {
        let e = PathError::on("cannot write", Path::new("executor-out/a"))(io::Error::from(
            io::ErrorKind::PermissionDenied,
        ));
        assert_eq!(e.to_string(), "cannot write `executor-out/a`: permission denied");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(std::error::Error::source(&e).is_some());
    }
}
