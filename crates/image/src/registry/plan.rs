//! Deciding what a push sends: the blobs and manifests one image of a layout reaches, in
//! the order a registry accepts them. Reads the disk, never the network.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType, OciLayout};

use crate::digest::Digest;
use crate::oci::{OciError, ANNOTATION_REF_NAME, LAYOUT_VERSION};
use crate::registry::error::RegistryError;

/// How deep image indexes may nest below `index.json`.
const MAX_INDEX_DEPTH: usize = 4;

/// Docker's manifest list, pushed like an OCI index.
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's schema 2 manifest, pushed like an OCI manifest.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What to push for one image, in order: every blob, then every manifest and index
/// children first, the top one last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PushPlan {
    /// Config and layer blobs, once each, sorted by digest. Each file exists with its
    /// descriptor's size; its bytes are hashed when uploaded.
    pub blobs: Vec<PlanBlob>,
    /// Manifests and indexes, each once, every one after everything it references. The
    /// bytes were checked against their digest when read.
    pub manifests: Vec<PlanManifest>,
    /// Artifacts attached to pushed manifests (the SBOMs of the layout's `<tag>.sbom`
    /// entry), pushed after the image; their blobs are in [`PushPlan::blobs`].
    pub referrers: Vec<PlanReferrer>,
}

/// An artifact manifest whose `subject` is one of the pushed manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanReferrer {
    /// The artifact manifest.
    pub manifest: PlanManifest,
    /// Its `subject`'s digest.
    pub subject: Digest,
    /// Its `artifactType` (or its config's media type, as the referrers API says).
    pub artifact_type: String,
    /// Its annotations, which a referrers index repeats.
    pub annotations: BTreeMap<String, String>,
}

/// A config or layer blob of the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanBlob {
    /// Its digest, as the manifests name it.
    pub digest: Digest,
    /// Its size, as the manifests give it.
    pub size: u64,
    /// `blobs/sha256/<hex>` in the layout.
    pub path: PathBuf,
    /// For a layer a shallow layout lacks: the repository (`HOST/REPO`) to mount or read it
    /// from; `path` does not exist then.
    pub remote: Option<String>,
}

/// A manifest or index: its exact bytes (their digest is the one pushed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanManifest {
    /// sha256 of `bytes`.
    pub digest: Digest,
    /// The descriptor's media type, sent as `Content-Type`.
    pub media_type: String,
    /// The blob, byte for byte.
    pub bytes: Vec<u8>,
}

impl PushPlan {
    /// The image that is pushed (the last manifest).
    pub fn top(&self) -> &PlanManifest {
        // `read_plan` always pushes at least the top one.
        &self.manifests[self.manifests.len() - 1]
    }
}

/// Reads the image named `ref_name` in the layout at `dir` into a [`PushPlan`].
/// Layer blobs a shallow layout lacks may be named in `remote` (digest -> `HOST/REPO`).
pub(crate) fn read_plan(
    dir: &Path,
    ref_name: &str,
    remote: &BTreeMap<Digest, String>,
) -> Result<PushPlan, RegistryError> {
    let layout_path = dir.join("oci-layout");
    let layout: OciLayout = parse_file(&layout_path, "oci-layout")?;
    if layout.image_layout_version() != LAYOUT_VERSION {
        return Err(OciError::LayoutVersion { path: layout_path, found: layout.image_layout_version().clone() }.into());
    }
    let index: ImageIndex = parse_file(&dir.join("index.json"), "index.json")?;
    let name_of = |d: &Descriptor| d.annotations().as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned();
    let entries = index.manifests();
    let Some(top) = entries.iter().find(|d| name_of(d).as_deref() == Some(ref_name)) else {
        let names: Vec<String> = entries.iter().filter_map(name_of).collect();
        let mut hint = executor_base::hints::did_you_mean(ref_name, names.iter().map(String::as_str));
        if hint.is_empty() {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            hint = if quoted.is_empty() {
                " (it has no named images)".to_owned()
            } else {
                format!(" (it has: {})", quoted.join(", "))
            };
        }
        return Err(OciError::RefNotFound { dir: dir.to_owned(), ref_name: ref_name.to_owned(), hint }.into());
    };
    let mut walk = Walk { dir, remote, blobs: BTreeMap::new(), manifests: Vec::new(), seen: BTreeSet::new() };
    walk.visit(top, "index.json", 0)?;
    let image_manifests = walk.manifests.len();
    let pushed = walk.seen.clone();

    // The SBOMs: `<tag>.sbom` lists artifact manifests whose subjects are pushed above. The
    // list itself is a device of the layout, not pushed; a registry finds the artifacts
    // through its referrers API (or the referrers tag).
    let sbom_ref = crate::sbom::sbom_ref_name(ref_name);
    let mut referrers = Vec::new();
    if let Some(sboms) = entries.iter().find(|d| name_of(d).as_deref() == Some(sbom_ref.as_str())) {
        let list = our_digest(sboms.digest(), "index.json")?;
        let path = walk.blob(list, sboms.size(), "index.json")?;
        let bytes = fs::read(&path).map_err(OciError::io("cannot read", &path))?;
        let actual = Digest::of(&bytes);
        if actual != list {
            return Err(OciError::DigestMismatch { what: path.display().to_string(), expected: list, actual }.into());
        }
        let index: ImageIndex = parse_bytes(&bytes, &path, "image index")?;
        let me = format!("image index {list} (`{sbom_ref}`)");
        for child in index.manifests() {
            walk.visit(child, &me, 1)?;
        }
        for manifest in walk.manifests.drain(image_manifests..) {
            let path = dir.join("blobs").join("sha256").join(manifest.digest.hex());
            let parsed: ImageManifest = parse_bytes(&manifest.bytes, &path, "image manifest")?;
            let what = format!("artifact manifest {}", manifest.digest);
            let subject = match parsed.subject() {
                Some(s) => our_digest(s.digest(), &what)?,
                None => {
                    return Err(RegistryError::BadReferrer {
                        dir: dir.to_owned(),
                        detail: format!("the {what} in `{sbom_ref}` has no `subject`"),
                    })
                }
            };
            if !pushed.contains(&subject) {
                return Err(RegistryError::BadReferrer {
                    dir: dir.to_owned(),
                    detail: format!("the subject {subject} of the {what} is not part of the pushed image `{ref_name}`"),
                });
            }
            let artifact_type = match parsed.artifact_type() {
                Some(t) => t.to_string(),
                None => parsed.config().media_type().to_string(),
            };
            let annotations = parsed.annotations().clone().unwrap_or_default().into_iter().collect();
            referrers.push(PlanReferrer { manifest, subject, artifact_type, annotations });
        }
    }
    let blobs = walk
        .blobs
        .into_iter()
        .map(|(digest, (size, path))| {
            let remote = if path.exists() { None } else { remote.get(&digest).cloned() };
            PlanBlob { digest, size, path, remote }
        })
        .collect();
    Ok(PushPlan { blobs, manifests: walk.manifests, referrers })
}

struct Walk<'a> {
    dir: &'a Path,
    /// Layer blobs that may be missing, and where they are.
    remote: &'a BTreeMap<Digest, String>,
    /// Invariant: each blob's file exists with this size.
    blobs: BTreeMap<Digest, (u64, PathBuf)>,
    /// Invariant: children before parents.
    manifests: Vec<PlanManifest>,
    /// Digests already in `manifests`.
    seen: BTreeSet<Digest>,
}

impl Walk<'_> {
    fn visit(&mut self, descriptor: &Descriptor, referenced_by: &str, depth: usize) -> Result<(), RegistryError> {
        if depth > MAX_INDEX_DEPTH {
            return Err(OciError::TooDeep { dir: self.dir.to_owned(), max: MAX_INDEX_DEPTH }.into());
        }
        let digest = our_digest(descriptor.digest(), referenced_by)?;
        if self.seen.contains(&digest) {
            return Ok(());
        }
        let media_type = descriptor.media_type().to_string();
        let is_index = *descriptor.media_type() == MediaType::ImageIndex || media_type == DOCKER_MANIFEST_LIST;
        let is_manifest = *descriptor.media_type() == MediaType::ImageManifest || media_type == DOCKER_MANIFEST;
        if !is_index && !is_manifest {
            return Err(OciError::UnsupportedMediaType {
                what: format!("a descriptor in {referenced_by} (expected an image index or manifest)"),
                media_type,
            }
            .into());
        }
        let path = self.blob(digest, descriptor.size(), referenced_by)?;
        let bytes = fs::read(&path).map_err(OciError::io("cannot read", &path))?;
        let actual = Digest::of(&bytes);
        if actual != digest {
            return Err(OciError::DigestMismatch { what: path.display().to_string(), expected: digest, actual }.into());
        }
        if is_index {
            let index: ImageIndex = parse_bytes(&bytes, &path, "image index")?;
            let me = format!("image index {digest}");
            for child in index.manifests() {
                self.visit(child, &me, depth + 1)?;
            }
        } else {
            let manifest: ImageManifest = parse_bytes(&bytes, &path, "image manifest")?;
            let me = format!("image manifest {digest}");
            let config = our_digest(manifest.config().digest(), &me)?;
            let config_path = self.blob(config, manifest.config().size(), &me)?;
            self.blobs.insert(config, (manifest.config().size(), config_path));
            for d in manifest.layers() {
                let blob_digest = our_digest(d.digest(), &me)?;
                let blob_path = match self.blob(blob_digest, d.size(), &me) {
                    Err(RegistryError::Layout(OciError::MissingBlob { .. }))
                        if self.remote.contains_key(&blob_digest) =>
                    {
                        self.dir.join("blobs").join("sha256").join(blob_digest.hex())
                    }
                    other => other?,
                };
                self.blobs.insert(blob_digest, (d.size(), blob_path));
            }
        }
        self.seen.insert(digest);
        self.manifests.push(PlanManifest { digest, media_type, bytes });
        Ok(())
    }

    /// The path of blob `digest`, checked to exist with `size` bytes.
    fn blob(&self, digest: Digest, size: u64, referenced_by: &str) -> Result<PathBuf, RegistryError> {
        let path = self.dir.join("blobs").join("sha256").join(digest.hex());
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OciError::MissingBlob {
                    dir: self.dir.to_owned(),
                    digest,
                    referenced_by: referenced_by.to_owned(),
                }
                .into())
            }
            Err(source) => {
                return Err(OciError::Io(executor_base::io::PathError::new("cannot read", path, source)).into())
            }
        };
        if meta.len() != size {
            return Err(OciError::SizeMismatch {
                what: path.display().to_string(),
                expected: size,
                actual: meta.len(),
            }
            .into());
        }
        Ok(path)
    }
}

fn our_digest(digest: &oci_spec::image::Digest, what: &str) -> Result<Digest, OciError> {
    digest
        .to_string()
        .parse()
        .map_err(|_| OciError::UnsupportedDigest { what: what.to_owned(), digest: digest.to_string() })
}

fn parse_file<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, RegistryError> {
    let bytes = fs::read(path).map_err(OciError::io("cannot read", path))?;
    parse_bytes(&bytes, path, what)
}

fn parse_bytes<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|source| OciError::Parse { what, path: path.to_owned(), source }.into())
}
