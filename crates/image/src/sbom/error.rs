//! The one error type of the `sbom` module.

use std::io;
use std::path::PathBuf;

use crate::oci::OciError;

/// Everything that can go wrong building an SBOM or attaching it to a layout.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// The image name cannot become a purl name or an SPDX id.
    #[error("invalid image name `{name}` for an SBOM: use letters, digits, `.`, `_`, `-` and `/`")]
    InvalidImageName {
        /// The name as given.
        name: String,
    },

    /// The distro namespace cannot be a purl namespace.
    #[error(
        "invalid distro namespace `{namespace}` for an SBOM: use lowercase letters, digits, `.` and `-`, like `wolfi`"
    )]
    InvalidNamespace {
        /// The namespace as given.
        namespace: String,
    },

    /// Reading the layout, building an OCI document or the epoch failed.
    #[error(transparent)]
    Oci(#[from] OciError),

    /// A document could not be serialized (a bug: the inputs are all strings and numbers).
    #[error("cannot serialize {what}: {source}")]
    Serialize {
        /// The document: `SPDX document`, ...
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },

    /// A file-system operation on the layout failed.
    #[error(transparent)]
    Io(#[from] executor_base::io::PathError),

    /// The layout's `index.json` is not what an image layout holds.
    #[error("invalid index.json `{path}`: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// The SBOM's ref name would replace an image in `index.json`.
    #[error("`{ref_name}` in layout `{dir}` names an image, not an SBOM; refusing to replace it")]
    RefTaken {
        /// The layout directory.
        dir: PathBuf,
        /// The ref name the SBOM would get.
        ref_name: String,
    },
}

impl SbomError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SbomError {
        let path = path.into();
        move |source| SbomError::Io(executor_base::io::PathError::new(what, path, source))
    }

    pub(crate) fn serialize(what: &'static str) -> impl FnOnce(serde_json::Error) -> SbomError {
        move |source| SbomError::Serialize { what, source }
    }
}
