//! [`Spool`]: where the installer keeps regular files' content until the layer is written,
//! so that installing a package set does not need its size in memory.
//!
//! Small contents stay in memory (each under [`IN_MEMORY_MAX`], together at most
//! [`MEMORY_BUDGET`]); every other content is appended to one spool file and the tree gets a
//! [`Content`] that reads its byte range back when the writer reaches it. The spool file is
//! created on the first content that needs it, in the caller's scratch directory, and is
//! unlinked at once: the readers share its open descriptor, so the bytes go away with the
//! last [`Content`] (or the process), whatever happens to the tree. Where a content lives
//! never changes the bytes of the layer.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use sha1::{Digest as _, Sha1};

use crate::layer::Content;

/// Contents smaller than this stay in memory (while the budget lasts).
pub(crate) const IN_MEMORY_MAX: u64 = 64 * 1024;
/// Most bytes of content kept in memory by one installer.
pub(crate) const MEMORY_BUDGET: u64 = 64 << 20;
/// Bytes read from the package and written to the spool at a time.
const CHUNK: usize = 256 * 1024;

/// Why taking a content failed.
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// Reading the content (the package's data) failed.
    Read(io::Error),
    /// Creating or writing the spool file failed.
    Write { dir: PathBuf, source: io::Error },
}

/// The spool of one installer.
#[derive(Debug)]
pub(crate) struct Spool {
    /// Where the spool file is created.
    dir: PathBuf,
    /// The spool file, once a content needed it; already unlinked.
    file: Option<Arc<File>>,
    /// Bytes appended to the spool file: the offset of the next content.
    len: u64,
    /// Bytes that may still be kept in memory.
    budget: u64,
}

impl Spool {
    /// A spool whose file, if one is needed, goes into `dir`.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Spool { dir, file: None, len: 0, budget: MEMORY_BUDGET }
    }

    /// Reads `reader` to its end (`size` is the expected length, a hint) and returns its
    /// content and sha1.
    pub(crate) fn take(&mut self, reader: &mut dyn Read, size: u64) -> Result<(Content, [u8; 20]), SpoolError> {
        if size < IN_MEMORY_MAX && size <= self.budget {
            let (bytes, sha1) = read_all(reader, size)?;
            self.budget = self.budget.saturating_sub(bytes.len() as u64);
            return Ok((Content::from_bytes(bytes), sha1));
        }
        let file = self.file()?;
        let offset = self.len;
        let mut hasher = Sha1::new();
        let mut buffer = vec![0u8; CHUNK];
        let mut written = 0u64;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SpoolError::Read(e)),
            };
            hasher.update(&buffer[..n]);
            file.write_all_at(&buffer[..n], offset + written)
                .map_err(|source| SpoolError::Write { dir: self.dir.clone(), source })?;
            written += n as u64;
        }
        self.len += written;
        let range = SpoolRange { file, offset, remaining: written };
        Ok((Content::from_fn(written, move || Ok(range)), hasher.finalize().into()))
    }

    /// The spool file, created (and unlinked) on first use.
    fn file(&mut self) -> Result<Arc<File>, SpoolError> {
        if let Some(file) = &self.file {
            return Ok(Arc::clone(file));
        }
        let write_error = |source| SpoolError::Write { dir: self.dir.clone(), source };
        let pid = std::process::id();
        let mut attempt = 0u32;
        let (file, path) = loop {
            let path = self.dir.join(format!(".executor-install-spool-{pid}-{attempt}"));
            match OpenOptions::new().read(true).write(true).create_new(true).open(&path) {
                Ok(file) => break (file, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
                Err(e) => return Err(write_error(e)),
            }
        };
        std::fs::remove_file(&path).map_err(write_error)?;
        let file = Arc::new(file);
        self.file = Some(Arc::clone(&file));
        Ok(file)
    }
}

/// Reads `reader` to its end into memory (`size` is a capacity hint) and hashes it.
pub(crate) fn read_all(reader: &mut dyn Read, size: u64) -> Result<(Vec<u8>, [u8; 20]), SpoolError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size.min(IN_MEMORY_MAX)).unwrap_or(0));
    reader.read_to_end(&mut bytes).map_err(SpoolError::Read)?;
    let sha1 = Sha1::digest(&bytes).into();
    Ok((bytes, sha1))
}

/// One content's byte range of the spool file.
struct SpoolRange {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
}

impl Read for SpoolRange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        // A short spool (truncated behind our back) ends the content early; the layer
        // writer then reports it as too short rather than writing wrong bytes.
        let n = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content_bytes(content: Content) -> Vec<u8> {
        let mut out = Vec::new();
        content.open().expect("open").read_to_end(&mut out).expect("read");
        out
    }

    #[test]
    fn small_contents_stay_in_memory_and_large_ones_are_spooled() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spool = Spool::new(dir.path().to_path_buf());
        let small = b"hello\n".to_vec();
        let large: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, sha_a) = spool.take(&mut small.as_slice(), small.len() as u64).expect("small");
        assert!(spool.file.is_none(), "no spool file for small contents");
        let (b, sha_b) = spool.take(&mut large.as_slice(), large.len() as u64).expect("large");
        let (c, _) = spool.take(&mut large.as_slice(), large.len() as u64).expect("large again");
        assert_eq!(spool.len, 2 * large.len() as u64);
        // The spool file is unlinked: the scratch directory stays empty.
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
        assert_eq!(sha_a, <[u8; 20]>::from(Sha1::digest(&small)));
        assert_eq!(sha_b, <[u8; 20]>::from(Sha1::digest(&large)));
        assert_eq!((b.size(), c.size()), (large.len() as u64, large.len() as u64));
        // Read back in any order.
        assert_eq!(content_bytes(c), large);
        assert_eq!(content_bytes(a), small);
        assert_eq!(content_bytes(b), large);
    }

    #[test]
    fn the_memory_budget_is_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spool = Spool::new(dir.path().to_path_buf());
        spool.budget = 10;
        let (_, _) = spool.take(&mut &b"0123456789"[..], 10).expect("fits");
        assert!(spool.file.is_none());
        let (c, _) = spool.take(&mut &b"x"[..], 1).expect("spooled");
        assert_eq!(spool.len, 1);
        assert_eq!(content_bytes(c), b"x");
    }

    #[test]
    fn a_missing_scratch_directory_is_a_write_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut spool = Spool::new(dir.path().join("missing"));
        let large = vec![1u8; IN_MEMORY_MAX as usize];
        let err = spool.take(&mut large.as_slice(), IN_MEMORY_MAX).expect_err("no directory");
        assert!(matches!(err, SpoolError::Write { .. }), "{err:?}");
    }
}
