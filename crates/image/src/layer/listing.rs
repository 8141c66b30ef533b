//! [`list_layer`]: a text listing of a finished `.tar.gz` layer, for snapshot tests.
//!
//! One line per tar entry, in archive order:
//!
//! ```text
//! <type><mode> <uid>:<gid> <size> <mtime> <path>[ -> <link target>] <sha256|->
//! ```
//!
//! - `<type>` is `-` file, `d` directory, `l` symlink, `h` hard link, `c` character device,
//!   `b` block device, `p` fifo; `<mode>` is four octal digits (`-0644`, `d0755`, `-4755`);
//! - `<size>` is the content size, or `<major>,<minor>` for devices;
//! - `<path>` is as stored (directories end in `/`), after PAX `path` records; links show
//!   their target after ` -> `;
//! - the last column is the sha256 hex of a regular file's content, `-` for everything else;
//! - path, link target, size, uid, gid and mtime come from PAX records when present.
//!
//! It reads the layer back instead of trusting the writer, so it lists any layer
//! (including ones written by other tools, or split into several gzip members).

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use sha2::{Digest as _, Sha256};
use tar::{Archive, EntryType};

use crate::layer::error::LayerError;

/// Lists the entries of the gzip-compressed tar read from `tar_gz`, one line each, every
/// line ending in `\n`.
pub fn list_layer(tar_gz: impl Read) -> Result<String, LayerError> {
    let mut archive = Archive::new(MultiGzDecoder::new(tar_gz));
    let mut listing = String::new();
    for entry in archive.entries().map_err(LayerError::ReadLayer)? {
        let mut entry = entry.map_err(LayerError::ReadLayer)?;
        if entry.header().entry_type() == EntryType::XGlobalHeader {
            // Global PAX defaults (e.g. `git archive`'s comment) are not entries.
            continue;
        }
        let line = list_entry(&mut entry)?;
        listing.push_str(&line);
        listing.push('\n');
    }
    Ok(listing)
}

/// The listing line of one entry (without the newline).
fn list_entry<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<String, LayerError> {
    let header = entry.header();
    let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let type_letter = match header.entry_type() {
        EntryType::Regular | EntryType::Continuous => '-',
        EntryType::Directory => 'd',
        EntryType::Symlink => 'l',
        EntryType::Link => 'h',
        EntryType::Char => 'c',
        EntryType::Block => 'b',
        EntryType::Fifo => 'p',
        other => return Err(LayerError::UnsupportedEntry { path, kind: char::from(other.as_byte()) }),
    };
    let mode = header.mode().map_err(LayerError::ReadLayer)? & 0o7777;
    let uid = header.uid().map_err(LayerError::ReadLayer)?;
    let gid = header.gid().map_err(LayerError::ReadLayer)?;
    let mut mtime = header.mtime().map_err(LayerError::ReadLayer)?;
    let size = match type_letter {
        'c' | 'b' => {
            let major = header.device_major().map_err(LayerError::ReadLayer)?;
            let minor = header.device_minor().map_err(LayerError::ReadLayer)?;
            format!("{},{}", major.unwrap_or(0), minor.unwrap_or(0))
        }
        _ => entry.size().to_string(),
    };
    let link = entry.link_name_bytes().map(|target| format!(" -> {}", String::from_utf8_lossy(&target)));
    // The tar crate applies PAX `path`, `linkpath`, `size`, `uid` and `gid` itself.
    if let Some(records) = entry.pax_extensions().map_err(LayerError::ReadLayer)? {
        for record in records {
            let record = record.map_err(LayerError::ReadLayer)?;
            if record.key() == Ok("mtime") {
                // Seconds, possibly with a fraction that the listing drops.
                let seconds = record.value().ok().and_then(|v| v.split('.').next());
                mtime = seconds.and_then(|v| v.parse().ok()).ok_or_else(|| {
                    LayerError::ReadLayer(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("malformed PAX `mtime` record of `{path}`"),
                    ))
                })?;
            }
        }
    }
    let sha256 = if type_letter == '-' {
        let mut hasher = Sha256::new();
        io::copy(entry, &mut hasher).map_err(LayerError::ReadLayer)?;
        hex::encode(hasher.finalize())
    } else {
        "-".to_owned()
    };
    Ok(format!("{type_letter}{mode:04o} {uid}:{gid} {size} {mtime} {path}{} {sha256}", link.unwrap_or_default()))
}
