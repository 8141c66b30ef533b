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

/// A writer that tells `progress` how many bytes have gone through it so far, after each
/// write: for progress bars.
pub struct ProgressWriter<W, F> {
    inner: W,
    written: u64,
    progress: F,
}

impl<W: io::Write, F: Fn(u64)> ProgressWriter<W, F> {
    /// Counts what is written to `inner`.
    pub fn new(inner: W, progress: F) -> Self {
        ProgressWriter { inner, written: 0, progress }
    }

    /// The writer inside.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: io::Write, F: Fn(u64)> io::Write for ProgressWriter<W, F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        (self.progress)(self.written);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_writer_reports_the_running_total() {
        use std::io::Write as _;
        let seen = std::cell::RefCell::new(Vec::new());
        let mut out = ProgressWriter::new(Vec::new(), |n| seen.borrow_mut().push(n));
        out.write_all(b"abc").expect("write");
        out.write_all(b"de").expect("write");
        assert_eq!(out.into_inner(), b"abcde");
        assert_eq!(*seen.borrow(), [3, 5]);
    }

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
