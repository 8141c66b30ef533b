//! One platform's image manifest.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType, SCHEMA_VERSION};

use crate::digest::Digest;
use crate::oci::error::OciError;
use crate::oci::json::JsonBlob;

/// A layer as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDescriptor {
    /// `application/vnd.oci.image.layer.v1.tar+gzip` for layers this tool writes; a base
    /// image's layers keep theirs.
    pub media_type: MediaType,
    /// sha256 of the layer blob as stored (compressed).
    pub digest: Digest,
    /// The blob's length.
    pub size: u64,
}

impl LayerDescriptor {
    /// A gzip-compressed tar layer.
    pub fn gzip(digest: Digest, size: u64) -> Self {
        LayerDescriptor { media_type: MediaType::ImageLayerGzip, digest, size }
    }
}

/// Builds the manifest of one image: `schemaVersion` 2, the config descriptor
/// (`config_digest`, `config_size`), `layers` in the order given (a base image's first),
/// and `annotations` (omitted when empty).
pub fn image_manifest(
    config_digest: Digest,
    config_size: u64,
    layers: &[LayerDescriptor],
    annotations: &BTreeMap<String, String>,
) -> Result<JsonBlob, OciError> {
    let config = Descriptor::new(MediaType::ImageConfig, config_size, oci_digest(config_digest)?);
    let mut descriptors = Vec::with_capacity(layers.len());
    for l in layers {
        descriptors.push(Descriptor::new(l.media_type.clone(), l.size, oci_digest(l.digest)?));
    }
    let mut builder = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(descriptors);
    if !annotations.is_empty() {
        builder =
            builder.annotations(annotations.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>());
    }
    let manifest = builder.build().map_err(OciError::spec("image manifest"))?;
    JsonBlob::of(&manifest).map_err(OciError::serialize("image manifest"))
}

/// Our digest as an `oci-spec` one.
pub(crate) fn oci_digest(digest: Digest) -> Result<oci_spec::image::Digest, OciError> {
    oci_spec::image::Digest::from_str(&digest.to_string()).map_err(OciError::spec("digest"))
}

/// An `oci-spec` digest as ours, if it is sha256; `what` names the document for the error.
pub(crate) fn our_digest(digest: &oci_spec::image::Digest, what: &str) -> Result<Digest, OciError> {
    let unsupported = || OciError::UnsupportedDigest { what: what.to_owned(), digest: digest.to_string() };
    match digest.algorithm() {
        oci_spec::image::DigestAlgorithm::Sha256 => Digest::from_hex(digest.digest()).ok_or_else(unsupported),
        _ => Err(unsupported()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_golden() {
        let config = Digest::from_bytes([0xcc; 32]);
        let base =
            LayerDescriptor { media_type: MediaType::ImageLayerZstd, digest: Digest::from_bytes([0xbb; 32]), size: 7 };
        let ours = LayerDescriptor::gzip(Digest::from_bytes([0xaa; 32]), 1234);
        let mut ann = BTreeMap::new();
        ann.insert("org.opencontainers.image.source".to_owned(), "https://example.com/x".to_owned());
        let blob = image_manifest(config, 456, &[base, ours], &ann).expect("builds");
        let (a, b, c) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        assert_eq!(
            blob.text(),
            format!(
                concat!(
                    r#"{{"annotations":{{"org.opencontainers.image.source":"https://example.com/x"}},"#,
                    r#""config":{{"digest":"sha256:{c}","mediaType":"application/vnd.oci.image.config.v1+json","size":456}},"#,
                    r#""layers":[{{"digest":"sha256:{b}","mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","size":7}},"#,
                    r#"{{"digest":"sha256:{a}","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1234}}],"#,
                    r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
                ),
                a = a,
                b = b,
                c = c
            )
        );
        // No annotations: the key is absent, not `{}` or `null`.
        let bare = image_manifest(config, 456, &[], &BTreeMap::new()).expect("builds");
        assert_eq!(
            bare.text(),
            format!(
                concat!(
                    r#"{{"config":{{"digest":"sha256:{c}","mediaType":"application/vnd.oci.image.config.v1+json","size":456}},"#,
                    r#""layers":[],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}}"#
                ),
                c = c
            )
        );
    }

    #[test]
    fn digests_convert_both_ways() {
        let d = Digest::of(b"x");
        assert_eq!(our_digest(&oci_digest(d).expect("valid"), "test").expect("sha256"), d);
        let sha512 = oci_spec::image::Digest::from_str(&format!("sha512:{}", "ab".repeat(64))).expect("valid");
        assert_eq!(
            our_digest(&sha512, "image manifest `m`").expect_err("sha512").to_string(),
            format!("unsupported digest `sha512:{}` in image manifest `m`: only sha256 is supported", "ab".repeat(64))
        );
    }
}
