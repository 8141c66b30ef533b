//! Deterministic OCI layers: a sorted tree of entries in, a reproducible `.tar.gz` out, with
//! its digests computed while it is written.
//!
//! Vocabulary: a **layer** is one gzip-compressed tar (media type
//! `application/vnd.oci.image.layer.v1.tar+gzip`). Its **diff_id** is the sha256 of the
//! uncompressed tar (it goes into the image config's `rootfs.diff_ids`); its **digest** is
//! the sha256 of the compressed bytes (it goes into the manifest's layer descriptor).
//!
//! The same [`LayerTree`] and [`LayerOptions`] always give the same bytes, whatever the
//! host, user, umask, clock or thread count. That is by construction:
//! - **Order**: entries are written in [`LayerPath`] order, which compares component lists,
//!   so parents come before children and each directory's subtree is contiguous.
//! - **Tar**: hand-written POSIX USTAR headers (module `ustar`); a PAX extended header only
//!   for what USTAR cannot hold (long or non-ASCII names and link targets, ids, sizes or
//!   times beyond the octal fields, long or non-ASCII user/group names, xattrs). No GNU
//!   extensions, no atime/ctime. `uname`/`gname` are empty unless given. Directories end in
//!   `/`. Every mtime is clamped to [`LayerOptions::epoch`]. Two zero blocks end the archive.
//! - **Hard links**: each group is written with its lexically first path as the file (see
//!   [`EntryKind::HardLink`]).
//! - **Gzip**: one member, header mtime 0, no file name, OS byte 255 ("unknown"), deflate
//!   from flate2's zlib-rs backend (pure Rust, about twice as fast as miniz_oxide here;
//!   pinned by `Cargo.lock`) at a fixed level, over independent 1 MiB blocks so that [`LayerOptions::jobs`] changes speed
//!   only (module `gzip` explains the block scheme).
//! - **One pass**: the diff_id, the digest and both sizes are computed while writing; the
//!   layer is streamed (memory stays bounded by a few blocks per thread plus what the
//!   caller's [`Content`] sources hold).
//!
//! [`list_layer`] reads any finished layer back into a text listing for snapshot tests.

mod error;
mod gzip;
mod listing;
mod path;
mod tree;
mod ustar;

use std::io::Write;

pub use crate::digest::Digest;
pub use crate::layer::error::LayerError;
pub use crate::layer::gzip::{BLOCK_SIZE, GZIP_OS_UNKNOWN};
pub use crate::layer::listing::{list_layer, read_layered_file, LayerFile};
pub use crate::layer::path::LayerPath;
pub use crate::layer::tree::{Content, Entry, EntryKind, LayerTree, Mode};

use crate::layer::gzip::GzipSink;
use crate::layer::ustar::flag;

/// The deflate level used unless told otherwise (gzip's default).
pub const DEFAULT_LEVEL: u32 = 6;

/// How a layer is written. Only `epoch` and `level` affect the output bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerOptions {
    /// Upper bound for every entry's mtime, in seconds since the Unix epoch
    /// (`SOURCE_DATE_EPOCH`): each header gets `min(entry mtime, epoch)`.
    pub epoch: u64,
    /// Compression threads, at least 1; does not change the output. With 1, everything runs
    /// on the calling thread; with more, blocks are compressed on that many threads (started
    /// only once the layer exceeds one [`BLOCK_SIZE`] block) while the calling thread builds
    /// the tar stream, hashes it and writes the output.
    pub jobs: usize,
    /// Deflate level, 0..=9.
    pub level: u32,
}

impl Default for LayerOptions {
    /// Epoch 0, one thread, level [`DEFAULT_LEVEL`].
    fn default() -> Self {
        LayerOptions { epoch: 0, jobs: 1, level: DEFAULT_LEVEL }
    }
}

impl LayerOptions {
    fn validate(&self) -> Result<(), LayerError> {
        if self.jobs == 0 {
            return Err(LayerError::InvalidOption { option: "jobs", reason: "must be at least 1".to_owned() });
        }
        if self.level > 9 {
            return Err(LayerError::InvalidOption {
                option: "level",
                reason: format!("{} is not a deflate level; use 0 to 9", self.level),
            });
        }
        Ok(())
    }
}

/// What is known about a layer once it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the compressed bytes (the layer descriptor's `digest`).
    pub digest: Digest,
    /// Compressed size in bytes (the layer descriptor's `size`).
    pub size: u64,
    /// Uncompressed tar size in bytes.
    pub uncompressed_size: u64,
}

/// Writes one [`LayerTree`] as a deterministic `.tar.gz` to `out`.
#[derive(Debug)]
pub struct LayerWriter<W: Write> {
    /// Receives the compressed layer; flushed at the end.
    out: W,
    /// Validated options.
    options: LayerOptions,
}

impl<W: Write> LayerWriter<W> {
    /// A writer to `out`; fails if `options` are out of range.
    pub fn new(out: W, options: LayerOptions) -> Result<Self, LayerError> {
        options.validate()?;
        Ok(LayerWriter { out, options })
    }

    /// Writes every entry of `tree` (hard links are checked before the first byte), the
    /// end-of-archive blocks and the gzip trailer, and returns the digests.
    pub fn write_tree(self, tree: LayerTree) -> Result<LayerDigests, LayerError> {
        let entries = tree.into_write_order()?;
        let mut sink = GzipSink::new(self.out, self.options.level, self.options.jobs)?;
        for (path, entry) in entries {
            write_entry(&mut sink, &path, entry, self.options.epoch)?;
        }
        sink.write(&[0u8; 2 * ustar::BLOCK])?;
        sink.finish()
    }
}

/// Appends the header(s), content and padding of one entry.
fn write_entry<W: Write>(sink: &mut GzipSink<W>, path: &LayerPath, entry: Entry, epoch: u64) -> Result<(), LayerError> {
    let Entry { kind, mode, uid, gid, uname, gname, mtime, xattrs } = entry;
    let mut name = path.as_str().to_owned();
    let mut linkname = String::new();
    let (mut devmajor, mut devminor) = (0, 0);
    let mut content = None;
    let typeflag = match kind {
        EntryKind::File(file) => {
            content = Some(file);
            flag::FILE
        }
        EntryKind::Directory => {
            name.push('/');
            flag::DIRECTORY
        }
        EntryKind::Symlink(target) => {
            linkname = target;
            flag::SYMLINK
        }
        EntryKind::HardLink(target) => {
            linkname = target.as_str().to_owned();
            flag::HARD_LINK
        }
        EntryKind::CharDevice { major, minor } => {
            (devmajor, devminor) = (major, minor);
            flag::CHAR_DEVICE
        }
        EntryKind::BlockDevice { major, minor } => {
            (devmajor, devminor) = (major, minor);
            flag::BLOCK_DEVICE
        }
        EntryKind::Fifo => flag::FIFO,
    };
    let size = content.as_ref().map_or(0, Content::size);
    let header = ustar::Header {
        name: &name,
        typeflag,
        mode: mode.bits(),
        uid,
        gid,
        size,
        mtime: mtime.min(epoch),
        linkname: &linkname,
        uname: uname.as_deref().unwrap_or(""),
        gname: gname.as_deref().unwrap_or(""),
        devmajor,
        devminor,
        xattrs: &xattrs,
    };
    sink.write(&ustar::encode(&header))?;
    if let Some(content) = content {
        let mut reader = content.open().map_err(|source| LayerError::ReadContent { path: path.clone(), source })?;
        sink.copy_content(path, &mut reader, size)?;
        let padding = ustar::padded_len(size) - size;
        // Less than one block, so the cast cannot truncate.
        sink.write(&[0u8; ustar::BLOCK][..padding as usize])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
