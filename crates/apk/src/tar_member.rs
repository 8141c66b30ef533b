//! The regular files of one decompressed gzip member read as a tar stream.
//! Members of an `.apk` or index are tar fragments: the signature and control
//! members carry no end-of-archive blocks, so a member simply ends after its
//! last entry.

use std::io::{self, Read};

/// A regular file from a tar member.
#[derive(Debug)]
pub(crate) struct TarFile {
    pub(crate) path: String,
    pub(crate) content: Vec<u8>,
}

/// Reads the regular files of `content`, in order. Directories, links and
/// PAX/GNU extension headers are skipped (the tar crate applies the latter
/// to the entries they describe).
pub(crate) fn read_files(content: &[u8]) -> io::Result<Vec<TarFile>> {
    let mut archive = tar::Archive::new(content);
    let mut files = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind == tar::EntryType::Continuous) {
            continue;
        }
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "tar entry name is not UTF-8"))?;
        // The header's size is input: never reserve more than the member holds.
        let reserve = usize::try_from(entry.size()).map_or(0, |size| size.min(content.len()));
        let mut file = Vec::with_capacity(reserve);
        entry.read_to_end(&mut file)?;
        files.push(TarFile { path, content: file });
    }
    Ok(files)
}
