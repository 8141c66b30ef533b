//! [`LayerError`]: everything that can go wrong while building, writing or listing a layer.

use std::io;

use crate::layer::path::LayerPath;

/// One error enum for the whole `layer` area. Messages are lowercase, name the path or
/// option involved in backticks, and say how to fix the input where there is a fix.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A layer path was the empty string.
    #[error("invalid layer path: it is empty")]
    EmptyPath,

    /// A layer path broke one of the rules of [`LayerPath`].
    #[error("invalid layer path `{path}`: {reason}")]
    InvalidPath {
        /// The rejected text, with control characters escaped.
        path: String,
        /// Which rule it broke.
        reason: &'static str,
    },

    /// A mode had bits outside `0o7777`.
    #[error(
        "invalid mode `{mode:#o}`: only permission, setuid, setgid and sticky bits \
         (at most `0o7777`) are allowed; the file type is given by the entry kind"
    )]
    InvalidMode {
        /// The rejected mode.
        mode: u32,
    },

    /// [`crate::layer::LayerTree::insert`] was given a path that is already in the tree.
    #[error("duplicate layer path `{path}`: remove the existing entry first")]
    DuplicatePath {
        /// The path inserted twice.
        path: LayerPath,
    },

    /// An entry was inserted below an entry that is not a directory.
    #[error("cannot add `{path}`: its parent `{parent}` is not a directory")]
    ParentNotDirectory {
        /// The entry being inserted.
        path: LayerPath,
        /// The ancestor that is a file, link, device or fifo.
        parent: LayerPath,
    },

    /// A non-directory was inserted at a path that already has entries below it.
    #[error("cannot add `{path}` as a {kind}: `{child}` is below it, so it must be a directory")]
    HasChildren {
        /// The entry being inserted.
        path: LayerPath,
        /// What the entry is (`regular file`, `symlink`, ...).
        kind: &'static str,
        /// One entry already in the tree below `path`.
        child: LayerPath,
    },

    /// A symlink target was empty or contained a NUL byte.
    #[error("invalid symlink target for `{path}`: {reason}")]
    InvalidSymlinkTarget {
        /// The symlink.
        path: LayerPath,
        /// What is wrong with its target.
        reason: &'static str,
    },

    /// A user or group name contained a NUL byte.
    #[error("invalid {field} for `{path}`: {reason}")]
    InvalidAccountName {
        /// The entry.
        path: LayerPath,
        /// `uname` or `gname`.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An extended attribute name cannot be stored in a PAX record.
    #[error("invalid extended attribute `{name}` on `{path}`: {reason}")]
    InvalidXattr {
        /// The entry.
        path: LayerPath,
        /// The attribute name, with control characters escaped.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A device number does not fit the 7 octal digits of a USTAR header (and PAX has no
    /// standard record for it).
    #[error(
        "device numbers of `{path}` (major {major}, minor {minor}) do not fit in a tar header \
         (at most {max} each)"
    )]
    DeviceNumberTooLarge {
        /// The device entry.
        path: LayerPath,
        /// Its major number.
        major: u32,
        /// Its minor number.
        minor: u32,
        /// The largest value a header can hold.
        max: u32,
    },

    /// A hard link (or the chain it starts) points to a path that is not in the tree.
    #[error("hard link `{path}` points to `{target}`, which is not in the layer")]
    HardLinkMissing {
        /// The hard link.
        path: LayerPath,
        /// The missing path.
        target: LayerPath,
    },

    /// A hard link points to something other than a regular file.
    #[error(
        "hard link `{path}` points to `{target}`, which is a {kind}; hard links must point \
         to regular files"
    )]
    HardLinkNotFile {
        /// The hard link.
        path: LayerPath,
        /// The path it resolves to.
        target: LayerPath,
        /// What that path is.
        kind: &'static str,
    },

    /// Hard links point at each other without reaching a regular file.
    #[error("hard link `{path}` is part of a cycle of hard links that never reaches a file")]
    HardLinkCycle {
        /// One hard link of the cycle.
        path: LayerPath,
    },

    /// A [`crate::layer::LayerOptions`] field is out of range.
    #[error("invalid layer option `{option}`: {reason}")]
    InvalidOption {
        /// The field name.
        option: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// File content ended before its declared size.
    #[error("content of `{path}` ended after {actual} bytes, but {declared} bytes were declared")]
    ContentTooShort {
        /// The file.
        path: LayerPath,
        /// The size given with the content.
        declared: u64,
        /// The bytes actually read.
        actual: u64,
    },

    /// File content went on past its declared size.
    #[error("content of `{path}` is longer than the declared {declared} bytes")]
    ContentTooLong {
        /// The file.
        path: LayerPath,
        /// The size given with the content.
        declared: u64,
    },

    /// Opening or reading file content failed.
    #[error("cannot read content of `{path}`: {source}")]
    ReadContent {
        /// The file.
        path: LayerPath,
        /// The I/O error.
        source: io::Error,
    },

    /// Writing the compressed layer failed.
    #[error("cannot write layer: {0}")]
    Write(#[source] io::Error),

    /// The deflate engine reported an error (it never should for in-memory input).
    #[error("cannot compress layer block: {0}; this is a bug")]
    Compress(String),

    /// The compression thread pool could not be started.
    #[error("cannot start {jobs} compression threads: {reason}")]
    ThreadPool {
        /// The requested thread count.
        jobs: usize,
        /// Why the pool failed.
        reason: String,
    },

    /// A compression worker went away without answering (it panicked).
    #[error("a compression thread stopped without finishing its block; this is a bug")]
    WorkerLost,

    /// Reading a `.tar.gz` back for listing failed.
    #[error("cannot read layer for listing: {0}")]
    ReadLayer(#[source] io::Error),

    /// A tar entry read back has a kind the listing does not know.
    #[error("cannot list `{path}`: unsupported tar entry type `{kind}`")]
    UnsupportedEntry {
        /// The entry's path as read.
        path: String,
        /// The type flag, as a character.
        kind: char,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_input() {
        let path = LayerPath::new("a/b").expect("valid path");
        let cases: Vec<(LayerError, &str)> = vec![
            (LayerError::EmptyPath, "invalid layer path: it is empty"),
            (
                LayerError::InvalidMode { mode: 0o100644 },
                "invalid mode `0o100644`: only permission, setuid, setgid and sticky bits \
                 (at most `0o7777`) are allowed; the file type is given by the entry kind",
            ),
            (
                LayerError::ContentTooShort { path: path.clone(), declared: 7, actual: 5 },
                "content of `a/b` ended after 5 bytes, but 7 bytes were declared",
            ),
            (
                LayerError::HardLinkNotFile {
                    path: path.clone(),
                    target: LayerPath::new("etc").expect("valid path"),
                    kind: "directory",
                },
                "hard link `a/b` points to `etc`, which is a directory; hard links must point \
                 to regular files",
            ),
            (
                LayerError::InvalidOption { option: "jobs", reason: "must be at least 1".to_owned() },
                "invalid layer option `jobs`: must be at least 1",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
