//! [`LayerTree`]: the sorted set of entries that becomes one layer, and the entry model
//! ([`Entry`], [`EntryKind`], [`Content`], [`Mode`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::ops::Bound;
use std::path::PathBuf;

use crate::layer::error::LayerError;
use crate::layer::path::LayerPath;

/// Permission bits plus setuid (`0o4000`), setgid (`0o2000`) and sticky (`0o1000`).
///
/// Invariant: at most `0o7777`. The file type is never part of the mode; it comes from
/// [`EntryKind`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mode(u32);

impl Mode {
    /// `rw-r--r--`, the default for regular files.
    pub const FILE: Mode = Mode(0o644);
    /// `rwxr-xr-x`, the default for directories and executables.
    pub const DIRECTORY: Mode = Mode(0o755);
    /// `rwxrwxrwx`, what symlinks always have on Linux.
    pub const SYMLINK: Mode = Mode(0o777);

    /// Validates `bits` (at most `0o7777`).
    pub fn new(bits: u32) -> Result<Self, LayerError> {
        if bits > 0o7777 {
            return Err(LayerError::InvalidMode { mode: bits });
        }
        Ok(Mode(bits))
    }

    /// The mode bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mode({:#o})", self.0)
    }
}

/// Opens the content of a regular file when the writer reaches it.
type Opener = Box<dyn FnOnce() -> io::Result<Box<dyn Read + Send>> + Send>;

/// Where the bytes of a regular file come from.
enum Source {
    Bytes(Vec<u8>),
    Reader(Box<dyn Read + Send>),
    Open(Opener),
}

/// The content of a regular file: a declared size and a source of exactly that many bytes.
///
/// The writer streams the source straight into the layer and fails with
/// [`LayerError::ContentTooShort`] or [`LayerError::ContentTooLong`] if the source does not
/// produce exactly [`Content::size`] bytes (the size goes into the tar header before the
/// bytes). Sources other than [`Content::from_bytes`] are not held in memory, and
/// [`Content::from_file`] / [`Content::from_fn`] are not even opened until written, so a tree
/// of many files does not hold many descriptors.
pub struct Content {
    size: u64,
    source: Source,
}

impl Content {
    /// Content held in memory.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes = bytes.into();
        Content { size: bytes.len() as u64, source: Source::Bytes(bytes) }
    }

    /// Content from an already open reader that yields exactly `size` bytes.
    pub fn from_reader(size: u64, reader: impl Read + Send + 'static) -> Self {
        Content { size, source: Source::Reader(Box::new(reader)) }
    }

    /// Content from a reader that `open` creates when the writer reaches this file.
    pub fn from_fn<R, F>(size: u64, open: F) -> Self
    where
        R: Read + Send + 'static,
        F: FnOnce() -> io::Result<R> + Send + 'static,
    {
        let open: Opener = Box::new(move || Ok(Box::new(open()?) as Box<dyn Read + Send>));
        Content { size, source: Source::Open(open) }
    }

    /// Content of a file on disk: its size is read now, the file is opened when written.
    pub fn from_file(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let size = std::fs::metadata(&path)?.len();
        Ok(Content::from_fn(size, move || File::open(path)))
    }

    /// The declared size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Turns the source into a reader (opening it if needed).
    pub fn open(self) -> io::Result<Box<dyn Read + Send>> {
        match self.source {
            Source::Bytes(bytes) => Ok(Box::new(Cursor::new(bytes))),
            Source::Reader(reader) => Ok(reader),
            Source::Open(open) => open(),
        }
    }
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::Bytes(_) => "bytes",
            Source::Reader(_) => "reader",
            Source::Open(_) => "opener",
        };
        f.debug_struct("Content").field("size", &self.size).field("source", &source).finish()
    }
}

/// What an entry is.
#[derive(Debug)]
pub enum EntryKind {
    /// A regular file and its content.
    File(Content),
    /// A directory (written with a trailing `/`).
    Directory,
    /// A symbolic link; the target is stored verbatim (absolute and `..` targets are fine).
    Symlink(String),
    /// A hard link to another path of the same layer, which must resolve to a regular file.
    ///
    /// The writer canonicalises hard-link groups: the lexically first path of a group
    /// carries the content and the metadata of the file, every other path of the group is
    /// written as a link to it with that same metadata. So the output does not depend on
    /// which name the caller made the file and which the link, and a link never precedes its
    /// target in the stream. The link entry's own mode, owner, mtime and xattrs are ignored.
    HardLink(LayerPath),
    /// A character device.
    CharDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major device number.
        major: u32,
        /// Minor device number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

impl EntryKind {
    /// A short lowercase name, used in error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            EntryKind::File(_) => "regular file",
            EntryKind::Directory => "directory",
            EntryKind::Symlink(_) => "symlink",
            EntryKind::HardLink(_) => "hard link",
            EntryKind::CharDevice { .. } => "character device",
            EntryKind::BlockDevice { .. } => "block device",
            EntryKind::Fifo => "fifo",
        }
    }
}

/// One entry of a layer: its kind and the metadata that goes into its tar header.
///
/// Build one with [`Entry::file`], [`Entry::directory`], ... and the `with_*` methods; the
/// defaults are root-owned, mtime 0, no user or group names, no xattrs.
#[derive(Debug)]
pub struct Entry {
    /// What the entry is.
    pub kind: EntryKind,
    /// Permission, setuid, setgid and sticky bits.
    pub mode: Mode,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Owner user name; the header field stays empty when `None`.
    pub uname: Option<String>,
    /// Owner group name; the header field stays empty when `None`.
    pub gname: Option<String>,
    /// Modification time in seconds since the Unix epoch; the writer clamps it to
    /// [`crate::layer::LayerOptions::epoch`].
    pub mtime: u64,
    /// Extended attributes (`security.capability`, `user.*`, ...), written as PAX
    /// `SCHILY.xattr.<name>` records in name order.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    fn with_kind(kind: EntryKind, mode: Mode) -> Self {
        Entry { kind, mode, uid: 0, gid: 0, uname: None, gname: None, mtime: 0, xattrs: BTreeMap::new() }
    }

    /// A regular file, mode `0644`.
    pub fn file(content: Content) -> Self {
        Entry::with_kind(EntryKind::File(content), Mode::FILE)
    }

    /// A directory, mode `0755`.
    pub fn directory() -> Self {
        Entry::with_kind(EntryKind::Directory, Mode::DIRECTORY)
    }

    /// A symlink to `target`, mode `0777`.
    pub fn symlink(target: impl Into<String>) -> Self {
        Entry::with_kind(EntryKind::Symlink(target.into()), Mode::SYMLINK)
    }

    /// A hard link to `target` (see [`EntryKind::HardLink`] for how groups are written).
    pub fn hard_link(target: LayerPath) -> Self {
        Entry::with_kind(EntryKind::HardLink(target), Mode::FILE)
    }

    /// A character device, mode `0666`.
    pub fn char_device(major: u32, minor: u32) -> Self {
        Entry::with_kind(EntryKind::CharDevice { major, minor }, Mode(0o666))
    }

    /// A block device, mode `0660`.
    pub fn block_device(major: u32, minor: u32) -> Self {
        Entry::with_kind(EntryKind::BlockDevice { major, minor }, Mode(0o660))
    }

    /// A fifo, mode `0644`.
    pub fn fifo() -> Self {
        Entry::with_kind(EntryKind::Fifo, Mode::FILE)
    }

    /// Sets the mode.
    pub fn with_mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the numeric owner.
    pub fn with_owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the owner names written to `uname` / `gname`.
    pub fn with_names(mut self, uname: impl Into<String>, gname: impl Into<String>) -> Self {
        self.uname = Some(uname.into());
        self.gname = Some(gname.into());
        self
    }

    /// Sets the modification time (seconds since the Unix epoch).
    pub fn with_mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    /// Adds (or replaces) one extended attribute.
    pub fn with_xattr(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.xattrs.insert(name.into(), value.into());
        self
    }

    /// The metadata of this entry on a hard link to `primary` (xattrs stay on the file).
    fn link_to(&self, primary: &LayerPath) -> Entry {
        Entry {
            kind: EntryKind::HardLink(primary.clone()),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            uname: self.uname.clone(),
            gname: self.gname.clone(),
            mtime: self.mtime,
            xattrs: BTreeMap::new(),
        }
    }

    /// Checks the fields that a tar header cannot hold as given.
    fn validate(&self, path: &LayerPath) -> Result<(), LayerError> {
        for (field, name) in [("uname", &self.uname), ("gname", &self.gname)] {
            if name.as_deref().is_some_and(|n| n.contains('\0')) {
                return Err(LayerError::InvalidAccountName {
                    path: path.clone(),
                    field,
                    reason: "it contains a NUL byte",
                });
            }
        }
        for name in self.xattrs.keys() {
            let reason = if name.is_empty() {
                Some("the name is empty")
            } else if name.contains('\0') {
                Some("the name contains a NUL byte")
            } else if name.contains('=') {
                Some("the name contains `=`, which PAX records cannot hold")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(LayerError::InvalidXattr {
                    path: path.clone(),
                    name: name.escape_debug().to_string(),
                    reason,
                });
            }
        }
        match &self.kind {
            EntryKind::Symlink(target) if target.is_empty() => {
                Err(LayerError::InvalidSymlinkTarget { path: path.clone(), reason: "it is empty" })
            }
            EntryKind::Symlink(target) if target.contains('\0') => {
                Err(LayerError::InvalidSymlinkTarget { path: path.clone(), reason: "it contains a NUL byte" })
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor }
                if *major > MAX_DEVICE_NUMBER || *minor > MAX_DEVICE_NUMBER =>
            {
                Err(LayerError::DeviceNumberTooLarge {
                    path: path.clone(),
                    major: *major,
                    minor: *minor,
                    max: MAX_DEVICE_NUMBER,
                })
            }
            _ => Ok(()),
        }
    }
}

/// The largest device number a USTAR header holds (7 octal digits).
const MAX_DEVICE_NUMBER: u32 = 0o7777777;

/// The entries of one layer, sorted by [`LayerPath`] (parents first).
///
/// Invariants, kept by [`LayerTree::insert`]: every entry is valid for a tar header; no
/// entry lies below an entry that is not a directory. Ancestors need not be present (a
/// layer may rely on directories from a lower layer). Hard-link targets are checked when
/// the tree is written, because entries may be inserted in any order.
#[derive(Debug, Default)]
pub struct LayerTree {
    entries: BTreeMap<LayerPath, Entry>,
}

impl LayerTree {
    /// An empty tree.
    pub fn new() -> Self {
        LayerTree::default()
    }

    /// Adds `entry` at `path`; fails on a duplicate path, an invalid entry, or an entry
    /// below a non-directory (or a non-directory above existing entries).
    pub fn insert(&mut self, path: LayerPath, entry: Entry) -> Result<(), LayerError> {
        entry.validate(&path)?;
        if self.entries.contains_key(&path) {
            return Err(LayerError::DuplicatePath { path });
        }
        let blocked = path.ancestors().find(|ancestor| {
            self.entries.get(ancestor).is_some_and(|existing| !matches!(existing.kind, EntryKind::Directory))
        });
        if let Some(parent) = blocked {
            return Err(LayerError::ParentNotDirectory { path, parent });
        }
        if !matches!(entry.kind, EntryKind::Directory) {
            // Descendants sort right after their ancestor, so the next key decides.
            let next = self.entries.range((Bound::Excluded(&path), Bound::Unbounded)).next();
            if let Some((child, _)) = next.filter(|(child, _)| path.is_ancestor_of(child)) {
                return Err(LayerError::HasChildren { kind: entry.kind.describe(), child: child.clone(), path });
            }
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Removes and returns the entry at `path` (entries below it stay).
    pub fn remove(&mut self, path: &LayerPath) -> Option<Entry> {
        self.entries.remove(path)
    }

    /// The entry at `path`.
    pub fn get(&self, path: &LayerPath) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Whether `path` has an entry.
    pub fn contains(&self, path: &LayerPath) -> bool {
        self.entries.contains_key(path)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries in write order.
    pub fn iter(&self) -> impl Iterator<Item = (&LayerPath, &Entry)> {
        self.entries.iter()
    }

    /// Splits the tree into `parts + 1` trees, for an image whose packages are spread over
    /// several layers: an entry whose path `part_of` maps below `parts` goes to that part,
    /// every other one to the last part (the top). Applied in order, the layers make exactly
    /// this tree:
    /// - every directory is in the top part, with its metadata, and wins over the copies in
    ///   the parts (as overlay and image unpackers do for a directory in two layers);
    /// - a part holds copies of the directories its entries lie in (with mtime 0), so its
    ///   bytes depend on its own entries alone and images sharing them share the layer;
    /// - a hard link goes to the part of the file it names, where the file is.
    pub fn split(self, part_of: &BTreeMap<LayerPath, usize>, parts: usize) -> Vec<LayerTree> {
        let copy_dir = |entry: &Entry| Entry {
            kind: EntryKind::Directory,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            uname: entry.uname.clone(),
            gname: entry.gname.clone(),
            mtime: 0,
            xattrs: entry.xattrs.clone(),
        };
        let part = |path: &LayerPath| part_of.get(path).copied().filter(|p| *p < parts).unwrap_or(parts);
        let dirs: BTreeMap<LayerPath, Entry> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.kind, EntryKind::Directory))
            .map(|(p, e)| (p.clone(), copy_dir(e)))
            .collect();
        // A hard link's part is its file's: follow links (a bounded number of hops).
        let mut link_part = BTreeMap::new();
        for (path, entry) in &self.entries {
            let EntryKind::HardLink(target) = &entry.kind else { continue };
            let mut target = target.clone();
            for _ in 0..64 {
                match self.entries.get(&target).map(|e| &e.kind) {
                    Some(EntryKind::HardLink(next)) => target = next.clone(),
                    _ => break,
                }
            }
            link_part.insert(path.clone(), part(&target));
        }
        let mut out: Vec<LayerTree> = (0..=parts).map(|_| LayerTree::new()).collect();
        for (path, entry) in self.entries {
            let to = match &entry.kind {
                EntryKind::Directory => {
                    let owner = part(&path);
                    if owner < parts {
                        out[owner].entries.insert(path.clone(), copy_dir(&entry));
                    }
                    parts
                }
                EntryKind::HardLink(_) => link_part.get(&path).copied().unwrap_or(parts),
                _ => part(&path),
            };
            out[to].entries.insert(path, entry);
        }
        for tree in out.iter_mut().take(parts) {
            let missing: BTreeSet<LayerPath> =
                tree.entries.keys().flat_map(|k| k.ancestors()).filter(|a| !tree.entries.contains_key(a)).collect();
            for ancestor in missing {
                if let Some(dir) = dirs.get(&ancestor) {
                    tree.entries.insert(ancestor, copy_dir(dir));
                }
            }
        }
        out
    }

    /// The entries in write order, with hard-link groups canonicalised (see
    /// [`EntryKind::HardLink`]). Fails before anything is written if a hard link is dangling,
    /// points to a non-file, or is part of a cycle.
    pub(crate) fn into_write_order(self) -> Result<BTreeMap<LayerPath, Entry>, LayerError> {
        let mut entries = self.entries;
        let links: Vec<(&LayerPath, &LayerPath)> = entries
            .iter()
            .filter_map(|(path, entry)| match &entry.kind {
                EntryKind::HardLink(target) => Some((path, target)),
                _ => None,
            })
            .collect();
        // The regular file each link resolves to, and every name of that file.
        let mut groups: BTreeMap<LayerPath, BTreeSet<LayerPath>> = BTreeMap::new();
        for &(path, target) in &links {
            let mut current = target;
            let mut hops = 0;
            let root = loop {
                match entries.get(current).map(|entry| &entry.kind) {
                    None => return Err(LayerError::HardLinkMissing { path: path.clone(), target: current.clone() }),
                    Some(EntryKind::File(_)) => break current,
                    Some(EntryKind::HardLink(next)) => {
                        hops += 1;
                        if hops > links.len() {
                            return Err(LayerError::HardLinkCycle { path: path.clone() });
                        }
                        current = next;
                    }
                    Some(other) => {
                        return Err(LayerError::HardLinkNotFile {
                            path: path.clone(),
                            target: current.clone(),
                            kind: other.describe(),
                        })
                    }
                }
            };
            let group = groups.entry(root.clone()).or_default();
            group.insert(root.clone());
            group.insert(path.clone());
        }
        for (root, names) in groups {
            let Some(primary) = names.first().cloned() else {
                continue;
            };
            let Some(file) = entries.remove(&root) else {
                continue;
            };
            for name in names.iter().filter(|&name| *name != primary) {
                entries.insert(name.clone(), file.link_to(&primary));
            }
            entries.insert(primary, file);
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> LayerPath {
        LayerPath::new(s).expect("valid test path")
    }

    fn file(bytes: &str) -> Entry {
        Entry::file(Content::from_bytes(bytes.as_bytes()))
    }

    #[test]
    fn mode_rejects_type_bits() {
        assert_eq!(Mode::new(0o4755).expect("setuid is fine").bits(), 0o4755);
        assert_eq!(
            Mode::new(0o100644).expect_err("type bits").to_string(),
            "invalid mode `0o100644`: only permission, setuid, setgid and sticky bits \
             (at most `0o7777`) are allowed; the file type is given by the entry kind"
        );
    }

    #[test]
    fn insert_rejects_structural_conflicts() {
        let mut tree = LayerTree::new();
        tree.insert(path("etc"), Entry::directory()).expect("dir");
        tree.insert(path("etc/passwd"), file("root")).expect("file");
        tree.insert(path("bin"), Entry::symlink("usr/bin")).expect("link");

        let cases = [
            (
                tree.insert(path("etc"), Entry::directory()),
                "duplicate layer path `etc`: remove the existing entry first",
            ),
            (
                tree.insert(path("etc/passwd/x"), file("")),
                "cannot add `etc/passwd/x`: its parent `etc/passwd` is not a directory",
            ),
            (
                tree.insert(path("bin/sh/deeper"), file("")),
                "cannot add `bin/sh/deeper`: its parent `bin` is not a directory",
            ),
        ];
        for (result, text) in cases {
            assert_eq!(result.expect_err(text).to_string(), text);
        }

        let mut tree = LayerTree::new();
        tree.insert(path("usr/lib/x"), file("x")).expect("file");
        assert_eq!(
            tree.insert(path("usr"), Entry::symlink("/")).expect_err("usr has children").to_string(),
            "cannot add `usr` as a symlink: `usr/lib/x` is below it, so it must be a directory"
        );
        // A sibling that sorts right after is not a child.
        tree.insert(path("usr-x"), file("")).expect("sibling");
        tree.insert(path("usr"), Entry::directory()).expect("dir is fine");
        assert_eq!(tree.len(), 3);
    }

    #[test]
    fn insert_rejects_invalid_fields() {
        let mut tree = LayerTree::new();
        let cases = [
            (Entry::symlink(""), "invalid symlink target for `x`: it is empty"),
            (Entry::symlink("a\0b"), "invalid symlink target for `x`: it contains a NUL byte"),
            (file("").with_names("ro\0ot", "root"), "invalid uname for `x`: it contains a NUL byte"),
            (
                file("").with_xattr("user.a=b", "v"),
                "invalid extended attribute `user.a=b` on `x`: the name contains `=`, which \
                 PAX records cannot hold",
            ),
            (file("").with_xattr("", "v"), "invalid extended attribute `` on `x`: the name is empty"),
            (
                Entry::char_device(1, 0o10000000),
                "device numbers of `x` (major 1, minor 2097152) do not fit in a tar header \
                 (at most 2097151 each)",
            ),
        ];
        for (entry, text) in cases {
            let error = tree.insert(path("x"), entry).expect_err(text);
            assert_eq!(error.to_string(), text);
        }
        assert!(tree.is_empty());
    }

    fn kinds(entries: &BTreeMap<LayerPath, Entry>) -> Vec<String> {
        entries
            .iter()
            .map(|(p, e)| match &e.kind {
                EntryKind::HardLink(t) => format!("{p} -> {t} {:o}", e.mode.bits()),
                other => format!("{p} {} {:o}", other.describe(), e.mode.bits()),
            })
            .collect()
    }

    #[test]
    fn hard_link_groups_are_canonical() {
        // The caller made `z` the file; `a` and `m` link to it (one through the other).
        let mut tree = LayerTree::new();
        tree.insert(path("z"), file("data").with_mode(Mode::new(0o4750).expect("mode"))).expect("file");
        tree.insert(path("m"), Entry::hard_link(path("z"))).expect("link");
        tree.insert(path("a"), Entry::hard_link(path("m"))).expect("link");
        let ordered = tree.into_write_order().expect("valid links");
        assert_eq!(kinds(&ordered), ["a regular file 4750", "m -> a 4750", "z -> a 4750"]);
    }

    #[test]
    fn hard_link_errors() {
        let cases: Vec<(Vec<(&str, Entry)>, &str)> = vec![
            (
                vec![("a", Entry::hard_link(path("missing")))],
                "hard link `a` points to `missing`, which is not in the layer",
            ),
            (
                vec![("a", Entry::hard_link(path("d"))), ("d", Entry::directory())],
                "hard link `a` points to `d`, which is a directory; hard links must point to \
                 regular files",
            ),
            (
                vec![("a", Entry::hard_link(path("b"))), ("b", Entry::hard_link(path("a")))],
                "hard link `a` is part of a cycle of hard links that never reaches a file",
            ),
            (
                vec![("a", Entry::hard_link(path("a")))],
                "hard link `a` is part of a cycle of hard links that never reaches a file",
            ),
        ];
        for (entries, text) in cases {
            let mut tree = LayerTree::new();
            for (p, e) in entries {
                tree.insert(path(p), e).expect("insert");
            }
            let error = tree.into_write_order().expect_err(text);
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn content_sources() {
        let mut read = String::new();
        Content::from_fn(3, || Ok(Cursor::new(b"abc".to_vec())))
            .open()
            .expect("open")
            .read_to_string(&mut read)
            .expect("read");
        assert_eq!(read, "abc");
        assert_eq!(Content::from_bytes(*b"12345").size(), 5);
        assert_eq!(Content::from_reader(9, io::empty()).size(), 9);
        assert!(Content::from_file("/nonexistent/layer/test").is_err());
    }
}
