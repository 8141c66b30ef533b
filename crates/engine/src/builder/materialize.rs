//! Materialization: outputs from the store into `executor-out/`, read-only, as Bazel makes
//! them. A file is a hard link to the store's read-only blob (no bytes copied) where the two
//! share a file system; a copy otherwise (`fs::copy`, which reflinks where the file system
//! can) and for executables, whose mode a shared inode could not carry. Directories are
//! rebuilt beside their destination and renamed into place.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::action::OutputSpec;
use crate::digest::Digest;
use crate::filecache::FileDigestCache;
use crate::store::{OutputRecord, Placed, Store, StoreError};

/// Places outputs under `executor-out/`.
pub struct Materializer<'a> {
    /// Where blobs come from.
    pub store: &'a Store,
    /// Digests of copied (not linked) outputs, by stat data.
    pub files: &'a FileDigestCache,
    /// `executor-out/` of the workspace.
    pub out_root: PathBuf,
}

impl Materializer<'_> {
    /// Places an action's outputs. Returns false if a blob was missing or corrupt (it is
    /// evicted; the caller runs the action again). `fresh`: the blobs were hashed by this
    /// build moments ago (just produced or just verified), so they need not be hashed again.
    pub fn materialize(
        &self,
        outputs: &[OutputSpec],
        records: &[OutputRecord],
        fresh: bool,
    ) -> Result<bool, StoreError> {
        for (spec, record) in outputs.iter().zip(records) {
            let dest = self.out_root.join(&spec.path);
            let ok = match record {
                OutputRecord::File { digest, executable, .. } => {
                    if self.holds(&dest, digest, *executable) {
                        continue;
                    }
                    create_parent(&self.out_root, &dest)?;
                    if dest.is_dir() {
                        fs::remove_dir_all(&dest).map_err(io("cannot replace", &dest))?;
                    }
                    match self.store.place_blob(digest, &dest, *executable, !fresh)? {
                        Placed::Missing => false,
                        Placed::Linked | Placed::Copied => {
                            self.files.written(&dest, *digest);
                            true
                        }
                    }
                }
                OutputRecord::Dir { digest } => {
                    let marker = self.dir_marker(&spec.path);
                    if dest.is_dir() && fs::read_to_string(&marker).ok().as_deref() == Some(&digest.to_string()) {
                        continue;
                    }
                    create_parent(&self.out_root, &dest)?;
                    let tmp = dest.with_file_name(format!(".{}.tmp-{}", file_name(&dest), std::process::id()));
                    let _ = fs::remove_dir_all(&tmp);
                    if !materialize_tree(self.store, digest, &tmp)? {
                        let _ = fs::remove_dir_all(&tmp);
                        return Ok(false);
                    }
                    if dest.is_dir() {
                        fs::remove_dir_all(&dest).map_err(io("cannot replace", &dest))?;
                    } else if dest.exists() {
                        fs::remove_file(&dest).map_err(io("cannot replace", &dest))?;
                    }
                    fs::rename(&tmp, &dest).map_err(io("cannot rename into", &dest))?;
                    create_parent(&self.out_root, &marker)?;
                    fs::write(&marker, digest.to_string()).map_err(io("cannot write", &marker))?;
                    true
                }
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// True if `dest` already is output `digest` with its mode, as this materializer left
    /// it: the store's own blob (a hard link: same device and inode), unmodified since it was
    /// linked, or a copy whose stat data the file cache vouches for. An output edited in
    /// place (which, through a link, edits the blob too) is placed again, and the blob's
    /// corruption found when it is verified on the way.
    fn holds(&self, dest: &Path, digest: &Digest, executable: bool) -> bool {
        let Ok(meta) = fs::symlink_metadata(dest) else { return false };
        if !meta.is_file() || meta.mode() & 0o777 != output_mode(executable) {
            return false;
        }
        let linked = fs::metadata(self.store.blob_path(digest))
            .is_ok_and(|blob| blob.dev() == meta.dev() && blob.ino() == meta.ino());
        if linked {
            self.files.holds_link(dest, digest)
        } else {
            self.files.holds(dest, digest)
        }
    }

    /// Where the digest of a materialized directory output is noted.
    fn dir_marker(&self, path: &str) -> PathBuf {
        self.out_root.join(".executor/dirs").join(format!("{}.digest", path.replace('/', "%2F")))
    }
}

/// The mode of a materialized file: read-only, executable or not.
pub fn output_mode(executable: bool) -> u32 {
    if executable {
        0o555
    } else {
        0o444
    }
}

/// Writes a verified tree into a new directory `dest`: its files linked (or copied) from
/// the store. Returns false if the tree or one of its blobs is missing or corrupt (evicted).
pub fn materialize_tree(store: &Store, digest: &Digest, dest: &Path) -> Result<bool, StoreError> {
    let Some(tree) = store.get_tree(digest)? else {
        return Ok(false);
    };
    fs::create_dir_all(dest).map_err(io("cannot create", dest))?;
    for entry in &tree.entries {
        if entry.path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            store.evict(digest);
            return Ok(false);
        }
        let path = dest.join(&entry.path);
        match entry.digest {
            None => fs::create_dir_all(&path).map_err(io("cannot create", &path))?,
            Some(d) => {
                if store.place_blob(&d, &path, entry.executable, true)? == Placed::Missing {
                    return Ok(false);
                }
            }
        }
    }
    Ok(true)
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io(executor_base::io::PathError::new(what, path, source))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Creates the parent directories of `path` (below `root`, `executor-out/`) as real
/// directories. A symlink or a file where a directory belongs is removed first (it is ours to
/// replace), so no output is ever written through a link to somewhere else.
pub fn create_parent(root: &Path, path: &Path) -> Result<(), StoreError> {
    let Some(parent) = path.parent() else { return Ok(()) };
    let rel = parent.strip_prefix(root).map_err(|_| {
        StoreError::Io(executor_base::io::PathError::new(
            "refusing to write outside the output tree:",
            path.to_owned(),
            std::io::Error::other("not below executor-out/"),
        ))
    })?;
    // The root itself was checked by the command (not a link) when it took the lock.
    fs::create_dir_all(root).map_err(io("cannot create", root))?;
    let mut dir = root.to_owned();
    for component in rel.components() {
        dir.push(component);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => fs::remove_file(&dir).map_err(io("cannot replace", &dir))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot stat", &dir)(e)),
        }
        match fs::create_dir(&dir) {
            Ok(()) => {}
            // Another worker made it meanwhile.
            Err(e)
                if e.kind() == std::io::ErrorKind::AlreadyExists
                    && fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) => {}
            Err(e) => return Err(io("cannot create", &dir)(e)),
        }
    }
    Ok(())
}
