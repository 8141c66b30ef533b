//! The multi-platform image index, and the [`Arch`] -> OCI platform converters.

use std::collections::{BTreeMap, HashMap};

use oci_spec::image::{Descriptor, ImageIndex, MediaType, Os, Platform, SCHEMA_VERSION};

use crate::digest::Digest;
use crate::oci::error::OciError;
use crate::oci::json::JsonBlob;
use crate::oci::manifest::oci_digest;
use crate::oci::time::rfc3339_utc;
use crate::oci::ANNOTATION_CREATED;
use crate::platform::Arch;

/// One platform's manifest, as listed in an image index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// The platform the manifest is for; at most one entry per arch.
    pub arch: Arch,
    /// The manifest blob's digest.
    pub digest: Digest,
    /// The manifest blob's length.
    pub size: u64,
}

/// The OCI `architecture` of `arch` as an `oci-spec` value (`amd64`, `arm`, ...).
pub fn oci_arch(arch: Arch) -> oci_spec::image::Arch {
    oci_spec::image::Arch::from(arch.oci_architecture())
}

/// The OCI platform of `arch`: `{os: linux, architecture, variant?}`.
pub fn platform(arch: Arch) -> Platform {
    let mut p = Platform::default();
    p.set_os(Os::Linux);
    p.set_architecture(oci_arch(arch));
    p.set_variant(arch.oci_variant().map(str::to_owned));
    p
}

/// Builds the image index over `manifests`: entries sorted by [`Arch`] (the enum order,
/// whatever order they are given in), each with its platform; annotations
/// `org.opencontainers.image.created` = `created` (RFC 3339) plus `annotations` (which win
/// on a clash, so a caller may set its own creation time).
pub fn image_index(
    manifests: &[IndexEntry],
    created: u64,
    annotations: &BTreeMap<String, String>,
) -> Result<JsonBlob, OciError> {
    let mut entries = manifests.to_vec();
    entries.sort_by_key(|e| e.arch);
    if let Some(pair) = entries.windows(2).find(|w| w[0].arch == w[1].arch) {
        return Err(OciError::DuplicatePlatform { platform: pair[0].arch.oci_platform() });
    }
    let mut descriptors = Vec::with_capacity(entries.len());
    for e in &entries {
        let mut d = Descriptor::new(MediaType::ImageManifest, e.size, oci_digest(e.digest)?);
        d.set_platform(Some(platform(e.arch)));
        descriptors.push(d);
    }
    let mut all: HashMap<String, String> = HashMap::new();
    all.insert(ANNOTATION_CREATED.to_owned(), rfc3339_utc(created)?);
    all.extend(annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut index = ImageIndex::default();
    index.set_schema_version(SCHEMA_VERSION);
    index.set_media_type(Some(MediaType::ImageIndex));
    index.set_manifests(descriptors);
    index.set_annotations(Some(all));
    JsonBlob::of(&index).map_err(OciError::serialize("image index"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::from_bytes([n; 32])
    }

    #[test]
    fn platforms_for_all_archs() {
        let table = [
            (Arch::X86, r#"{"architecture":"386","os":"linux"}"#),
            (Arch::X86_64, r#"{"architecture":"amd64","os":"linux"}"#),
            (Arch::Aarch64, r#"{"architecture":"arm64","os":"linux"}"#),
            (Arch::Armhf, r#"{"architecture":"arm","os":"linux","variant":"v6"}"#),
            (Arch::Armv7, r#"{"architecture":"arm","os":"linux","variant":"v7"}"#),
            (Arch::Ppc64le, r#"{"architecture":"ppc64le","os":"linux"}"#),
            (Arch::Riscv64, r#"{"architecture":"riscv64","os":"linux"}"#),
            (Arch::S390x, r#"{"architecture":"s390x","os":"linux"}"#),
        ];
        assert_eq!(table.len(), Arch::ALL.len());
        for (arch, json) in table {
            let text = JsonBlob::of(&platform(arch)).expect("serializes");
            assert_eq!(text.text(), json, "{arch}");
            assert_eq!(oci_arch(arch).to_string(), arch.oci_architecture(), "{arch}");
        }
    }

    #[test]
    fn index_golden() {
        let entries = [
            IndexEntry { arch: Arch::Armv7, digest: d(2), size: 20 },
            IndexEntry { arch: Arch::X86_64, digest: d(1), size: 10 },
        ];
        let mut ann = BTreeMap::new();
        ann.insert("org.opencontainers.image.title".to_owned(), "demo".to_owned());
        let blob = image_index(&entries, 1_700_000_000, &ann).expect("builds");
        let d1 = d(1).hex();
        let d2 = d(2).hex();
        assert_eq!(
            blob.text(),
            format!(
                concat!(
                    r#"{{"annotations":{{"org.opencontainers.image.created":"2023-11-14T22:13:20Z","#,
                    r#""org.opencontainers.image.title":"demo"}},"manifests":["#,
                    r#"{{"digest":"sha256:{d1}","mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                    r#""platform":{{"architecture":"amd64","os":"linux"}},"size":10}},"#,
                    r#"{{"digest":"sha256:{d2}","mediaType":"application/vnd.oci.image.manifest.v1+json","#,
                    r#""platform":{{"architecture":"arm","os":"linux","variant":"v7"}},"size":20}}],"#,
                    r#""mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}}"#
                ),
                d1 = d1,
                d2 = d2
            )
        );
        assert_eq!(blob.digest, Digest::of(&blob.bytes));
    }

    #[test]
    fn index_user_created_wins_and_duplicates_rejected() {
        let mut ann = BTreeMap::new();
        ann.insert(ANNOTATION_CREATED.to_owned(), "2000-01-01T00:00:00Z".to_owned());
        let blob = image_index(&[IndexEntry { arch: Arch::S390x, digest: d(1), size: 1 }], 0, &ann).expect("builds");
        assert!(blob.text().contains(r#""org.opencontainers.image.created":"2000-01-01T00:00:00Z""#));

        let twice = [
            IndexEntry { arch: Arch::S390x, digest: d(1), size: 1 },
            IndexEntry { arch: Arch::S390x, digest: d(2), size: 1 },
        ];
        assert_eq!(
            image_index(&twice, 0, &BTreeMap::new()).expect_err("duplicate").to_string(),
            "two manifests for platform `linux/s390x` in one image index"
        );
    }
}
