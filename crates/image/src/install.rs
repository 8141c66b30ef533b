//! Installing packages into an image root: verified packages, in install order, plus the
//! caller's files and accounts, become one [`LayerTree`] laid out as apk-tools (and apko)
//! would lay out a root filesystem, with the apk database that scanners read.
//!
//! Vocabulary: the **installer** ([`Installer`]) owns the tree being built; each path in it
//! has one **owner**: a package, the caller (**extra** files, accounts, the apk database),
//! or nobody (an **implicit** parent directory that no package ships). A **package path**
//! is a path as the package names it; the **tree path** is where it lands once symlinked
//! parent directories are followed (module `resolve`).
//!
//! Decisions (all deterministic: `BTreeMap`s, sorted output, no host uid, umask or clock):
//! - **Metadata** comes from the package's data tar: mode (permission, setuid, setgid and
//!   sticky bits), numeric uid/gid (a PAX `uid`/`gid` record overrides the header; names are
//!   not mapped through `/etc/passwd` as apk-tools does, so the layer shows what the package
//!   says), mtime (the layer writer clamps it to the epoch) and `SCHILY.xattr.*` records.
//!   `APK-TOOLS.checksum.*` records are dropped from the tree; the SHA-1 one is checked
//!   against the content (sha1 of the content, of the symlink target, of a hard link's
//!   target) and becomes the database's `Z:` line.
//! - **Content** of regular files is hashed as it is read and, unless it is small, spooled
//!   to one unlinked scratch file (module `spool`, directory from
//!   [`Installer::with_spool_dir`]) that the tree's [`Content`]s read back when the layer is
//!   written: memory does not grow with the package set. `/etc/passwd` and `/etc/group` are
//!   always kept in memory, since accounts are appended to them.
//! - **Hostile paths** are errors that name the package and the path, and nothing of them is
//!   written: absolute paths, `..`, NUL bytes, non-UTF-8 names, a relative symlink target
//!   that leaves the root from the link's own directory (absolute targets are relative to
//!   the image root and fine), a path whose parent goes through a symlink leading outside
//!   the root, symlink loops, hard links to paths that are not a regular file in the tree.
//!   **Symlinked parents are followed inside the root** (as the kernel does when apk-tools
//!   extracts): with `lib -> usr/lib`, a package's `lib/x` lands at `usr/lib/x` and the
//!   database still records `lib/x`, so merged-`/usr` layouts work.
//! - A failed [`Installer::install`] leaves the tree as it was before the call.
//! - **Conflicts**: two packages may install the same path if the entries are identical
//!   (kind, content or target, mode, owner); the path stays with the first package.
//!   Otherwise, as apk-tools decides (`apk_pkg_replaces_file`): a package that `replaces`
//!   the other (`.PKGINFO` `replaces`, version constraint honoured) keeps or takes the path
//!   whichever was installed first, the higher `replaces_priority` winning when both do;
//!   without `replaces`, the later of two packages with the same `origin` takes it. The
//!   package that loses the path loses it from its database record. Anything else is
//!   [`InstallError::Conflict`]. **Directories** are shared freely: the first package's
//!   metadata stays (as apk keeps an existing directory), every package lists the directory
//!   in its record with its own `M:`; a directory over a symlink that leads to a directory
//!   keeps the symlink. An implicit parent directory takes the metadata of the first
//!   package that ships it.
//! - **Extra files** ([`Installer::add_file`], [`Installer::add_dir`],
//!   [`Installer::add_symlink`]) always win over package entries, whichever comes first;
//!   a package path they replace leaves its package's record. Destinations may start with
//!   `/` (the image root); `..` and symlinks leading outside are refused as for packages.
//! - **Accounts** ([`Installer::add_user`], [`Installer::add_group`]) are appended to the
//!   `/etc/passwd` and `/etc/group` the packages ship (the files are created, `0644`
//!   root-owned, when no package ships them); the shipped file keeps its metadata and its
//!   package's `Z:`, as after an apk post-install `adduser`. No `/etc/shadow` lines are
//!   written. A home directory is created (parents `0755` root, itself `0700`) and owned by
//!   the account either way.
//! - **The apk database** ([`Installer::finish`]): `/etc/apk/world` (sorted names),
//!   `/etc/apk/arch`, `/etc/apk/repositories`, `/etc/apk/keys/<name>`, and the installed
//!   database at `/usr/lib/apk/db/installed` (where apko, apk-tools 2.14+ with a
//!   `/usr`-merged layout, Syft and Trivy look), with `/lib/apk -> ../usr/lib/apk` as apko
//!   links it (older Trivy reads `/lib/apk/db/installed`; a symlink, so no scanner counts
//!   packages twice); beside it, apk-tools' `triggers`, `scripts.tar` and `lock`, empty
//!   (scripts never run).
//! - **Base directories** ([`BASE_DIRS`]): a layer that installs packages has the directories
//!   apko creates in every image (`/tmp` `1777`, `/proc` `0555`, `/dev`, `/var/cache/apk`,
//!   …) where no package ships them.

mod accounts;
pub(crate) mod database;
mod error;
mod resolve;
mod spool;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::PathBuf;

use sha1::{Digest as _, Sha1};

use crate::apk::{Identity, Package, PkgInfo, VerifiedPackage};
use crate::install::accounts::{Accounts, Group, User, GROUP, PASSWD};
use crate::install::database::{Acl, DbFile};
use crate::install::spool::{Spool, SpoolError};
use crate::layer::{Content, Entry, EntryKind, LayerPath, LayerTree, Mode};
use crate::platform::Arch;

pub use crate::install::error::{InstallError, Subject, Unsafe};

/// Where the installed database goes.
pub const INSTALLED_DB: &str = "usr/lib/apk/db/installed";

/// The mode of a home directory [`Installer::add_user`] creates.
pub const HOME_MODE: u32 = 0o700;

/// The directories apko creates in every image when no package ships them (its
/// `baseDirectories` and `initDirectories`), and their modes: a layer that installs
/// packages gets them too.
pub const BASE_DIRS: [(&str, u32); 16] = [
    ("dev", 0o755),
    ("etc", 0o755),
    ("etc/apk", 0o755),
    ("etc/apk/keys", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/lib", 0o755),
    ("usr/lib/apk", 0o755),
    ("usr/lib/apk/db", 0o755),
    ("usr/lib/apk/exec", 0o755),
    ("var", 0o755),
    ("var/cache", 0o755),
    ("var/cache/apk", 0o755),
    ("var/cache/misc", 0o755),
];

/// The largest `/etc/passwd` or `/etc/group` read into memory (to merge accounts into it).
pub const MAX_ACCOUNT_FILE: u64 = 16 << 20;

/// The PAX record prefix of apk's per-file checksums (dropped from the layer).
const CHECKSUM_PREFIX: &str = "APK-TOOLS.checksum.";
/// The one checksum record that is checked and recorded.
const CHECKSUM_SHA1: &str = "APK-TOOLS.checksum.SHA1";
/// The PAX record prefix of extended attributes.
const XATTR_PREFIX: &str = "SCHILY.xattr.";

/// What the installer needs to know about a package besides its data.
#[derive(Debug, Clone)]
pub struct PackageMeta {
    /// The parsed `.PKGINFO`.
    pub info: PkgInfo,
    /// `C:`, the package identity; `None` only for hand-made test packages.
    pub identity: Option<Identity>,
    /// `S:`, the size of the `.apk` file.
    pub file_size: Option<u64>,
    /// The repository tag or URL the package came from (for the SBOM, not the database).
    pub repository: String,
}

impl PackageMeta {
    /// The metadata of a read (and, by the caller, verified) package.
    pub fn of(package: &Package<'_>, repository: &str) -> Self {
        PackageMeta {
            info: package.info().clone(),
            identity: Some(package.identity()),
            // The data runs to the end of the file.
            file_size: Some(package.data_range().end as u64),
            repository: repository.to_owned(),
        }
    }

    /// `name-version`, how errors name the package.
    pub fn id(&self) -> String {
        format!("{}-{}", self.info.name, self.info.version)
    }
}

/// One installed package, for an SBOM.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstalledSummary {
    pub name: String,
    pub version: String,
    /// The package's `arch` (`noarch` stays `noarch`), or the image's if it has none.
    pub arch: String,
    /// `Q1...`
    pub identity: Option<String>,
    pub license: Option<String>,
    pub origin: Option<String>,
    pub description: Option<String>,
    pub url: Option<String>,
    pub commit: Option<String>,
    pub maintainer: Option<String>,
    pub build_date: Option<u64>,
    /// Size of the `.apk` file.
    pub size: Option<u64>,
    /// `.PKGINFO` `size`.
    pub installed_size: Option<u64>,
    pub repository: String,
    pub depends: Vec<String>,
    pub provides: Vec<String>,
    /// Package paths of the files (not directories) the package owns in the final tree.
    pub files: Vec<String>,
    /// sha256 of the `.apk` file, when the caller knows it (the lockfile pins it).
    #[serde(default)]
    pub sha256: Option<crate::digest::Digest>,
    /// `.PKGINFO` `replaces`: packages whose files it may overwrite.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

/// What [`Installer::finish_owned`] returns.
#[derive(Debug)]
pub struct Finished {
    /// The tree.
    pub tree: LayerTree,
    /// One summary per installed package, in install order.
    pub summaries: Vec<InstalledSummary>,
    /// The package (index in install order) that put each entry there. Entries of the
    /// caller (files, accounts), the apk database and directories made only as parents
    /// belong to none.
    pub owners: BTreeMap<LayerPath, usize>,
    /// Each package's record of the apk database (`installed`), in install order.
    pub records: Vec<String>,
}

/// Who put an entry into the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    /// The package at this index of [`Installer::packages`] (or the one being installed).
    Package(usize),
    /// The caller: extra files, accounts, the apk database.
    Extra,
    /// Nobody: a parent directory created because an entry below it needed one.
    Implicit,
}

/// What an entry is, with what decides whether two entries are the same.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    /// A regular file and the sha1 of its content (unknown for streamed extra files).
    File(Option<[u8; 20]>),
    Directory,
    Symlink(String),
    /// A hard link and the sha1 of its target's content.
    HardLink(Option<[u8; 20]>),
    CharDevice(u32, u32),
    BlockDevice(u32, u32),
    Fifo,
}

impl Fingerprint {
    /// What the database records as `Z:`.
    fn checksum(&self) -> Option<[u8; 20]> {
        match self {
            Fingerprint::File(sha1) | Fingerprint::HardLink(sha1) => *sha1,
            Fingerprint::Symlink(target) => Some(Sha1::digest(target.as_bytes()).into()),
            _ => None,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Fingerprint::File(_) => "regular file",
            Fingerprint::Directory => "directory",
            Fingerprint::Symlink(_) => "symlink",
            Fingerprint::HardLink(_) => "hard link",
            Fingerprint::CharDevice(..) => "character device",
            Fingerprint::BlockDevice(..) => "block device",
            Fingerprint::Fifo => "fifo",
        }
    }
}

/// The owner of one tree path and what it put there.
#[derive(Debug, Clone)]
struct Owner {
    by: By,
    /// The path as the owner named it (what the database records).
    package_path: LayerPath,
    acl: Acl,
    fingerprint: Fingerprint,
}

impl Owner {
    fn same_as(&self, other: &Owner) -> bool {
        self.fingerprint == other.fingerprint && self.acl == other.acl
    }

    /// How `self` (already there) differs from `new`, for conflict messages.
    fn difference(&self, new: &Owner) -> String {
        match (&self.fingerprint, &new.fingerprint) {
            (a, b) if a.describe() != b.describe() => format!("as a {}, not a {}", a.describe(), b.describe()),
            (Fingerprint::Symlink(a), Fingerprint::Symlink(b)) if a != b => {
                format!("as a symlink to `{a}`, not to `{b}`")
            }
            (a, b) if a != b => "with different content".to_owned(),
            _ if self.acl.mode != new.acl.mode => format!("with mode {:04o}, not {:04o}", self.acl.mode, new.acl.mode),
            _ => format!("with owner {}:{}, not {}:{}", self.acl.uid, self.acl.gid, new.acl.uid, new.acl.gid),
        }
    }
}

/// A package that was installed: its metadata and the directories it ships.
#[derive(Debug)]
struct Installed {
    meta: PackageMeta,
    /// Package paths of its directories, with its own metadata for them.
    dirs: BTreeMap<LayerPath, Acl>,
}

/// The state of one tree path before a change, to undo a failed operation.
#[derive(Debug)]
struct Undo {
    path: LayerPath,
    entry: Option<Entry>,
    owner: Option<Owner>,
}

/// Lays out an image root from packages, extra files and accounts. See the module docs for
/// the rules.
#[derive(Debug)]
pub struct Installer {
    /// The image's architecture: `/etc/apk/arch`, and every package must be for it or `noarch`.
    arch: Arch,
    /// The root being built. Invariant: every path in it has an entry in `owners`.
    tree: LayerTree,
    /// The owner of every tree path, keyed by tree path.
    owners: BTreeMap<LayerPath, Owner>,
    /// Installed packages, in install order.
    packages: Vec<Installed>,
    /// Accounts added by the caller.
    accounts: Accounts,
    /// `/etc/apk/world`.
    world: BTreeSet<String>,
    /// `/etc/apk/repositories`, in the caller's order.
    repositories: Vec<String>,
    /// `/etc/apk/keys/<name>`.
    keys: BTreeMap<String, Vec<u8>>,
    /// The current content of `/etc/passwd` and `/etc/group` (by tree path), whoever put them
    /// there: accounts are appended to it.
    account_files: BTreeMap<LayerPath, Vec<u8>>,
    /// Changes made by the operation in progress; empty between operations.
    undo: Vec<Undo>,
    /// Where regular files' content waits for the layer writer.
    spool: Spool,
}

impl Installer {
    /// An empty root for `arch`; large contents are spooled to the system's temporary
    /// directory (see [`Installer::with_spool_dir`]).
    pub fn new(arch: Arch) -> Self {
        Installer::with_spool_dir(arch, std::env::temp_dir())
    }

    /// An empty root for `arch` whose regular files' content, unless small, is kept in one
    /// unlinked spool file created in `dir` (a per-action scratch directory) rather than in
    /// memory. The spool lives as long as the tree returned by [`Installer::finish`].
    pub fn with_spool_dir(arch: Arch, dir: impl Into<PathBuf>) -> Self {
        Installer {
            arch,
            tree: LayerTree::new(),
            owners: BTreeMap::new(),
            packages: Vec::new(),
            accounts: Accounts::default(),
            world: BTreeSet::new(),
            repositories: Vec::new(),
            keys: BTreeMap::new(),
            account_files: BTreeMap::new(),
            undo: Vec::new(),
            spool: Spool::new(dir.into()),
        }
    }

    /// Installs a verified package after those installed before it: only a
    /// [`VerifiedPackage`] can be installed, so unverified bytes never reach a layer.
    /// `repository` (tag or URL) is kept for the SBOM.
    pub fn install(&mut self, package: &VerifiedPackage<'_>, repository: &str) -> Result<(), InstallError> {
        let package = package.package();
        self.install_archive(PackageMeta::of(package, repository), &mut package.data_archive())
    }

    /// Installs a package given as its metadata and its data tar. On error nothing of the
    /// package stays in the tree. Private: callers go through [`Installer::install`].
    fn install_archive<R: Read>(
        &mut self,
        meta: PackageMeta,
        archive: &mut tar::Archive<R>,
    ) -> Result<(), InstallError> {
        if let Some(arch) = meta.info.arch.as_deref() {
            if arch != self.arch.apk() && arch != "noarch" {
                return Err(InstallError::WrongArch {
                    package: meta.id(),
                    arch: arch.to_owned(),
                    expected: self.arch.apk().to_owned(),
                });
            }
        }
        let saved_accounts = self.account_files.clone();
        let mut dirs = BTreeMap::new();
        match self.install_entries(&meta, archive, &mut dirs) {
            Ok(()) => {
                self.undo.clear();
                self.packages.push(Installed { meta, dirs });
                Ok(())
            }
            Err(error) => {
                self.rollback();
                self.account_files = saved_accounts;
                Err(error)
            }
        }
    }

    fn install_entries<R: Read>(
        &mut self,
        meta: &PackageMeta,
        archive: &mut tar::Archive<R>,
        dirs: &mut BTreeMap<LayerPath, Acl>,
    ) -> Result<(), InstallError> {
        let index = self.packages.len();
        let id = meta.id();
        let read_error = |source| InstallError::Read { subject: Subject::Package(id.clone()), source };
        for entry in archive.entries().map_err(read_error)? {
            let mut entry = entry.map_err(read_error)?;
            let raw = entry.path_bytes().into_owned();
            let shown = match std::str::from_utf8(&raw) {
                Ok(text) => text.escape_debug().to_string(),
                Err(_) => raw.escape_ascii().to_string(),
            };
            let unsafe_path = |reason| InstallError::UnsafePath {
                subject: Subject::Package(id.clone()),
                path: shown.clone(),
                reason,
            };
            let entry_type = entry.header().entry_type();
            if entry_type == tar::EntryType::XGlobalHeader {
                continue;
            }
            let text = std::str::from_utf8(&raw).map_err(|_| unsafe_path(Unsafe::NotUtf8))?;
            let Some(package_path) = resolve::package_path(text).map_err(unsafe_path)? else {
                continue;
            };
            let bad_field = |message: String| InstallError::BadField {
                package: id.clone(),
                path: package_path.to_string(),
                message,
            };

            let mut recorded_sha1: Option<[u8; 20]> = None;
            let mut xattrs = BTreeMap::new();
            let (mut uid, mut gid) =
                (entry.header().uid().map_err(read_error)?, entry.header().gid().map_err(read_error)?);
            if let Some(records) = entry.pax_extensions().map_err(read_error)? {
                for record in records {
                    let record = record.map_err(read_error)?;
                    let Ok(key) = record.key() else { continue };
                    let number = || -> Result<u64, InstallError> {
                        std::str::from_utf8(record.value_bytes())
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .ok_or_else(|| bad_field(format!("PAX record `{key}` is not a number")))
                    };
                    if key == CHECKSUM_SHA1 {
                        let mut sha1 = [0u8; 20];
                        hex::decode_to_slice(record.value_bytes(), &mut sha1)
                            .map_err(|_| bad_field(format!("PAX record `{key}` is not 40 hex digits")))?;
                        recorded_sha1 = Some(sha1);
                    } else if key.starts_with(CHECKSUM_PREFIX) {
                        // Other digests (older apk wrote MD5): not recorded.
                    } else if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                        xattrs.insert(name.to_owned(), record.value_bytes().to_vec());
                    } else if key == "uid" {
                        uid = number()?;
                    } else if key == "gid" {
                        gid = number()?;
                    }
                }
            }
            let header = entry.header();
            let id_field = |field: &str, value: u64| {
                u32::try_from(value).map_err(|_| bad_field(format!("{field} {value} does not fit in 32 bits")))
            };
            let acl = Acl {
                uid: id_field("uid", uid)?,
                gid: id_field("gid", gid)?,
                mode: header.mode().map_err(read_error)? & 0o7777,
                xattrs: database::xattr_sha1(&xattrs),
            };
            let mtime = header.mtime().map_err(read_error)?;
            let tree_path = resolve::resolve_parent(&self.tree, &package_path).map_err(unsafe_path)?;

            let mut account_copy = None;
            let (kind, fingerprint) = match entry_type {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = entry.size();
                    let spool_error = |error| match error {
                        SpoolError::Read(source) => read_error(source),
                        SpoolError::Write { dir, source } => InstallError::Spool { dir, source },
                    };
                    let (content, sha1) = if is_account_file(&tree_path) {
                        if size > MAX_ACCOUNT_FILE {
                            return Err(InstallError::BadField {
                                package: id.clone(),
                                path: tree_path.to_string(),
                                message: format!(
                                    "{size} bytes; account files are read into memory to merge accounts, and more than {MAX_ACCOUNT_FILE} bytes is refused"
                                ),
                            });
                        }
                        let (bytes, sha1) = spool::read_all(&mut entry, size).map_err(spool_error)?;
                        account_copy = Some(bytes.clone());
                        (Content::from_bytes(bytes), sha1)
                    } else {
                        self.spool.take(&mut entry, size).map_err(spool_error)?
                    };
                    (EntryKind::File(content), Fingerprint::File(Some(sha1)))
                }
                tar::EntryType::Directory => (EntryKind::Directory, Fingerprint::Directory),
                tar::EntryType::Symlink => {
                    let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                    let target = String::from_utf8(target).map_err(|_| unsafe_path(Unsafe::NotUtf8))?;
                    resolve::check_symlink_target(&tree_path, &target).map_err(unsafe_path)?;
                    (EntryKind::Symlink(target.clone()), Fingerprint::Symlink(target))
                }
                tar::EntryType::Link => {
                    let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = self.hard_link_target(&target).map_err(unsafe_path)?;
                    let checksum = self.owners.get(&resolved).and_then(|o| o.fingerprint.checksum());
                    (EntryKind::HardLink(resolved), Fingerprint::HardLink(checksum))
                }
                tar::EntryType::Char | tar::EntryType::Block => {
                    let major = header.device_major().map_err(read_error)?.unwrap_or(0);
                    let minor = header.device_minor().map_err(read_error)?.unwrap_or(0);
                    if entry_type == tar::EntryType::Char {
                        (EntryKind::CharDevice { major, minor }, Fingerprint::CharDevice(major, minor))
                    } else {
                        (EntryKind::BlockDevice { major, minor }, Fingerprint::BlockDevice(major, minor))
                    }
                }
                tar::EntryType::Fifo => (EntryKind::Fifo, Fingerprint::Fifo),
                other => {
                    return Err(InstallError::UnsupportedEntry {
                        package: id.clone(),
                        path: package_path.to_string(),
                        kind: format!("{}", char::from(other.as_byte()).escape_debug()),
                    })
                }
            };
            if let (Some(expected), Some(actual)) = (recorded_sha1, fingerprint.checksum()) {
                if expected != actual {
                    return Err(InstallError::ChecksumMismatch {
                        package: id.clone(),
                        path: package_path.to_string(),
                        expected: hex::encode(expected),
                        actual: hex::encode(actual),
                    });
                }
            }
            if fingerprint == Fingerprint::Directory {
                dirs.insert(package_path.clone(), acl);
            }
            let entry = Entry {
                kind,
                mode: Mode::new(acl.mode)
                    .map_err(|source| InstallError::Layer { subject: Subject::Package(id.clone()), source })?,
                uid: acl.uid,
                gid: acl.gid,
                uname: None,
                gname: None,
                mtime,
                xattrs,
            };
            let owner = Owner { by: By::Package(index), package_path, acl, fingerprint };
            self.place_package_entry(meta, tree_path.clone(), entry, owner)?;
            if let Some(content) = account_copy {
                if self.owners.get(&tree_path).is_some_and(|o| o.by == By::Package(index)) {
                    self.account_files.insert(tree_path, content);
                }
            }
        }
        Ok(())
    }

    /// The tree path a hard link's target names; it must be a regular file (or a hard link to
    /// one) already in the tree.
    fn hard_link_target(&self, target: &str) -> Result<LayerPath, Unsafe> {
        let wrap = |reason| Unsafe::HardLinkTarget { target: target.to_owned(), reason: Box::new(reason) };
        let path = resolve::package_path(target)
            .map_err(wrap)?
            .ok_or(Unsafe::HardLinkNotFile { target: target.to_owned(), kind: "directory" })?;
        let resolved = resolve::resolve_parent(&self.tree, &path).map_err(wrap)?;
        match self.tree.get(&resolved).map(|e| &e.kind) {
            Some(EntryKind::File(_) | EntryKind::HardLink(_)) => Ok(resolved),
            Some(other) => Err(Unsafe::HardLinkNotFile { target: target.to_owned(), kind: other.describe() }),
            None => Err(Unsafe::HardLinkMissing { target: target.to_owned() }),
        }
    }

    /// Puts one package entry at `tree_path`, following the conflict rules.
    fn place_package_entry(
        &mut self,
        meta: &PackageMeta,
        tree_path: LayerPath,
        entry: Entry,
        owner: Owner,
    ) -> Result<(), InstallError> {
        let subject = Subject::Package(meta.id());
        let Some(existing) = self.owners.get(&tree_path).cloned() else {
            self.ensure_parents(&tree_path, &subject)?;
            return self.put(tree_path, entry, owner, &subject);
        };
        if owner.fingerprint == Fingerprint::Directory {
            match &existing.fingerprint {
                Fingerprint::Directory if existing.by == By::Implicit => {
                    return self.put(tree_path, entry, owner, &subject)
                }
                Fingerprint::Directory => return Ok(()),
                Fingerprint::Symlink(_) if self.leads_to_directory(&tree_path) => return Ok(()),
                _ => {}
            }
        }
        let By::Package(earlier) = existing.by else {
            return match existing.by {
                // The caller's entries win over packages, whichever came first.
                By::Extra => Ok(()),
                // An implicit directory; the tree refuses to replace it if it has children.
                _ => self.put(tree_path, entry, owner, &subject),
            };
        };
        if existing.same_as(&owner) {
            return Ok(());
        }
        if earlier == self.packages.len() {
            return Err(InstallError::Duplicate {
                package: meta.id(),
                path: tree_path.to_string(),
                difference: existing.difference(&owner),
            });
        }
        let earlier = &self.packages[earlier].meta;
        match replaces_file(earlier, meta) {
            Replaces::Yes => self.put(tree_path, entry, owner, &subject),
            // The package already there replaces this one (or wins on priority): its file
            // stays, and this package does not own the path.
            Replaces::No => Ok(()),
            Replaces::Conflict => Err(InstallError::Conflict {
                package: meta.id(),
                existing: earlier.id(),
                existing_name: earlier.info.name.to_string(),
                path: tree_path.to_string(),
                difference: existing.difference(&owner),
            }),
        }
    }

    /// Whether the symlink at `path` finally leads to a directory of the tree.
    fn leads_to_directory(&self, path: &LayerPath) -> bool {
        match resolve::resolve_full(&self.tree, path) {
            Ok(None) => true,
            Ok(Some(target)) => matches!(self.tree.get(&target).map(|e| &e.kind), Some(EntryKind::Directory)),
            Err(_) => false,
        }
    }

    /// Creates missing ancestors of `path` as implicit `0755` root directories.
    fn ensure_parents(&mut self, path: &LayerPath, subject: &Subject) -> Result<(), InstallError> {
        let mut missing: Vec<LayerPath> = path.ancestors().take_while(|a| !self.tree.contains(a)).collect();
        while let Some(dir) = missing.pop() {
            let owner = Owner {
                by: By::Implicit,
                package_path: dir.clone(),
                acl: Acl::DIRECTORY,
                fingerprint: Fingerprint::Directory,
            };
            self.put(dir, Entry::directory(), owner, subject)?;
        }
        Ok(())
    }

    /// Replaces whatever is at `path` with `entry`, recording the previous state in `undo`.
    fn put(&mut self, path: LayerPath, entry: Entry, owner: Owner, subject: &Subject) -> Result<(), InstallError> {
        let previous = self.tree.remove(&path);
        let previous_owner = self.owners.insert(path.clone(), owner);
        self.undo.push(Undo { path: path.clone(), entry: previous, owner: previous_owner });
        self.tree.insert(path, entry).map_err(|source| InstallError::Layer { subject: subject.clone(), source })
    }

    /// Undoes the changes of the failed operation, newest first.
    fn rollback(&mut self) {
        while let Some(Undo { path, entry, owner }) = self.undo.pop() {
            self.tree.remove(&path);
            self.owners.remove(&path);
            if let Some(entry) = entry {
                // It was there before, in a tree that is now restored up to this change.
                let restored = self.tree.insert(path.clone(), entry);
                debug_assert!(restored.is_ok(), "rollback of {path}: {restored:?}");
            }
            if let Some(owner) = owner {
                self.owners.insert(path, owner);
            }
        }
    }

    /// Runs one caller operation: on error, undoes what it did.
    fn transaction(&mut self, op: impl FnOnce(&mut Self) -> Result<(), InstallError>) -> Result<(), InstallError> {
        self.undo.clear();
        let result = op(self);
        if result.is_err() {
            self.rollback();
        }
        self.undo.clear();
        result
    }

    /// Adds a regular file at `dest` (`/etc/app.conf`), replacing any package entry there.
    pub fn add_file(
        &mut self,
        dest: &str,
        content: Content,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), InstallError> {
        let mode = Mode::new(mode).map_err(|source| InstallError::Layer { subject: Subject::Extra, source })?;
        let account_file = resolve::destination_path(dest)
            .and_then(|path| resolve::resolve_parent(&self.tree, &path))
            .ok()
            .filter(is_account_file);
        let (content, copy) = match account_file {
            // Accounts are appended to the caller's `/etc/passwd` too, so keep its text.
            Some(_) => {
                if content.size() > MAX_ACCOUNT_FILE {
                    return Err(InstallError::BadField {
                        package: "extra files".into(),
                        path: dest.to_owned(),
                        message: format!(
                            "{} bytes; account files are read into memory to merge accounts, and more than {MAX_ACCOUNT_FILE} bytes is refused",
                            content.size()
                        ),
                    });
                }
                let mut bytes = Vec::new();
                content
                    .open()
                    .and_then(|mut reader| reader.read_to_end(&mut bytes))
                    .map_err(|source| InstallError::Read { subject: Subject::Extra, source })?;
                (Content::from_bytes(bytes.clone()), Some(bytes))
            }
            None => (content, None),
        };
        let entry = Entry::file(content).with_mode(mode).with_owner(uid, gid);
        self.transaction(|me| me.put_extra(dest, entry, Fingerprint::File(None), None))?;
        if let (Some(path), Some(bytes)) = (account_file, copy) {
            self.account_files.insert(path, bytes);
        }
        Ok(())
    }

    /// Adds a directory at `dest`; over an existing directory, sets its metadata.
    pub fn add_dir(&mut self, dest: &str, mode: u32, uid: u32, gid: u32) -> Result<(), InstallError> {
        let mode = Mode::new(mode).map_err(|source| InstallError::Layer { subject: Subject::Extra, source })?;
        let entry = Entry::directory().with_mode(mode).with_owner(uid, gid);
        self.transaction(|me| me.put_extra(dest, entry, Fingerprint::Directory, None))
    }

    /// Adds a symlink at `dest` pointing to `target` (absolute targets are relative to the
    /// image root; relative ones must stay inside it).
    pub fn add_symlink(&mut self, dest: &str, target: &str) -> Result<(), InstallError> {
        let entry = Entry::symlink(target);
        self.transaction(|me| me.put_extra(dest, entry, Fingerprint::Symlink(target.to_owned()), None))
    }

    /// Puts a caller entry at `dest`. With `same_as` (the bytes' sha1 for generated files),
    /// an identical package file keeps its package as owner.
    fn put_extra(
        &mut self,
        dest: &str,
        entry: Entry,
        fingerprint: Fingerprint,
        same_as: Option<Fingerprint>,
    ) -> Result<(), InstallError> {
        let unsafe_path = |reason| InstallError::UnsafePath {
            subject: Subject::Extra,
            path: dest.escape_debug().to_string(),
            reason,
        };
        let path = resolve::destination_path(dest).map_err(unsafe_path)?;
        let tree_path = resolve::resolve_parent(&self.tree, &path).map_err(unsafe_path)?;
        if let EntryKind::Symlink(target) = &entry.kind {
            resolve::check_symlink_target(&tree_path, target).map_err(unsafe_path)?;
        }
        let acl = Acl {
            uid: entry.uid,
            gid: entry.gid,
            mode: entry.mode.bits(),
            xattrs: database::xattr_sha1(&entry.xattrs),
        };
        let owner = Owner { by: By::Extra, package_path: path, acl, fingerprint };
        if let (Some(existing), Some(same_as)) = (self.owners.get(&tree_path), same_as) {
            if existing.fingerprint == same_as && existing.acl == acl {
                return Ok(());
            }
        }
        self.ensure_parents(&tree_path, &Subject::Extra)?;
        self.put(tree_path, entry, owner, &Subject::Extra)
    }

    /// Adds a group to `/etc/group`. Adding one that is there with the same values is a
    /// no-op; the same name or gid with other values is an error.
    pub fn add_group(&mut self, name: &str, gid: u32, members: &[&str]) -> Result<(), InstallError> {
        let group = Group { name: name.to_owned(), gid, members: members.iter().map(|m| (*m).to_owned()).collect() };
        let shipped = self.shipped_text("etc/group");
        if !self.accounts.check_group(shipped.as_deref(), &group)? {
            self.accounts.groups.push(group);
        }
        Ok(())
    }

    /// Adds a user to `/etc/passwd` and creates its home directory (owned `uid:gid`, `0700`
    /// when new, parents `0755` root). Adding one that is there with the same values only
    /// makes sure of the home directory; the same name or uid with other values is an error.
    pub fn add_user(
        &mut self,
        name: &str,
        uid: u32,
        gid: u32,
        gecos: &str,
        home: &str,
        shell: &str,
    ) -> Result<(), InstallError> {
        let user = User {
            name: name.to_owned(),
            uid,
            gid,
            gecos: gecos.to_owned(),
            home: home.to_owned(),
            shell: shell.to_owned(),
        };
        let shipped = self.shipped_text("etc/passwd");
        let present = self.accounts.check_user(shipped.as_deref(), &user)?;
        self.transaction(|me| me.make_home(&user))?;
        if !present {
            self.accounts.users.push(user);
        }
        Ok(())
    }

    fn make_home(&mut self, user: &User) -> Result<(), InstallError> {
        let unsafe_path =
            |reason| InstallError::UnsafePath { subject: Subject::Accounts, path: user.home.clone(), reason };
        let Some(path) = resolve::home_path(&user.home).map_err(unsafe_path)? else {
            return Ok(());
        };
        let Some(home) = resolve::resolve_full(&self.tree, &path).map_err(unsafe_path)? else {
            return Ok(());
        };
        let mut entry = match self.tree.get(&home) {
            // Private to its owner, as apko and distroless make it.
            None => Entry::directory().with_mode(
                Mode::new(HOME_MODE).map_err(|source| InstallError::Layer { subject: Subject::Accounts, source })?,
            ),
            // Keep the directory's mode, mtime and xattrs; only the owner changes.
            Some(existing @ Entry { kind: EntryKind::Directory, .. }) => Entry {
                kind: EntryKind::Directory,
                mode: existing.mode,
                uid: existing.uid,
                gid: existing.gid,
                uname: existing.uname.clone(),
                gname: existing.gname.clone(),
                mtime: existing.mtime,
                xattrs: existing.xattrs.clone(),
            },
            Some(Entry { kind: other, .. }) => {
                return Err(InstallError::HomeNotDirectory {
                    name: user.name.clone(),
                    home: user.home.clone(),
                    kind: other.describe(),
                })
            }
        };
        entry.uid = user.uid;
        entry.gid = user.gid;
        let acl = Acl::new(user.uid, user.gid, entry.mode.bits());
        let owner = Owner { by: By::Extra, package_path: path, acl, fingerprint: Fingerprint::Directory };
        self.ensure_parents(&home, &Subject::Accounts)?;
        self.put(home, entry, owner, &Subject::Accounts)
    }

    /// Whether `name` is a user, added or shipped in `/etc/passwd`.
    pub fn has_user(&self, name: &str) -> bool {
        self.accounts.has_user(self.shipped_text("etc/passwd").as_deref(), name)
    }

    /// The `(uid, gid)` of the user called `name_or_uid` (a name or a decimal uid), added
    /// or shipped; `None` if `/etc/passwd` does not have it (a bare numeric uid is then the
    /// caller's choice to accept).
    pub fn lookup_user(&self, name_or_uid: &str) -> Option<(u32, u32)> {
        self.accounts.lookup_user(self.shipped_text("etc/passwd").as_deref(), name_or_uid)
    }

    /// Every account of the layer's `/etc/passwd` (shipped and added): name -> (uid, gid).
    pub fn users(&self) -> BTreeMap<String, (u32, u32)> {
        self.accounts.all_users(self.shipped_text("etc/passwd").as_deref())
    }

    /// The content a package shipped at `etc/passwd` or `etc/group`, as text.
    fn shipped_text(&self, path: &str) -> Option<String> {
        let path = LayerPath::new(path).ok()?;
        let tree_path = resolve::resolve_parent(&self.tree, &path).ok()?;
        self.account_files.get(&tree_path).map(|bytes| String::from_utf8_lossy(bytes).into_owned())
    }

    /// Sets the requested package names for `/etc/apk/world` (written sorted, once each).
    pub fn set_world<S: Into<String>>(&mut self, names: impl IntoIterator<Item = S>) {
        self.world = names.into_iter().map(Into::into).collect();
    }

    /// Sets the lines of `/etc/apk/repositories`, in order.
    pub fn set_repositories<S: Into<String>>(&mut self, lines: impl IntoIterator<Item = S>) {
        self.repositories = lines.into_iter().map(Into::into).collect();
    }

    /// Adds `/etc/apk/keys/<name>`.
    pub fn add_key(&mut self, name: &str, bytes: impl Into<Vec<u8>>) -> Result<(), InstallError> {
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
            return Err(InstallError::InvalidKeyName { name: name.escape_debug().to_string() });
        }
        self.keys.insert(name.to_owned(), bytes.into());
        Ok(())
    }

    /// Writes the accounts and the apk database, and returns the tree and one summary per
    /// installed package, in install order.
    pub fn finish(self) -> Result<(LayerTree, Vec<InstalledSummary>), InstallError> {
        self.finish_owned().map(|f| (f.tree, f.summaries))
    }

    /// [`Installer::finish`], also telling which installed package (its index in install
    /// order) put each entry of the tree there, and each package's record of the apk
    /// database: what spreading the packages over several layers needs.
    pub fn finish_owned(mut self) -> Result<Finished, InstallError> {
        self.undo.clear();
        let passwd = self.accounts.render_passwd(self.shipped_text("etc/passwd").as_deref())?;
        let group = self.accounts.render_group(self.shipped_text("etc/group").as_deref())?;
        for (path, file, text) in [("etc/passwd", PASSWD, passwd), ("etc/group", GROUP, group)] {
            if let Some(text) = text {
                self.write_account_file(path, file, text)?;
            }
        }

        let arch = self.arch.apk();
        // A layer of files alone (on top of a base image) has no apk database of its own:
        // writing one would hide the base image's in the union filesystem. Nor the base
        // directories: they are the base image's.
        let root_layer = !(self.packages.is_empty() && self.world.is_empty());
        if root_layer {
            for (dir, mode) in BASE_DIRS {
                self.add_base_dir(dir, mode)?;
            }
        }
        let mut files: Vec<(String, Vec<u8>)> = if !root_layer {
            Vec::new()
        } else {
            vec![
                ("etc/apk/world".to_owned(), lines(self.world.iter())),
                ("etc/apk/arch".to_owned(), lines([arch].iter())),
                ("etc/apk/repositories".to_owned(), lines(self.repositories.iter())),
            ]
        };
        for (name, bytes) in &self.keys {
            files.push((format!("etc/apk/keys/{name}"), bytes.clone()));
        }
        for (path, bytes) in files {
            self.write_generated(&path, bytes)?;
        }

        let mut owned: Vec<BTreeMap<LayerPath, DbFile>> = vec![BTreeMap::new(); self.packages.len()];
        for owner in self.owners.values() {
            if let (By::Package(index), false) = (owner.by, owner.fingerprint == Fingerprint::Directory) {
                if let Some(files) = owned.get_mut(index) {
                    let file = DbFile { acl: owner.acl, checksum: owner.fingerprint.checksum() };
                    files.insert(owner.package_path.clone(), file);
                }
            }
        }
        let mut db = String::new();
        let mut records = Vec::with_capacity(self.packages.len());
        for (package, files) in self.packages.iter().zip(&owned) {
            let mut record = String::new();
            database::render_package(&mut record, &package.meta, arch, &package.dirs, files)?;
            // apk-tools ends every record with a blank line.
            record.push('\n');
            db.push_str(&record);
            records.push(record);
        }
        if root_layer {
            self.write_generated(INSTALLED_DB, db.into_bytes())?;
            // The rest of apk-tools' database, empty: no script ever runs, no trigger is
            // pending; `apk` added in a later layer finds the database it expects.
            self.write_generated("usr/lib/apk/db/triggers", Vec::new())?;
            self.write_generated("usr/lib/apk/db/scripts.tar", vec![0; 1024])?;
            self.write_generated_with_mode("usr/lib/apk/db/lock", Vec::new(), 0o600)?;
            self.link_lib_apk()?;
        }

        let summaries = self
            .packages
            .iter()
            .zip(owned)
            .map(|(package, files)| summary(&package.meta, arch, files.into_keys().map(|p| p.to_string()).collect()))
            .collect();
        let by_package = self
            .owners
            .iter()
            .filter_map(|(path, owner)| match owner.by {
                By::Package(index) => Some((path.clone(), index)),
                _ => None,
            })
            .collect();
        Ok(Finished { tree: self.tree, summaries, owners: by_package, records })
    }

    /// Replaces the content of a shipped account file (keeping its metadata and owner), or
    /// creates it `0644` root-owned.
    fn write_account_file(&mut self, path: &str, file: &'static str, text: String) -> Result<(), InstallError> {
        let path = LayerPath::new(path).map_err(|source| InstallError::Layer { subject: Subject::Accounts, source })?;
        let tree_path = resolve::resolve_parent(&self.tree, &path).map_err(|reason| InstallError::UnsafePath {
            subject: Subject::Accounts,
            path: file.to_owned(),
            reason,
        })?;
        let existing = self.owners.get(&tree_path).cloned();
        match existing {
            Some(owner) if self.account_files.contains_key(&tree_path) => {
                let Some(mut entry) = self.tree.remove(&tree_path) else { return Ok(()) };
                entry.kind = EntryKind::File(Content::from_bytes(text.into_bytes()));
                self.put(tree_path, entry, owner, &Subject::Accounts)
            }
            _ => {
                let owner = Owner {
                    by: By::Extra,
                    package_path: path,
                    acl: Acl::FILE,
                    fingerprint: Fingerprint::File(Some(Sha1::digest(text.as_bytes()).into())),
                };
                self.ensure_parents(&tree_path, &Subject::Accounts)?;
                self.put(tree_path, Entry::file(Content::from_bytes(text.into_bytes())), owner, &Subject::Accounts)
            }
        }
    }

    /// Creates directory `dir` (root-owned, `mode`) unless the tree has something there
    /// (through symlinked parents, as a package's path would resolve).
    fn add_base_dir(&mut self, dir: &str, mode: u32) -> Result<(), InstallError> {
        let layer = |source| InstallError::Layer { subject: Subject::Database, source };
        let path = LayerPath::new(dir).map_err(layer)?;
        let tree_path = resolve::resolve_parent(&self.tree, &path).map_err(|reason| InstallError::UnsafePath {
            subject: Subject::Database,
            path: dir.to_owned(),
            reason,
        })?;
        if self.tree.contains(&tree_path) {
            return Ok(());
        }
        self.ensure_parents(&tree_path, &Subject::Database)?;
        let owner =
            Owner { by: By::Extra, package_path: path, acl: Acl::new(0, 0, mode), fingerprint: Fingerprint::Directory };
        let entry = Entry::directory().with_mode(Mode::new(mode).map_err(layer)?);
        self.put(tree_path, entry, owner, &Subject::Database)
    }

    /// `/lib/apk -> ../usr/lib/apk`, as apko links it, for scanners that look for the
    /// database only at `/lib/apk/db/installed` (older Trivy). Nothing when `/lib` is a
    /// symlink (merged `/usr`: the path resolves already) or not a directory, or when
    /// `/lib/apk` exists (a package ships it).
    fn link_lib_apk(&mut self) -> Result<(), InstallError> {
        let layer = |source| InstallError::Layer { subject: Subject::Database, source };
        let lib = LayerPath::new("lib").map_err(layer)?;
        let lib_apk = LayerPath::new("lib/apk").map_err(layer)?;
        match self.tree.get(&lib).map(|e| &e.kind) {
            None | Some(EntryKind::Directory) => {}
            Some(_) => return Ok(()),
        }
        if self.tree.contains(&lib_apk) {
            return Ok(());
        }
        self.add_base_dir("lib", 0o755)?;
        let target = "../usr/lib/apk";
        let owner = Owner {
            by: By::Extra,
            package_path: lib_apk.clone(),
            acl: Acl::new(0, 0, Mode::SYMLINK.bits()),
            fingerprint: Fingerprint::Symlink(target.to_owned()),
        };
        self.put(lib_apk, Entry::symlink(target), owner, &Subject::Database)
    }

    /// Writes a generated `0644` root-owned file; an identical package file stays its
    /// package's.
    fn write_generated(&mut self, path: &str, bytes: Vec<u8>) -> Result<(), InstallError> {
        self.write_generated_with_mode(path, bytes, 0o644)
    }

    /// [`Self::write_generated`] with another mode.
    fn write_generated_with_mode(&mut self, path: &str, bytes: Vec<u8>, mode: u32) -> Result<(), InstallError> {
        let sha1: [u8; 20] = Sha1::digest(&bytes).into();
        let fingerprint = Fingerprint::File(Some(sha1));
        let mode = Mode::new(mode).map_err(|source| InstallError::Layer { subject: Subject::Database, source })?;
        let entry = Entry::file(Content::from_bytes(bytes)).with_mode(mode);
        self.put_extra(path, entry, fingerprint.clone(), Some(fingerprint)).map_err(|error| match error {
            InstallError::UnsafePath { path, reason, .. } => {
                InstallError::UnsafePath { subject: Subject::Database, path, reason }
            }
            InstallError::Layer { source, .. } => InstallError::Layer { subject: Subject::Database, source },
            other => other,
        })
    }
}

/// What happens to a path `old` installed when `new` ships it too, differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replaces {
    /// `new`'s entry takes the path.
    Yes,
    /// `old`'s entry stays; `new` does not own the path.
    No,
    /// Neither package's metadata says.
    Conflict,
}

/// apk-tools' `apk_pkg_replaces_file(old, new)`: a package that `replaces` the other wins
/// whichever was installed first; when both do, the higher `replaces_priority` wins (the
/// later one on a tie); without `replaces`, packages of one origin replace each other's
/// files in install order.
fn replaces_file(old: &PackageMeta, new: &PackageMeta) -> Replaces {
    if old.info.name == new.info.name {
        return Replaces::Yes;
    }
    let priority = |by: &PackageMeta, of: &PackageMeta| -> i64 {
        let replaces =
            by.info.replaces.iter().any(|dep| !dep.conflict && dep.matches(of.info.name.as_str(), &of.info.version));
        if replaces {
            i64::try_from(by.info.replaces_priority.unwrap_or(0)).unwrap_or(i64::MAX)
        } else {
            -1
        }
    };
    let (old_priority, new_priority) = (priority(old, new), priority(new, old));
    if old_priority > new_priority {
        return Replaces::No;
    }
    if new_priority >= 0 {
        return Replaces::Yes;
    }
    if matches!((&new.info.origin, &old.info.origin), (Some(a), Some(b)) if a == b) {
        return Replaces::Yes;
    }
    Replaces::Conflict
}

/// Whether `path` is `/etc/passwd` or `/etc/group`.
fn is_account_file(path: &LayerPath) -> bool {
    path.as_str() == "etc/passwd" || path.as_str() == "etc/group"
}

/// `items`, one a line, each ending in a newline.
fn lines<S: AsRef<str>>(items: impl Iterator<Item = S>) -> Vec<u8> {
    items.map(|item| format!("{}\n", item.as_ref())).collect::<String>().into_bytes()
}

fn summary(meta: &PackageMeta, arch: &str, files: Vec<String>) -> InstalledSummary {
    let info = &meta.info;
    InstalledSummary {
        name: info.name.to_string(),
        version: info.version.to_string(),
        arch: info.arch.clone().unwrap_or_else(|| arch.to_owned()),
        identity: meta.identity.map(|id| id.to_string()),
        license: info.license.clone(),
        origin: info.origin.clone(),
        description: info.description.clone(),
        url: info.url.clone().filter(|u| !u.is_empty()),
        commit: info.commit.clone(),
        maintainer: info.maintainer.clone(),
        build_date: info.build_date,
        size: meta.file_size,
        installed_size: info.size,
        repository: meta.repository.clone(),
        depends: info.depends.iter().map(ToString::to_string).collect(),
        provides: info.provides.iter().map(ToString::to_string).collect(),
        files,
        sha256: None,
        replaces: info.replaces.iter().map(ToString::to_string).collect(),
    }
}
