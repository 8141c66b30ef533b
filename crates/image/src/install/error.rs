//! [`InstallError`]: everything that can go wrong while laying out an image root.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::layer::LayerError;

/// Who asked for the entry that failed: names the culprit in every error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A package, as `name-version`.
    Package(String),
    /// A file, directory or symlink the caller added ([`crate::install::Installer::add_file`]...).
    Extra,
    /// An account the caller added.
    Accounts,
    /// The apk database and configuration written by [`crate::install::Installer::finish`].
    Database,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Package(id) => write!(f, "package `{id}`"),
            Subject::Extra => f.write_str("extra files"),
            Subject::Accounts => f.write_str("accounts"),
            Subject::Database => f.write_str("apk database"),
        }
    }
}

/// Why a path is refused. None of these is ever written to the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    #[error("absolute paths are not allowed in package data")]
    Absolute,
    #[error("`..` components would leave the image root")]
    DotDot,
    #[error("it contains a NUL byte")]
    Nul,
    #[error("it is not UTF-8")]
    NotUtf8,
    #[error("it names the image root itself")]
    Root,
    #[error("{0}")]
    Invalid(String),
    #[error("it goes through symlink `{link}` -> `{target}`, which leads outside the image root")]
    ThroughSymlink { link: String, target: String },
    #[error("too many levels of symlinks at `{link}`")]
    SymlinkLoop { link: String },
    #[error("its target `{target}` leads outside the image root")]
    SymlinkTargetEscapes { target: String },
    #[error("hard link target `{target}`: {reason}")]
    HardLinkTarget { target: String, reason: Box<Unsafe> },
    #[error("it is a hard link to `{target}`, which is not in the image")]
    HardLinkMissing { target: String },
    #[error("it is a hard link to `{target}`, which is a {kind}; hard links must point to regular files")]
    HardLinkNotFile { target: String, kind: &'static str },
}

/// One error enum for the `install` area. Messages are lowercase, name the package
/// (`name-version`) and the path in backticks, and say how to fix the input where there is
/// a fix. All of them are input errors (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// A hostile or malformed path; nothing was written for it.
    #[error("{subject}: refusing `{path}`: {reason}")]
    UnsafePath { subject: Subject, path: String, reason: Unsafe },

    /// Two packages install different things at one path, and neither `replaces` nor a
    /// shared `origin` says which one wins.
    #[error(
        "package `{package}`: `{path}` is also installed by `{existing}`, {difference}; `{package}` does \
         not replace `{existing}` and has a different origin: remove one of them, or make the later \
         one declare `replaces = {existing_name}`"
    )]
    Conflict {
        /// The package being installed (`name-version`).
        package: String,
        /// The package that installed the path first (`name-version`).
        existing: String,
        /// The first package's name, for the suggested fix.
        existing_name: String,
        /// The tree path.
        path: String,
        /// What differs: `with different content`, `as a symlink instead of a regular file`...
        difference: String,
    },

    /// One package lists a path twice with different entries.
    #[error("package `{package}`: `{path}` appears twice in its data, {difference}")]
    Duplicate { package: String, path: String, difference: String },

    /// A file's content does not match the `APK-TOOLS.checksum.SHA1` the package records.
    #[error(
        "package `{package}`: `{path}` has sha1 {actual}, but the package records \
         {expected}: the package is corrupt or was built wrongly"
    )]
    ChecksumMismatch { package: String, path: String, expected: String, actual: String },

    /// An entry type apk does not install (sparse files, GNU extensions...).
    #[error("package `{package}`: `{path}` is a tar entry of type `{kind}`, which apk does not install")]
    UnsupportedEntry { package: String, path: String, kind: String },

    /// A tar field that does not fit: an owner id above `u32`, a bad checksum record.
    #[error("package `{package}`: `{path}`: {message}")]
    BadField { package: String, path: String, message: String },

    /// The package is for another architecture.
    #[error(
        "package `{package}` is built for `{arch}`, but the image is `{expected}`: lock the \
         packages for `{expected}`"
    )]
    WrongArch { package: String, arch: String, expected: String },

    /// The data could not be read (corrupt gzip or tar).
    #[error("{subject}: cannot read the data: {source}")]
    Read {
        subject: Subject,
        #[source]
        source: io::Error,
    },

    /// The spool file that holds file contents until the layer is written could not be
    /// created or written (a full disk, a missing scratch directory).
    #[error("cannot write the installer's spool file in `{}`: {source}", dir.display())]
    Spool {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A package field the apk database cannot hold.
    #[error(transparent)]
    DatabaseField(#[from] crate::install::database::FieldError),

    /// The layer tree refused an entry (a path below a regular file, a mode out of range...).
    #[error("{subject}: {source}")]
    Layer {
        subject: Subject,
        #[source]
        source: LayerError,
    },

    /// An account whose name or id is already taken with other values.
    #[error("cannot add {kind} `{name}` ({ids}): `{file}` already has `{existing}`")]
    AccountConflict {
        /// `user` or `group`.
        kind: &'static str,
        name: String,
        /// `uid:gid` of a user, `gid` of a group.
        ids: String,
        /// `/etc/passwd` or `/etc/group`.
        file: &'static str,
        /// The line that is in the way.
        existing: String,
    },

    /// An account field that cannot be written to `/etc/passwd` or `/etc/group`.
    #[error("invalid {field} `{value}` for {kind} `{name}`: {reason}")]
    InvalidAccountField { kind: &'static str, name: String, field: &'static str, value: String, reason: &'static str },

    /// A home directory path that is taken by something else.
    #[error("cannot create the home directory `{home}` of user `{name}`: it is a {kind} in the image")]
    HomeNotDirectory { name: String, home: String, kind: &'static str },

    /// A key file name that is not a single path component.
    #[error("invalid key name `{name}`: it must be a file name such as `alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub`")]
    InvalidKeyName { name: String },
}
