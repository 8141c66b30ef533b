//! Digests of workspace files, cached by stat data so an unchanged tree is not read again.
//!
//! An entry is trusted only while the file's size, mtime, ctime and inode are unchanged and
//! the file was last modified well before it was hashed (a file written in the same instant
//! as it was hashed could change again without changing its mtime: git's "racy clean"
//! problem; such entries are re-hashed next time). The cache lives in
//! `executor-out/.executor/` and never influences an output: a wrong or lost cache only costs
//! hashing time.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::{Store, StoreError};

/// Entries recorded less than this long after the file's mtime are re-verified.
const RACY_NANOS: i128 = 2_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime: i128,
    ctime: i128,
    ino: u64,
    digest: Digest,
    recorded: i128,
}

fn stat_entry(meta: &fs::Metadata, digest: Digest, recorded: i128) -> Entry {
    Entry {
        size: meta.len(),
        mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ctime: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
        ino: meta.ino(),
        digest,
        recorded,
    }
}

fn now_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// The cache of file digests for one workspace.
/// A source file as [`FileDigestCache::ingest`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// sha256 of its bytes (now in the store).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Whether any execute bit is set.
    pub executable: bool,
}

#[derive(Debug)]
pub struct FileDigestCache {
    /// Where the cache is saved.
    path: PathBuf,
    /// Entries by absolute path.
    entries: Mutex<BTreeMap<PathBuf, Entry>>,
    /// True once an entry changed since loading.
    dirty: AtomicBool,
}

impl FileDigestCache {
    /// Loads the cache saved at `path`; a missing or unreadable cache starts empty.
    pub fn load(path: PathBuf) -> Self {
        let entries = fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        FileDigestCache { path, entries: Mutex::new(entries), dirty: AtomicBool::new(false) }
    }

    fn lookup(&self, path: &Path, meta: &fs::Metadata) -> Option<Digest> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(path)?;
        let fresh = stat_entry(meta, entry.digest, entry.recorded);
        (fresh == *entry && entry.recorded - entry.mtime > RACY_NANOS).then_some(entry.digest)
    }

    fn record(&self, path: &Path, meta: &fs::Metadata, digest: Digest) {
        let entry = stat_entry(meta, digest, now_nanos());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.get(path) != Some(&entry) {
            entries.insert(path.to_owned(), entry);
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// The digest, size and executable bit of a source file, making sure its bytes are in
    /// the store. One `stat` serves the cache lookup and the executable bit.
    pub fn ingest(&self, path: &Path, store: &Store) -> Result<Ingested, StoreError> {
        let meta = fs::metadata(path).map_err(|source| {
            StoreError::Io(executor_base::io::PathError::new("cannot read", path.to_owned(), source))
        })?;
        let executable = crate::store::is_executable(&meta);
        if let Some(digest) = self.lookup(path, &meta) {
            if store.has_blob(&digest, meta.len()) {
                return Ok(Ingested { digest, size: meta.len(), executable });
            }
        }
        let (digest, size) = store.put_file(path)?;
        // Record against the stat data from before the copy: if the file changed meanwhile,
        // the next lookup sees a different stat and hashes again.
        self.record(path, &meta, digest);
        Ok(Ingested { digest, size, executable })
    }

    /// True if `path` is known to hold exactly `digest` (an output materialized earlier).
    pub fn holds(&self, path: &Path, digest: &Digest) -> bool {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_file() => self.lookup(path, &meta).as_ref() == Some(digest),
            _ => false,
        }
    }

    /// True if `path`, a hard link to a store blob, is still as [`written`](Self::written)
    /// recorded it: same inode, size and modification time. Its change time is not compared:
    /// linking the same blob to another output changes it. An edit through any link changes
    /// the modification time, so an edited output (and the blob behind it) is noticed.
    pub fn holds_link(&self, path: &Path, digest: &Digest) -> bool {
        let Ok(meta) = fs::symlink_metadata(path) else { return false };
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.get(path) else { return false };
        let now = stat_entry(&meta, entry.digest, entry.recorded);
        meta.is_file()
            && entry.digest == *digest
            && (now.size, now.mtime, now.ino) == (entry.size, entry.mtime, entry.ino)
    }

    /// Records that `path` was just written with `digest`.
    pub fn written(&self, path: &Path, digest: Digest) {
        if let Ok(meta) = fs::metadata(path) {
            // Written by us from verified bytes: not racy, whatever its mtime.
            let mut entry = stat_entry(&meta, digest, 0);
            entry.recorded = entry.mtime + RACY_NANOS + 1;
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.insert(path.to_owned(), entry);
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Saves the cache if it changed (atomically; errors are ignored, it is only a cache).
    pub fn save(&self) {
        if !self.dirty.load(Ordering::Relaxed) {
            return;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(bytes) = serde_json::to_vec(&*entries) else {
            return;
        };
        let tmp = self.path.with_extension(format!("tmp-{}", std::process::id()));
        if fs::write(&tmp, bytes).is_ok() && fs::rename(&tmp, &self.path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}
