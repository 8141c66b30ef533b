//! Reading and verifying an `.apk` package.
//!
//! Layout: an optional signature member (entries `.SIGN.*`), the control
//! member (`.PKGINFO` first, then optional scripts such as `.pre-install`
//! and, from melange, `.melange.yaml`), then the data: everything after the
//! control member, one tar stream over one or more gzip members.
//!
//! Trust chain: the pinned [`Identity`] (from a verified index or a
//! lockfile) is the SHA-1 of the compressed control member; the control
//! member's `.PKGINFO` carries `datahash`, the SHA-256 of the compressed
//! data. [`Package::verify`] checks, in order: whole-file size and SHA-256
//! (when pinned), structure, identity, name and version, signature,
//! `datahash`. Each failure is its own [`PackageError`] variant.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use flate2::bufread::MultiGzDecoder;
use sha2::{Digest as _, Sha256};

use crate::dependency::{Dependency, DependencyError, PackageName, Provide};
use crate::gzip::{self, GzipError};
use crate::identity::Identity;
use crate::key::{KeyName, Keyring};
use crate::signature::{Signature, SignatureAlgorithm, SignatureError, Trust};
use crate::tar_member;
use crate::version::{Version, VersionError};

/// What a package file is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePin {
    pub name: PackageName,
    pub version: Version,
    /// `Q1...`: SHA-1 of the compressed control member.
    pub identity: Identity,
    /// Size of the whole `.apk` file, when known (index `S:`).
    pub size: Option<u64>,
    /// SHA-256 of the whole `.apk` file, when known (e.g. from a lockfile).
    pub sha256: Option<[u8; 32]>,
}

impl PackagePin {
    /// The pin an index entry implies: identity, name, version and size.
    pub fn from_entry(entry: &crate::index::IndexEntry) -> Self {
        PackagePin {
            name: entry.name.clone(),
            version: entry.version.clone(),
            identity: entry.identity,
            size: entry.size,
            sha256: None,
        }
    }
}

/// Whether a package must carry a signature by a trusted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignaturePolicy {
    /// A missing signature is an error.
    Required,
    /// Unsigned packages pass (their identity pin is the proof); a present
    /// signature must still verify with a trusted key.
    IfPresent,
    /// For repositories declared `allow_untrusted`: unsigned packages and packages signed
    /// only by unknown keys pass (the identity pin from the index is the proof); a bad
    /// signature by a trusted key still fails.
    Untrusted,
}

/// Names the package in errors: `package `tzdata-2023c-r0` (`url`)`, or
/// just the origin when nothing was pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub package: Option<String>,
    pub origin: String,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.package {
            Some(package) => write!(f, "package `{package}` (`{}`)", self.origin),
            None => write!(f, "package `{}`", self.origin),
        }
    }
}

/// A package that failed to read or verify.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error(
        "{subject}: wrong size: expected {expected} bytes, got {actual}; the download is \
         incomplete or not the pinned file: delete it and fetch again"
    )]
    WrongSize { subject: Subject, expected: u64, actual: u64 },
    #[error(
        "{subject}: wrong sha256: expected {expected}, got {actual}; the file is not the \
         pinned one: delete it and fetch again"
    )]
    WrongSha256 { subject: Subject, expected: String, actual: String },
    #[error("{subject}: not a gzip file (byte {offset}): an `.apk` starts with gzip members")]
    NotGzip { subject: Subject, offset: usize },
    #[error("{subject}: truncated file (the gzip member at byte {offset} ends early)")]
    Truncated { subject: Subject, offset: usize },
    #[error("{subject}: corrupt gzip member at byte {offset}: {message}")]
    CorruptGzip { subject: Subject, offset: usize, message: String },
    #[error("{subject}: the {member} member (byte {offset}) is not a tar stream: {message}")]
    NotTar { subject: Subject, member: &'static str, offset: usize, message: String },
    #[error("{subject}: the signature member also holds `{entry}`, which no signature covers")]
    UnsignedEntryInSignatureMember { subject: Subject, entry: String },
    #[error("{subject}: {source}")]
    SignatureEntry {
        subject: Subject,
        #[source]
        source: SignatureError,
    },
    #[error("{subject}: the control member must start with `.PKGINFO`, found {found}")]
    MissingPkgInfo { subject: Subject, found: String },
    #[error("{subject}: `.PKGINFO` line {line}: {message}")]
    PkgInfo { subject: Subject, line: usize, message: String },
    #[error("{subject}: no data after the control member: the file is truncated")]
    MissingData { subject: Subject },
    #[error(
        "{subject}: wrong identity: expected {expected}, got {actual}; the control member is \
         not the pinned package's: delete the file and fetch again"
    )]
    WrongIdentity { subject: Subject, expected: Identity, actual: Identity },
    #[error("{subject}: `.PKGINFO` says `{actual}`, expected `{expected}`")]
    WrongPackage { subject: Subject, expected: String, actual: String },
    #[error(
        "{subject}: missing signature: signatures are required; sign the package or allow \
         unsigned packages"
    )]
    MissingSignature { subject: Subject },
    #[error(
        "{subject}: signed only by keys that are not trusted: {}; add the signing key to the \
         keyring",
        keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
    )]
    UnknownSigningKey { subject: Subject, keys: Vec<KeyName> },
    #[error(
        "{subject}: bad {algorithm} signature by trusted key `{key}`: the control member was \
         altered or corrupted; fetch the file again"
    )]
    BadSignature { subject: Subject, key: KeyName, algorithm: SignatureAlgorithm },
    #[error(
        "{subject}: `.PKGINFO` says arch `{actual}`, but the lockfile pins it for `{expected}`; run `executor lock`"
    )]
    WrongArch { subject: Subject, expected: String, actual: String },
    #[error("{subject}: `.PKGINFO` records datahash {actual}, but the lockfile pins {expected}; run `executor lock`")]
    DatahashNotPinned { subject: Subject, expected: String, actual: String },
    #[error("{subject}: the lockfile's pin is unusable: {message}; run `executor lock`")]
    BadPin { subject: Subject, message: String },
    #[error("{subject}: `.PKGINFO` has no `datahash`, so the data cannot be verified")]
    MissingDatahash { subject: Subject },
    #[error(
        "{subject}: wrong datahash: `.PKGINFO` says {expected}, the data hashes to {actual}; \
         the data part was altered or truncated: delete the file and fetch again"
    )]
    WrongDatahash { subject: Subject, expected: String, actual: String },
}

/// The parsed `.PKGINFO` of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgInfo {
    /// `pkgname`
    pub name: PackageName,
    /// `pkgver`
    pub version: Version,
    /// `pkgdesc`
    pub description: Option<String>,
    pub url: Option<String>,
    /// `builddate`, unix seconds.
    pub build_date: Option<u64>,
    pub packager: Option<String>,
    /// `size`: installed size in bytes.
    pub size: Option<u64>,
    pub arch: Option<String>,
    pub origin: Option<String>,
    pub commit: Option<String>,
    pub maintainer: Option<String>,
    pub license: Option<String>,
    /// `depend`, repeatable.
    pub depends: Vec<Dependency>,
    /// `provides`, repeatable.
    pub provides: Vec<Provide>,
    /// `replaces`, repeatable.
    pub replaces: Vec<Dependency>,
    /// `triggers`, repeatable: directory globs.
    pub triggers: Vec<String>,
    pub install_if: Vec<Dependency>,
    pub provider_priority: Option<u64>,
    pub replaces_priority: Option<u64>,
    /// SHA-256 of the compressed data.
    pub datahash: Option<[u8; 32]>,
    /// Other keys, in file order, kept verbatim.
    pub unknown: Vec<(String, String)>,
}

impl PkgInfo {
    /// Parses `.PKGINFO` text. Errors are `(line, message)`.
    pub fn parse(text: &str) -> Result<PkgInfo, (usize, String)> {
        let mut single: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        let mut depends = Vec::new();
        let mut provides = Vec::new();
        let mut replaces = Vec::new();
        let mut triggers = Vec::new();
        let mut unknown = Vec::new();
        let dep_err = |line: usize, e: DependencyError| (line, e.to_string());
        for (number, raw) in text.lines().enumerate() {
            let line = number + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err((line, format!("expected `key = value`, found `{trimmed}`")));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "depend" => depends.extend(Dependency::parse_list(value).map_err(|e| dep_err(line, e))?),
                "provides" => provides.extend(Provide::parse_list(value).map_err(|e| dep_err(line, e))?),
                "replaces" => replaces.extend(Dependency::parse_list(value).map_err(|e| dep_err(line, e))?),
                "triggers" => triggers.extend(value.split_ascii_whitespace().map(str::to_owned)),
                "pkgname" | "pkgver" | "pkgdesc" | "url" | "builddate" | "packager" | "size" | "arch" | "origin"
                | "commit" | "maintainer" | "license" | "install_if" | "provider_priority" | "replaces_priority"
                | "datahash" => {
                    // As apk-tools (`read_info_line` -> `apk_pkg_add_info`): a single-valued key
                    // that appears again replaces the earlier value. Real packages do this (Wolfi
                    // packages with two `license` lines).
                    single.insert(key, (line, value));
                }
                _ => unknown.push((key.to_owned(), value.to_owned())),
            }
        }
        let text_of = |key: &str| single.get(key).map(|&(_, v)| v.to_owned());
        let number_of = |key: &str| -> Result<Option<u64>, (usize, String)> {
            single
                .get(key)
                .map(|&(line, v)| {
                    v.parse::<u64>().map_err(|_| (line, format!("`{key}` must be a non-negative integer, found `{v}`")))
                })
                .transpose()
        };
        let &(name_line, name) = single.get("pkgname").ok_or((0, "missing `pkgname`".to_owned()))?;
        let name = PackageName::new(name).map_err(|e| (name_line, e.to_string()))?;
        let &(version_line, version) = single.get("pkgver").ok_or((0, "missing `pkgver`".to_owned()))?;
        let version = Version::parse(version).map_err(|e: VersionError| (version_line, e.to_string()))?;
        let install_if = match single.get("install_if") {
            Some(&(line, v)) => Dependency::parse_list(v).map_err(|e| dep_err(line, e))?,
            None => Vec::new(),
        };
        let datahash = match single.get("datahash") {
            Some(&(line, v)) => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(v, &mut hash)
                    .map_err(|_| (line, format!("`datahash` must be 64 hex digits, found `{v}`")))?;
                Some(hash)
            }
            None => None,
        };
        Ok(PkgInfo {
            name,
            version,
            description: text_of("pkgdesc"),
            url: text_of("url"),
            build_date: number_of("builddate")?,
            packager: text_of("packager"),
            size: number_of("size")?,
            arch: text_of("arch"),
            origin: text_of("origin"),
            commit: text_of("commit"),
            maintainer: text_of("maintainer"),
            license: text_of("license"),
            depends,
            provides,
            replaces,
            triggers,
            install_if,
            provider_priority: number_of("provider_priority")?,
            replaces_priority: number_of("replaces_priority")?,
            datahash,
            unknown,
        })
    }
}

/// A package file split into its parts. Reading checks structure only; see
/// [`Package::verify`] for the trust checks.
#[derive(Debug, Clone)]
pub struct Package<'a> {
    bytes: &'a [u8],
    /// Invariant: `signature_member`, `control_member` and `data` are
    /// adjacent, in that order, and cover `bytes` entirely.
    signature_member: Option<Range<usize>>,
    control_member: Range<usize>,
    data: Range<usize>,
    signatures: Vec<Signature>,
    identity: Identity,
    info: PkgInfo,
    control_files: BTreeMap<String, Vec<u8>>,
}

/// A package that passed [`Package::verify`] or [`Package::verify_locked`]: the only way to
/// get one, and the only thing the installer accepts, so no unverified byte reaches a layer.
#[derive(Debug, Clone)]
pub struct VerifiedPackage<'a> {
    package: Package<'a>,
    /// The trusted key whose signature verified; `None` for an unsigned
    /// package accepted under [`SignaturePolicy::IfPresent`].
    signed_by: Option<KeyName>,
}

impl<'a> VerifiedPackage<'a> {
    /// The verified package.
    pub fn package(&self) -> &Package<'a> {
        &self.package
    }

    /// The trusted key whose signature verified; `None` for an unsigned package accepted
    /// by policy.
    pub fn signed_by(&self) -> Option<&KeyName> {
        self.signed_by.as_ref()
    }

    /// For tests of the installer, which feed it crafted packages: only with the `testkit`
    /// feature, which the product never enables.
    #[cfg(feature = "testkit")]
    pub fn assume_verified(package: Package<'a>) -> Self {
        VerifiedPackage { package, signed_by: None }
    }
}

/// Everything a lockfile pins about one `.apk`: a package is used only if its bytes match
/// every field. Plain data, so that it can travel in an action's key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockPin {
    pub name: String,
    pub version: String,
    /// APK arch the lockfile pinned it for (`.PKGINFO` must say it, or `noarch`).
    pub arch: String,
    /// `Q1...`
    pub identity: String,
    pub size: u64,
    /// Hex sha256 of the whole file.
    pub sha256: String,
    /// Hex sha256 of the data, as `.PKGINFO` records it.
    pub datahash: String,
}

impl LockPin {
    /// The key of a verdict on this pin's bytes under `keyring` and `policy`: equal keys
    /// mean the same bytes (by sha256 and size) found signed by the same keys under the same
    /// policy, with data matching their own datahash. Every other pinned figure (name,
    /// version, arch, identity, datahash) is compared with the bytes on every use, so one
    /// verdict serves every pin of the same file (a `noarch` package pinned for eight
    /// architectures is checked once).
    pub fn verdict_key(&self, keyring: &Keyring, policy: SignaturePolicy) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"executor apk verdict v2\0");
        h.update((self.sha256.len() as u64).to_be_bytes());
        h.update(self.sha256.as_bytes());
        h.update(self.size.to_be_bytes());
        h.update(keyring.fingerprint());
        h.update([match policy {
            SignaturePolicy::Required => 0u8,
            SignaturePolicy::IfPresent => 1,
            SignaturePolicy::Untrusted => 2,
        }]);
        h.finalize().into()
    }
}

/// Where verdicts of [`Package::verify_locked`] are remembered (the store), so a package is
/// fully verified once per (bytes, pin, keys) rather than on every use.
pub trait VerdictCache: Sync {
    /// Whether a verdict with this key was recorded.
    fn holds(&self, key: &[u8; 32]) -> bool;
    /// Records a verdict (best effort: a failure only costs a later re-verification).
    fn record(&self, key: &[u8; 32]);
}

/// No cache: verify every time.
pub struct NoVerdicts;

impl VerdictCache for NoVerdicts {
    fn holds(&self, _: &[u8; 32]) -> bool {
        false
    }
    fn record(&self, _: &[u8; 32]) {}
}

impl<'a> Package<'a> {
    /// Splits `bytes` into members and parses the signature and control
    /// members. `origin` (path or URL) names the file in errors.
    pub fn read(bytes: &'a [u8], origin: &str) -> Result<Self, PackageError> {
        Self::read_as(bytes, &Subject { package: None, origin: origin.to_owned() })
    }

    fn read_as(bytes: &'a [u8], subject: &Subject) -> Result<Self, PackageError> {
        let subject = || subject.clone();
        let gzip_err = |e: GzipError| match e {
            GzipError::NotGzip { offset } => PackageError::NotGzip { subject: subject(), offset },
            GzipError::Truncated { offset } => PackageError::Truncated { subject: subject(), offset },
            GzipError::Corrupt { offset, source } => {
                PackageError::CorruptGzip { subject: subject(), offset, message: source.to_string() }
            }
            too_large @ GzipError::TooLarge { offset, .. } => {
                PackageError::CorruptGzip { subject: subject(), offset, message: too_large.to_string() }
            }
        };
        let tar_err = |member, offset, e: std::io::Error| PackageError::NotTar {
            subject: subject(),
            member,
            offset,
            message: e.to_string(),
        };

        let limit = gzip::control_limit();
        let first = gzip::read_member(bytes, 0, gzip::limit_for(bytes, 0, limit)).map_err(gzip_err)?;
        let first_files = tar_member::read_files(&first.content).map_err(|e| tar_err("first", 0, e))?;
        let is_signature_member = first_files.first().is_some_and(|f| Signature::is_signature_entry(&f.path));
        let (signature_member, signatures, control, control_files) = if is_signature_member {
            let mut signatures = Vec::with_capacity(first_files.len());
            for file in first_files {
                if !Signature::is_signature_entry(&file.path) {
                    return Err(PackageError::UnsignedEntryInSignatureMember { subject: subject(), entry: file.path });
                }
                signatures.push(
                    Signature::from_entry(&file.path, file.content)
                        .map_err(|source| PackageError::SignatureEntry { subject: subject(), source })?,
                );
            }
            let control = gzip::read_member(bytes, first.range.end, limit).map_err(gzip_err)?;
            let files =
                tar_member::read_files(&control.content).map_err(|e| tar_err("control", control.range.start, e))?;
            (Some(first.range), signatures, control, files)
        } else {
            (None, Vec::new(), first, first_files)
        };

        let mut files = control_files.into_iter();
        let pkginfo = match files.next() {
            Some(file) if file.path == ".PKGINFO" => file.content,
            Some(file) => {
                return Err(PackageError::MissingPkgInfo { subject: subject(), found: format!("`{}`", file.path) })
            }
            None => return Err(PackageError::MissingPkgInfo { subject: subject(), found: "no files".to_owned() }),
        };
        let pkginfo_text = std::str::from_utf8(&pkginfo).map_err(|e| PackageError::PkgInfo {
            subject: subject(),
            line: 0,
            message: format!("not UTF-8 (byte {})", e.valid_up_to()),
        })?;
        let info = PkgInfo::parse(pkginfo_text).map_err(|(line, message)| PackageError::PkgInfo {
            subject: subject(),
            line,
            message,
        })?;
        let control_files = files.map(|f| (f.path, f.content)).collect();

        let data = control.range.end..bytes.len();
        if data.is_empty() {
            return Err(PackageError::MissingData { subject: subject() });
        }
        Ok(Package {
            bytes,
            signature_member,
            identity: Identity::of_control_member(&bytes[control.range.clone()]),
            control_member: control.range,
            data,
            signatures,
            info,
            control_files,
        })
    }

    /// Reads `bytes` and checks it against `pin`: whole-file size and
    /// SHA-256 (when pinned), structure, identity, name and version,
    /// signature (per `policy`, against `keyring`), then `datahash`.
    pub fn verify(
        bytes: &'a [u8],
        origin: &str,
        pin: &PackagePin,
        keyring: &Keyring,
        policy: SignaturePolicy,
    ) -> Result<VerifiedPackage<'a>, PackageError> {
        let expected_id = format!("{}-{}", pin.name, pin.version);
        let subject = Subject { package: Some(expected_id.clone()), origin: origin.to_owned() };
        if let Some(expected) = pin.size {
            let actual = bytes.len() as u64;
            if actual != expected {
                return Err(PackageError::WrongSize { subject, expected, actual });
            }
        }
        if let Some(expected) = pin.sha256 {
            let actual: [u8; 32] = Sha256::digest(bytes).into();
            if actual != expected {
                return Err(PackageError::WrongSha256 {
                    subject,
                    expected: format!("sha256:{}", hex::encode(expected)),
                    actual: format!("sha256:{}", hex::encode(actual)),
                });
            }
        }
        let package = Package::read_as(bytes, &subject)?;
        if package.identity != pin.identity {
            return Err(PackageError::WrongIdentity { subject, expected: pin.identity, actual: package.identity });
        }
        let actual_id = format!("{}-{}", package.info.name, package.info.version);
        if package.info.name != pin.name || package.info.version.as_str() != pin.version.as_str() {
            return Err(PackageError::WrongPackage { subject, expected: expected_id, actual: actual_id });
        }
        let signed_by = if package.signatures.is_empty() {
            if policy == SignaturePolicy::Required {
                return Err(PackageError::MissingSignature { subject });
            }
            None
        } else {
            match keyring.verify(&package.signatures, package.control_bytes()) {
                Ok(Trust::Verified { key, .. }) => Some(key),
                Ok(Trust::UnknownKeys(_)) if policy == SignaturePolicy::Untrusted => None,
                Ok(Trust::UnknownKeys(keys)) => return Err(PackageError::UnknownSigningKey { subject, keys }),
                Ok(Trust::Unsigned | Trust::Unverifiable) => return Err(PackageError::MissingSignature { subject }),
                Err(SignatureError::Bad { key, algorithm }) => {
                    return Err(PackageError::BadSignature { subject, key, algorithm })
                }
                Err(source) => return Err(PackageError::SignatureEntry { subject, source }),
            }
        };
        let Some(expected) = package.info.datahash else {
            return Err(PackageError::MissingDatahash { subject });
        };
        let actual: [u8; 32] = Sha256::digest(package.data()).into();
        if actual != expected {
            return Err(PackageError::WrongDatahash {
                subject,
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            });
        }
        Ok(VerifiedPackage { package, signed_by })
    }

    /// Reads `bytes` and checks it against every figure of a lockfile pin: size, sha256,
    /// identity, name, version, arch, signature (per `policy`, against `keyring`) and
    /// datahash. A verdict already in `verdicts` for the same pin, keys and policy skips
    /// the signature and datahash checks, never the size, sha256, identity, name, version
    /// and arch: those are cheap and tie the verdict to these bytes.
    pub fn verify_locked(
        bytes: &'a [u8],
        origin: &str,
        pin: &LockPin,
        keyring: &Keyring,
        policy: SignaturePolicy,
        verdicts: &dyn VerdictCache,
    ) -> Result<VerifiedPackage<'a>, PackageError> {
        let expected_id = format!("{}-{}", pin.name, pin.version);
        let subject = Subject { package: Some(expected_id.clone()), origin: origin.to_owned() };
        let bad_pin = |what: &str, e: String| PackageError::BadPin {
            subject: subject.clone(),
            message: format!("its {what} is invalid: {e}"),
        };
        let name = PackageName::new(&pin.name).map_err(|e| bad_pin("name", e.to_string()))?;
        let version = Version::parse(&pin.version).map_err(|e| bad_pin("version", e.to_string()))?;
        let identity = Identity::parse(&pin.identity).map_err(|e| bad_pin("identity", e.to_string()))?;
        let sha256: [u8; 32] = hex::decode(&pin.sha256)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad_pin("sha256", format!("`{}` is not 64 hex digits", pin.sha256)))?;
        let datahash: [u8; 32] = hex::decode(&pin.datahash)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad_pin("datahash", format!("`{}` is not 64 hex digits", pin.datahash)))?;
        let package_pin = PackagePin { name, version, identity, size: Some(pin.size), sha256: Some(sha256) };
        let key = pin.verdict_key(keyring, policy);
        let verified = if verdicts.holds(&key) {
            // Size and sha256 tie these bytes to the pin the verdict was made for.
            let actual = bytes.len() as u64;
            if actual != pin.size {
                return Err(PackageError::WrongSize { subject, expected: pin.size, actual });
            }
            let actual: [u8; 32] = Sha256::digest(bytes).into();
            if actual != sha256 {
                return Err(PackageError::WrongSha256 {
                    subject,
                    expected: format!("sha256:{}", pin.sha256),
                    actual: format!("sha256:{}", hex::encode(actual)),
                });
            }
            let package = Package::read_as(bytes, &subject)?;
            if package.identity != package_pin.identity {
                return Err(PackageError::WrongIdentity {
                    subject,
                    expected: package_pin.identity,
                    actual: package.identity,
                });
            }
            if package.info.name != package_pin.name || package.info.version.as_str() != pin.version {
                let actual = format!("{}-{}", package.info.name, package.info.version);
                return Err(PackageError::WrongPackage { subject, expected: expected_id, actual });
            }
            VerifiedPackage { package, signed_by: None }
        } else {
            Package::verify(bytes, origin, &package_pin, keyring, policy)?
        };
        if let Some(arch) = verified.package.info.arch.as_deref() {
            if arch != pin.arch && arch != "noarch" {
                return Err(PackageError::WrongArch { subject, expected: pin.arch.clone(), actual: arch.to_owned() });
            }
        }
        if verified.package.info.datahash != Some(datahash) {
            return Err(PackageError::DatahashNotPinned {
                subject,
                expected: pin.datahash.clone(),
                actual: verified.package.info.datahash.map(hex::encode).unwrap_or_else(|| "nothing".to_owned()),
            });
        }
        verdicts.record(&key);
        Ok(verified)
    }

    /// The identity computed from the control member.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    pub fn info(&self) -> &PkgInfo {
        &self.info
    }

    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Control files other than `.PKGINFO` (scripts, `.melange.yaml`), by name.
    pub fn control_files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.control_files
    }

    /// Byte range of the signature member, if any.
    pub fn signature_range(&self) -> Option<Range<usize>> {
        self.signature_member.clone()
    }

    /// Byte range of the control member.
    pub fn control_range(&self) -> Range<usize> {
        self.control_member.clone()
    }

    /// Byte range of the data (to the end of the file).
    pub fn data_range(&self) -> Range<usize> {
        self.data.clone()
    }

    /// The compressed control member: what signatures and the identity cover.
    pub fn control_bytes(&self) -> &'a [u8] {
        &self.bytes[self.control_member.clone()]
    }

    /// The compressed data: what `datahash` covers.
    pub fn data(&self) -> &'a [u8] {
        &self.bytes[self.data.clone()]
    }

    /// The data as a tar archive, decompressed across all its gzip members.
    pub fn data_archive(&self) -> tar::Archive<MultiGzDecoder<&'a [u8]>> {
        tar::Archive::new(gzip::multi_member_reader(self.data()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{Index, TrustPolicy};
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::{Read, Write};
    use std::path::Path;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/apk");
    const ALPINE_KEY: &str = "alpine-keys/alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub";
    const OTHER_ALPINE_KEY: &str = "alpine-keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";
    const BASELAYOUT: &str = "alpine-packages/aarch64/alpine-baselayout-3.2.0-r23.apk";
    const UNSIGNED: &str = "unsigned/perl-json-4.11-r0.apk";

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(Path::new(FIXTURES).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn keyring(keys: &[&str]) -> Keyring {
        let mut keyring = Keyring::new();
        for key in keys {
            keyring.insert_file(&Path::new(FIXTURES).join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        keyring
    }

    fn pin(name: &str, version: &str, identity: &str, size: Option<u64>) -> PackagePin {
        PackagePin {
            name: PackageName::new(name).expect("name"),
            version: Version::parse(version).expect("version"),
            identity: Identity::parse(identity).expect("identity"),
            size,
            sha256: None,
        }
    }

    /// Pin of alpine-baselayout 3.2.0-r23 as the rsa256-signed index lists it.
    fn baselayout_pin() -> PackagePin {
        pin("alpine-baselayout", "3.2.0-r23", "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=", Some(11012))
    }

    #[test]
    fn verifies_real_alpine_package() {
        let bytes = fixture(BASELAYOUT);
        let mut p = baselayout_pin();
        p.sha256 = Some(
            hex::decode("e6e3c36ed2f991bd0168ea076d30ff7a9fed0bfabeedade500d8aa949bba1835")
                .expect("hex")
                .try_into()
                .expect("32 bytes"),
        );
        let verified = Package::verify(&bytes, BASELAYOUT, &p, &keyring(&[ALPINE_KEY]), SignaturePolicy::Required)
            .expect("real package verifies");
        assert_eq!(
            verified.signed_by().map(KeyName::as_str),
            Some("alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub")
        );
        let pkg = verified.package();
        assert_eq!(pkg.signature_range(), Some(0..666));
        assert_eq!(pkg.control_range(), 666..2229);
        assert_eq!(pkg.data_range(), 2229..11012);
        let info = pkg.info();
        assert_eq!(info.name.as_str(), "alpine-baselayout");
        assert_eq!(info.packager.as_deref(), Some("Buildozer <alpine-devel@lists.alpinelinux.org>"));
        assert_eq!(info.size, Some(339968));
        assert_eq!(info.build_date, Some(1662926906));
        assert_eq!(
            info.depends.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["alpine-baselayout-data=3.2.0-r23", "/bin/sh", "so:libc.musl-aarch64.so.1"]
        );
        assert_eq!(info.provides.iter().map(ToString::to_string).collect::<Vec<_>>(), ["cmd:mkmntdirs=3.2.0-r23"]);
        let scripts: Vec<&str> = pkg.control_files().keys().map(String::as_str).collect();
        assert!(scripts.contains(&".pre-install"), "{scripts:?}");
        assert!(scripts.contains(&".post-install"), "{scripts:?}");

        // Stream the data: 83 entries (89 in the whole tar stream with the
        // signature and 5 control files), with PAX checksums.
        let mut archive = pkg.data_archive();
        let mut count = 0;
        let mut with_checksum = 0;
        let mut symlinks = 0;
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            count += 1;
            if entry.header().entry_type().is_symlink() {
                symlinks += 1;
            }
            if let Some(ext) = entry.pax_extensions().expect("pax") {
                for e in ext {
                    if e.expect("pax record").key() == Ok("APK-TOOLS.checksum.SHA1") {
                        with_checksum += 1;
                    }
                }
            }
        }
        assert_eq!(count, 83);
        assert!(symlinks > 0);
        assert!(with_checksum > 0);
    }

    #[test]
    fn verifies_every_indexed_fixture_package() {
        let repos: &[(&str, &str, &[&str])] = &[
            (
                "melange-rsa256/aarch64",
                "melange-rsa256/melange.rsa.pub",
                &["custom-ca-certs-1", "custom-ca-certs-2", "pretend-baselayout", "replayout"],
            ),
            (
                "melange-rsa256/x86_64",
                "melange-rsa256/melange.rsa.pub",
                &["custom-ca-certs-1", "custom-ca-certs-2", "pretend-baselayout", "replayout"],
            ),
            ("melange-sha1/aarch64", "melange-sha1/private_pkg_key.rsa.pub", &["package-x", "package-y"]),
            ("melange-sha1/x86_64", "melange-sha1/private_pkg_key.rsa.pub", &["package-x", "package-y"]),
        ];
        for &(repo, key, names) in repos {
            let keys = keyring(&[key]);
            let index =
                Index::read(&fixture(&format!("{repo}/APKINDEX.tar.gz")), repo, &keys, TrustPolicy::RequireTrusted)
                    .expect("index");
            for name in names {
                let entry = &index.by_name(name)[0];
                let path = format!("{repo}/{}", entry.file_name());
                let bytes = fixture(&path);
                let verified =
                    Package::verify(&bytes, &path, &PackagePin::from_entry(entry), &keys, SignaturePolicy::Required)
                        .unwrap_or_else(|e| panic!("{e}"));
                assert!(verified.signed_by().is_some(), "{path}");
            }
        }
    }

    #[test]
    fn segments_match_apko_lockfile() {
        // From apko-lock/apko.lock.json: pretend-baselayout x86_64, ranges are
        // inclusive there.
        let path = "melange-rsa256/x86_64/pretend-baselayout-1.0.0-r0.apk";
        let bytes = fixture(path);
        let pkg = Package::read(&bytes, path).expect("reads");
        assert_eq!(pkg.signature_range(), Some(0..647));
        assert_eq!(pkg.control_range(), 647..1629);
        assert_eq!(pkg.data_range(), 1629..2930);
        assert_eq!(pkg.identity().to_string(), "Q1m6wB0UFePGN8Drz82pC8y2uAiu8=");
        use base64::Engine as _;
        let data_sha = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(pkg.data()));
        assert_eq!(data_sha, "ckBapsaMu5EOb/e4Ei1s2l/+dZMEamHhUmaoJ8yeZwg=");
    }

    #[test]
    fn unsigned_package() {
        let bytes = fixture(UNSIGNED);
        let pkg = Package::read(&bytes, UNSIGNED).expect("reads");
        assert_eq!(pkg.signature_range(), None);
        assert_eq!(pkg.control_range(), 0..6189);
        assert!(pkg.control_files().contains_key(".melange.yaml"));
        let p = pin("perl-json", "4.11-r0", &pkg.identity().to_string(), Some(60263));
        let keys = keyring(&[ALPINE_KEY]);
        let err =
            Package::verify(&bytes, UNSIGNED, &p, &keys, SignaturePolicy::Required).expect_err("signature required");
        assert_eq!(
            err.to_string(),
            "package `perl-json-4.11-r0` (`unsigned/perl-json-4.11-r0.apk`): missing signature: \
             signatures are required; sign the package or allow unsigned packages"
        );
        let verified =
            Package::verify(&bytes, UNSIGNED, &p, &keys, SignaturePolicy::IfPresent).expect("identity pin suffices");
        assert_eq!(verified.signed_by(), None);
        let names: Vec<String> = verified
            .package
            .data_archive()
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").display().to_string())
            .collect();
        assert!(names.iter().any(|n| n.ends_with("JSON.pm")), "{names:?}");
    }

    /// A [`VerdictCache`] that remembers keys in memory and counts full verifications.
    #[derive(Default)]
    struct Verdicts {
        keys: std::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
        recorded: std::sync::atomic::AtomicUsize,
    }

    impl VerdictCache for Verdicts {
        fn holds(&self, key: &[u8; 32]) -> bool {
            self.keys.lock().expect("lock").contains(key)
        }
        fn record(&self, key: &[u8; 32]) {
            if self.keys.lock().expect("lock").insert(*key) {
                self.recorded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    #[test]
    fn one_verdict_serves_every_pin_of_the_same_bytes_and_every_figure_is_still_compared() {
        let bytes = fixture(BASELAYOUT);
        let info = Package::read(&bytes, BASELAYOUT).expect("reads").info().clone();
        let lock_pin = LockPin {
            name: "alpine-baselayout".into(),
            version: "3.2.0-r23".into(),
            arch: "aarch64".into(),
            identity: "Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=".into(),
            size: 11012,
            sha256: "e6e3c36ed2f991bd0168ea076d30ff7a9fed0bfabeedade500d8aa949bba1835".into(),
            datahash: hex::encode(info.datahash.expect("datahash")),
        };
        let keys = keyring(&[ALPINE_KEY]);
        let verdicts = Verdicts::default();
        let policy = SignaturePolicy::Required;
        Package::verify_locked(&bytes, BASELAYOUT, &lock_pin, &keys, policy, &verdicts).expect("verifies");
        Package::verify_locked(&bytes, BASELAYOUT, &lock_pin, &keys, policy, &verdicts).expect("verifies again");
        assert_eq!(verdicts.recorded.load(std::sync::atomic::Ordering::Relaxed), 1);

        // The verdict is found for any pin of these bytes, and each pinned figure is still
        // compared with them.
        let refused = |pin: &LockPin| {
            let key = pin.verdict_key(&keys, policy);
            assert!(verdicts.holds(&key), "the verdict serves {pin:?}");
            Package::verify_locked(&bytes, BASELAYOUT, pin, &keys, policy, &verdicts)
                .expect_err("a pinned figure differs from the bytes")
        };
        let arch = LockPin { arch: "x86_64".into(), ..lock_pin.clone() };
        assert!(matches!(refused(&arch), PackageError::WrongArch { .. }), "{:?}", refused(&arch));
        let name = LockPin { name: "alpine-baselayout-data".into(), ..lock_pin.clone() };
        assert!(matches!(refused(&name), PackageError::WrongPackage { .. }), "{:?}", refused(&name));
        let identity = LockPin { identity: "Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(), ..lock_pin.clone() };
        assert!(matches!(refused(&identity), PackageError::WrongIdentity { .. }), "{:?}", refused(&identity));
        let datahash = LockPin { datahash: "00".repeat(32), ..lock_pin.clone() };
        assert!(matches!(refused(&datahash), PackageError::DatahashNotPinned { .. }), "{:?}", refused(&datahash));

        // Other keys or another policy: no verdict, and the signature is checked again.
        let stranger = keyring(&[OTHER_ALPINE_KEY]);
        assert!(!verdicts.holds(&lock_pin.verdict_key(&stranger, policy)));
        assert!(!verdicts.holds(&lock_pin.verdict_key(&keys, SignaturePolicy::Untrusted)));
        let err = Package::verify_locked(&bytes, BASELAYOUT, &lock_pin, &stranger, policy, &verdicts)
            .expect_err("not signed by the stranger's key");
        assert!(err.to_string().contains("signed only by keys that are not trusted"), "{err}");
    }

    #[test]
    fn wolfi_package_signed_by_wolfi_key() {
        let path = "wolfi/x86_64/hello-wolfi-2.12-r1.apk";
        let bytes = fixture(path);
        let pkg = Package::read(&bytes, path).expect("reads");
        let p = pin("hello-wolfi", "2.12-r1", &pkg.identity().to_string(), None);
        let verified = Package::verify(
            &bytes,
            path,
            &p,
            &keyring(&["wolfi/keys/wolfi-signing.rsa.pub"]),
            SignaturePolicy::Required,
        )
        .expect("verifies");
        assert_eq!(verified.signed_by().map(KeyName::as_str), Some("wolfi-signing.rsa.pub"));
        let err = Package::verify(&bytes, path, &p, &keyring(&[ALPINE_KEY]), SignaturePolicy::IfPresent)
            .expect_err("unknown key");
        assert_eq!(
            err.to_string(),
            "package `hello-wolfi-2.12-r1` (`wolfi/x86_64/hello-wolfi-2.12-r1.apk`): signed only \
             by keys that are not trusted: `wolfi-signing.rsa.pub`; add the signing key to the \
             keyring"
        );
    }

    fn verify_err(bytes: &[u8], pin: &PackagePin, keys: &[&str]) -> PackageError {
        Package::verify(bytes, "x.apk", pin, &keyring(keys), SignaturePolicy::Required).expect_err("must fail")
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let bytes = fixture(BASELAYOUT);
        let good = baselayout_pin();
        let subject = "package `alpine-baselayout-3.2.0-r23` (`x.apk`)";

        // Signature by a key that is not configured.
        let err = verify_err(&bytes, &good, &[OTHER_ALPINE_KEY]);
        assert!(matches!(err, PackageError::UnknownSigningKey { .. }), "{err}");

        // Wrong size.
        let err = verify_err(&bytes[..bytes.len() - 1], &good, &[ALPINE_KEY]);
        assert_eq!(
            err.to_string(),
            format!(
                "{subject}: wrong size: expected 11012 bytes, got 11011; the download is \
                     incomplete or not the pinned file: delete it and fetch again"
            )
        );

        // Wrong sha256 of the whole file.
        let mut p = good.clone();
        p.sha256 = Some([0; 32]);
        let err = verify_err(&bytes, &p, &[ALPINE_KEY]);
        assert!(matches!(err, PackageError::WrongSha256 { .. }), "{err}");
        assert!(err.to_string().contains("expected sha256:0000"), "{err}");

        // Without a size pin: truncation inside the control member, and at
        // the end of the control member (no data).
        let mut unsized_pin = good.clone();
        unsized_pin.size = None;
        let err = verify_err(&bytes[..1000], &unsized_pin, &[ALPINE_KEY]);
        assert_eq!(err.to_string(), format!("{subject}: truncated file (the gzip member at byte 666 ends early)"));
        let err = verify_err(&bytes[..2229], &unsized_pin, &[ALPINE_KEY]);
        assert!(matches!(err, PackageError::MissingData { .. }), "{err}");
        // Truncated data is caught by the datahash.
        let err = verify_err(&bytes[..5000], &unsized_pin, &[ALPINE_KEY]);
        assert!(matches!(err, PackageError::WrongDatahash { .. }), "{err}");

        // Not gzip at all.
        let err = verify_err(b"<html>not found</html>", &unsized_pin, &[ALPINE_KEY]);
        assert_eq!(err.to_string(), format!("{subject}: not a gzip file (byte 0): an `.apk` starts with gzip members"));

        // Gzip, but not tar.
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&[7u8; 1024]).expect("write");
        let not_tar = enc.finish().expect("gzip");
        let err = verify_err(&not_tar, &unsized_pin, &[ALPINE_KEY]);
        assert!(matches!(err, PackageError::NotTar { .. }), "{err}");

        // Wrong identity: the pin of another package.
        let other = pin("alpine-baselayout", "3.2.0-r23", "Q1/JgpM8J6DWI/541tUX+uHEzSjqo=", Some(11012));
        let err = verify_err(&bytes, &other, &[ALPINE_KEY]);
        assert_eq!(
            err.to_string(),
            format!(
                "{subject}: wrong identity: expected Q1/JgpM8J6DWI/541tUX+uHEzSjqo=, got \
                     Q1LLq2qDNrS/qRnhxQ3hsY/sHbQnc=; the control member is not the pinned \
                     package's: delete the file and fetch again"
            )
        );

        // Right identity, wrong name in the pin.
        let mut renamed = good.clone();
        renamed.name = PackageName::new("alpine-baselayout-data").expect("name");
        let err = verify_err(&bytes, &renamed, &[ALPINE_KEY]);
        assert!(matches!(err, PackageError::WrongPackage { .. }), "{err}");

        // A flipped byte in the data: the datahash catches it.
        let mut corrupt = bytes.clone();
        corrupt[6000] ^= 0x01;
        let err = verify_err(&corrupt, &good, &[ALPINE_KEY]);
        assert!(err.to_string().starts_with(&format!("{subject}: wrong datahash: `.PKGINFO` says 1a3a8e47")), "{err}");

        // A flipped byte in the control member's gzip header: identity
        // changes (and the signature would fail).
        let mut header = bytes.clone();
        header[666 + 4] ^= 0xff;
        let err = verify_err(&header, &good, &[ALPINE_KEY]);
        assert!(matches!(err, PackageError::WrongIdentity { .. }), "{err}");
        let p = pin(
            "alpine-baselayout",
            "3.2.0-r23",
            &Identity::of_control_member(&header[666..2229]).to_string(),
            Some(11012),
        );
        let err = verify_err(&header, &p, &[ALPINE_KEY]);
        assert!(matches!(err, PackageError::BadSignature { .. }), "{err}");
        assert!(
            err.to_string().contains(
                "bad RSA/SHA-1 signature by trusted key `alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub`"
            ),
            "{err}"
        );
    }

    /// Builds a package whose data is split into two gzip members in the
    /// middle of a file's content, as parallel gzip writers do.
    #[test]
    fn data_across_gzip_members_streams_as_one_tar() {
        let gz = |data: &[u8]| {
            let mut enc = GzEncoder::new(Vec::new(), Compression::default());
            enc.write_all(data).expect("write");
            enc.finish().expect("gzip")
        };
        let content: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut data_tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        data_tar.append_data(&mut header, "usr/share/blob", &content[..]).expect("append");
        let data_tar = data_tar.into_inner().expect("tar");
        let (left, right) = data_tar.split_at(1500);
        let mut data = gz(left);
        data.extend(gz(right));

        let pkginfo = format!(
            "pkgname = blob\npkgver = 1.0-r0\ndepend = musl\ndepend = so:libc.musl-x86_64.so.1\n\
             triggers = /usr/share/blob/*\ndatahash = {}\n",
            hex::encode(Sha256::digest(&data))
        );
        // Control member: tar fragment without end-of-archive blocks.
        let mut control_tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(pkginfo.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        control_tar.append_data(&mut header, ".PKGINFO", pkginfo.as_bytes()).expect("append");
        let mut control_tar = control_tar.into_inner().expect("tar");
        control_tar.truncate(control_tar.len() - 1024);
        let control = gz(&control_tar);

        let mut apk = control.clone();
        apk.extend(&data);
        let p = pin("blob", "1.0-r0", &Identity::of_control_member(&control).to_string(), Some(apk.len() as u64));
        let verified =
            Package::verify(&apk, "blob.apk", &p, &Keyring::new(), SignaturePolicy::IfPresent).expect("verifies");
        let pkg = verified.package().clone();
        assert_eq!(pkg.info().triggers, ["/usr/share/blob/*"]);
        assert_eq!(gzip::member_ranges(pkg.data()).expect("members").len(), 2);
        let mut archive = pkg.data_archive();
        let mut entries = archive.entries().expect("entries");
        let mut entry = entries.next().expect("one entry").expect("entry");
        assert_eq!(entry.path().expect("path").to_str(), Some("usr/share/blob"));
        let mut read = Vec::new();
        entry.read_to_end(&mut read).expect("read across members");
        assert_eq!(read, content);
        drop(entry);
        assert!(entries.next().is_none());
    }

    #[test]
    fn pkginfo_errors() {
        let cases: &[(&str, (usize, &str))] = &[
            ("pkgver = 1\n", (0, "missing `pkgname`")),
            ("pkgname = a\n", (0, "missing `pkgver`")),
            ("pkgname = a\npkgver = 1\nsize = x\n", (3, "`size` must be a non-negative integer, found `x`")),
            ("pkgname = a\npkgver = 1\ndatahash = abc\n", (3, "`datahash` must be 64 hex digits, found `abc`")),
            ("pkgname = a\njunk\n", (2, "expected `key = value`, found `junk`")),
        ];
        for &(text, (line, message)) in cases {
            assert_eq!(PkgInfo::parse(text), Err((line, message.to_owned())), "{text}");
        }
        // A single-valued key given twice: the later value wins, as in apk-tools.
        let info = PkgInfo::parse("pkgname = a\npkgver = 1\nlicense = MIT\nlicense = Apache-2.0\npkgname = b\n")
            .expect("parses");
        assert_eq!((info.name.as_str(), info.license.as_deref()), ("b", Some("Apache-2.0")));
        let info = PkgInfo::parse("# c\npkgname = a\npkgver = 1\nurl = \nfoo = bar\n").expect("parses");
        assert_eq!(info.url.as_deref(), Some(""));
        assert_eq!(info.unknown, [("foo".to_owned(), "bar".to_owned())]);
    }
}
