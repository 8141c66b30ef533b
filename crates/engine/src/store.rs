//! The content-addressed store and the action cache, shared by every workspace of a user.
//!
//! Layout under the cache directory:
//!
//! ```text
//! cas/sha256/<2 hex>/<64 hex>   immutable blobs, named by the sha256 of their bytes
//! ac/<2 hex>/<64 hex>           action results (JSON), named by the action key
//! tmp/                          files being written; renamed into place when complete
//! lock                          shared by builds, exclusive for `clean --cache`
//! ```
//!
//! Invariants: a file under `cas/` or `ac/` was complete when it was renamed there (writes go
//! to `tmp/` on the same filesystem first), so a crash leaves at worst a stray temporary file.
//! Blobs are verified against their name whenever their bytes are read, and a blob whose
//! size or digest is wrong is removed and reported as missing, never used. Concurrent writers
//! of one blob write identical bytes, so whichever rename wins is correct.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::digest::{hash_reader, Digest, HashingWriter};

/// Errors from the store; each names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The cache directory cannot be created or written.
    #[error("cannot use cache directory `{path}`: {source}\n  fix: choose a writable directory with `--cache-dir DIR` or `EXECUTOR_CACHE_DIR`")]
    Unusable { path: PathBuf, source: io::Error },
    /// Reading or writing one file failed.
    #[error(transparent)]
    Io(#[from] executor_base::io::PathError),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io(executor_base::io::PathError::new(what, path.to_owned(), source))
}

/// One output of an action as the action cache records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputRecord {
    /// A regular file.
    File { digest: Digest, size: u64, executable: bool },
    /// A directory: `digest` names a [`Tree`] blob.
    Dir { digest: Digest },
}

impl OutputRecord {
    /// The blob naming the output's content.
    pub fn digest(&self) -> Digest {
        match self {
            OutputRecord::File { digest, .. } | OutputRecord::Dir { digest } => *digest,
        }
    }
}

/// What the action cache stores for one action key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResult {
    /// One record per declared output, in declaration order.
    pub outputs: Vec<OutputRecord>,
}

/// A directory output: every file and directory below it, sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries sorted by `path` (`/`-separated, relative); parents before children.
    pub entries: Vec<TreeEntry>,
}

/// One entry of a [`Tree`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Relative path inside the directory output.
    pub path: String,
    /// File content, or `None` for a directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// File size (0 for directories).
    pub size: u64,
    /// Executable bit for files.
    pub executable: bool,
}

/// What [`Store::verify_all`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub blobs: u64,
    pub blobs_removed: u64,
    pub entries: u64,
    pub entries_removed: u64,
}

/// Takes the store's lock at `root` exclusively, waiting for builds using it to finish.
fn lock_exclusively(root: &Path) -> Result<File, StoreError> {
    let lock_path = root.join("lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::Unusable { path: root.to_owned(), source })?;
    lock.lock().map_err(io_err("cannot lock", &lock_path))?;
    Ok(lock)
}

/// Every file below `dir` (iteratively; symlinks are not followed).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(entry.path()),
                Ok(t) if t.is_file() => out.push(entry.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The store rooted at one cache directory.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    /// Held for the store's lifetime: shared for builds, exclusive for `clean --cache`.
    _lock: File,
    /// Package verdicts, read from [`VERDICTS`] when first needed.
    verdicts: Mutex<Option<HashSet<[u8; 32]>>>,
}

/// The file of package verdicts: 32-byte keys, appended (one `write` each, so concurrent
/// builds cannot interleave a record). One file rather than a file per verdict: a cold build
/// records dozens, and creating files is what costs.
const VERDICTS: &str = "verdicts.bin";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Opens (creating if needed) the store at `root` and takes a shared lock on it.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let unusable = |source| StoreError::Unusable { path: root.to_owned(), source };
        for sub in ["cas/sha256", "ac", "tmp"] {
            fs::create_dir_all(root.join(sub)).map_err(unusable)?;
        }
        let lock =
            File::options().create(true).truncate(false).write(true).open(root.join("lock")).map_err(unusable)?;
        lock.lock_shared().map_err(unusable)?;
        // Probe writability now, so that the error names the directory rather than a blob.
        let probe = root.join("tmp").join(format!("probe-{}", std::process::id()));
        File::create(&probe).map_err(unusable)?;
        let _ = fs::remove_file(&probe);
        let store = Store { root: root.to_owned(), _lock: lock, verdicts: Mutex::new(None) };
        store.remove_stale_temporaries();
        Ok(store)
    }

    /// Removes what killed processes left in `tmp/`: every entry is named `PID-...`, and a
    /// process that no longer runs will not finish it.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = fs::read_dir(self.root.join("tmp")) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.split('-').next()).and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let path = entry.path();
            let _ = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            };
        }
    }

    /// Re-hashes every blob and re-reads every action-cache entry; removes blobs whose bytes
    /// are not their name, entries that do not parse or name a removed or missing blob, and
    /// stale temporaries. Takes the store's lock exclusively (no build may run meanwhile).
    pub fn verify_all(root: &Path) -> Result<VerifyReport, StoreError> {
        let lock = lock_exclusively(root)?;
        let store = Store { root: root.to_owned(), _lock: lock, verdicts: Mutex::new(None) };
        store.remove_stale_temporaries();
        let mut report = VerifyReport::default();
        for path in files_below(&root.join("cas/sha256")) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let good = File::open(&path).and_then(hash_reader).map(|(d, _)| d.hex() == name).unwrap_or(false);
            report.blobs += 1;
            if !good {
                let _ = fs::remove_file(&path);
                report.blobs_removed += 1;
            }
        }
        for path in files_below(&root.join("ac")) {
            report.entries += 1;
            let result: Option<ActionResult> = fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
            let complete =
                result.is_some_and(|r| {
                    r.outputs.iter().all(|o| match o {
                        OutputRecord::File { digest, size, .. } => store.has_blob(digest, *size),
                        OutputRecord::Dir { digest } => store.get_tree(digest).ok().flatten().is_some_and(|t| {
                            t.entries.iter().all(|e| e.digest.is_none_or(|d| store.has_blob(&d, e.size)))
                        }),
                    })
                });
            if !complete {
                let _ = fs::remove_file(&path);
                report.entries_removed += 1;
            }
        }
        Ok(report)
    }

    /// Deletes everything in the store at `root`, waiting for builds using it to finish.
    pub fn wipe(root: &Path) -> Result<(), StoreError> {
        if !root.exists() {
            return Ok(());
        }
        let _lock = lock_exclusively(root)?;
        for sub in ["cas", "ac", "tmp"] {
            let dir = root.join(sub);
            if dir.exists() {
                fs::remove_dir_all(&dir).map_err(io_err("cannot remove", &dir))?;
            }
        }
        let verdicts = root.join(VERDICTS);
        if verdicts.exists() {
            fs::remove_file(&verdicts).map_err(io_err("cannot remove", &verdicts))?;
        }
        Ok(())
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("cas/sha256").join(&hex[..2]).join(hex)
    }

    fn ac_path(&self, key: &Digest) -> PathBuf {
        let hex = key.hex();
        self.root.join("ac").join(&hex[..2]).join(hex)
    }

    /// A fresh path in `tmp/`, unique across threads and processes.
    pub fn temp_path(&self, hint: &str) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!("{}-{}-{hint}", std::process::id(), n))
    }

    /// True if the blob exists with the expected size (a cheap check; bytes are verified
    /// when read).
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(digest)).map(|m| m.is_file() && m.len() == size).unwrap_or(false)
    }

    /// Moves a finished temporary file into the store under `digest`, which the caller
    /// computed while writing it.
    pub fn commit_blob(&self, tmp: &Path, digest: &Digest) -> Result<PathBuf, StoreError> {
        let dest = self.blob_path(digest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        }
        // Blobs are read-only, 0444 whatever made them: nothing may edit one in place, and a
        // hard link to one is a read-only output (see `place_blob`).
        set_blob_mode(tmp).map_err(io_err("cannot chmod", tmp))?;
        fs::rename(tmp, &dest).map_err(io_err("cannot rename into", &dest))?;
        Ok(dest)
    }

    /// Stores `bytes` and returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.has_blob(&digest, bytes.len() as u64) {
            return Ok(digest);
        }
        let tmp = self.temp_path("blob");
        fs::write(&tmp, bytes).map_err(io_err("cannot write", &tmp))?;
        self.commit_blob(&tmp, &digest)?;
        Ok(digest)
    }

    /// Copies a file into the store, hashing while copying, so the stored bytes are exactly
    /// the hashed ones even if the source changes meanwhile.
    pub fn put_file(&self, source: &Path) -> Result<(Digest, u64), StoreError> {
        let tmp = self.temp_path("file");
        let mut input = File::open(source).map_err(io_err("cannot read", source))?;
        let out = File::create(&tmp).map_err(io_err("cannot write", &tmp))?;
        let mut writer = HashingWriter::new(io::BufWriter::new(out));
        io::copy(&mut input, &mut writer).map_err(io_err("cannot copy", source))?;
        let (digest, size, buf) = writer.finish();
        buf.into_inner().map_err(|e| e.into_error()).map_err(io_err("cannot write", &tmp))?;
        if self.has_blob(&digest, size) {
            let _ = fs::remove_file(&tmp);
        } else {
            self.commit_blob(&tmp, &digest)?;
        }
        Ok((digest, size))
    }

    /// Reads and verifies a blob. A blob whose bytes do not match its name is deleted and
    /// reported as absent (`Ok(None)`), never returned.
    pub fn read_blob(&self, digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::Io(executor_base::io::PathError::new("cannot read", path, e))),
        };
        if Digest::of(&bytes) != *digest {
            self.evict(digest);
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// Moves a finished file (an action's output) into the store: hashed in place, then
    /// renamed, so its bytes are written once. A blob the store already holds wins and the
    /// file is removed.
    pub fn take_file(&self, path: &Path) -> Result<(Digest, u64), StoreError> {
        let (digest, size) = File::open(path).and_then(hash_reader).map_err(io_err("cannot read", path))?;
        if self.has_blob(&digest, size) {
            fs::remove_file(path).map_err(io_err("cannot remove", path))?;
        } else {
            self.commit_blob(path, &digest)?;
        }
        Ok((digest, size))
    }

    /// Places blob `digest` at `dest`, through a temporary name beside it: a hard link to the
    /// store's read-only file (no bytes copied) when `executable` is false and the two share
    /// a file system, else a copy with mode 0555 or 0444. With `verify`, the blob is hashed
    /// first and, if corrupt, evicted and not placed. Only for a blob this process hashed
    /// moments ago may `verify` be false.
    pub fn place_blob(
        &self,
        digest: &Digest,
        dest: &Path,
        executable: bool,
        verify: bool,
    ) -> Result<Placed, StoreError> {
        let path = self.blob_path(digest);
        let found = if verify {
            match File::open(&path).and_then(hash_reader) {
                Ok((got, _)) if got == *digest => true,
                Ok(_) => {
                    self.evict(digest);
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(StoreError::Io(executor_base::io::PathError::new("cannot read", path, e))),
            }
        } else {
            path.is_file()
        };
        if !found {
            return Ok(Placed::Missing);
        }
        let file_name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let tmp = dest.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
        let placed = if !executable && self.blob_is_readonly(&path) && link_replacing(&path, &tmp) {
            Placed::Linked
        } else {
            // Another file system, a file system without links, or an executable.
            let _ = fs::remove_file(&tmp);
            fs::copy(&path, &tmp).map_err(io_err("cannot copy", &path))?;
            use std::os::unix::fs::PermissionsExt;
            let mode = if executable { 0o555 } else { 0o444 };
            fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err("cannot chmod", &tmp))?;
            Placed::Copied
        };
        fs::rename(&tmp, dest).map_err(io_err("cannot rename into", dest))?;
        Ok(placed)
    }

    /// True once the blob at `path` has mode 0444 (blobs of older stores are set to it).
    fn blob_is_readonly(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        match fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o7777 == 0o444 => true,
            Ok(_) => set_blob_mode(path).is_ok(),
            Err(_) => false,
        }
    }

    /// Removes a blob found to be corrupt.
    pub fn evict(&self, digest: &Digest) {
        let _ = fs::remove_file(self.blob_path(digest));
    }

    /// The recorded result of an action, if any and well-formed.
    pub fn get_action(&self, key: &Digest) -> Option<ActionResult> {
        let bytes = fs::read(self.ac_path(key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records an action's result. Call only after every output blob is committed.
    pub fn put_action(&self, key: &Digest, result: &ActionResult) -> Result<(), StoreError> {
        let dest = self.ac_path(key);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        }
        let tmp = self.temp_path("ac");
        let bytes = serde_json::to_vec(result).map_err(|e| {
            StoreError::Io(executor_base::io::PathError::new("cannot encode", dest.clone(), io::Error::other(e)))
        })?;
        write_file_synced(&tmp, &bytes)?;
        fs::rename(&tmp, &dest).map_err(io_err("cannot rename into", &dest))
    }

    /// Forgets an action result whose outputs turned out to be missing or corrupt.
    pub fn remove_action(&self, key: &Digest) {
        let _ = fs::remove_file(self.ac_path(key));
    }

    /// Stores every file of directory `dir` (an action's output: its files are moved into the
    /// store, not copied) and a [`Tree`] blob describing it.
    pub fn put_tree(&self, dir: &Path) -> Result<Digest, StoreError> {
        let mut entries = Vec::new();
        collect_tree(self, dir, "", &mut entries)?;
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let bytes = serde_json::to_vec(&Tree { entries }).map_err(|e| {
            StoreError::Io(executor_base::io::PathError::new(
                "cannot encode tree of",
                dir.to_owned(),
                io::Error::other(e),
            ))
        })?;
        self.put_bytes(&bytes)
    }

    /// Reads a verified [`Tree`] blob.
    pub fn get_tree(&self, digest: &Digest) -> Result<Option<Tree>, StoreError> {
        let Some(bytes) = self.read_blob(digest)? else {
            return Ok(None);
        };
        Ok(serde_json::from_slice(&bytes).ok())
    }
}

fn collect_tree(store: &Store, dir: &Path, prefix: &str, out: &mut Vec<TreeEntry>) -> Result<(), StoreError> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map_err(io_err("cannot list", dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err("cannot list", dir))?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rel = format!("{prefix}{}", name.to_string_lossy());
        let meta = fs::symlink_metadata(&path).map_err(io_err("cannot stat", &path))?;
        if meta.is_dir() {
            out.push(TreeEntry { path: rel.clone(), digest: None, size: 0, executable: false });
            collect_tree(store, &path, &format!("{rel}/"), out)?;
        } else if meta.is_file() {
            let executable = is_executable(&meta);
            let (digest, size) = store.take_file(&path)?;
            out.push(TreeEntry { path: rel, digest: Some(digest), size, executable });
        } else {
            return Err(StoreError::Io(executor_base::io::PathError::new(
                "directory outputs may hold only files and directories, found",
                path,
                io::Error::other("special file or symlink"),
            )));
        }
    }
    Ok(())
}

fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = File::create(path).map_err(io_err("cannot write", path))?;
    f.write_all(bytes).map_err(io_err("cannot write", path))?;
    Ok(())
}

/// Package verdicts: keys (covering the package's sha256, every pinned figure, the keyring
/// and the policy) in [`VERDICTS`].
impl crate::action::ProofCache for Store {
    fn holds(&self, key: &[u8; 32]) -> bool {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
        verdicts.get_or_insert_with(|| self.read_verdicts()).contains(key)
    }
    fn record(&self, key: &[u8; 32]) {
        let mut verdicts = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
        if !verdicts.get_or_insert_with(|| self.read_verdicts()).insert(*key) {
            return;
        }
        let path = self.root.join(VERDICTS);
        if let Ok(mut file) = File::options().create(true).append(true).open(&path) {
            // Best effort: a lost record costs a re-verification, never a wrong verdict.
            let _ = file.write_all(key);
        }
    }
}

impl Store {
    /// Reads the verdict file; one whose length is not whole records (a write cut short) is
    /// dropped, since later records would be misaligned.
    fn read_verdicts(&self) -> HashSet<[u8; 32]> {
        let path = self.root.join(VERDICTS);
        let Ok(bytes) = fs::read(&path) else { return HashSet::new() };
        if bytes.len() % 32 != 0 {
            let _ = fs::remove_file(&path);
            return HashSet::new();
        }
        bytes.chunks_exact(32).filter_map(|c| <[u8; 32]>::try_from(c).ok()).collect()
    }
}

/// How [`Store::place_blob`] placed a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The blob is missing or was corrupt (and is evicted): nothing placed.
    Missing,
    /// A hard link to the store's file.
    Linked,
    /// A copy.
    Copied,
}

/// Hard-links `from` at `to`, replacing a file left there (by a killed build of the same
/// process id). False if the file system cannot link them.
fn link_replacing(from: &Path, to: &Path) -> bool {
    match fs::hard_link(from, to) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(to).is_ok() && fs::hard_link(from, to).is_ok()
        }
        Err(_) => false,
    }
}

/// Sets a blob's mode: 0444.
fn set_blob_mode(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o444))
}

/// True if any execute bit is set.
pub fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

/// Reads a whole file, for callers that need bytes rather than a path.
pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    File::open(path)?.read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_blob_is_evicted_not_returned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let d = store.put_bytes(b"hello").expect("put");
        assert_eq!(store.read_blob(&d).expect("read").as_deref(), Some(&b"hello"[..]));
        let path = store.blob_path(&d);
        let mut perms = fs::metadata(&path).expect("meta").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&path, perms).expect("chmod");
        fs::write(&path, b"hellp").expect("corrupt");
        assert_eq!(store.read_blob(&d).expect("read"), None);
        assert!(!path.exists(), "corrupt blob must be evicted");
        let out = dir.path().join("out");
        store.put_bytes(b"hello").expect("put again");
        assert_eq!(store.place_blob(&d, &out, false, true).expect("place"), Placed::Linked);
        assert_eq!(fs::read(&out).expect("read out"), b"hello");
        // Corrupt again, through the link: placing it again finds out and evicts it.
        let mut perms = fs::metadata(&path).expect("meta").permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&path, perms).expect("chmod");
        fs::write(&path, b"hellp").expect("corrupt");
        assert_eq!(store.place_blob(&d, &dir.path().join("out2"), false, true).expect("place"), Placed::Missing);
        assert!(!path.exists(), "corrupt blob must be evicted");
    }

    #[test]
    fn placed_outputs_are_read_only_links_or_executable_copies() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("cache")).expect("open");
        let d = store.put_bytes(b"#!/bin/sh\n").expect("put");
        let blob = fs::metadata(store.blob_path(&d)).expect("blob");
        assert_eq!(blob.permissions().mode() & 0o7777, 0o444);
        let (plain, exe) = (dir.path().join("plain"), dir.path().join("exe"));
        assert_eq!(store.place_blob(&d, &plain, false, false).expect("place"), Placed::Linked);
        assert_eq!(store.place_blob(&d, &exe, true, false).expect("place"), Placed::Copied);
        let (p, e) = (fs::metadata(&plain).expect("plain"), fs::metadata(&exe).expect("exe"));
        assert_eq!((p.ino(), p.permissions().mode() & 0o7777), (blob.ino(), 0o444));
        assert_ne!(e.ino(), blob.ino());
        assert_eq!(e.permissions().mode() & 0o7777, 0o555);
        assert_eq!(fs::read(&exe).expect("exe"), b"#!/bin/sh\n");
        // Placing over an existing output replaces it.
        let other = store.put_bytes(b"other").expect("put");
        assert_eq!(store.place_blob(&other, &plain, false, true).expect("place"), Placed::Linked);
        assert_eq!(fs::read(&plain).expect("plain"), b"other");
    }

    #[test]
    fn taking_a_file_moves_it_into_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("cache")).expect("open");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, b"same").expect("write");
        fs::write(&b, b"same").expect("write");
        let (da, size) = store.take_file(&a).expect("take");
        assert_eq!((da, size), (Digest::of(b"same"), 4));
        assert!(!a.exists(), "moved, not copied");
        assert_eq!(store.take_file(&b).expect("take").0, da);
        assert!(!b.exists(), "a blob already held: the file is removed");
        assert_eq!(store.read_blob(&da).expect("read").as_deref(), Some(&b"same"[..]));
    }

    #[test]
    fn trees_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("cache")).expect("open");
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("blobs/sha256")).expect("mkdir");
        fs::write(src.join("index.json"), b"{}").expect("write");
        fs::write(src.join("blobs/sha256/x"), b"x").expect("write");
        let d = store.put_tree(&src).expect("tree");
        let tree = store.get_tree(&d).expect("get").expect("present");
        let paths: Vec<_> = tree.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["blobs", "blobs/sha256", "blobs/sha256/x", "index.json"]);
    }
}
