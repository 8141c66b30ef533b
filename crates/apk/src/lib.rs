//! APK packages and repositories: reading and verifying what Alpine and
//! Wolfi publish, and choosing which packages an image gets.
//!
//! Vocabulary (used the same way in types, errors and docs):
//! - **package**: an `.apk` file, two or three concatenated gzip **members**:
//!   an optional **signature** member, the **control** member (`.PKGINFO`
//!   and scripts) and the **data** (the file tree, possibly several members);
//! - **identity**: `Q1` + base64 SHA-1 of the compressed control member, the
//!   `C:` of an index entry; it pins the control member, whose `datahash`
//!   pins the data ([`Identity`]);
//! - **index**: `APKINDEX.tar.gz`, the signed list of a repository's packages
//!   for one architecture; one package in it is an **entry** ([`Index`],
//!   [`IndexEntry`]);
//! - **key**: a trusted RSA public key known by its file name; the
//!   **keyring** holds them ([`Keyring`]);
//! - **version**: an apk version with apk-tools ordering ([`Version`]);
//! - **dependency**: an atom such as `so:libc.musl-aarch64.so.1` or
//!   `busybox>=1.35`, possibly a **conflict** (`!name`); a **provide** is a
//!   name a package answers to besides its own ([`Dependency`], [`Provide`]);
//! - **resolution**: the transitive closure of requested dependencies over
//!   index entries, in install order ([`resolve()`]).
//!
//! Nothing here touches the network or the disk (except [`Keyring`] file
//! helpers): callers pass bytes.

pub mod dependency;
pub mod gzip;
pub mod identity;
pub mod index;
pub mod key;
pub mod package;
pub mod resolve;
pub mod signature;
mod tar_member;
pub mod version;

pub use dependency::{Constraint, Dependency, DependencyError, Op, PackageName, Provide};
pub use gzip::GzipError;
pub use identity::{Identity, IdentityError};
pub use index::{Index, IndexEntry, IndexError, SkippedEntry, TrustPolicy};
pub use key::{KeyError, KeyName, Keyring, PublicKey};
pub use package::{
    LockPin, NoVerdicts, Package, PackageError, PackagePin, PkgInfo, SignaturePolicy, VerdictCache, VerifiedPackage,
};
pub use resolve::{resolve, Providers, Resolution, ResolveError};
pub use signature::{Signature, SignatureAlgorithm, SignatureError, Trust};
pub use version::{Version, VersionError};
