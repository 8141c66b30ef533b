//! OCI image-spec 1.1 documents and image layouts: layer digests and [`ImageSettings`] in,
//! byte-for-byte reproducible JSON and an on-disk layout out.
//!
//! Vocabulary (image-spec 1.1):
//! - **config**: the image configuration blob (`application/vnd.oci.image.config.v1+json`):
//!   platform, `rootfs.diff_ids`, history and the runtime defaults (env, entrypoint, ...).
//! - **manifest**: one platform's image (`application/vnd.oci.image.manifest.v1+json`): the
//!   config descriptor and the layer descriptors, base image's layers first.
//! - **index**: the multi-platform image (`application/vnd.oci.image.index.v1+json`), one
//!   manifest descriptor per [`Arch`], in [`Arch`] order.
//! - **layout**: a directory with `oci-layout`, `index.json` and `blobs/sha256/<hex>`; its
//!   `index.json` names the image with an `org.opencontainers.image.ref.name` annotation.
//!
//! The documents are built with the `oci-spec` crate's types, never by hand, and are
//! serialized by [`canonical_json`]: compact, no trailing newline, object keys sorted at every
//! level. `oci-spec` keeps labels and annotations in `HashMap`s, so without the sort their
//! order (and the digest) would change from run to run. Every time that reaches an output is
//! the build epoch ([`ImageSettings::created`]), never the clock.
//!
//! Deciding and doing are split: [`image_config`], [`image_manifest`] and [`image_index`] are
//! pure functions returning a [`JsonBlob`]; only the `layout` functions touch the disk.
//!
//! [`Arch`]: crate::platform::Arch

mod config;
mod error;
mod index;
mod json;
mod layout;
mod manifest;
mod time;

#[cfg(test)]
mod tests;

pub use crate::oci::config::{
    check_platform, image_config, ImageSettings, LayerInfo, DEFAULT_PATH, DEFAULT_SSL_CERT_FILE,
};
pub use crate::oci::error::OciError;
pub use crate::oci::index::{image_index, oci_arch, platform, IndexEntry};
pub use crate::oci::json::{canonical_json, JsonBlob};
pub use crate::oci::layout::{
    platform_matches, platform_text, read_layout_image, write_image_layout, write_layout, write_shallow_image_layout,
    write_shallow_layout, BaseImage, BaseLayer, BlobSource, LAYOUT_VERSION,
};
pub use crate::oci::manifest::{image_manifest, LayerDescriptor};
pub use crate::oci::time::{parse_rfc3339, rfc3339_utc};

/// The `oci-spec` types this module's API exposes, re-exported so callers need no direct
/// dependency on the crate.
pub use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest, MediaType};

/// The annotation that names an image in a layout's `index.json` (its tag).
pub const ANNOTATION_REF_NAME: &str = oci_spec::image::ANNOTATION_REF_NAME;
/// The annotation carrying the image's creation time (the build epoch), on the index.
pub const ANNOTATION_CREATED: &str = oci_spec::image::ANNOTATION_CREATED;
