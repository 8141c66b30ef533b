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

/// A regular file found in a stack of layers: its bytes and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerFile {
    /// The content.
    pub bytes: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
}

/// The regular file at `path` (relative, as `etc/passwd`) of the file system that `layers`
/// (gzip-compressed tars, bottom first) make, as the union file system shows it: the top-most
/// layer that has the path decides, and a whiteout (`.wh.<name>`, or `.wh..wh..opq` in its
/// directory) above it hides it. `None` if no layer has it as a regular file. A file over
/// `limit` bytes is an error (the content is read into memory); layers are streamed.
pub fn read_layered_file(
    layers: &[impl AsRef<std::path::Path>],
    path: &str,
    limit: u64,
) -> Result<Option<LayerFile>, LayerError> {
    let (dir, name) = match path.rsplit_once('/') {
        Some((dir, name)) => (dir, name),
        None => ("", path),
    };
    let in_dir = |p: &str, entry: &str| if dir.is_empty() { p == entry } else { p == format!("{dir}/{entry}") };
    for layer in layers.iter().rev() {
        let file = std::fs::File::open(layer.as_ref()).map_err(LayerError::ReadLayer)?;
        let mut archive = Archive::new(MultiGzDecoder::new(io::BufReader::new(file)));
        let mut found: Option<LayerFile> = None;
        let mut hidden = false;
        for entry in archive.entries().map_err(LayerError::ReadLayer)? {
            let mut entry = entry.map_err(LayerError::ReadLayer)?;
            let entry_path = entry.path().map_err(LayerError::ReadLayer)?.to_string_lossy().into_owned();
            let entry_path = entry_path.trim_start_matches("./").trim_end_matches('/').to_owned();
            if in_dir(&entry_path, &format!(".wh.{name}")) || in_dir(&entry_path, ".wh..wh..opq") {
                hidden = true;
            }
            if entry_path == path {
                if entry.header().entry_type() != EntryType::Regular {
                    // A directory or link there: not a file this layer provides.
                    hidden = true;
                    continue;
                }
                if entry.size() > limit {
                    return Err(LayerError::ReadLayer(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("`{path}` is {} bytes, more than the {limit} read into memory", entry.size()),
                    )));
                }
                let header = entry.header();
                let (mode, uid, gid) = (
                    header.mode().map_err(LayerError::ReadLayer)? & 0o7777,
                    header.uid().map_err(LayerError::ReadLayer)?,
                    header.gid().map_err(LayerError::ReadLayer)?,
                );
                let mut bytes = Vec::new();
                (&mut entry).take(limit).read_to_end(&mut bytes).map_err(LayerError::ReadLayer)?;
                found = Some(LayerFile { bytes, mode, uid, gid });
            }
        }
        if found.is_some() {
            return Ok(found);
        }
        if hidden {
            return Ok(None);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod layered_file_tests {
    use super::*;

    /// A gzip-compressed tar of `(path, content)` regular files, written to `dir/name`.
    fn layer(dir: &std::path::Path, name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, path, content.as_bytes()).expect("append");
        }
        let bytes = tar.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &bytes).expect("gzip");
        let path = dir.join(name);
        std::fs::write(&path, gz.finish().expect("gzip")).expect("write");
        path
    }

    #[test]
    fn the_top_most_layer_decides_and_whiteouts_hide() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bottom = layer(dir.path(), "0", &[("etc/passwd", "root\n"), ("etc/group", "root\n")]);
        let middle = layer(dir.path(), "1", &[("./etc/passwd", "root\nnonroot\n")]);
        let top = layer(dir.path(), "2", &[("etc/.wh.group", "")]);
        let read = |layers: &[&std::path::PathBuf], path: &str| {
            read_layered_file(layers, path, 1 << 20).expect("read").map(|f| String::from_utf8(f.bytes).expect("utf-8"))
        };
        assert_eq!(read(&[&bottom, &middle, &top], "etc/passwd").as_deref(), Some("root\nnonroot\n"));
        assert_eq!(read(&[&bottom, &middle], "etc/group").as_deref(), Some("root\n"));
        assert_eq!(read(&[&bottom, &middle, &top], "etc/group"), None, "whited out");
        assert_eq!(read(&[&bottom], "etc/shadow"), None);
        let big = read_layered_file(&[&bottom], "etc/passwd", 2).expect_err("over the limit");
        assert!(big.to_string().contains("more than the 2"), "{big}");
    }
}
