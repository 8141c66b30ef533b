//! The one error type of the `oci` module.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

/// Everything that can go wrong building OCI documents or reading and writing a layout.
/// Messages are lowercase and name the file, digest or setting involved.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] executor_base::io::PathError),

    /// Bytes did not hash to the digest they were named by.
    #[error("digest mismatch for `{what}`: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The file or blob checked.
        what: String,
        /// The digest the bytes were named by.
        expected: Digest,
        /// The digest of the bytes.
        actual: Digest,
    },

    /// A blob's length differs from its descriptor's `size`.
    #[error("size mismatch for `{what}`: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob checked.
        what: String,
        /// The descriptor's size.
        expected: u64,
        /// The blob's length.
        actual: u64,
    },

    /// A document could not be serialized (a bug: the inputs are all strings and numbers).
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        /// The document: `image config`, ...
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A file of a layout is not the JSON document it should be.
    #[error("invalid {what} `{path}`: {source}")]
    Parse {
        /// The document expected: `image manifest`, ...
        what: &'static str,
        /// The file.
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// An `oci-spec` builder rejected its input (a bug: every required field is set).
    #[error("cannot build {what}: {source}")]
    Spec {
        /// The document: `image manifest`, ...
        what: &'static str,
        #[source]
        source: oci_spec::OciSpecError,
    },

    /// The build epoch has no RFC 3339 form.
    #[error("build epoch {seconds} is after 9999-12-31T23:59:59Z, which RFC 3339 cannot express")]
    EpochOutOfRange {
        /// The epoch, in seconds since 1970.
        seconds: u64,
    },

    /// An `env` key that cannot be written as `KEY=value`.
    #[error("invalid environment variable name `{key}`: {reason}")]
    InvalidEnv {
        /// The key as given.
        key: String,
        /// Why it is invalid.
        reason: &'static str,
    },

    /// A name that is not a valid `org.opencontainers.image.ref.name`.
    #[error(
        "invalid image ref name `{name}`: use letters and digits separated by one of `-._:@+`, `--` or `/`, \
         like `latest` or `v1.2`"
    )]
    InvalidRefName {
        /// The name as given.
        name: String,
    },

    /// A document is for another platform than the one being built or read.
    #[error("{what} is for `{found}`, not `{expected}`")]
    WrongPlatform {
        /// The document: `base image config`, a file path, ...
        what: String,
        /// The platform wanted, `linux/arm64`.
        expected: String,
        /// The platform found.
        found: String,
    },

    /// Two index entries for one architecture.
    #[error("two manifests for platform `{platform}` in one image index")]
    DuplicatePlatform {
        /// The platform, `linux/amd64`.
        platform: String,
    },

    /// An image index has no manifest for the platform asked for.
    #[error("image index `{path}` has no manifest for `{platform}` (it has: {available})")]
    NoSuchPlatform {
        /// The index blob.
        path: PathBuf,
        /// The platform asked for.
        platform: String,
        /// The platforms it has, comma-separated.
        available: String,
    },

    /// A layout's `index.json` has no image with the ref name asked for.
    #[error("layout `{dir}` has no image named `{ref_name}`{hint}")]
    RefNotFound {
        /// The layout directory.
        dir: PathBuf,
        /// The ref name asked for.
        ref_name: String,
        /// `, did you mean ...?` or the names it has.
        hint: String,
    },

    /// A layout holds several images and none was named.
    #[error("layout `{dir}` holds {count} images; name one of them (ref names: {names})")]
    AmbiguousRef {
        /// The layout directory.
        dir: PathBuf,
        /// How many descriptors `index.json` has.
        count: usize,
        /// Their ref names, comma-separated.
        names: String,
    },

    /// A descriptor's media type is not one this module can follow.
    #[error("unsupported media type `{media_type}` for {what}")]
    UnsupportedMediaType {
        /// Where the descriptor was found.
        what: String,
        /// The media type.
        media_type: String,
    },

    /// A descriptor's digest is not sha256.
    #[error("unsupported digest `{digest}` in {what}: only sha256 is supported")]
    UnsupportedDigest {
        /// Where the descriptor was found.
        what: String,
        /// The digest as written.
        digest: String,
    },

    /// A descriptor points at a blob the layout does not have.
    #[error("blob {digest} referenced by {referenced_by} is missing from layout `{dir}`")]
    MissingBlob {
        /// The layout directory.
        dir: PathBuf,
        /// The blob's digest.
        digest: Digest,
        /// The document that references it.
        referenced_by: String,
    },

    /// `oci-layout` declares a version other than 1.0.0.
    #[error("unsupported image layout version `{found}` in `{path}`: expected `1.0.0`")]
    LayoutVersion {
        /// The `oci-layout` file.
        path: PathBuf,
        /// The version it declares.
        found: String,
    },

    /// An image config's `rootfs.diff_ids` do not match its manifest's layers.
    #[error("{what} lists {diff_ids} diff_ids for {layers} layers")]
    DiffIdCount {
        /// The config.
        what: String,
        /// `rootfs.diff_ids` length.
        diff_ids: usize,
        /// Manifest layer count.
        layers: usize,
    },

    /// Image indexes nested deeper than reading allows.
    #[error("image indexes in layout `{dir}` are nested more than {max} deep")]
    TooDeep {
        /// The layout directory.
        dir: PathBuf,
        /// The nesting limit.
        max: usize,
    },
}

impl OciError {
    /// An [`OciError::Io`] for `path`.
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> OciError {
        let path = path.into();
        move |source| OciError::Io(executor_base::io::PathError::new(what, path, source))
    }

    /// An [`OciError::Serialize`] for `what`.
    pub(crate) fn serialize(what: &'static str) -> impl FnOnce(serde_json::Error) -> OciError {
        move |source| OciError::Serialize { what, source }
    }

    /// An [`OciError::Spec`] for `what`.
    pub(crate) fn spec(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> OciError {
        move |source| OciError::Spec { what, source }
    }
}
