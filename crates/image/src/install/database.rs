//! The installed database, `/usr/lib/apk/db/installed`, in apk-tools' text format: what
//! `apk info`, Syft, Trivy and Grype read to learn which packages an image holds and which
//! files each one owns.
//!
//! Per package, in install order, each record ending in a blank line: the index lines `C P V A S I T
//! U L o m t c k D p i r q` (as in `APKINDEX`; empty ones omitted), then every directory
//! the package has (`F:path`, with `M:uid:gid:mode` unless `0:0:755`), each followed by the
//! files the package owns in it (`R:name`, `a:uid:gid:mode` unless `0:0:644`, and
//! `Z:Q1<base64 sha1>` when there is a checksum). Modes are octal without leading zeros,
//! as apk-tools writes them (`M:0:0:1777`, `a:0:42:640`). Directories come in
//! [`LayerPath`] order (parents first), files by name; files at the top level sit under an
//! empty `F:` line, as apk-tools writes its root directory.

use std::collections::BTreeMap;

use base64::Engine as _;

use crate::install::PackageMeta;
use crate::layer::LayerPath;

/// Numeric owner and permission bits, as the database records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Acl {
    pub uid: u32,
    pub gid: u32,
    /// At most `0o7777`.
    pub mode: u32,
}

impl Acl {
    /// What apk assumes for a directory without an `M:` line.
    pub const DIRECTORY: Acl = Acl { uid: 0, gid: 0, mode: 0o755 };
    /// What apk assumes for a file without an `a:` line.
    pub const FILE: Acl = Acl { uid: 0, gid: 0, mode: 0o644 };
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
    let mut line = |key: char, value: &str| if value.is_empty() { Ok(()) } else { out.field(key, value) };
    let join = |items: Vec<String>| items.join(" ");
    line('C', &meta.identity.map(|id| id.to_string()).unwrap_or_default())?;
    line('P', info.name.as_str())?;
    line('V', info.version.as_str())?;
    line('A', info.arch.as_deref().unwrap_or(arch))?;
    line('S', &meta.file_size.map(|s| s.to_string()).unwrap_or_default())?;
    line('I', &info.size.map(|s| s.to_string()).unwrap_or_default())?;
    line('T', info.description.as_deref().unwrap_or_default())?;
    line('U', info.url.as_deref().unwrap_or_default())?;
    line('L', info.license.as_deref().unwrap_or_default())?;
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
            out.field('M', &format!("{}:{}:{:o}", acl.uid, acl.gid, acl.mode))?;
        }
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, file) in names {
            out.field('R', name)?;
            if file.acl != Acl::FILE {
                out.field('a', &format!("{}:{}:{:o}", file.acl.uid, file.acl.gid, file.acl.mode))?;
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
