//! Writing APK v2 packages and signed indexes, byte for byte deterministic,
//! and generating the in-tree repository (`third_party/apk-repository/`)
//! from its sources (`third_party/apk-sources/`).
//!
//! What is written follows the layouts [`Package::read`] and
//! [`executor_apk::Index::read`] document (and abuild / apk-tools produce):
//! - a **package** is the signature member (`.SIGN.RSA256.<key>`, no
//!   end-of-archive blocks), the control member (`.PKGINFO` only, no
//!   end-of-archive blocks) and the data member (the file tree, ending in two
//!   zero blocks), each its own gzip member ([`write_package`]);
//! - an **index** is the signature member and one member holding
//!   `DESCRIPTION` then `APKINDEX` ([`write_index`]).
//!
//! Determinism is by construction: every tar header is written here by hand
//! (POSIX ustar; a PAX extended header named `<dir>/PaxHeaders/<base>`, as GNU
//! tar names them for abuild, only for `APK-TOOLS.checksum.SHA1` and for what
//! ustar cannot hold); owners, modes and mtimes come from the spec only (an
//! entry without an mtime gets the package's build time); entries are sorted
//! by path components, so parents come first; gzip members have header mtime
//! 0, OS byte 255 ("unknown") and level 9 from flate2's pure-Rust deflate
//! (miniz_oxide, pinned by `Cargo.lock`); RSA PKCS#1 v1.5 signatures are
//! deterministic. The same spec and key always give the same bytes.
//!
//! [`write_package`] refuses paths that could escape the install root;
//! [`write_package_unchecked`] writes anything, for tests of hostile
//! packages only.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde::Deserialize;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};

use executor_apk::dependency::{Dependency, PackageName, Provide};
use executor_apk::index::IndexEntry;
use executor_apk::key::{KeyError, KeyName, PublicKey};
use executor_apk::package::{Package, PackageError};
use executor_apk::signature::{SignatureAlgorithm, SIGNATURE_PREFIX};
use executor_apk::version::Version;
use executor_base::platform::Arch;

/// The gzip header's OS byte: 255, "unknown", so the host never shows.
pub const GZIP_OS_UNKNOWN: u8 = 255;
/// The deflate level of every member (gzip -9, as abuild uses).
pub const GZIP_LEVEL: u32 = 9;
/// Smallest accepted signing key.
const MIN_KEY_BITS: usize = 1024;
/// Tar block size.
const BLOCK: usize = 512;

/// A package, index or repository that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "signing key `{name}` is not a PEM RSA private key (`-----BEGIN PRIVATE KEY-----` or \
         `-----BEGIN RSA PRIVATE KEY-----`): {message}"
    )]
    KeyPem { name: String, message: String },
    #[error("signing key `{name}` has {bits} bits: use at least {MIN_KEY_BITS} (2048 recommended)")]
    KeyTooSmall { name: String, bits: usize },
    #[error(transparent)]
    KeyName(#[from] KeyError),
    #[error("cannot sign with key `{key}`: {message}")]
    Sign { key: KeyName, message: String },
    #[error("package `{package}`: {field} `{value}` {problem}")]
    InvalidField { package: String, field: &'static str, value: String, problem: &'static str },
    #[error("package `{package}`: invalid path `{path}`: {problem}")]
    InvalidPath { package: String, path: String, problem: &'static str },
    #[error("package `{package}`: `{path}` is listed twice")]
    DuplicatePath { package: String, path: String },
    #[error("package `{package}`: `{path}` is inside `{parent}`, which is a {kind}, not a directory")]
    ParentNotDirectory { package: String, path: String, parent: String, kind: &'static str },
    #[error(
        "package `{package}`: symlink `{path}` -> `{target}` leads out of the package root; \
         only `write_package_unchecked` (for tests of hostile packages) writes such links"
    )]
    SymlinkEscapes { package: String, path: String, target: String },
    #[error("package `{package}`: hard link `{path}` -> `{target}`: the target is not a regular file of the package")]
    HardLinkTarget { package: String, path: String, target: String },
    #[error("index: `{package}` is listed twice")]
    DuplicateEntry { package: String },
    #[error("index: entry `{package}`: {field} `{value}` {problem}")]
    InvalidEntryField { package: String, field: String, value: String, problem: &'static str },
    #[error("index: DESCRIPTION `{value}` {problem}")]
    InvalidDescription { value: String, problem: &'static str },
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}`: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    #[error(
        "refusing to clear `{}`: it holds `{entry}` and no generated README.md; pass an empty or \
         previously generated directory",
        path.display()
    )]
    NotGenerated { path: PathBuf, entry: String },
    #[error(transparent)]
    Package(#[from] PackageError),
}

/// An RSA private key that signs packages and indexes, named (as apk-tools
/// and abuild name it) by its **public** key's file name, which is what
/// signature entries carry: `.SIGN.RSA256.<name>`.
#[derive(Clone)]
pub struct SigningKey {
    name: KeyName,
    key: RsaPrivateKey,
    /// Invariant: one signature entry per member, made with this digest.
    algorithm: SignatureAlgorithm,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, {})", self.name, self.algorithm)
    }
}

impl SigningKey {
    /// Parses a PEM private key, PKCS#8 (`PRIVATE KEY`, what `openssl genrsa`
    /// writes) or PKCS#1 (`RSA PRIVATE KEY`). `name` is the public key's file
    /// name, e.g. `executor-test-key.rsa.pub`. Signs with RSA/SHA-256.
    pub fn from_pem(name: &str, pem: &str) -> Result<Self, WriteError> {
        let name = KeyName::new(name)?;
        let key = match RsaPrivateKey::from_pkcs8_pem(pem.trim()) {
            Ok(key) => key,
            Err(pkcs8) => RsaPrivateKey::from_pkcs1_pem(pem.trim())
                .map_err(|_| WriteError::KeyPem { name: name.to_string(), message: pkcs8.to_string() })?,
        };
        let bits = key.size() * 8;
        if bits < MIN_KEY_BITS {
            return Err(WriteError::KeyTooSmall { name: name.to_string(), bits });
        }
        Ok(SigningKey { name, key, algorithm: SignatureAlgorithm::RsaSha256 })
    }

    /// Reads a private key file; it is named after its public key, the file
    /// name plus `.pub` (`keys/foo.rsa` signs as `foo.rsa.pub`).
    pub fn read_file(path: &Path) -> Result<Self, WriteError> {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| KeyError::InvalidName { name: path.display().to_string() })?;
        let pem = std::fs::read_to_string(path).map_err(|source| WriteError::Read { path: path.to_owned(), source })?;
        SigningKey::from_pem(&format!("{file_name}.pub"), &pem)
    }

    /// The same key signing with `algorithm` (`RsaSha1` writes the legacy
    /// `.SIGN.RSA.` entries older apk-tools read).
    pub fn with_algorithm(mut self, algorithm: SignatureAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    pub fn name(&self) -> &KeyName {
        &self.name
    }

    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The public key as PKIX PEM (`-----BEGIN PUBLIC KEY-----`), LF line ends.
    pub fn public_key_pem(&self) -> String {
        // Encoding a valid in-memory RSA key cannot fail.
        self.key.to_public_key().to_public_key_pem(LineEnding::LF).expect("an RSA public key encodes as PEM")
    }

    /// The public key, under this key's name, for a [`executor_apk::Keyring`].
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_pem(self.name.as_str(), &self.public_key_pem()).expect("our own PEM parses")
    }

    /// The signature entry's name and content over `signed`.
    fn sign(&self, signed: &[u8]) -> Result<(String, Vec<u8>), WriteError> {
        let signature = match self.algorithm {
            SignatureAlgorithm::RsaSha1 => self.key.sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(signed)),
            SignatureAlgorithm::RsaSha256 => self.key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(signed)),
            SignatureAlgorithm::RsaSha512 => self.key.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(signed)),
        }
        .map_err(|e| WriteError::Sign { key: self.name.clone(), message: e.to_string() })?;
        Ok((format!("{SIGNATURE_PREFIX}{}.{}", self.algorithm.tag(), self.name), signature))
    }

    /// The gzip'd signature member over `signed` (no end-of-archive blocks).
    fn signature_member(&self, signed: &[u8], mtime: u64) -> Result<Vec<u8>, WriteError> {
        let (entry, signature) = self.sign(signed)?;
        let mut tar = Vec::new();
        append_regular(&mut tar, entry.as_bytes(), 0o644, mtime, &signature);
        Ok(gzip(&tar))
    }
}

/// What a [`PackageFile`] is.
#[derive(Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file and its content.
    File(Vec<u8>),
    Dir,
    /// A symbolic link and its target, verbatim.
    Symlink(String),
    /// A hard link to another path of the same package (relative, like `path`).
    HardLink(String),
}

impl fmt::Debug for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileKind::File(content) => write!(f, "File({} bytes)", content.len()),
            FileKind::Dir => f.write_str("Dir"),
            FileKind::Symlink(target) => write!(f, "Symlink({target:?})"),
            FileKind::HardLink(target) => write!(f, "HardLink({target:?})"),
        }
    }
}

impl FileKind {
    fn describe(&self) -> &'static str {
        match self {
            FileKind::File(_) => "regular file",
            FileKind::Dir => "directory",
            FileKind::Symlink(_) => "symlink",
            FileKind::HardLink(_) => "hard link",
        }
    }
}

/// One entry of a package's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// Path in the image, relative, `/`-separated, without a trailing `/`
    /// (checked by [`write_package`], written verbatim by
    /// [`write_package_unchecked`]).
    pub path: String,
    pub kind: FileKind,
    /// Permission bits, including setuid, setgid and sticky (`0o1777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub uname: String,
    pub gname: String,
    /// Modification time, unix seconds; `None` means the package's build time.
    pub mtime: Option<u64>,
}

impl PackageFile {
    fn new(path: impl Into<String>, kind: FileKind, mode: u32) -> Self {
        PackageFile {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: "root".to_owned(),
            gname: "root".to_owned(),
            mtime: None,
        }
    }

    /// A regular file, 0644 root:root.
    pub fn file(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        PackageFile::new(path, FileKind::File(content.into()), 0o644)
    }

    /// A directory, 0755 root:root.
    pub fn dir(path: impl Into<String>) -> Self {
        PackageFile::new(path, FileKind::Dir, 0o755)
    }

    /// A symlink, 0777 root:root.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        PackageFile::new(path, FileKind::Symlink(target.into()), 0o777)
    }

    /// A hard link to `target`, another path of the package, 0644 root:root.
    pub fn hard_link(path: impl Into<String>, target: impl Into<String>) -> Self {
        PackageFile::new(path, FileKind::HardLink(target.into()), 0o644)
    }

    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    pub fn with_owner(mut self, uid: u32, uname: &str, gid: u32, gname: &str) -> Self {
        (self.uid, self.uname, self.gid, self.gname) = (uid, uname.to_owned(), gid, gname.to_owned());
        self
    }

    pub fn with_mtime(mut self, mtime: u64) -> Self {
        self.mtime = Some(mtime);
        self
    }
}

/// Everything a package is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    pub name: PackageName,
    pub version: Version,
    /// `noarch` or an apk architecture.
    pub arch: String,
    /// `pkgdesc`; always written, may be empty.
    pub description: String,
    /// Always written, may be empty.
    pub url: String,
    /// Always written, may be empty.
    pub license: String,
    /// The source package; `None` writes the package's own name, as abuild does.
    pub origin: Option<String>,
    pub maintainer: Option<String>,
    /// `builddate`, unix seconds; also the mtime of entries without one.
    pub build_time: u64,
    pub depends: Vec<Dependency>,
    pub provides: Vec<Provide>,
    pub replaces: Vec<Dependency>,
    pub provider_priority: Option<u64>,
    /// The data, in any order: [`write_package`] sorts it.
    pub files: Vec<PackageFile>,
}

impl PackageSpec {
    /// A spec with no files and empty metadata.
    pub fn new(name: PackageName, version: Version, arch: &str) -> Self {
        PackageSpec {
            name,
            version,
            arch: arch.to_owned(),
            description: String::new(),
            url: String::new(),
            license: String::new(),
            origin: None,
            maintainer: None,
            build_time: 0,
            depends: Vec::new(),
            provides: Vec::new(),
            replaces: Vec::new(),
            provider_priority: None,
            files: Vec::new(),
        }
    }

    /// `name-version`, as in messages.
    pub fn package_id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// The repository file name: `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}.apk", self.package_id())
    }
}

/// Writes a package: checks the metadata and every path (relative, no `.`,
/// `..` or empty components, unique, parents are directories, symlinks stay
/// inside the root when resolved lexically, hard links name a regular file
/// of the package), adds missing parent directories (0755 root:root), sorts
/// the entries and signs the control member with `key` when given.
pub fn write_package(spec: &PackageSpec, key: Option<&SigningKey>) -> Result<Vec<u8>, WriteError> {
    check_metadata(spec)?;
    let entries = plan_data(spec)?;
    assemble_package(spec, &entries, key)
}

/// **For tests only**: writes a package exactly as `spec` says, entries in
/// the given order, nothing checked and nothing added: absolute paths, `..`,
/// duplicates, symlinks out of the root and dangling hard links all go into
/// the data as given. Use it to build the hostile packages that extraction
/// must refuse; never to build a package anyone installs.
pub fn write_package_unchecked(spec: &PackageSpec, key: Option<&SigningKey>) -> Result<Vec<u8>, WriteError> {
    let entries: Vec<Cow<'_, PackageFile>> = spec.files.iter().map(Cow::Borrowed).collect();
    assemble_package(spec, &entries, key)
}

/// Control problems a text value may have; `None` when it is fine. Values
/// end up in `key = value` and `X:value` lines, which are trimmed on read.
fn text_problem(value: &str) -> Option<&'static str> {
    if value.chars().any(char::is_control) {
        Some("must not contain newlines or other control characters")
    } else if value.trim() != value {
        Some("must not start or end with whitespace")
    } else {
        None
    }
}

fn check_metadata(spec: &PackageSpec) -> Result<(), WriteError> {
    let package = spec.package_id();
    let invalid = |field: &'static str, value: &str, problem| WriteError::InvalidField {
        package: package.clone(),
        field,
        value: value.to_owned(),
        problem,
    };
    if spec.arch.is_empty() || spec.arch.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(invalid("arch", &spec.arch, "must be a non-empty word such as `noarch` or `x86_64`"));
    }
    let texts = [
        ("description", Some(&spec.description)),
        ("url", Some(&spec.url)),
        ("license", Some(&spec.license)),
        ("origin", spec.origin.as_ref()),
        ("maintainer", spec.maintainer.as_ref()),
    ];
    for (field, value) in texts {
        if let Some(problem) = value.and_then(|v| text_problem(v)) {
            return Err(invalid(field, value.map_or("", String::as_str), problem));
        }
    }
    Ok(())
}

/// Why `path` is not a clean relative path, if it is not.
fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("must not be empty")
    } else if path.starts_with('/') {
        Some("must be relative (no leading `/`)")
    } else if path.chars().any(char::is_control) {
        Some("must not contain NUL, newlines or other control characters")
    } else if path.split('/').any(|c| c == "..") {
        Some("must not contain `..`")
    } else if path.split('/').any(|c| c.is_empty() || c == ".") {
        Some("must not contain empty or `.` components (no `//`, `./` or trailing `/`)")
    } else {
        None
    }
}

/// Whether `target`, resolved lexically from the directory holding a link
/// whose path has `depth` components, climbs above the root. Absolute
/// targets resolve inside the image root, so they never do.
fn escapes_root(depth: usize, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut level = depth.saturating_sub(1);
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." if level == 0 => return true,
            ".." => level -= 1,
            _ => level += 1,
        }
    }
    false
}

/// The checked, sorted data entries of `spec`, implied parents included.
fn plan_data(spec: &PackageSpec) -> Result<Vec<Cow<'_, PackageFile>>, WriteError> {
    let package = spec.package_id();
    let mut listed: BTreeMap<Vec<&str>, &PackageFile> = BTreeMap::new();
    for file in &spec.files {
        let invalid = |problem| WriteError::InvalidPath { package: package.clone(), path: file.path.clone(), problem };
        if let Some(problem) = path_problem(&file.path) {
            return Err(invalid(problem));
        }
        if file.mode > 0o7777 {
            return Err(invalid("has a mode above 0o7777 (only permission, setuid, setgid and sticky bits)"));
        }
        for (field, name) in [("uname", &file.uname), ("gname", &file.gname)] {
            if name.chars().any(|c| c.is_control() || c.is_whitespace() || c == ':') {
                return Err(WriteError::InvalidField {
                    package: package.clone(),
                    field,
                    value: name.clone(),
                    problem: "must not contain whitespace, `:` or control characters",
                });
            }
        }
        if listed.insert(file.path.split('/').collect(), file).is_some() {
            return Err(WriteError::DuplicatePath { package: package.clone(), path: file.path.clone() });
        }
    }
    let mut implied: BTreeMap<Vec<&str>, PackageFile> = BTreeMap::new();
    for (components, file) in &listed {
        for end in 1..components.len() {
            let parent = &components[..end];
            match listed.get(parent) {
                Some(p) if p.kind != FileKind::Dir => {
                    return Err(WriteError::ParentNotDirectory {
                        package: package.clone(),
                        path: file.path.clone(),
                        parent: p.path.clone(),
                        kind: p.kind.describe(),
                    })
                }
                Some(_) => {}
                None => {
                    implied.entry(parent.to_vec()).or_insert_with(|| PackageFile::dir(parent.join("/")));
                }
            }
        }
        match &file.kind {
            FileKind::Symlink(target) => {
                if target.is_empty() || target.chars().any(char::is_control) {
                    return Err(WriteError::InvalidField {
                        package: package.clone(),
                        field: "symlink target",
                        value: target.clone(),
                        problem: "must be non-empty and free of control characters",
                    });
                }
                if escapes_root(components.len(), target) {
                    return Err(WriteError::SymlinkEscapes {
                        package: package.clone(),
                        path: file.path.clone(),
                        target: target.clone(),
                    });
                }
            }
            FileKind::HardLink(target) => {
                let is_file = path_problem(target).is_none()
                    && listed
                        .get(&target.split('/').collect::<Vec<_>>())
                        .is_some_and(|t| matches!(t.kind, FileKind::File(_)));
                if !is_file {
                    return Err(WriteError::HardLinkTarget {
                        package: package.clone(),
                        path: file.path.clone(),
                        target: target.clone(),
                    });
                }
            }
            FileKind::File(_) | FileKind::Dir => {}
        }
    }
    let mut all: BTreeMap<Vec<&str>, Cow<'_, PackageFile>> =
        listed.into_iter().map(|(k, f)| (k, Cow::Borrowed(f))).collect();
    all.extend(implied.into_iter().map(|(k, f)| (k, Cow::Owned(f))));
    Ok(all.into_values().collect())
}

/// Writes the three members around `entries` (data order as given).
fn assemble_package(
    spec: &PackageSpec,
    entries: &[Cow<'_, PackageFile>],
    key: Option<&SigningKey>,
) -> Result<Vec<u8>, WriteError> {
    let contents: BTreeMap<&str, &[u8]> = entries
        .iter()
        .filter_map(|e| match &e.kind {
            FileKind::File(content) => Some((e.path.as_str(), content.as_slice())),
            _ => None,
        })
        .collect();
    let mut data_tar = Vec::new();
    let mut installed_size = 0u64;
    for entry in entries {
        let mtime = entry.mtime.unwrap_or(spec.build_time);
        let mut header = TarHeader {
            name: Cow::Borrowed(entry.path.as_bytes()),
            kind: b'0',
            mode: entry.mode,
            uid: u64::from(entry.uid),
            gid: u64::from(entry.gid),
            size: 0,
            mtime,
            link: b"",
            uname: entry.uname.as_bytes(),
            gname: entry.gname.as_bytes(),
        };
        let (content, checksum): (&[u8], Option<[u8; 20]>) = match &entry.kind {
            FileKind::File(content) => {
                installed_size += content.len() as u64;
                header.size = content.len() as u64;
                (content, Some(Sha1::digest(content).into()))
            }
            FileKind::Dir => {
                header.kind = b'5';
                if !entry.path.ends_with('/') {
                    header.name = Cow::Owned(format!("{}/", entry.path).into_bytes());
                }
                (b"", None)
            }
            FileKind::Symlink(target) => {
                header.kind = b'2';
                header.link = target.as_bytes();
                (b"", Some(Sha1::digest(target.as_bytes()).into()))
            }
            FileKind::HardLink(target) => {
                header.kind = b'1';
                header.link = target.as_bytes();
                (b"", contents.get(target.as_str()).map(|c| Sha1::digest(c).into()))
            }
        };
        let checksum = checksum.map(hex::encode);
        let extra: Vec<(&str, &[u8])> = checksum.iter().map(|c| ("APK-TOOLS.checksum.SHA1", c.as_bytes())).collect();
        append_entry(&mut data_tar, &header, content, &extra);
    }
    data_tar.extend_from_slice(&[0; 2 * BLOCK]);
    let data = gzip(&data_tar);

    let pkginfo = pkginfo_text(spec, installed_size, &Sha256::digest(&data).into());
    let mut control_tar = Vec::new();
    append_regular(&mut control_tar, b".PKGINFO", 0o644, spec.build_time, pkginfo.as_bytes());
    let control = gzip(&control_tar);

    let mut apk = match key {
        Some(key) => key.signature_member(&control, spec.build_time)?,
        None => Vec::new(),
    };
    apk.reserve(control.len() + data.len());
    apk.extend_from_slice(&control);
    apk.extend_from_slice(&data);
    Ok(apk)
}

/// `.PKGINFO`: `key = value` lines in abuild's order.
fn pkginfo_text(spec: &PackageSpec, installed_size: u64, datahash: &[u8; 32]) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let mut line = |key: &str, value: &dyn fmt::Display| {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{key} = {value}");
    };
    line("pkgname", &spec.name);
    line("pkgver", &spec.version);
    line("pkgdesc", &spec.description);
    line("url", &spec.url);
    line("builddate", &spec.build_time);
    line("size", &installed_size);
    line("arch", &spec.arch);
    line("origin", spec.origin.as_ref().map_or(&spec.name as &dyn fmt::Display, |o| o as &dyn fmt::Display));
    if let Some(maintainer) = &spec.maintainer {
        line("maintainer", maintainer);
    }
    line("license", &spec.license);
    if let Some(priority) = spec.provider_priority {
        line("provider_priority", &priority);
    }
    for replaces in &spec.replaces {
        line("replaces", replaces);
    }
    for depend in &spec.depends {
        line("depend", depend);
    }
    for provide in &spec.provides {
        line("provides", provide);
    }
    line("datahash", &hex::encode(datahash));
    text
}

/// The index entry for a package file: what `apk index` would list for it
/// (`C:` from the control member, `S:` the file size, the rest from
/// `.PKGINFO`). `origin` names the file in errors.
pub fn index_entry(package: &[u8], origin: &str) -> Result<IndexEntry, PackageError> {
    let read = Package::read(package, origin)?;
    let info = read.info().clone();
    Ok(IndexEntry {
        identity: read.identity(),
        name: info.name,
        version: info.version,
        arch: info.arch,
        size: Some(package.len() as u64),
        installed_size: info.size,
        description: info.description,
        url: info.url,
        license: info.license,
        origin: info.origin,
        maintainer: info.maintainer,
        build_time: info.build_date,
        commit: info.commit,
        depends: info.depends,
        provides: info.provides,
        install_if: info.install_if,
        provider_priority: info.provider_priority,
        replaces: info.replaces,
        replaces_priority: info.replaces_priority,
        unknown: Vec::new(),
    })
}

/// **For tests and benchmarks**: `APKINDEX` text where `p0` depends on `p1`, ..., `p{n-2}` on
/// `p{n-1}` (a dependency chain `n` long).
pub fn chain_index(n: usize) -> String {
    let mut text = String::with_capacity(n * 80);
    for i in 0..n {
        text.push_str(&format!("C:Q1{}=\nP:p{i}\nV:1.0-r0\nS:1\nI:1\n", "A".repeat(27)));
        if i + 1 < n {
            text.push_str(&format!("D:p{}\n", i + 1));
        }
        text.push('\n');
    }
    text
}

/// `APKINDEX` text: entries sorted by name then version, each a block of
/// `X:value` lines in apk-tools' order (`C P V A S I T U L o m t c k D p i`,
/// then `r q` and unknown fields) followed by a blank line.
pub fn index_text(entries: &[IndexEntry]) -> Result<String, WriteError> {
    use std::fmt::Write as _;
    let mut sorted: Vec<&IndexEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    if let Some(pair) = sorted.windows(2).find(|w| w[0].name == w[1].name && w[0].version == w[1].version) {
        return Err(WriteError::DuplicateEntry { package: pair[0].package_id() });
    }
    let mut text = String::new();
    for entry in sorted {
        let package = entry.package_id();
        let mut fields: Vec<(char, String)> =
            vec![('C', entry.identity.to_string()), ('P', entry.name.to_string()), ('V', entry.version.to_string())];
        let mut optional = |field: char, value: Option<String>| {
            if let Some(value) = value {
                fields.push((field, value));
            }
        };
        let list = |items: Vec<String>| (!items.is_empty()).then(|| items.join(" "));
        optional('A', entry.arch.clone());
        optional('S', entry.size.map(|s| s.to_string()));
        optional('I', entry.installed_size.map(|s| s.to_string()));
        optional('T', entry.description.clone());
        optional('U', entry.url.clone());
        optional('L', entry.license.clone());
        optional('o', entry.origin.clone());
        optional('m', entry.maintainer.clone());
        optional('t', entry.build_time.map(|t| t.to_string()));
        optional('c', entry.commit.clone());
        optional('k', entry.provider_priority.map(|k| k.to_string()));
        optional('D', list(entry.depends.iter().map(ToString::to_string).collect()));
        optional('p', list(entry.provides.iter().map(ToString::to_string).collect()));
        optional('i', list(entry.install_if.iter().map(ToString::to_string).collect()));
        optional('r', list(entry.replaces.iter().map(ToString::to_string).collect()));
        optional('q', entry.replaces_priority.map(|q| q.to_string()));
        fields.extend(entry.unknown.iter().cloned());
        for (field, value) in fields {
            let problem = if !field.is_ascii_alphabetic() {
                Some("has a field letter that is not an ASCII letter")
            } else {
                text_problem(&value)
            };
            if let Some(problem) = problem {
                return Err(WriteError::InvalidEntryField { package, field: field.to_string(), value, problem });
            }
            let _ = writeln!(text, "{field}:{value}");
        }
        text.push('\n');
    }
    Ok(text)
}

/// Writes `APKINDEX.tar.gz`: the signature member (when `key` is given) and
/// one member with `DESCRIPTION` and `APKINDEX`, ending in end-of-archive
/// blocks as `apk index` writes it. Tar mtimes are the newest build time.
pub fn write_index(entries: &[IndexEntry], description: &str, key: Option<&SigningKey>) -> Result<Vec<u8>, WriteError> {
    if let Some(problem) = text_problem(description) {
        return Err(WriteError::InvalidDescription { value: description.to_owned(), problem });
    }
    let text = index_text(entries)?;
    let mtime = entries.iter().filter_map(|e| e.build_time).max().unwrap_or(0);
    let mut tar = Vec::new();
    append_regular(&mut tar, b"DESCRIPTION", 0o644, mtime, description.as_bytes());
    append_regular(&mut tar, b"APKINDEX", 0o644, mtime, text.as_bytes());
    tar.extend_from_slice(&[0; 2 * BLOCK]);
    let signed = gzip(&tar);
    let mut index = match key {
        Some(key) => key.signature_member(&signed, mtime)?,
        None => Vec::new(),
    };
    index.extend_from_slice(&signed);
    Ok(index)
}

/// One gzip member: header mtime 0, no name, XFL 2 (best compression), OS byte 255, level
/// 9, deflated by miniz_oxide directly. Packages keep this one deflate implementation
/// whatever backend flate2 uses for layers, so regenerating the repository gives the same
/// bytes.
fn gzip(data: &[u8]) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(data, GZIP_LEVEL as u8);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, GZIP_OS_UNKNOWN]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// A tar header's fields before encoding.
struct TarHeader<'a> {
    name: Cow<'a, [u8]>,
    /// The typeflag: `0` file, `1` hard link, `2` symlink, `5` directory, `x` PAX.
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
}

/// Appends a regular file owned by root (control and signature entries).
fn append_regular(out: &mut Vec<u8>, name: &[u8], mode: u32, mtime: u64, content: &[u8]) {
    let header = TarHeader {
        name: Cow::Borrowed(name),
        kind: b'0',
        mode,
        uid: 0,
        gid: 0,
        size: content.len() as u64,
        mtime,
        link: b"",
        uname: b"root",
        gname: b"root",
    };
    append_entry(out, &header, content, &[]);
}

/// Appends one entry, preceded by a PAX extended header when `extra` is not
/// empty or a field does not fit ustar. `content` must be `header.size` long.
fn append_entry(out: &mut Vec<u8>, header: &TarHeader<'_>, content: &[u8], extra: &[(&str, &[u8])]) {
    let mut records = Vec::new();
    let (prefix, name): (&[u8], &[u8]) = match split_ustar_name(&header.name) {
        Some(split) => split,
        None => {
            pax_record(&mut records, "path", &header.name);
            (b"", &header.name[..100])
        }
    };
    let link = if header.link.len() <= 100 {
        header.link
    } else {
        pax_record(&mut records, "linkpath", header.link);
        &header.link[..100]
    };
    let mut number = |key: &str, value: u64, digits: u32| {
        if value < 8u64.pow(digits) {
            value
        } else {
            pax_record(&mut records, key, value.to_string().as_bytes());
            0
        }
    };
    let size = number("size", header.size, 11);
    let uid = number("uid", header.uid, 7);
    let gid = number("gid", header.gid, 7);
    let mtime = number("mtime", header.mtime, 11);
    let uname = if header.uname.len() <= 32 {
        header.uname
    } else {
        pax_record(&mut records, "uname", header.uname);
        &header.uname[..32]
    };
    let gname = if header.gname.len() <= 32 {
        header.gname
    } else {
        pax_record(&mut records, "gname", header.gname);
        &header.gname[..32]
    };
    for (key, value) in extra {
        pax_record(&mut records, key, value);
    }
    if !records.is_empty() {
        let pax_name = pax_header_name(&header.name);
        let pax = Ustar {
            prefix: b"",
            name: &pax_name,
            kind: b'x',
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime,
            link: b"",
            uname: b"",
            gname: b"",
        };
        out.extend_from_slice(&pax.encode());
        append_padded(out, &records);
    }
    let ustar = Ustar {
        prefix,
        name,
        kind: header.kind,
        mode: u64::from(header.mode & 0o7777777),
        uid,
        gid,
        size,
        mtime,
        link,
        uname,
        gname,
    };
    out.extend_from_slice(&ustar.encode());
    append_padded(out, content);
}

/// Appends `bytes` and zeros up to the next block boundary.
fn append_padded(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes);
    let rest = bytes.len() % BLOCK;
    if rest != 0 {
        out.resize(out.len() + BLOCK - rest, 0);
    }
}

/// Splits a name into ustar's `prefix` (up to 155 bytes) and `name` (up to
/// 100 bytes) at a `/`; `None` when it cannot be split so.
fn split_ustar_name(path: &[u8]) -> Option<(&[u8], &[u8])> {
    if path.len() <= 100 {
        return Some((b"", path));
    }
    // The prefix is everything before some `/`; the name must be non-empty.
    (0..path.len())
        .rev()
        .filter(|&i| path[i] == b'/')
        .map(|i| (&path[..i], &path[i + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && !name.is_empty() && name.len() <= 100)
}

/// Appends one PAX record, `<length> <key>=<value>\n`, where the length
/// counts the whole record including its own digits.
fn pax_record(records: &mut Vec<u8>, key: &str, value: &[u8]) {
    let base = key.len() + value.len() + 3; // space, `=`, newline
    let mut length = base + 1;
    while length != base + length.to_string().len() {
        length = base + length.to_string().len();
    }
    records.extend_from_slice(format!("{length} {key}=").as_bytes());
    records.extend_from_slice(value);
    records.push(b'\n');
}

/// GNU tar's name for a PAX header in `--format=posix` (what abuild uses):
/// `<dir>/PaxHeaders/<base>`, `.` for a top-level entry, cut to 100 bytes.
fn pax_header_name(path: &[u8]) -> Vec<u8> {
    let path = path.strip_suffix(b"/").unwrap_or(path);
    let (dir, base): (&[u8], &[u8]) = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b".", path),
    };
    let mut name = [dir, b"/PaxHeaders/", base].concat();
    name.truncate(100);
    name
}

/// The fields of one ustar header block, each known to fit.
struct Ustar<'a> {
    prefix: &'a [u8],
    name: &'a [u8],
    kind: u8,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    link: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
}

impl Ustar<'_> {
    /// The 512-byte POSIX ustar header (`ustar\0` `00`), octal numbers
    /// zero-padded and NUL-terminated, device numbers zero.
    fn encode(&self) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        let mut put = |range: std::ops::Range<usize>, bytes: &[u8]| {
            let len = bytes.len().min(range.len());
            block[range.start..range.start + len].copy_from_slice(&bytes[..len]);
        };
        let octal = |value: u64, width: usize| format!("{value:0w$o}\0", w = width - 1).into_bytes();
        put(0..100, self.name);
        put(100..108, &octal(self.mode, 8));
        put(108..116, &octal(self.uid, 8));
        put(116..124, &octal(self.gid, 8));
        put(124..136, &octal(self.size, 12));
        put(136..148, &octal(self.mtime, 12));
        put(148..156, b"        ");
        put(156..157, &[self.kind]);
        put(157..257, self.link);
        put(257..263, b"ustar\0");
        put(263..265, b"00");
        put(265..297, self.uname);
        put(297..329, self.gname);
        put(329..337, &octal(0, 8));
        put(337..345, &octal(0, 8));
        put(345..500, self.prefix);
        let checksum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
        block
    }
}

// The in-tree repository generator.

/// The first line of the generated `README.md`; its presence marks a
/// directory [`make_repository`] may clear.
const GENERATED_MARKER: &str = "<!-- Generated by `make_apk_repository`: do not edit; see third_party/apk-sources. -->";

/// The manifest file in the sources directory.
pub const MANIFEST: &str = "packages.toml";

/// `packages.toml`: the repository's packages (see
/// `third_party/apk-sources/README.md`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    /// `DESCRIPTION` of every index.
    description: String,
    /// One index per architecture (apk names).
    archs: Vec<String>,
    /// Default build time of every package.
    build_time: u64,
    #[serde(default, rename = "package")]
    packages: Vec<ManifestPackage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestPackage {
    name: String,
    version: String,
    description: String,
    #[serde(default)]
    url: String,
    license: String,
    origin: Option<String>,
    maintainer: Option<String>,
    /// Only `noarch` is supported: the package is written once and linked
    /// from every architecture.
    #[serde(default = "noarch")]
    arch: String,
    build_time: Option<u64>,
    #[serde(default)]
    depends: Vec<String>,
    #[serde(default)]
    provides: Vec<String>,
    #[serde(default)]
    replaces: Vec<String>,
    provider_priority: Option<u64>,
    #[serde(default, rename = "dir")]
    dirs: Vec<ManifestEntry>,
    #[serde(default, rename = "file")]
    files: Vec<ManifestEntry>,
    #[serde(default, rename = "symlink")]
    symlinks: Vec<ManifestEntry>,
    #[serde(default, rename = "tree")]
    trees: Vec<ManifestEntry>,
}

fn noarch() -> String {
    "noarch".to_owned()
}

/// One `[[package.dir]]`, `[[package.file]]`, `[[package.symlink]]` or
/// `[[package.tree]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestEntry {
    /// Path in the image.
    path: String,
    /// File or directory (for a tree) under the sources directory.
    source: Option<String>,
    /// Symlink target.
    target: Option<String>,
    /// Octal string, e.g. `"0640"`; for a tree, the mode of its files.
    mode: Option<String>,
    #[serde(default)]
    uid: u32,
    #[serde(default)]
    gid: u32,
    /// Defaults to `root` for uid 0, empty otherwise.
    uname: Option<String>,
    /// Defaults to `root` for gid 0, empty otherwise.
    gname: Option<String>,
}

/// One file of a generated repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryFile {
    Bytes(Vec<u8>),
    /// A relative symlink, e.g. `../noarch/tzdata-2025b-r0.apk`.
    Symlink(String),
}

/// Computes the repository for the sources directory `sources` (holding
/// [`MANIFEST`]): path (relative, `/`-separated) to content. Layout:
/// `README.md`; `noarch/<name>-<version>.apk`, each package once; per
/// architecture `<arch>/APKINDEX.tar.gz` (signed with `key`) and
/// `<arch>/<name>-<version>.apk`, a symlink to `../noarch/...`. Reads
/// `sources` only; the result depends on nothing else.
pub fn plan_repository(sources: &Path, key: &SigningKey) -> Result<BTreeMap<String, RepositoryFile>, WriteError> {
    let manifest_path = sources.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|source| WriteError::Read { path: manifest_path.clone(), source })?;
    let manifest: Manifest = toml::from_str(&text)
        .map_err(|e| WriteError::Manifest { path: manifest_path.clone(), message: e.to_string() })?;
    let bad = |message: String| WriteError::Manifest { path: manifest_path.clone(), message };
    if manifest.archs.is_empty() {
        return Err(bad("`archs` is empty: list at least one architecture".to_owned()));
    }
    let mut archs = Vec::new();
    for arch in &manifest.archs {
        let parsed = Arch::parse(arch).map_err(|e| bad(format!("`archs`: {e}")))?;
        if parsed.apk() != arch || archs.contains(&parsed) {
            return Err(bad(format!("`archs`: write each architecture once by its apk name (`{}`)", parsed.apk())));
        }
        archs.push(parsed);
    }

    let mut files = BTreeMap::new();
    files.insert("README.md".to_owned(), RepositoryFile::Bytes(repository_readme(&manifest).into_bytes()));
    let mut entries = Vec::new();
    for package in &manifest.packages {
        let spec = package_spec(sources, package, manifest.build_time).map_err(|e| match e {
            WriteError::Manifest { path, message } if path.as_os_str().is_empty() => {
                bad(format!("package `{}`: {message}", package.name))
            }
            other => other,
        })?;
        let apk = write_package(&spec, Some(key))?;
        let path = format!("noarch/{}", spec.file_name());
        entries.push(index_entry(&apk, &path)?);
        if files.insert(path.clone(), RepositoryFile::Bytes(apk)).is_some() {
            return Err(bad(format!("package `{}` is listed twice", spec.package_id())));
        }
    }
    let index = write_index(&entries, &manifest.description, Some(key))?;
    for arch in archs {
        for entry in &entries {
            files.insert(
                format!("{}/{}", arch.apk(), entry.file_name()),
                RepositoryFile::Symlink(format!("../noarch/{}", entry.file_name())),
            );
        }
        files.insert(format!("{}/APKINDEX.tar.gz", arch.apk()), RepositoryFile::Bytes(index.clone()));
    }
    Ok(files)
}

/// Regenerates the repository into `out`: clears it (only if it is empty
/// or was generated before: it holds the generated `README.md`), then
/// writes [`plan_repository`]'s files. Returns what it wrote.
pub fn make_repository(
    sources: &Path,
    out: &Path,
    key: &SigningKey,
) -> Result<BTreeMap<String, RepositoryFile>, WriteError> {
    let files = plan_repository(sources, key)?;
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Write { path, source }
    };
    if out.exists() {
        let readme = std::fs::read_to_string(out.join("README.md")).unwrap_or_default();
        let generated = readme.lines().next() == Some(GENERATED_MARKER);
        let listing = std::fs::read_dir(out).map_err(|source| WriteError::Read { path: out.to_owned(), source })?;
        for item in listing {
            let item = item.map_err(|source| WriteError::Read { path: out.to_owned(), source })?;
            if !generated {
                return Err(WriteError::NotGenerated {
                    path: out.to_owned(),
                    entry: item.file_name().to_string_lossy().into_owned(),
                });
            }
            let path = item.path();
            let is_dir = item.file_type().map_err(|source| WriteError::Read { path: path.clone(), source })?.is_dir();
            if is_dir {
                std::fs::remove_dir_all(&path).map_err(write_err(&path))?;
            } else {
                std::fs::remove_file(&path).map_err(write_err(&path))?;
            }
        }
    }
    for (relative, file) in &files {
        let path = out.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        match file {
            RepositoryFile::Bytes(bytes) => std::fs::write(&path, bytes).map_err(write_err(&path))?,
            RepositoryFile::Symlink(target) => symlink(target, &path).map_err(write_err(&path))?,
        }
    }
    Ok(files)
}

#[cfg(unix)]
fn symlink(target: &str, path: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn symlink(_target: &str, _path: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "the repository uses symlinks: generate it on unix"))
}

/// The generated `README.md` of the output directory.
fn repository_readme(manifest: &Manifest) -> String {
    let mut text = format!(
        "{GENERATED_MARKER}\n\
         # In-tree APK repository (generated)\n\n\
         Everything here is generated from `third_party/apk-sources/` by\n\n\
         ```sh\n\
         cargo run -p executor --example make_apk_repository -- \\\n    \
         third_party/apk-sources third_party/apk-repository third_party/keys/executor-test-key.rsa\n\
         ```\n\n\
         and committed; a unit test (`apk::write`) regenerates it and checks that the bytes match.\n\
         The indexes and packages are signed with `executor-test-key.rsa.pub`, a TEST key whose\n\
         private half is committed in `third_party/keys/`: trust it for tests only.\n\n\
         Layout: each package once in `noarch/`; per architecture a signed `APKINDEX.tar.gz` and\n\
         symlinks `<arch>/<name>-<version>.apk -> ../noarch/<name>-<version>.apk`.\n\n\
         Architectures: {}.\n",
        manifest.archs.join(", ")
    );
    text.push_str("\nPackages:\n\n");
    for package in &manifest.packages {
        text.push_str(&format!("- `{}-{}`: {}\n", package.name, package.version, package.description));
    }
    text
}

/// Builds the spec of one manifest package, reading its sources.
fn package_spec(sources: &Path, package: &ManifestPackage, build_time: u64) -> Result<PackageSpec, WriteError> {
    let bad = |message: String| WriteError::Manifest { path: PathBuf::new(), message };
    let name = PackageName::new(&package.name).map_err(|e| bad(e.to_string()))?;
    let version = Version::parse(&package.version).map_err(|e| bad(e.to_string()))?;
    if package.arch != "noarch" {
        return Err(bad(format!(
            "arch `{}`: only `noarch` packages are supported (each is written once and linked from every \
             architecture)",
            package.arch
        )));
    }
    let deps = |field: &str, atoms: &[String]| -> Result<Vec<Dependency>, WriteError> {
        atoms.iter().map(|a| Dependency::parse(a).map_err(|e| bad(format!("`{field}`: {e}")))).collect()
    };
    let mut spec = PackageSpec::new(name, version, &package.arch);
    spec.description.clone_from(&package.description);
    spec.url.clone_from(&package.url);
    spec.license.clone_from(&package.license);
    spec.origin.clone_from(&package.origin);
    spec.maintainer.clone_from(&package.maintainer);
    spec.build_time = package.build_time.unwrap_or(build_time);
    spec.depends = deps("depends", &package.depends)?;
    spec.replaces = deps("replaces", &package.replaces)?;
    spec.provides = package
        .provides
        .iter()
        .map(|a| Provide::parse(a).map_err(|e| bad(format!("`provides`: {e}"))))
        .collect::<Result<_, _>>()?;
    spec.provider_priority = package.provider_priority;

    for entry in &package.dirs {
        reject_fields(entry, "dir", &["source", "target"])?;
        spec.files.push(owned(PackageFile::dir(&entry.path), entry, 0o755)?);
    }
    for entry in &package.files {
        reject_fields(entry, "file", &["target"])?;
        let source = source_path(sources, entry, "file")?;
        let content = std::fs::read(&source).map_err(|e| WriteError::Read { path: source.clone(), source: e })?;
        spec.files.push(owned(PackageFile::file(&entry.path, content), entry, 0o644)?);
    }
    for entry in &package.symlinks {
        reject_fields(entry, "symlink", &["source"])?;
        let target =
            entry.target.as_deref().ok_or_else(|| bad(format!("symlink `{}` needs a `target`", entry.path)))?;
        spec.files.push(owned(PackageFile::symlink(&entry.path, target), entry, 0o777)?);
    }
    for entry in &package.trees {
        reject_fields(entry, "tree", &["target"])?;
        let root = source_path(sources, entry, "tree")?;
        let mut found = Vec::new();
        walk_tree(&root, "", &mut found)?;
        if found.is_empty() {
            return Err(bad(format!("tree `{}` is empty", root.display())));
        }
        for (relative, content) in found {
            let path = format!("{}/{relative}", entry.path);
            let file = match content {
                Some(content) => owned(PackageFile::file(path, content), entry, 0o644)?,
                None => owned(PackageFile::dir(path), entry, 0o755)?.with_mode(0o755),
            };
            spec.files.push(file);
        }
    }
    Ok(spec)
}

/// Errors when a manifest entry sets fields its kind does not take.
fn reject_fields(entry: &ManifestEntry, kind: &str, fields: &[&str]) -> Result<(), WriteError> {
    for &field in fields {
        let set = match field {
            "source" => entry.source.is_some(),
            "target" => entry.target.is_some(),
            _ => false,
        };
        if set {
            return Err(WriteError::Manifest {
                path: PathBuf::new(),
                message: format!("{kind} `{}` does not take `{field}`", entry.path),
            });
        }
    }
    Ok(())
}

/// The source file or directory of `entry`, checked to stay inside `sources`.
fn source_path(sources: &Path, entry: &ManifestEntry, kind: &str) -> Result<PathBuf, WriteError> {
    let bad = |message: String| WriteError::Manifest { path: PathBuf::new(), message };
    let source = entry.source.as_deref().ok_or_else(|| bad(format!("{kind} `{}` needs a `source`", entry.path)))?;
    if let Some(problem) = path_problem(source) {
        return Err(bad(format!("{kind} `{}`: `source = \"{source}\"` {problem}", entry.path)));
    }
    Ok(sources.join(source))
}

/// Applies the entry's mode and owner to `file`.
fn owned(file: PackageFile, entry: &ManifestEntry, default_mode: u32) -> Result<PackageFile, WriteError> {
    let mode = match &entry.mode {
        Some(text) => {
            u32::from_str_radix(text, 8).ok().filter(|&m| m <= 0o7777).ok_or_else(|| WriteError::Manifest {
                path: PathBuf::new(),
                message: format!("`{}`: mode `{text}` is not an octal mode such as \"0644\"", entry.path),
            })?
        }
        None => default_mode,
    };
    let default_name = |id: u32| if id == 0 { "root" } else { "" };
    let uname = entry.uname.as_deref().unwrap_or(default_name(entry.uid));
    let gname = entry.gname.as_deref().unwrap_or(default_name(entry.gid));
    Ok(file.with_mode(mode).with_owner(entry.uid, uname, entry.gid, gname))
}

/// Lists the tree under `dir`, sorted: `(relative path, Some(content))` for
/// regular files and `(relative path, None)` for directories. Anything
/// else (symlinks, devices) is an error: the host must not shape the output.
fn walk_tree(dir: &Path, prefix: &str, found: &mut Vec<(String, Option<Vec<u8>>)>) -> Result<(), WriteError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Read { path, source }
    };
    let mut names = Vec::new();
    for item in std::fs::read_dir(dir).map_err(read_err(dir))? {
        let item = item.map_err(read_err(dir))?;
        let name = item.file_name().into_string().map_err(|name| WriteError::Manifest {
            path: dir.to_owned(),
            message: format!("file name {name:?} is not UTF-8"),
        })?;
        names.push(name);
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let relative = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let kind = std::fs::symlink_metadata(&path).map_err(read_err(&path))?.file_type();
        if kind.is_dir() {
            found.push((relative.clone(), None));
            walk_tree(&path, &relative, found)?;
        } else if kind.is_file() {
            found.push((relative, Some(std::fs::read(&path).map_err(read_err(&path))?)));
        } else {
            return Err(WriteError::Manifest {
                path,
                message: "only regular files and directories may be in a source tree (copy symlinked files \
                          as regular files, or list a `[[package.symlink]]`)"
                    .to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use executor_apk::gzip;
    use executor_apk::index::{Index, IndexError, TrustPolicy};
    use executor_apk::key::Keyring;
    use executor_apk::package::{PackagePin, SignaturePolicy};
    use executor_apk::signature::Trust;
    use std::io::Read as _;

    const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    const KEY: &str = "third_party/keys/executor-test-key.rsa";
    const PUBLIC_KEY: &str = "third_party/keys/executor-test-key.rsa.pub";
    const KEY_NAME: &str = "executor-test-key.rsa.pub";
    const SOURCES: &str = "third_party/apk-sources";
    const REPOSITORY: &str = "third_party/apk-repository";

    fn root(path: &str) -> PathBuf {
        Path::new(ROOT).join(path)
    }

    fn key() -> SigningKey {
        SigningKey::read_file(&root(KEY)).expect("the committed test key loads")
    }

    fn keyring() -> Keyring {
        let mut keyring = Keyring::new();
        keyring.insert_file(&root(PUBLIC_KEY)).expect("the committed public key loads");
        keyring
    }

    fn spec() -> PackageSpec {
        let mut spec = PackageSpec::new(
            PackageName::new("demo").expect("name"),
            Version::parse("1.2.3-r4").expect("version"),
            "noarch",
        );
        spec.description = "A demo package".to_owned();
        spec.url = "https://example.com/demo".to_owned();
        spec.license = "Apache-2.0".to_owned();
        spec.maintainer = Some("Demo <demo@example.com>".to_owned());
        spec.build_time = 1_700_000_000;
        spec.depends = Dependency::parse_list("so:libc.musl-x86_64.so.1 tzdata>=2023").expect("depends");
        spec.provides = Provide::parse_list("cmd:demo=1.2.3-r4 demo-virtual").expect("provides");
        spec.replaces = Dependency::parse_list("old-demo").expect("replaces");
        spec.provider_priority = Some(100);
        let long_dir = "usr/share/".to_owned() + &"d".repeat(120);
        spec.files = vec![
            PackageFile::file("usr/bin/demo", b"#!/bin/sh\necho demo\n".to_vec()).with_mode(0o755),
            PackageFile::file("etc/shadow", b"root:*::0:::::\n".to_vec())
                .with_mode(0o640)
                .with_owner(0, "root", 42, "shadow"),
            PackageFile::dir("tmp").with_mode(0o1777),
            PackageFile::symlink("usr/bin/demo-link", "demo"),
            PackageFile::symlink("var/run", "/run"),
            PackageFile::hard_link("usr/bin/demo-hard", "usr/bin/demo"),
            PackageFile::file(format!("{long_dir}/{}", "f".repeat(90)), b"long".to_vec()).with_mtime(5),
        ];
        spec
    }

    /// `mode uid:gid(uname:gname) size mtime kind path [-> link] [sha1]` per entry.
    fn listing(apk: &[u8]) -> Vec<String> {
        let package = Package::read(apk, "listing").expect("package reads");
        let mut archive = package.data_archive();
        let mut lines = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let header = entry.header().clone();
            let checksum = entry
                .pax_extensions()
                .expect("pax")
                .into_iter()
                .flatten()
                .map(|r| r.expect("record"))
                .find(|r| r.key() == Ok("APK-TOOLS.checksum.SHA1"))
                .map(|r| r.value().expect("utf-8").to_owned());
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("content");
            let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8");
            let link = entry.link_name_bytes().map(|l| format!(" -> {}", String::from_utf8_lossy(&l)));
            lines.push(format!(
                "{:04o} {}:{}({}:{}) {} {} {:?} {path}{}{}",
                header.mode().expect("mode"),
                header.uid().expect("uid"),
                header.gid().expect("gid"),
                header.username().expect("uname").unwrap_or(""),
                header.groupname().expect("gname").unwrap_or(""),
                content.len(),
                header.mtime().expect("mtime"),
                header.entry_type(),
                link.unwrap_or_default(),
                checksum.map(|c| format!(" sha1={c}")).unwrap_or_default(),
            ));
        }
        lines
    }

    fn sha1_hex(bytes: &[u8]) -> String {
        hex::encode(Sha1::digest(bytes))
    }

    #[test]
    fn signed_package_round_trips_through_the_reader() {
        let spec = spec();
        let apk = write_package(&spec, Some(&key())).expect("writes");
        let entry = index_entry(&apk, "demo.apk").expect("index entry");
        let pin = PackagePin::from_entry(&entry);
        let verified = Package::verify(&apk, "demo.apk", &pin, &keyring(), SignaturePolicy::Required)
            .expect("the reader verifies identity, signature and datahash");
        assert_eq!(verified.signed_by().map(KeyName::as_str), Some(KEY_NAME));
        let package = verified.package();
        let signatures = package.signatures();
        assert_eq!(signatures.len(), 1);
        assert_eq!(signatures[0].algorithm, SignatureAlgorithm::RsaSha256);
        assert_eq!(gzip::member_ranges(&apk).expect("members").len(), 3);
        assert!(package.control_files().is_empty());

        let info = package.info();
        assert_eq!(info.name.as_str(), "demo");
        assert_eq!(info.version.as_str(), "1.2.3-r4");
        assert_eq!(info.description.as_deref(), Some("A demo package"));
        assert_eq!(info.url.as_deref(), Some("https://example.com/demo"));
        assert_eq!(info.build_date, Some(1_700_000_000));
        assert_eq!(info.arch.as_deref(), Some("noarch"));
        assert_eq!(info.origin.as_deref(), Some("demo"), "origin defaults to the name");
        assert_eq!(info.maintainer.as_deref(), Some("Demo <demo@example.com>"));
        assert_eq!(info.license.as_deref(), Some("Apache-2.0"));
        assert_eq!(info.size, Some(20 + 15 + 4), "installed size: the regular files' bytes");
        assert_eq!(info.provider_priority, Some(100));
        assert_eq!(info.depends, spec.depends);
        assert_eq!(info.provides, spec.provides);
        assert_eq!(info.replaces, spec.replaces);
        assert!(info.unknown.is_empty(), "{:?}", info.unknown);

        let demo = sha1_hex(b"#!/bin/sh\necho demo\n");
        let long = format!("usr/share/{}/{}", "d".repeat(120), "f".repeat(90));
        let expected = [
            "0755 0:0(root:root) 0 1700000000 Directory etc/".to_owned(),
            format!("0640 0:42(root:shadow) 15 1700000000 Regular etc/shadow sha1={}", sha1_hex(b"root:*::0:::::\n")),
            "1777 0:0(root:root) 0 1700000000 Directory tmp/".to_owned(),
            "0755 0:0(root:root) 0 1700000000 Directory usr/".to_owned(),
            "0755 0:0(root:root) 0 1700000000 Directory usr/bin/".to_owned(),
            format!("0755 0:0(root:root) 20 1700000000 Regular usr/bin/demo sha1={demo}"),
            format!("0644 0:0(root:root) 0 1700000000 Link usr/bin/demo-hard -> usr/bin/demo sha1={demo}"),
            format!("0777 0:0(root:root) 0 1700000000 Symlink usr/bin/demo-link -> demo sha1={}", sha1_hex(b"demo")),
            "0755 0:0(root:root) 0 1700000000 Directory usr/share/".to_owned(),
            format!("0755 0:0(root:root) 0 1700000000 Directory usr/share/{}/", "d".repeat(120)),
            format!("0644 0:0(root:root) 4 5 Regular {long} sha1={}", sha1_hex(b"long")),
            "0755 0:0(root:root) 0 1700000000 Directory var/".to_owned(),
            format!("0777 0:0(root:root) 0 1700000000 Symlink var/run -> /run sha1={}", sha1_hex(b"/run")),
        ];
        assert_eq!(listing(&apk), expected);

        // The data ends in end-of-archive blocks; the control member has none.
        let data =
            gzip::read_member(&apk, package.data_range().start, gzip::control_limit()).expect("data member").content;
        assert!(data.ends_with(&[0; 1024]));
        let control = gzip::read_member(&apk, package.control_range().start, gzip::control_limit())
            .expect("control member")
            .content;
        assert_eq!(control.len() % 512, 0);
        assert!(!control.ends_with(&[0; 512]), "no end-of-archive blocks in the control member");
        assert_eq!(&control[257..265], b"ustar\x0000");
    }

    #[test]
    fn sha1_signature_and_unsigned_packages() {
        let spec = spec();
        let sha1_key = key().with_algorithm(SignatureAlgorithm::RsaSha1);
        let apk = write_package(&spec, Some(&sha1_key)).expect("writes");
        let pin = PackagePin::from_entry(&index_entry(&apk, "demo.apk").expect("entry"));
        let verified =
            Package::verify(&apk, "demo.apk", &pin, &keyring(), SignaturePolicy::Required).expect("verifies");
        assert_eq!(verified.package().signatures()[0].algorithm, SignatureAlgorithm::RsaSha1);
        assert_eq!(format!("{:?}", verified.package().signatures()[0]), format!("Signature(.SIGN.RSA.{KEY_NAME})"));

        let unsigned = write_package(&spec, None).expect("writes");
        assert_eq!(gzip::member_ranges(&unsigned).expect("members").len(), 2);
        let pin = PackagePin::from_entry(&index_entry(&unsigned, "u.apk").expect("entry"));
        assert_eq!(pin.identity, verified.package().identity(), "the signature does not change the identity");
        let err = Package::verify(&unsigned, "u.apk", &pin, &keyring(), SignaturePolicy::Required)
            .expect_err("signature required");
        assert!(matches!(err, PackageError::MissingSignature { .. }), "{err}");
        Package::verify(&unsigned, "u.apk", &pin, &keyring(), SignaturePolicy::IfPresent).expect("unsigned is fine");
    }

    #[test]
    fn output_is_deterministic() {
        let key = key();
        let first = write_package(&spec(), Some(&key)).expect("writes");
        let mut shuffled = spec();
        shuffled.files.reverse();
        assert_eq!(first, write_package(&shuffled, Some(&key)).expect("writes"), "input order does not matter");
        let again = write_package(&spec(), Some(&SigningKey::read_file(&root(KEY)).expect("key"))).expect("writes");
        assert_eq!(first, again);
        // Every member: gzip header with mtime 0, no flags, XFL 2 (level 9), OS 255.
        for range in gzip::member_ranges(&first).expect("members") {
            assert_eq!(&first[range.start..range.start + 10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
        }
        let entry = index_entry(&first, "demo.apk").expect("entry");
        let index = write_index(std::slice::from_ref(&entry), "d", Some(&key)).expect("index");
        assert_eq!(index, write_index(&[entry], "d", Some(&key)).expect("index"));
    }

    fn two_packages() -> Vec<Vec<u8>> {
        let mut other = PackageSpec::new(
            PackageName::new("another").expect("name"),
            Version::parse("0.1_rc2-r0").expect("version"),
            "x86_64",
        );
        other.origin = Some("another-src".to_owned());
        other.files = vec![PackageFile::file("usr/lib/libanother.so.1", b"ELF".to_vec())];
        let key = key();
        vec![write_package(&spec(), Some(&key)).expect("demo"), write_package(&other, Some(&key)).expect("another")]
    }

    #[test]
    fn signed_index_round_trips_through_the_reader() {
        let packages = two_packages();
        let entries: Vec<IndexEntry> = packages.iter().map(|apk| index_entry(apk, "x.apk").expect("entry")).collect();
        let bytes = write_index(&entries, "v1.0 test", Some(&key())).expect("index");
        assert_eq!(gzip::member_ranges(&bytes).expect("members").len(), 2);
        let index = Index::read(&bytes, "APKINDEX.tar.gz", &keyring(), TrustPolicy::RequireTrusted)
            .expect("the reader verifies the index");
        assert_eq!(
            index.trust,
            Trust::Verified { key: KeyName::new(KEY_NAME).expect("name"), algorithm: SignatureAlgorithm::RsaSha256 }
        );
        assert_eq!(index.description.as_deref(), Some("v1.0 test"));
        let mut sorted = entries.clone();
        sorted.reverse();
        assert_eq!(index.entries(), sorted.as_slice(), "every field survives, sorted by name");
        assert!(index.skipped.is_empty() && index.ignored_provides.is_empty());
        for (apk, entry) in packages.iter().zip(&entries) {
            Package::verify(apk, "x.apk", &PackagePin::from_entry(entry), &keyring(), SignaturePolicy::Required)
                .expect("package verifies against its index entry");
        }

        let text = index_text(&entries).expect("text");
        let demo = &entries[0];
        assert_eq!(
            text.split("\n\n").nth(1).expect("second entry"),
            format!(
                "C:{}\nP:demo\nV:1.2.3-r4\nA:noarch\nS:{}\nI:39\nT:A demo package\nU:https://example.com/demo\n\
                 L:Apache-2.0\no:demo\nm:Demo <demo@example.com>\nt:1700000000\nk:100\n\
                 D:so:libc.musl-x86_64.so.1 tzdata>=2023\np:cmd:demo=1.2.3-r4 demo-virtual\nr:old-demo",
                demo.identity,
                packages[0].len()
            )
        );
        assert!(text.ends_with("\n\n"));

        // Unsigned: refused unless untrusted indexes are allowed.
        let unsigned = write_index(&entries, "v1.0 test", None).expect("index");
        assert_eq!(gzip::member_ranges(&unsigned).expect("members").len(), 1);
        let err = Index::read(&unsigned, "u", &keyring(), TrustPolicy::RequireTrusted).expect_err("unsigned");
        assert!(matches!(err, IndexError::Untrusted { trust: Trust::Unsigned, .. }), "{err}");
        let index = Index::read(&unsigned, "u", &keyring(), TrustPolicy::AllowUntrusted).expect("allowed");
        assert_eq!(index.entries().len(), 2);

        // Signed under another name: a key the keyring does not hold.
        let pem = std::fs::read_to_string(root(KEY)).expect("key");
        let stranger = SigningKey::from_pem("stranger.rsa.pub", &pem).expect("key");
        let bytes = write_index(&entries, "x", Some(&stranger)).expect("index");
        let err = Index::read(&bytes, "s", &keyring(), TrustPolicy::RequireTrusted).expect_err("unknown key");
        assert!(err.to_string().contains("signed only by keys that are not trusted: `stranger.rsa.pub`"), "{err}");

        let twice = [entries[0].clone(), entries[0].clone()];
        assert_eq!(
            write_index(&twice, "x", None).map_err(|e| e.to_string()).expect_err("duplicate"),
            "index: `demo-1.2.3-r4` is listed twice"
        );
    }

    #[test]
    fn signing_keys() {
        let key = key();
        assert_eq!(key.name().as_str(), KEY_NAME);
        assert_eq!(format!("{key:?}"), format!("SigningKey({KEY_NAME}, RSA/SHA-256)"));
        let committed = std::fs::read_to_string(root(PUBLIC_KEY)).expect("public key");
        assert_eq!(key.public_key_pem(), committed, "the committed public key is the private key's");
        assert_eq!(key.public_key().name().as_str(), KEY_NAME);

        let err = SigningKey::from_pem("k.rsa.pub", &committed).expect_err("a public key cannot sign");
        assert!(err.to_string().starts_with("signing key `k.rsa.pub` is not a PEM RSA private key"), "{err}");
        let err = SigningKey::read_file(Path::new("/nonexistent/k.rsa")).expect_err("missing");
        assert!(err.to_string().starts_with("cannot read `/nonexistent/k.rsa`"), "{err}");
        let pem = std::fs::read_to_string(root(KEY)).expect("key");
        assert!(matches!(SigningKey::from_pem("a b", &pem), Err(WriteError::KeyName(_))));
    }

    #[test]
    fn rejects_invalid_packages_with_their_reason() {
        type Edit = fn(&mut PackageSpec);
        let cases: &[(Edit, &str)] = &[
            (|s| s.files.push(PackageFile::file("/etc/passwd", b"x".to_vec())),
             "package `demo-1.2.3-r4`: invalid path `/etc/passwd`: must be relative (no leading `/`)"),
            (|s| s.files.push(PackageFile::file("usr/../../etc/passwd", b"x".to_vec())),
             "package `demo-1.2.3-r4`: invalid path `usr/../../etc/passwd`: must not contain `..`"),
            (|s| s.files.push(PackageFile::dir("usr//lib")),
             "package `demo-1.2.3-r4`: invalid path `usr//lib`: must not contain empty or `.` components (no `//`, `./` or trailing `/`)"),
            (|s| s.files.push(PackageFile::dir("")), "package `demo-1.2.3-r4`: invalid path ``: must not be empty"),
            (|s| s.files.push(PackageFile::file("a\nb", b"x".to_vec())),
             "package `demo-1.2.3-r4`: invalid path `a\nb`: must not contain NUL, newlines or other control characters"),
            (|s| s.files.push(PackageFile::file("etc/shadow", b"x".to_vec())),
             "package `demo-1.2.3-r4`: `etc/shadow` is listed twice"),
            (|s| s.files.push(PackageFile::file("usr/bin/demo/x", b"x".to_vec())),
             "package `demo-1.2.3-r4`: `usr/bin/demo/x` is inside `usr/bin/demo`, which is a regular file, not a directory"),
            (|s| s.files.push(PackageFile::symlink("usr/lib/evil", "../../../etc")),
             "package `demo-1.2.3-r4`: symlink `usr/lib/evil` -> `../../../etc` leads out of the package root; only `write_package_unchecked` (for tests of hostile packages) writes such links"),
            (|s| s.files.push(PackageFile::hard_link("usr/bin/h", "usr/bin")),
             "package `demo-1.2.3-r4`: hard link `usr/bin/h` -> `usr/bin`: the target is not a regular file of the package"),
            (|s| s.files.push(PackageFile::hard_link("usr/bin/h", "../x")),
             "package `demo-1.2.3-r4`: hard link `usr/bin/h` -> `../x`: the target is not a regular file of the package"),
            (|s| s.files.push(PackageFile::dir("x").with_mode(0o40755)),
             "package `demo-1.2.3-r4`: invalid path `x`: has a mode above 0o7777 (only permission, setuid, setgid and sticky bits)"),
            (|s| s.description = "two\nlines".to_owned(),
             "package `demo-1.2.3-r4`: description `two\nlines` must not contain newlines or other control characters"),
            (|s| s.license = " MIT".to_owned(),
             "package `demo-1.2.3-r4`: license ` MIT` must not start or end with whitespace"),
            (|s| s.arch = "x86 64".to_owned(),
             "package `demo-1.2.3-r4`: arch `x86 64` must be a non-empty word such as `noarch` or `x86_64`"),
            (|s| s.files[0] = s.files[0].clone().with_owner(0, "ro ot", 0, "root"),
             "package `demo-1.2.3-r4`: uname `ro ot` must not contain whitespace, `:` or control characters"),
        ];
        for (edit, message) in cases {
            let mut spec = spec();
            edit(&mut spec);
            let err = write_package(&spec, None).expect_err(message);
            assert_eq!(err.to_string(), *message);
        }
        // Inside the root: fine.
        let mut fine = spec();
        fine.files.push(PackageFile::symlink("usr/lib/ok", "../../etc/shadow"));
        fine.files.push(PackageFile::symlink("usr/lib/abs", "/../../etc"));
        write_package(&fine, None).expect("links that stay inside the root");
    }

    #[test]
    fn writes_hostile_packages_when_asked() {
        let mut spec = spec();
        spec.files = vec![
            PackageFile::file("../escape", b"out".to_vec()),
            PackageFile::file("/etc/passwd", b"root::0:0::/:/bin/sh\n".to_vec()),
            PackageFile::symlink("usr/lib/evil", "../../../../etc"),
            PackageFile::file("usr/lib/evil/passwd", b"through the link".to_vec()),
            PackageFile::hard_link("usr/lib/hard", "../../etc/shadow"),
            PackageFile::file("dup", b"1".to_vec()),
            PackageFile::file("dup", b"2".to_vec()),
        ];
        for picked in [&[0][..], &[1], &[2], &[4], &[5, 6]] {
            let mut some = spec.clone();
            some.files = picked.iter().map(|&i| spec.files[i].clone()).collect();
            assert!(write_package(&some, None).is_err(), "{} must be refused", some.files[0].path);
        }
        let apk = write_package_unchecked(&spec, Some(&key())).expect("writes");
        // Still a well-formed, signed package: the data is not the reader's business.
        let pin = PackagePin::from_entry(&index_entry(&apk, "hostile.apk").expect("entry"));
        let verified =
            Package::verify(&apk, "hostile.apk", &pin, &keyring(), SignaturePolicy::Required).expect("verifies");
        let mut archive = verified.package().data_archive();
        let names: Vec<String> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let link = e.link_name_bytes().map(|l| format!(" -> {}", String::from_utf8_lossy(&l)));
                format!("{}{}", String::from_utf8_lossy(&e.path_bytes()), link.unwrap_or_default())
            })
            .collect();
        assert_eq!(
            names,
            [
                "../escape",
                "/etc/passwd",
                "usr/lib/evil -> ../../../../etc",
                "usr/lib/evil/passwd",
                "usr/lib/hard -> ../../etc/shadow",
                "dup",
                "dup",
            ]
        );
        assert_eq!(apk, write_package_unchecked(&spec, Some(&key())).expect("writes"), "deterministic too");
    }

    #[test]
    fn tar_fields_beyond_ustar_go_to_pax_records() {
        let mut spec = spec();
        let long_name = "n".repeat(130);
        let long_target = "t/".repeat(70);
        spec.files = vec![
            PackageFile::file(long_name.clone(), b"x".to_vec()).with_owner(3_000_000, "u".repeat(40).as_str(), 7, "g"),
            PackageFile::symlink("link", long_target.clone()),
        ];
        let apk = write_package(&spec, None).expect("writes");
        let package = Package::read(&apk, "p").expect("reads");
        let mut archive = package.data_archive();
        let entries: Vec<(String, Option<String>, u64, Option<String>)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()),
                    e.header().uid().expect("uid"),
                    e.header().username().ok().flatten().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(entries[0].0, "link");
        assert_eq!(entries[0].1.as_deref(), Some(long_target.as_str()));
        assert_eq!(entries[1].0, long_name);
        // The tar crate reads PAX `path`/`linkpath`; numeric and name
        // overrides stay in the records (the header holds 0 / a cut name).
        let mut raw = Vec::new();
        gzip::multi_member_reader(package.data()).read_to_end(&mut raw).expect("data");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("uid=3000000\n"), "uid record");
        assert!(text.contains(&format!("uname={}\n", "u".repeat(40))), "uname record");
        assert!(text.contains(&format!("path={long_name}\n")), "path record");

        let mut records = Vec::new();
        // 8 bytes without the length: one digit makes 9, which fits.
        pax_record(&mut records, "k", &[b'v'; 4]);
        assert_eq!(records, b"9 k=vvvv\n");
        records.clear();
        // 9 bytes without the length: one digit makes 10, which needs two: 11.
        pax_record(&mut records, "k", &[b'v'; 5]);
        assert_eq!(records, b"11 k=vvvvv\n");
        assert_eq!(pax_header_name(b"etc/"), b"./PaxHeaders/etc");
        assert_eq!(pax_header_name(b"etc/ssl/cert.pem"), b"etc/ssl/PaxHeaders/cert.pem");
    }

    /// Every committed index verifies with the committed public key, lists
    /// the same packages, and every package verifies against its entry.
    #[test]
    fn committed_repository_verifies() {
        let keyring = keyring();
        let mut seen = 0;
        for arch in Arch::ALL {
            let dir = root(REPOSITORY).join(arch.apk());
            let bytes = std::fs::read(dir.join("APKINDEX.tar.gz")).unwrap_or_else(|e| panic!("{}: {e}", arch.apk()));
            let index = Index::read(&bytes, arch.apk(), &keyring, TrustPolicy::RequireTrusted)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(index.trust.is_verified());
            let names: Vec<&str> = index.entries().iter().map(|e| e.name.as_str()).collect();
            assert_eq!(names, ["baselayout-data", "ca-certificates-bundle", "tzdata"], "{}", arch.apk());
            for entry in index.entries() {
                assert_eq!(entry.arch.as_deref(), Some("noarch"));
                let path = dir.join(entry.file_name());
                let link = std::fs::read_link(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(link, Path::new("../noarch").join(entry.file_name()));
                let apk = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let verified = Package::verify(
                    &apk,
                    &path.display().to_string(),
                    &PackagePin::from_entry(entry),
                    &keyring,
                    SignaturePolicy::Required,
                )
                .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(verified.signed_by().map(KeyName::as_str), Some(KEY_NAME));
                seen += 1;
            }
        }
        assert_eq!(seen, 3 * 8);

        // What the static image relies on.
        let apk = std::fs::read(root(REPOSITORY).join("noarch/baselayout-data-1.0.0-r0.apk")).expect("baselayout");
        let lines = listing(&apk);
        let find = |path: &str| lines.iter().find(|l| l.ends_with(path) || l.contains(&format!(" {path} ")));
        assert!(find("etc/shadow").is_some_and(|l| l.starts_with("0640 0:42(root:shadow) ")), "{lines:#?}");
        assert!(find("tmp/").is_some_and(|l| l.starts_with("1777 ")), "{lines:#?}");
        assert!(find("root/").is_some_and(|l| l.starts_with("0700 ")), "{lines:#?}");
        let passwd = std::fs::read_to_string(root(SOURCES).join("baselayout-data/etc/passwd")).expect("passwd");
        assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
        assert!(!passwd.contains("65532"), "the build adds the nonroot account, not the package");
    }

    fn read_tree(dir: &Path, prefix: &str, out: &mut BTreeMap<String, RepositoryFile>) {
        let mut items: Vec<_> = std::fs::read_dir(dir).expect("read dir").map(|i| i.expect("entry")).collect();
        items.sort_by_key(|i| i.file_name());
        for item in items {
            let name = item.file_name().into_string().expect("utf-8 name");
            let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let kind = item.file_type().expect("type");
            if kind.is_symlink() {
                let target = std::fs::read_link(item.path()).expect("link");
                out.insert(relative, RepositoryFile::Symlink(target.to_string_lossy().into_owned()));
            } else if kind.is_dir() {
                read_tree(&item.path(), &relative, out);
            } else {
                out.insert(relative, RepositoryFile::Bytes(std::fs::read(item.path()).expect("read")));
            }
        }
    }

    /// The committed repository is exactly what the generator writes now.
    #[test]
    fn regenerating_the_repository_gives_the_committed_bytes() {
        let temp = tempfile::tempdir().expect("temp dir");
        let out = temp.path().join("apk-repository");
        let written = make_repository(&root(SOURCES), &out, &key()).expect("generates");
        let mut regenerated = BTreeMap::new();
        read_tree(&out, "", &mut regenerated);
        assert_eq!(regenerated, written);
        let mut committed = BTreeMap::new();
        read_tree(&root(REPOSITORY), "", &mut committed);
        let names = |m: &BTreeMap<String, RepositoryFile>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&committed), names(&regenerated));
        for (path, file) in &regenerated {
            assert!(
                committed.get(path) == Some(file),
                "`{REPOSITORY}/{path}` differs from what the generator writes: run the command in \
                 third_party/apk-sources/README.md and commit the result"
            );
        }
        // Running again over its own output gives the same files.
        let again = make_repository(&root(SOURCES), &out, &key()).expect("regenerates in place");
        assert_eq!(again, written);
        // It refuses to clear a directory it did not write.
        let foreign = temp.path().join("foreign");
        std::fs::create_dir_all(&foreign).expect("mkdir");
        std::fs::write(foreign.join("precious.txt"), b"x").expect("write");
        let err = make_repository(&root(SOURCES), &foreign, &key()).expect_err("refuses");
        assert!(err.to_string().starts_with("refusing to clear"), "{err}");
        assert!(foreign.join("precious.txt").exists());
    }

    #[test]
    fn manifest_errors_name_the_problem() {
        let temp = tempfile::tempdir().expect("temp dir");
        let cases: &[(&str, &str)] = &[
            ("description = \"d\"\narchs = []\nbuild_time = 1\n", "`archs` is empty: list at least one architecture"),
            ("description = \"d\"\narchs = [\"amd64\"]\nbuild_time = 1\n", "`archs`: write each architecture once by its apk name (`x86_64`)"),
            (
                "description = \"d\"\narchs = [\"x86\"]\nbuild_time = 1\n[[package]]\nname = \"a\"\nversion = \"1-r0\"\n\
                 description = \"\"\nlicense = \"\"\n[[package.file]]\npath = \"x\"\nsource = \"../x\"\n",
                "package `a`: file `x`: `source = \"../x\"` must not contain `..`",
            ),
            (
                "description = \"d\"\narchs = [\"x86\"]\nbuild_time = 1\n[[package]]\nname = \"a\"\nversion = \"1-r0\"\n\
                 description = \"\"\nlicense = \"\"\n[[package.dir]]\npath = \"x\"\nmode = \"644x\"\n",
                "package `a`: `x`: mode `644x` is not an octal mode such as \"0644\"",
            ),
            (
                "description = \"d\"\narchs = [\"x86\"]\nbuild_time = 1\n[[package]]\nname = \"a\"\nversion = \"1-r0\"\n\
                 description = \"\"\nlicense = \"\"\narch = \"x86\"\n",
                "package `a`: arch `x86`: only `noarch` packages are supported (each is written once and linked from every architecture)",
            ),
        ];
        for (text, message) in cases {
            std::fs::write(temp.path().join(MANIFEST), text).expect("write");
            let err = plan_repository(temp.path(), &key()).expect_err(message);
            assert_eq!(err.to_string(), format!("`{}`: {message}", temp.path().join(MANIFEST).display()));
        }
        std::fs::write(temp.path().join(MANIFEST), "description = 1\n").expect("write");
        let err = plan_repository(temp.path(), &key()).expect_err("type error");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
