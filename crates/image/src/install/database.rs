//! The installed database, `/usr/lib/apk/db/installed`, in apk-tools' text format: what
//! `apk info`, Syft, Trivy and Grype read to learn which packages an image holds and which
//! files each one owns.
//!
//! Per package, in install order, each record ending in a blank line: the index lines `C P V A S I T
//! U L o m t c k D p i r q` (as in `APKINDEX`; `S I T U L` always, as apk-tools writes them,
//! empty others omitted), then every directory
//! the package has (`F:path`, with `M:uid:gid:mode` unless `0:0:755`), each followed by the
//! files the package owns in it (`R:name`, `a:uid:gid:mode` unless `0:0:644`; either with
//! `:Q1<base64 sha1>` of the entry's extended attributes when it has some, as apk-tools
//! records file capabilities; and
//! `Z:Q1<base64 sha1>` when there is a checksum). Modes are octal without leading zeros,
//! as apk-tools writes them (`M:0:0:1777`, `a:0:42:640`). Directories come in
//! [`LayerPath`] order (parents first), files by name; files at the top level sit under an
//! empty `F:` line, as apk-tools writes its root directory.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::install::PackageMeta;
use crate::layer::LayerPath;

/// Numeric owner, permission bits and extended attributes, as the database records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Acl {
    pub uid: u32,
    pub gid: u32,
    /// At most `0o7777`.
    pub mode: u32,
    /// [`xattr_sha1`] of the entry's extended attributes (file capabilities, say), if it has
    /// any.
    pub xattrs: Option<[u8; 20]>,
}

impl Acl {
    /// What apk assumes for a directory without an `M:` line.
    pub const DIRECTORY: Acl = Acl { uid: 0, gid: 0, mode: 0o755, xattrs: None };
    /// What apk assumes for a file without an `a:` line.
    pub const FILE: Acl = Acl { uid: 0, gid: 0, mode: 0o644, xattrs: None };

    /// Owner and mode without extended attributes.
    pub const fn new(uid: u32, gid: u32, mode: u32) -> Self {
        Acl { uid, gid, mode, xattrs: None }
    }

    /// `uid:gid:mode[:Q1<xattr hash>]`, as apk-tools' `apk_blob_push_db_acl` writes an `M:`
    /// or `a:` value (mode in octal).
    fn render(&self) -> String {
        let mut text = format!("{}:{}:{:o}", self.uid, self.gid, self.mode);
        if let Some(sha1) = &self.xattrs {
            text.push(':');
            text.push_str(&q1(sha1));
        }
        text
    }
}

/// apk-tools' `apk_fileinfo_hash_xattr_array` with SHA-1 (what it records for package
/// entries, from their `SCHILY.xattr.*` PAX records): over the attributes sorted by name,
/// each name and value preceded by its length as a big-endian `u32`. `None` without
/// attributes. (A `BTreeMap` of `String`s iterates in `strcmp` order, as apk sorts.)
pub(crate) fn xattr_sha1(xattrs: &BTreeMap<String, Vec<u8>>) -> Option<[u8; 20]> {
    use sha1::Digest as _;
    if xattrs.is_empty() {
        return None;
    }
    let mut hash = sha1::Sha1::new();
    for (name, value) in xattrs {
        for part in [name.as_bytes(), value.as_slice()] {
            // Names and values are bounded far below 4 GiB by the tar reader's PAX limit.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            hash.update(len.to_be_bytes());
            hash.update(part);
        }
    }
    Some(hash.finalize().into())
}

/// One file a package owns in the final tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbFile {
    pub acl: Acl,
    /// SHA-1 of the content (of the target string for symlinks); `None` for devices and
    /// fifos.
    pub checksum: Option<[u8; 20]>,
}

/// A directory of one record: the package's metadata for it, if it ships it, and its files.
type Directory<'a> = (Option<Acl>, Vec<(&'a str, &'a DbFile)>);

/// `Q1` + standard base64 of a SHA-1, the form of `C:` and `Z:`.
pub(crate) fn q1(sha1: &[u8; 20]) -> String {
    format!("Q1{}", base64::engine::general_purpose::STANDARD.encode(sha1))
}

/// Appends one package's record (without the blank line that ends it).
///
/// `dirs` are the directories as the package names them (package paths) with the package's
/// own metadata; `files` are the package paths of the files it still owns. A file whose
/// directory is not in `dirs` gets that directory listed without an `M:` line, as apk-tools
/// does for parents a package does not ship.
pub(crate) fn render_package(
    out: &mut String,
    meta: &PackageMeta,
    arch: &str,
    dirs: &BTreeMap<LayerPath, Acl>,
    files: &BTreeMap<LayerPath, DbFile>,
) -> Result<(), FieldError> {
    let mut out = Record { out, package: format!("{}-{}", meta.info.name, meta.info.version) };
    let info = &meta.info;
    let join = |items: Vec<String>| items.join(" ");
    // `C P V A` when known; `S I T U L` always, empty or zero as apk-tools'
    // `apk_pkg_write_index_header` writes them; the others only when set.
    let mut line = |key: char, value: &str| if value.is_empty() { Ok(()) } else { out.field(key, value) };
    line('C', &meta.identity.map(|id| id.to_string()).unwrap_or_default())?;
    line('P', info.name.as_str())?;
    line('V', info.version.as_str())?;
    line('A', info.arch.as_deref().unwrap_or(arch))?;
    out.field('S', &meta.file_size.unwrap_or(0).to_string())?;
    out.field('I', &info.size.unwrap_or(0).to_string())?;
    out.field('T', info.description.as_deref().unwrap_or_default())?;
    out.field('U', info.url.as_deref().unwrap_or_default())?;
    out.field('L', info.license.as_deref().unwrap_or_default())?;
    let mut line = |key: char, value: &str| if value.is_empty() { Ok(()) } else { out.field(key, value) };
    line('o', info.origin.as_deref().unwrap_or_default())?;
    line('m', info.maintainer.as_deref().unwrap_or_default())?;
    line('t', &info.build_date.map(|t| t.to_string()).unwrap_or_default())?;
    line('c', info.commit.as_deref().unwrap_or_default())?;
    line('k', &info.provider_priority.map(|k| k.to_string()).unwrap_or_default())?;
    line('D', &join(info.depends.iter().map(ToString::to_string).collect()))?;
    line('p', &join(info.provides.iter().map(ToString::to_string).collect()))?;
    line('i', &join(info.install_if.iter().map(ToString::to_string).collect()))?;
    line('r', &join(info.replaces.iter().map(ToString::to_string).collect()))?;
    line('q', &info.replaces_priority.map(|q| q.to_string()).unwrap_or_default())?;

    // Per directory (`None` is the root; it sorts first): its metadata if the package ships
    // it, and the names of its files.
    let mut layout: BTreeMap<Option<LayerPath>, Directory<'_>> = BTreeMap::new();
    for (dir, acl) in dirs {
        layout.entry(Some(dir.clone())).or_default().0 = Some(*acl);
    }
    for (path, file) in files {
        layout.entry(path.parent()).or_default().1.push((path.file_name(), file));
    }
    for (dir, (acl, mut names)) in layout {
        out.field('F', dir.as_ref().map(LayerPath::as_str).unwrap_or_default())?;
        if let Some(acl) = acl.filter(|acl| *acl != Acl::DIRECTORY) {
            out.field('M', &acl.render())?;
        }
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, file) in names {
            out.field('R', name)?;
            if file.acl != Acl::FILE {
                out.field('a', &file.acl.render())?;
            }
            if let Some(sha1) = &file.checksum {
                out.field('Z', &q1(sha1))?;
            }
        }
    }
    Ok(())
}

/// A value the database cannot hold: it would end its line early and forge the next record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "package `{package}`: its `{key}:` field `{value}` contains a line break, which would forge records in \
     the apk database that scanners read; fix the package"
)]
pub struct FieldError {
    pub package: String,
    pub key: char,
    /// The value, escaped.
    pub value: String,
}

/// The only writer of database lines: `K:value`, with the value refused if it holds a line
/// break (`\n`, `\r`) or a NUL, so no input can end a field early. (Paths cannot even hold
/// other control characters: [`LayerPath`] refuses them.)
struct Record<'a> {
    out: &'a mut String,
    package: String,
}

impl Record<'_> {
    fn field(&mut self, key: char, value: &str) -> Result<(), FieldError> {
        if value.contains(['\n', '\r', '\0']) {
            return Err(FieldError { package: self.package.clone(), key, value: value.escape_debug().to_string() });
        }
        self.out.push(key);
        self.out.push(':');
        self.out.push_str(value);
        self.out.push('\n');
        Ok(())
    }
}
