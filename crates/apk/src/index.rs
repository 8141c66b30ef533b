//! Reading an `APKINDEX.tar.gz`: the list of packages of one repository and
//! architecture.
//!
//! Layout: gzip member 1 holds the signature entries, member 2 holds
//! `DESCRIPTION` and `APKINDEX` (either order) and is what the signature
//! covers, compressed. A hand-made index may be a single member (signature
//! entries, if any, sit beside the content and cannot cover it); such an
//! index is untrusted.
//!
//! An index must be signed by a key of the [`Keyring`] unless the caller
//! passes [`TrustPolicy::AllowUntrusted`]; the result's [`Index::trust`]
//! then says what the signatures proved, so the caller can warn. A signature
//! by a trusted key that fails to verify is always an error.
//!
//! `APKINDEX` is text: entries separated by blank lines, each line `X:value`
//! (see [`IndexEntry`] for the fields). Entries whose version, dependency,
//! install-if or replaces strings are outside the grammar current apk-tools
//! accepts are not returned but listed in [`Index::skipped`] with the
//! reason; a provides entry outside the grammar is dropped from its package
//! and listed in [`Index::ignored_provides`] (the package stays installable
//! by its own name).

use std::fmt;

use crate::dependency::{Dependency, DependencyError, PackageName, Provide};
use crate::gzip::{self, GzipError};
use crate::identity::{Identity, IdentityError};
use crate::key::Keyring;
use crate::signature::{Signature, SignatureError, Trust};
use crate::tar_member;
use crate::version::{Version, VersionError};

/// Whether an index that no trusted key signed may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustPolicy {
    /// Refuse it (the default; apk's behaviour).
    RequireTrusted,
    /// Use it; [`Index::trust`] tells the caller to warn.
    AllowUntrusted,
}

/// An index that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index `{origin}`: {source}")]
    Gzip {
        origin: String,
        #[source]
        source: GzipError,
    },
    #[error("index `{origin}`: the gzip member at byte {offset} is not a tar stream: {message}")]
    NotTar { origin: String, offset: usize, message: String },
    #[error("index `{origin}`: {source}")]
    Signature {
        origin: String,
        #[source]
        source: SignatureError,
    },
    #[error(
        "index `{origin}` has a signature member but no signed member after it: the file is \
         truncated"
    )]
    MissingSignedMember { origin: String },
    #[error(
        "index `{origin}`: the signature member also holds `{entry}`, which no signature \
         covers"
    )]
    UnsignedEntryInSignatureMember { origin: String, entry: String },
    #[error("index `{origin}`: {count} bytes follow the signed member; no signature covers them")]
    TrailingData { origin: String, count: usize },
    #[error(
        "index `{origin}` is {trust}: add the repository's signing key to the keyring, or \
         allow untrusted indexes"
    )]
    Untrusted { origin: String, trust: Trust },
    #[error("index `{origin}` has no `APKINDEX` file")]
    MissingApkindex { origin: String },
    #[error("index `{origin}`: `APKINDEX` is not UTF-8 (byte {position})")]
    NotUtf8 { origin: String, position: usize },
    #[error("index `{origin}`, line {line}: expected `X:value`, found `{text}`")]
    MalformedLine { origin: String, line: usize, text: String },
    #[error("index `{origin}`, line {line}: field `{field}` appears twice in one entry")]
    RepeatedField { origin: String, line: usize, field: char },
    #[error("index `{origin}`, entry at line {line}: missing field `{field}:` ({what})")]
    MissingField { origin: String, line: usize, field: char, what: &'static str },
    #[error("index `{origin}`, line {line}: invalid `{field}:` value `{value}`: {message}")]
    InvalidField { origin: String, line: usize, field: char, value: String, message: String },
    #[error(
        "index `{origin}` lists `{name}-{version}` twice (lines {first_line} and \
         {second_line}): an index holds each package version once"
    )]
    Duplicate { origin: String, name: PackageName, version: Version, first_line: usize, second_line: usize },
}

/// One package of an index. Field letters are apk-tools'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// `C:` the package identity.
    pub identity: Identity,
    /// `P:`
    pub name: PackageName,
    /// `V:`
    pub version: Version,
    /// `A:` the apk architecture (`aarch64`, `x86_64`, `noarch`, ...).
    pub arch: Option<String>,
    /// `S:` size of the `.apk` file in bytes.
    pub size: Option<u64>,
    /// `I:` installed size in bytes.
    pub installed_size: Option<u64>,
    /// `T:`
    pub description: Option<String>,
    /// `U:`
    pub url: Option<String>,
    /// `L:` free text, often but not always SPDX.
    pub license: Option<String>,
    /// `o:` the source package.
    pub origin: Option<String>,
    /// `m:`
    pub maintainer: Option<String>,
    /// `t:` build time, unix seconds.
    pub build_time: Option<u64>,
    /// `c:` source commit.
    pub commit: Option<String>,
    /// `D:`
    pub depends: Vec<Dependency>,
    /// `p:`
    pub provides: Vec<Provide>,
    /// `i:` install this package when all of these are installed.
    pub install_if: Vec<Dependency>,
    /// `k:` provider priority: higher wins among providers of a name.
    pub provider_priority: Option<u64>,
    /// `r:` packages whose files this one may overwrite.
    pub replaces: Vec<Dependency>,
    /// `q:` replaces priority.
    pub replaces_priority: Option<u64>,
    /// Other fields, in file order, kept verbatim.
    pub unknown: Vec<(char, String)>,
}

impl IndexEntry {
    /// `name-version`, as in file names and messages.
    pub fn package_id(&self) -> String {
        format!("{}-{}", self.name, self.version)
    }

    /// The `.apk` file name in the repository: `<name>-<version>.apk`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.apk", self.name, self.version)
    }
}

/// An index entry left out because a field is outside the version or
/// dependency grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// Line of the entry's first field.
    pub line: usize,
    pub name: String,
    pub version: String,
    pub reason: SkipReason,
}

/// Why an entry was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    Version(VersionError),
    Field { field: char, error: DependencyError },
}

impl fmt::Display for SkippedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "skipped `{}-{}` (line {}): ", self.name, self.version, self.line)?;
        match &self.reason {
            SkipReason::Version(e) => write!(f, "{e}"),
            SkipReason::Field { field, error } => write!(f, "`{field}:` {error}"),
        }
    }
}

/// A provides entry dropped from its package because its version is outside
/// the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredProvide {
    pub line: usize,
    /// `name-version` of the package.
    pub package: String,
    pub provide: String,
    pub error: DependencyError,
}

impl fmt::Display for IgnoredProvide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ignored provide `{}` of `{}` (line {}): {}", self.provide, self.package, self.line, self.error)
    }
}

/// A read, checked index.
#[derive(Debug, Clone)]
pub struct Index {
    /// `DESCRIPTION`, e.g. `v3.17.3-216-g54a39ace82a`.
    pub description: Option<String>,
    /// What the signatures proved.
    pub trust: Trust,
    /// Entries left out, in file order.
    pub skipped: Vec<SkippedEntry>,
    /// Provides entries dropped from kept entries, in file order.
    pub ignored_provides: Vec<IgnoredProvide>,
    /// Sorted by name, then version; each (name, version) once.
    entries: Vec<IndexEntry>,
}

impl Index {
    /// Reads, verifies and parses `APKINDEX.tar.gz` bytes. `origin` (a URL
    /// or path) only names the index in errors.
    pub fn read(bytes: &[u8], origin: &str, keyring: &Keyring, policy: TrustPolicy) -> Result<Index, IndexError> {
        let gzip_err = |source| IndexError::Gzip { origin: origin.to_owned(), source };
        let tar_err = |offset, e: std::io::Error| IndexError::NotTar {
            origin: origin.to_owned(),
            offset,
            message: e.to_string(),
        };
        // Every member inflates within one budget for the whole index.
        let limit = gzip::index_limit();
        let remaining = |used: usize| gzip::Limit { bytes: limit.bytes.saturating_sub(used as u64), ..limit };
        let first = gzip::read_member(bytes, 0, gzip::limit_for(bytes, 0, limit)).map_err(gzip_err)?;
        let first_files = tar_member::read_files(&first.content).map_err(|e| tar_err(0, e))?;
        let is_signature_member = first_files.first().is_some_and(|f| Signature::is_signature_entry(&f.path));

        let (trust, files) = if is_signature_member {
            let mut signatures = Vec::with_capacity(first_files.len());
            for file in first_files {
                if !Signature::is_signature_entry(&file.path) {
                    return Err(IndexError::UnsignedEntryInSignatureMember {
                        origin: origin.to_owned(),
                        entry: file.path,
                    });
                }
                signatures.push(
                    Signature::from_entry(&file.path, file.content)
                        .map_err(|source| IndexError::Signature { origin: origin.to_owned(), source })?,
                );
            }
            if first.range.end >= bytes.len() {
                return Err(IndexError::MissingSignedMember { origin: origin.to_owned() });
            }
            let signed = gzip::read_member(bytes, first.range.end, remaining(first.content.len())).map_err(gzip_err)?;
            if signed.range.end != bytes.len() {
                return Err(IndexError::TrailingData {
                    origin: origin.to_owned(),
                    count: bytes.len() - signed.range.end,
                });
            }
            let trust = keyring
                .verify(&signatures, &bytes[signed.range.clone()])
                .map_err(|source| IndexError::Signature { origin: origin.to_owned(), source })?;
            let files = tar_member::read_files(&signed.content).map_err(|e| tar_err(signed.range.start, e))?;
            (trust, files)
        } else {
            // No separate signature member: whatever signature entries the
            // content holds cannot cover it.
            let mut files = first_files;
            let mut offset = first.range.end;
            let mut used = first.content.len();
            while offset < bytes.len() {
                let member = gzip::read_member(bytes, offset, remaining(used)).map_err(gzip_err)?;
                used += member.content.len();
                files.extend(tar_member::read_files(&member.content).map_err(|e| tar_err(offset, e))?);
                offset = member.range.end;
            }
            let has_signature = files.iter().any(|f| Signature::is_signature_entry(&f.path));
            let trust = if has_signature { Trust::Unverifiable } else { Trust::Unsigned };
            (trust, files)
        };

        if !trust.is_verified() && policy == TrustPolicy::RequireTrusted {
            return Err(IndexError::Untrusted { origin: origin.to_owned(), trust });
        }

        let mut description = None;
        let mut apkindex = None;
        for file in files {
            match file.path.as_str() {
                "DESCRIPTION" => description = Some(String::from_utf8_lossy(&file.content).trim().to_owned()),
                "APKINDEX" => apkindex = Some(file.content),
                _ => {}
            }
        }
        let apkindex = apkindex.ok_or_else(|| IndexError::MissingApkindex { origin: origin.to_owned() })?;
        let text = std::str::from_utf8(&apkindex)
            .map_err(|e| IndexError::NotUtf8 { origin: origin.to_owned(), position: e.valid_up_to() })?;
        let parsed = parse_text(text, origin)?;
        Ok(Index {
            description,
            trust,
            skipped: parsed.skipped,
            ignored_provides: parsed.ignored_provides,
            entries: parsed.entries,
        })
    }

    /// All entries, sorted by name then version.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The entries named `name`, lowest version first.
    pub fn by_name(&self, name: &str) -> &[IndexEntry] {
        let start = self.entries.partition_point(|e| e.name.as_str() < name);
        let len = self.entries[start..].partition_point(|e| e.name.as_str() == name);
        &self.entries[start..start + len]
    }

    /// The entry for `name` at exactly `version`.
    pub fn get(&self, name: &str, version: &Version) -> Option<&IndexEntry> {
        self.by_name(name).iter().find(|e| &e.version == version)
    }
}

/// The entries of an `APKINDEX` text.
#[derive(Debug, Clone)]
pub struct ParsedIndexText {
    /// Sorted by name, then version; each (name, version) once.
    pub entries: Vec<IndexEntry>,
    /// Entries left out, in file order.
    pub skipped: Vec<SkippedEntry>,
    /// Provides entries dropped from kept entries, in file order.
    pub ignored_provides: Vec<IgnoredProvide>,
}

/// Parses `APKINDEX` text (see [`IndexEntry`] for the fields). `origin` only
/// names the index in errors.
pub fn parse_text(text: &str, origin: &str) -> Result<ParsedIndexText, IndexError> {
    let mut entries: Vec<(usize, IndexEntry)> = Vec::with_capacity(text.len() / 400);
    let mut skipped = Vec::new();
    let mut ignored_provides = Vec::new();
    let mut builder = EntryBuilder::default();
    for (number, line) in text.split('\n').enumerate() {
        let line_no = number + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            builder.finish(origin, &mut entries, &mut skipped, &mut ignored_provides)?;
            continue;
        }
        let bytes = line.as_bytes();
        if bytes.len() < 2 || bytes[1] != b':' || !bytes[0].is_ascii_graphic() {
            return Err(IndexError::MalformedLine { origin: origin.to_owned(), line: line_no, text: line.to_owned() });
        }
        builder.field(origin, line_no, char::from(bytes[0]), &line[2..])?;
    }
    builder.finish(origin, &mut entries, &mut skipped, &mut ignored_provides)?;

    entries.sort_by(|(_, a), (_, b)| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    if let Some(pair) = entries.windows(2).find(|w| w[0].1.name == w[1].1.name && w[0].1.version == w[1].1.version) {
        let (first, second) = (&pair[0], &pair[1]);
        return Err(IndexError::Duplicate {
            origin: origin.to_owned(),
            name: first.1.name.clone(),
            version: first.1.version.clone(),
            first_line: first.0.min(second.0),
            second_line: first.0.max(second.0),
        });
    }
    Ok(ParsedIndexText { entries: entries.into_iter().map(|(_, e)| e).collect(), skipped, ignored_provides })
}

/// Fields of the entry being read. Invariant: `start_line` is 0 exactly when
/// no field has been seen since the last blank line.
#[derive(Default)]
struct EntryBuilder {
    start_line: usize,
    /// Bit per ASCII letter: which known fields were seen.
    seen: u128,
    identity: Option<Identity>,
    name: Option<String>,
    version_text: Option<String>,
    version: Option<Version>,
    arch: Option<String>,
    size: Option<u64>,
    installed_size: Option<u64>,
    description: Option<String>,
    url: Option<String>,
    license: Option<String>,
    origin: Option<String>,
    maintainer: Option<String>,
    build_time: Option<u64>,
    commit: Option<String>,
    depends: Vec<Dependency>,
    provides: Vec<Provide>,
    install_if: Vec<Dependency>,
    provider_priority: Option<u64>,
    replaces: Vec<Dependency>,
    replaces_priority: Option<u64>,
    unknown: Vec<(char, String)>,
    /// Provides entries that failed to parse: (line, text, error).
    bad_provides: Vec<(usize, String, DependencyError)>,
    /// The first grammar problem, which makes the entry skipped.
    skip: Option<SkipReason>,
}

impl EntryBuilder {
    fn field(&mut self, origin: &str, line: usize, field: char, value: &str) -> Result<(), IndexError> {
        if self.start_line == 0 {
            self.start_line = line;
        }
        let invalid = |message: String| IndexError::InvalidField {
            origin: origin.to_owned(),
            line,
            field,
            value: value.to_owned(),
            message,
        };
        let number =
            |value: &str| value.parse::<u64>().map_err(|_| invalid("expected a non-negative integer".to_owned()));
        let known = "CPVASITULomtcDpikrq".contains(field);
        if known {
            let bit = 1u128 << (field as u32 & 0x7f);
            if self.seen & bit != 0 {
                return Err(IndexError::RepeatedField { origin: origin.to_owned(), line, field });
            }
            self.seen |= bit;
        }
        let text = || Some(value.to_owned());
        match field {
            'C' => self.identity = Some(Identity::parse(value).map_err(|e: IdentityError| invalid(e.to_string()))?),
            'P' => {
                PackageName::new(value).map_err(|e| invalid(e.to_string()))?;
                // The name becomes part of the package's URL and file name.
                if value.contains(['/', '\\']) || value.starts_with('.') {
                    return Err(invalid(format!(
                        "package name `{value}` would leave the repository in the package's URL (`/`, `\\` or a leading `.`)"
                    )));
                }
                self.name = text();
            }
            'V' => {
                self.version_text = text();
                match Version::parse(value) {
                    Ok(v) => self.version = Some(v),
                    Err(e) => {
                        self.skip.get_or_insert(SkipReason::Version(e));
                    }
                }
            }
            'A' => self.arch = text(),
            'S' => self.size = Some(number(value)?),
            'I' => self.installed_size = Some(number(value)?),
            'T' => self.description = text(),
            'U' => self.url = text(),
            'L' => self.license = text(),
            'o' => self.origin = text(),
            'm' => self.maintainer = text(),
            't' => self.build_time = Some(number(value)?),
            'c' => self.commit = text(),
            'k' => self.provider_priority = Some(number(value)?),
            'q' => self.replaces_priority = Some(number(value)?),
            'D' => self.depends = self.list(field, value, Dependency::parse_list),
            'i' => self.install_if = self.list(field, value, Dependency::parse_list),
            'r' => self.replaces = self.list(field, value, Dependency::parse_list),
            'p' => {
                for atom in value.split_ascii_whitespace() {
                    match Provide::parse(atom) {
                        Ok(provide) => self.provides.push(provide),
                        Err(error) => self.bad_provides.push((line, atom.to_owned(), error)),
                    }
                }
            }
            _ => self.unknown.push((field, value.to_owned())),
        }
        Ok(())
    }

    /// Parses a list field; a grammar error marks the entry skipped.
    fn list<T>(&mut self, field: char, value: &str, parse: fn(&str) -> Result<Vec<T>, DependencyError>) -> Vec<T> {
        match parse(value) {
            Ok(list) => list,
            Err(error) => {
                self.skip.get_or_insert(SkipReason::Field { field, error });
                Vec::new()
            }
        }
    }

    /// Ends the current entry (if any) and resets the builder.
    fn finish(
        &mut self,
        origin: &str,
        entries: &mut Vec<(usize, IndexEntry)>,
        skipped: &mut Vec<SkippedEntry>,
        ignored_provides: &mut Vec<IgnoredProvide>,
    ) -> Result<(), IndexError> {
        if self.start_line == 0 {
            return Ok(());
        }
        let b = std::mem::take(self);
        let missing =
            |field, what| IndexError::MissingField { origin: origin.to_owned(), line: b.start_line, field, what };
        let name_text = b.name.clone().ok_or_else(|| missing('P', "package name"))?;
        let version_text = b.version_text.clone().ok_or_else(|| missing('V', "package version"))?;
        let identity = b.identity.ok_or_else(|| missing('C', "package identity"))?;
        if let Some(reason) = b.skip {
            skipped.push(SkippedEntry { line: b.start_line, name: name_text, version: version_text, reason });
            return Ok(());
        }
        let (Ok(name), Some(version)) = (PackageName::new(&name_text), b.version) else {
            // `field` validated both; unreachable in practice, but never panic.
            return Err(missing('V', "package version"));
        };
        for (line, provide, error) in b.bad_provides {
            ignored_provides.push(IgnoredProvide { line, package: format!("{name}-{version}"), provide, error });
        }
        entries.push((
            b.start_line,
            IndexEntry {
                identity,
                name,
                version,
                arch: b.arch,
                size: b.size,
                installed_size: b.installed_size,
                description: b.description,
                url: b.url,
                license: b.license,
                origin: b.origin,
                maintainer: b.maintainer,
                build_time: b.build_time,
                commit: b.commit,
                depends: b.depends,
                provides: b.provides,
                install_if: b.install_if,
                provider_priority: b.provider_priority,
                replaces: b.replaces,
                replaces_priority: b.replaces_priority,
                unknown: b.unknown,
            },
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PublicKey;
    use crate::signature::SignatureAlgorithm;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;
    use std::path::Path;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/apk");
    const ALPINE_KEY: &str = "alpine-keys/alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub";
    const OTHER_ALPINE_KEY: &str = "alpine-keys/alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub";
    const ALPINE_INDEX: &str = "alpine-v3.17/aarch64/APKINDEX.tar.gz";

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

    fn read(path: &str, keys: &[&str], policy: TrustPolicy) -> Result<Index, IndexError> {
        Index::read(&fixture(path), path, &keyring(keys), policy)
    }

    #[test]
    fn a_package_name_that_would_leave_the_repository_is_refused() {
        for name in ["../../../etc/x", "a/b", ".hidden", "a\\b"] {
            let text = format!("C:Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=\nP:{name}\nV:1.0-r0\n\n");
            let err = parse_text(&text, "APKINDEX").map(|_| ()).expect_err(name);
            assert!(err.to_string().contains("would leave the repository"), "{name}: {err}");
        }
    }

    #[test]
    fn reads_real_alpine_index() {
        let index = read(ALPINE_INDEX, &[ALPINE_KEY], TrustPolicy::RequireTrusted).expect("the real index verifies");
        assert_eq!(index.description.as_deref(), Some("v3.17.3-216-g54a39ace82a"));
        match &index.trust {
            Trust::Verified { key, algorithm } => {
                assert_eq!(key.as_str(), "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub");
                assert_eq!(*algorithm, SignatureAlgorithm::RsaSha1);
            }
            other => panic!("expected a verified index, got {other:?}"),
        }
        // 5,004 entries; one has a version current apk-tools rejects, two
        // others provide `pc:` names with such versions.
        assert_eq!(index.entries().len(), 5003);
        let skipped: Vec<String> = index.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            skipped,
            ["skipped `aspell-ru-0.99f7-r1` (line 16029): invalid version `0.99f7-r1` at byte 5: \
              digits may not follow a letter without a `.`; an apk version looks like \
              `1.2.3_rc1-r0`"]
        );
        let ignored: Vec<String> = index.ignored_provides.iter().map(ToString::to_string).collect();
        assert_eq!(ignored.len(), 2, "{ignored:#?}");
        assert!(
            ignored[0].starts_with("ignored provide `pc:jemalloc=5.3.0_` of `jemalloc-dev-5.3.0-r1` (line 48555): "),
            "{ignored:#?}"
        );
        assert!(
            ignored[1].starts_with("ignored provide `pc:librtmp=v2.4` of `rtmpdump-dev-2.4_git20190330-r2`"),
            "{ignored:#?}"
        );
        let dev = &index.by_name("rtmpdump-dev")[0];
        assert!(dev.provides.is_empty());
        assert!(index.entries().iter().all(|e| e.arch.as_deref() == Some("aarch64")));

        let tzdata = index.by_name("tzdata");
        assert_eq!(tzdata.len(), 1);
        let tz = &tzdata[0];
        assert_eq!(tz.identity.to_string(), "Q1jb30PjSe/IaKLU1FnoZ/0Kgq7Fs=");
        assert_eq!(tz.version.as_str(), "2023c-r0");
        assert_eq!(tz.size, Some(402779));
        assert_eq!(tz.installed_size, Some(3141632));
        assert_eq!(tz.license.as_deref(), Some("Public-Domain"));
        assert_eq!(tz.build_time, Some(1680044278));
        assert_eq!(tz.commit.as_deref(), Some("f0fc0d47fb725b98cc2cdbe8894f6df648aa32c5"));
        assert_eq!(tz.file_name(), "tzdata-2023c-r0.apk");

        let musl = &index.by_name("musl")[0];
        assert_eq!(musl.maintainer.as_deref(), Some("Timo Teräs <timo.teras@iki.fi>"));
        assert_eq!(musl.provides.iter().map(ToString::to_string).collect::<Vec<_>>(), ["so:libc.musl-aarch64.so.1=1"]);
        let layout = &index.by_name("alpine-baselayout")[0];
        assert_eq!(
            layout.depends.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["alpine-baselayout-data=3.4.0-r0", "/bin/sh"]
        );
        assert!(index.entries().iter().any(|e| e.provider_priority.is_some()));
        assert!(index.entries().iter().any(|e| !e.install_if.is_empty()));
        let version = Version::parse("1.35.0-r29").expect("version");
        assert!(index.get("busybox", &version).is_some());
        assert!(index.by_name("no-such-package").is_empty());
        assert!(index.entries().windows(2).all(|w| (&w[0].name, &w[0].version) < (&w[1].name, &w[1].version)));
    }

    #[test]
    fn reads_every_fixture_index_with_its_key() {
        let cases: &[(&str, &str, SignatureAlgorithm, usize)] = &[
            ("rsa256-signed/APKINDEX.tar.gz", "rsa256-signed/test-rsa256.rsa.pub", SignatureAlgorithm::RsaSha256, 1),
            (
                "melange-rsa256/aarch64/APKINDEX.tar.gz",
                "melange-rsa256/melange.rsa.pub",
                SignatureAlgorithm::RsaSha256,
                4,
            ),
            (
                "melange-rsa256/x86_64/APKINDEX.tar.gz",
                "melange-rsa256/melange.rsa.pub",
                SignatureAlgorithm::RsaSha256,
                4,
            ),
            (
                "melange-sha1/aarch64/APKINDEX.tar.gz",
                "melange-sha1/private_pkg_key.rsa.pub",
                SignatureAlgorithm::RsaSha1,
                2,
            ),
            (
                "melange-sha1/x86_64/APKINDEX.tar.gz",
                "melange-sha1/private_pkg_key.rsa.pub",
                SignatureAlgorithm::RsaSha1,
                2,
            ),
            ("wolfi/x86_64/APKINDEX.tar.gz", "wolfi/keys/wolfi-signing.rsa.pub", SignatureAlgorithm::RsaSha1, 47),
        ];
        for &(path, key, algorithm, count) in cases {
            let index =
                read(path, &[key, ALPINE_KEY], TrustPolicy::RequireTrusted).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(matches!(&index.trust, Trust::Verified { algorithm: a, .. } if *a == algorithm), "{path}");
            assert_eq!(index.entries().len(), count, "{path}");
            assert!(index.skipped.is_empty(), "{path}");
        }
    }

    #[test]
    fn refuses_index_signed_by_another_key() {
        let err = read(ALPINE_INDEX, &[OTHER_ALPINE_KEY], TrustPolicy::RequireTrusted).expect_err("wrong key");
        assert_eq!(
            err.to_string(),
            "index `alpine-v3.17/aarch64/APKINDEX.tar.gz` is signed only by keys that are not \
             trusted: `alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub`: add the \
             repository's signing key to the keyring, or allow untrusted indexes"
        );
        let index = read(ALPINE_INDEX, &[OTHER_ALPINE_KEY], TrustPolicy::AllowUntrusted)
            .expect("allowed when untrusted is allowed");
        assert!(matches!(index.trust, Trust::UnknownKeys(ref keys) if keys.len() == 1));
        assert_eq!(index.entries().len(), 5003);
    }

    #[test]
    fn detects_corruption_and_truncation() {
        let bytes = fixture("melange-rsa256/aarch64/APKINDEX.tar.gz");
        let keys = keyring(&["melange-rsa256/melange.rsa.pub"]);
        let members = gzip::member_ranges(&bytes).expect("members");
        assert_eq!(members.len(), 2);

        // A flipped byte inside the signed member's deflate data: either
        // gzip notices (CRC) or the signature does; both are errors.
        let mut corrupt = bytes.clone();
        let mid = (members[1].start + members[1].end) / 2;
        corrupt[mid] ^= 0x01;
        let err =
            Index::read(&corrupt, "corrupt", &keys, TrustPolicy::AllowUntrusted).expect_err("corruption detected");
        assert!(matches!(err, IndexError::Gzip { .. } | IndexError::Signature { .. }), "{err}");

        // A changed byte in the signed member's gzip header (the mtime) still
        // decompresses fine, so only the signature catches it.
        let mut header = bytes.clone();
        header[members[1].start + 4] ^= 0xff;
        let err = Index::read(&header, "header", &keys, TrustPolicy::AllowUntrusted).expect_err("signature catches it");
        assert_eq!(
            err.to_string(),
            "index `header`: bad RSA/SHA-256 signature by trusted key `melange.rsa.pub`: the \
             signed bytes were altered or corrupted; fetch the file again"
        );

        let err =
            Index::read(&bytes[..bytes.len() - 3], "cut", &keys, TrustPolicy::RequireTrusted).expect_err("truncated");
        assert!(matches!(err, IndexError::Gzip { source: GzipError::Truncated { .. }, .. }), "{err}");
        let err = Index::read(&bytes[..members[0].end], "cut", &keys, TrustPolicy::RequireTrusted)
            .expect_err("no signed member");
        assert!(matches!(err, IndexError::MissingSignedMember { .. }), "{err}");
        let err = Index::read(b"APKINDEX", "plain", &keys, TrustPolicy::RequireTrusted).expect_err("not gzip");
        assert_eq!(err.to_string(), "index `plain`: not gzip data at byte 0 (expected the bytes 1f 8b)");

        let mut trailing = bytes.clone();
        trailing.extend_from_slice(&bytes[members[1].clone()]);
        let err = Index::read(&trailing, "extra", &keys, TrustPolicy::AllowUntrusted).expect_err("trailing member");
        assert!(matches!(err, IndexError::TrailingData { .. }), "{err}");
    }

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *content).expect("append to memory");
        }
        let tar = builder.into_inner().expect("finish tar");
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&tar).expect("write to memory");
        enc.finish().expect("finish gzip")
    }

    const SMALL_INDEX: &str = "C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nP:a\nV:1.0-r0\nA:x86_64\nD:b>=2 so:libc.so.6\nZ:kept\n\nC:Q1ZfOyBH7XWYFHrZw8vrXYPABkX2g=\nP:b\nV:2.0-r0\nk:10\np:so:libc.so.6=6 cmd:b\n";

    #[test]
    fn single_member_index_is_untrusted() {
        let bytes = tar_gz(&[
            ("DESCRIPTION", b"hand made"),
            (".SIGN.RSA.alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub", b"not a real signature"),
            ("APKINDEX", SMALL_INDEX.as_bytes()),
        ]);
        let keys = keyring(&[ALPINE_KEY]);
        let err =
            Index::read(&bytes, "hand.tar.gz", &keys, TrustPolicy::RequireTrusted).expect_err("cannot be verified");
        assert_eq!(
            err.to_string(),
            "index `hand.tar.gz` is signed, but the signature shares a gzip member with the \
             content it should cover: add the repository's signing key to the keyring, or \
             allow untrusted indexes"
        );
        let index = Index::read(&bytes, "hand.tar.gz", &keys, TrustPolicy::AllowUntrusted).expect("allowed");
        assert_eq!(index.trust, Trust::Unverifiable);
        assert_eq!(index.description.as_deref(), Some("hand made"));
        let a = &index.by_name("a")[0];
        assert_eq!(a.unknown, [('Z', "kept".to_owned())]);
        assert_eq!(a.arch.as_deref(), Some("x86_64"));
        assert_eq!(index.by_name("b")[0].provider_priority, Some(10));

        let unsigned = tar_gz(&[("APKINDEX", SMALL_INDEX.as_bytes())]);
        let err = Index::read(&unsigned, "u", &keys, TrustPolicy::RequireTrusted).expect_err("unsigned");
        assert!(matches!(err, IndexError::Untrusted { trust: Trust::Unsigned, .. }), "{err}");
        let no_index = tar_gz(&[("DESCRIPTION", b"x")]);
        let err = Index::read(&no_index, "n", &keys, TrustPolicy::AllowUntrusted).expect_err("missing");
        assert_eq!(err.to_string(), "index `n` has no `APKINDEX` file");
    }

    #[test]
    fn text_errors_name_the_line() {
        let cases: &[(&str, &str)] = &[
            (
                "C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nP:a\nV:1\n\nC:Q1ZfOyBH7XWYFHrZw8vrXYPABkX2g=\nP:a\nV:1\n",
                "index `t` lists `a-1` twice (lines 1 and 5): an index holds each package version once",
            ),
            ("P:a\nV:1\n", "index `t`, entry at line 1: missing field `C:` (package identity)"),
            ("C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nV:1\n", "index `t`, entry at line 1: missing field `P:` (package name)"),
            ("C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nP:a\nV:1\nS:big\n", "index `t`, line 4: invalid `S:` value `big`: expected a non-negative integer"),
            ("C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nP:a\nP:b\n", "index `t`, line 3: field `P` appears twice in one entry"),
            ("C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nP:a\nno colon\n", "index `t`, line 3: expected `X:value`, found `no colon`"),
            ("C:Q1short\nP:a\nV:1\n", "index `t`, line 1: invalid `C:` value `Q1short`: invalid package identity `Q1short`: expected `Q1` followed by the base64 of a 20-byte SHA-1 (28 characters)"),
        ];
        for &(text, message) in cases {
            let err = parse_text(text, "t").expect_err(message);
            assert_eq!(err.to_string(), message);
        }
        let parsed = parse_text("C:Q1/JgpM8J6DWI/541tUX+uHEzSjqo=\nP:a\nV:1\nD:b=1.0bc\n", "t").expect("skips");
        assert!(parsed.entries.is_empty());
        assert_eq!(
            parsed.skipped[0].to_string(),
            "skipped `a-1` (line 1): `D:` invalid version in `b=1.0bc`: invalid version `1.0bc` \
             at byte 4: a letter may only follow a number; an apk version looks like `1.2.3_rc1-r0`"
        );
    }

    #[test]
    fn keys_from_pem_text() {
        let pem = std::fs::read_to_string(Path::new(FIXTURES).join("rsa256-signed/test-rsa256.rsa.pub")).expect("key");
        let mut keys = Keyring::new();
        keys.insert(PublicKey::from_pem("test-rsa256.rsa.pub", &pem).expect("pem")).expect("insert");
        let index =
            Index::read(&fixture("rsa256-signed/APKINDEX.tar.gz"), "rsa256", &keys, TrustPolicy::RequireTrusted)
                .expect("verifies");
        assert!(index.trust.is_verified());
    }
}
