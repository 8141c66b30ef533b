//! The SBOM as an OCI 1.1 artifact, and attaching it to an image layout.
//!
//! The artifact is an image manifest (image-spec 1.1 "artifacts guidance"):
//! `artifactType: application/spdx+json`, `config` the empty descriptor (`{}`, 2 bytes),
//! one layer (the SBOM, `application/spdx+json`), `subject` the image's manifest, and
//! `org.opencontainers.image.created` = the epoch. A registry serves it through the
//! referrers API of the subject.
//!
//! A layout has no referrers API. [`attach_sbom`] writes the blobs and names the SBOMs of
//! an image tag `T` with **one** more `index.json` entry, `T.sbom` ([`sbom_ref_name`]):
//! an image index (`artifactType: application/spdx+json`) listing one artifact manifest
//! per platform, each descriptor carrying the subject's `platform` and the `artifactType`.
//! Why one entry rather than one per platform: `oci-image-tool validate --ref name=T`
//! (1.0.0-rc1, what `validate_oci.sh` runs) filters `index.json` with a loop that skips
//! the entry after each one it drops, so with two or more extra entries it reports the
//! tag as "not unique"; one extra entry is always filtered out. The image's own entry is
//! untouched, so `skopeo`, `umoci` and `oci-image-tool` resolve `T` as before, and `oras`
//! (which indexes everything reachable from `index.json`, `subject` edges included) finds
//! the SBOMs as referrers. `index.json` now has several entries, so readers must name the
//! image (`read_layout_image(dir, Some(T), ..)`). Blobs of a replaced SBOM stay in
//! `blobs/` unreferenced, which a layout allows.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifestBuilder, MediaType, SCHEMA_VERSION};

use crate::digest::Digest;
use crate::oci::{
    canonical_json, platform, read_layout_image, rfc3339_utc, JsonBlob, OciError, ANNOTATION_CREATED,
    ANNOTATION_REF_NAME,
};
use crate::platform::Arch;
use crate::sbom::error::SbomError;
use crate::sbom::SPDX_MEDIA_TYPE;

/// The empty JSON blob the artifact's `config` points at.
pub const EMPTY_JSON: &[u8] = b"{}";
/// Its media type.
pub const EMPTY_JSON_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The file name oras and friends give the SBOM layer when pulling it.
const SBOM_TITLE: &str = "sbom.spdx.json";

/// What [`attach_sbom`] added to a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedSbom {
    /// The artifact manifest (also in `blobs/`).
    pub manifest: JsonBlob,
    /// The SBOM index listing the artifact manifests of every platform attached so far.
    pub index: JsonBlob,
    /// The SBOM index's ref name in `index.json`.
    pub ref_name: String,
    /// The image manifest the SBOM is attached to.
    pub subject: Digest,
}

/// The ref name of the SBOMs of the image named `image_ref`: `latest.sbom`.
pub fn sbom_ref_name(image_ref: &str) -> String {
    format!("{image_ref}.sbom")
}

/// Builds the artifact manifest attaching `sbom` (an SPDX JSON blob) to the image manifest
/// `subject` (`subject_size` bytes), created at `epoch`.
pub fn sbom_artifact_manifest(
    sbom: &JsonBlob,
    subject: Digest,
    subject_size: u64,
    epoch: u64,
) -> Result<JsonBlob, SbomError> {
    let spdx = MediaType::Other(SPDX_MEDIA_TYPE.to_owned());
    let config = Descriptor::new(MediaType::EmptyJSON, EMPTY_JSON.len() as u64, oci_digest(Digest::of(EMPTY_JSON))?);
    let mut layer = Descriptor::new(spdx.clone(), sbom.size(), oci_digest(sbom.digest)?);
    layer.set_annotations(Some(HashMap::from([(oci_spec::image::ANNOTATION_TITLE.to_owned(), SBOM_TITLE.to_owned())])));
    let subject = Descriptor::new(MediaType::ImageManifest, subject_size, oci_digest(subject)?);
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .artifact_type(spdx)
        .config(config)
        .layers(vec![layer])
        .subject(subject)
        .annotations(HashMap::from([(ANNOTATION_CREATED.to_owned(), rfc3339_utc(epoch)?)]))
        .build()
        .map_err(|source| OciError::Spec { what: "SBOM artifact manifest", source })?;
    JsonBlob::of(&manifest).map_err(SbomError::serialize("SBOM artifact manifest"))
}

/// Attaches `sbom` to `arch`'s image in the layout `dir`, whose `index.json` names the
/// image (or the multi-platform index holding it) `image_ref`: writes the `{}`, SBOM and
/// artifact manifest blobs, puts the artifact manifest into the SBOM index of
/// `image_ref` (replacing `arch`'s previous one; entries in [`Arch`] order) and points the
/// `index.json` entry [`sbom_ref_name`] at that index. Attaching the same SBOM twice
/// leaves the layout byte-for-byte as after the first time.
pub fn attach_sbom(
    dir: &Path,
    image_ref: &str,
    arch: Arch,
    sbom: &JsonBlob,
    epoch: u64,
) -> Result<AttachedSbom, SbomError> {
    let mut attached = attach_sboms(dir, image_ref, &[(arch, sbom, epoch)])?;
    Ok(attached.remove(0))
}

/// [`attach_sbom`] for several platforms at once (`(arch, SBOM, epoch)`, a later entry for
/// the same arch replacing an earlier one): one SBOM index and one `index.json` write for
/// all of them, so no intermediate SBOM index is left in `blobs/`. What was attached, in
/// the order given.
pub fn attach_sboms(
    dir: &Path,
    image_ref: &str,
    sboms: &[(Arch, &JsonBlob, u64)],
) -> Result<Vec<AttachedSbom>, SbomError> {
    let ref_name = sbom_ref_name(image_ref);
    let spdx = MediaType::Other(SPDX_MEDIA_TYPE.to_owned());
    let mut artifacts: Vec<(Arch, JsonBlob, Digest)> = Vec::with_capacity(sboms.len());
    for &(arch, sbom, epoch) in sboms {
        let subject = read_layout_image(dir, Some(image_ref), arch)?.manifest_digest;
        let subject_path = blob_path(dir, subject);
        let subject_size = fs::metadata(&subject_path).map_err(SbomError::io("cannot read", &subject_path))?.len();
        artifacts.push((arch, sbom_artifact_manifest(sbom, subject, subject_size, epoch)?, subject));
    }

    let index_path = dir.join("index.json");
    let bytes = fs::read(&index_path).map_err(SbomError::io("cannot read", &index_path))?;
    let mut top: ImageIndex =
        serde_json::from_slice(&bytes).map_err(|source| SbomError::Parse { path: index_path.clone(), source })?;
    let named = |d: &Descriptor| d.annotations().as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)) == Some(&ref_name);
    let existing = top.manifests().iter().find(|d| named(d)).cloned();

    // The SBOM index: the previous one's other platforms, plus these.
    let mut entries: Vec<(Option<Arch>, Descriptor)> = Vec::new();
    if let Some(d) = existing {
        if d.artifact_type().as_ref() != Some(&spdx) || *d.media_type() != MediaType::ImageIndex {
            return Err(SbomError::RefTaken { dir: dir.to_owned(), ref_name });
        }
        let digest = Digest::from_hex(d.digest().digest()).ok_or_else(|| OciError::UnsupportedDigest {
            what: format!("`{ref_name}` in `{}`", index_path.display()),
            digest: d.digest().to_string(),
        })?;
        let path = blob_path(dir, digest);
        let bytes = fs::read(&path).map_err(SbomError::io("cannot read", &path))?;
        let previous: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|source| SbomError::Parse { path: path.clone(), source })?;
        for m in previous.manifests() {
            let of = m.platform().as_ref().and_then(|p| Arch::ALL.into_iter().find(|a| platform(*a) == *p));
            entries.push((of, m.clone()));
        }
    }
    for (arch, manifest, _) in &artifacts {
        entries.retain(|(of, _)| *of != Some(*arch));
        let mut descriptor = Descriptor::new(MediaType::ImageManifest, manifest.size(), oci_digest(manifest.digest)?);
        descriptor.set_artifact_type(Some(spdx.clone()));
        descriptor.set_platform(Some(platform(*arch)));
        entries.push((Some(*arch), descriptor));
    }
    // Unknown platforms (`None`) sort first, keeping their order.
    entries.sort_by_key(|(a, _)| *a);
    let mut sbom_index = ImageIndex::default();
    sbom_index.set_schema_version(SCHEMA_VERSION);
    sbom_index.set_media_type(Some(MediaType::ImageIndex));
    sbom_index.set_artifact_type(Some(spdx.clone()));
    sbom_index.set_manifests(entries.into_iter().map(|(_, d)| d).collect());
    let sbom_index = JsonBlob::of(&sbom_index).map_err(SbomError::serialize("SBOM index"))?;

    write_blob(dir, Digest::of(EMPTY_JSON), EMPTY_JSON)?;
    for (&(_, sbom, _), (_, manifest, _)) in sboms.iter().zip(&artifacts) {
        write_blob(dir, sbom.digest, &sbom.bytes)?;
        write_blob(dir, manifest.digest, &manifest.bytes)?;
    }
    write_blob(dir, sbom_index.digest, &sbom_index.bytes)?;

    let mut descriptor = Descriptor::new(MediaType::ImageIndex, sbom_index.size(), oci_digest(sbom_index.digest)?);
    descriptor.set_artifact_type(Some(spdx));
    descriptor.set_annotations(Some(HashMap::from([(ANNOTATION_REF_NAME.to_owned(), ref_name.clone())])));
    let mut manifests: Vec<Descriptor> = Vec::with_capacity(top.manifests().len() + 1);
    let mut replaced = false;
    for d in top.manifests() {
        if !named(d) {
            manifests.push(d.clone());
        } else if !replaced {
            // Keep the position, so re-attaching does not reorder index.json.
            manifests.push(descriptor.clone());
            replaced = true;
        }
    }
    if !replaced {
        manifests.push(descriptor);
    }
    top.set_manifests(manifests);
    let bytes = canonical_json(&top).map_err(SbomError::serialize("index.json"))?;
    write_atomically(&index_path, &bytes)?;
    Ok(artifacts
        .into_iter()
        .map(|(_, manifest, subject)| AttachedSbom {
            manifest,
            index: sbom_index.clone(),
            ref_name: ref_name.clone(),
            subject,
        })
        .collect())
}

fn oci_digest(digest: Digest) -> Result<oci_spec::image::Digest, SbomError> {
    oci_spec::image::Digest::from_str(&digest.to_string())
        .map_err(|source| SbomError::Oci(OciError::Spec { what: "digest", source }))
}

fn blob_path(dir: &Path, digest: Digest) -> std::path::PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

/// Writes a blob unless the layout already has it with the same bytes (a blob with the
/// right name but other bytes is replaced: it was corrupt).
fn write_blob(dir: &Path, digest: Digest, bytes: &[u8]) -> Result<(), SbomError> {
    let path = blob_path(dir, digest);
    match fs::read(&path) {
        Ok(existing) if Digest::of(&existing) == digest => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(SbomError::Io(executor_base::io::PathError::new("cannot read", path, e))),
    }
    write_atomically(&path, bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SbomError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    fs::write(&tmp, bytes).map_err(SbomError::io("cannot write", &tmp))?;
    fs::rename(&tmp, path).map_err(SbomError::io("cannot rename", &tmp))
}
