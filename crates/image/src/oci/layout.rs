//! Image layouts on disk: writing one, with every blob checked against its name, and
//! reading a base image out of one.
//!
//! A layout written here holds `oci-layout`, `blobs/sha256/<hex>` for every blob and an
//! `index.json` with exactly one descriptor, tagged with `org.opencontainers.image.ref.name`:
//! either the multi-platform image index ([`write_layout`]) or a single manifest
//! ([`write_image_layout`]). That is the shape `skopeo copy oci:DIR:TAG` and `umoci` resolve.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, OciLayout, OciLayoutBuilder, Os,
};

use crate::digest::{hash_reader, Digest};
use crate::oci::config::check_platform;
use crate::oci::error::OciError;
use crate::oci::index::platform;
use crate::oci::json::JsonBlob;
use crate::oci::manifest::{oci_digest, our_digest, LayerDescriptor};
use crate::oci::ANNOTATION_REF_NAME;
use crate::platform::Arch;

/// The only `imageLayoutVersion` written and accepted.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// How deep image indexes may nest below `index.json` before reading gives up.
const MAX_INDEX_DEPTH: usize = 4;

/// Where a blob's bytes come from when writing a layout.
#[derive(Debug, Clone, Copy)]
pub enum BlobSource<'a> {
    /// Bytes in memory (configs, manifests).
    Bytes(&'a [u8]),
    /// A file to copy (layers in the store, a base image's blobs).
    File(&'a Path),
}

/// Writes a multi-platform image layout to `dir` (created if needed; it should be empty or
/// absent, since blobs already there are left alone): `index` is stored as a blob and
/// `index.json` points at it, tagged `ref_name`.
///
/// `blobs` must hold every other blob `index` reaches: manifests, configs and layers. Each is
/// hashed while it is written and refused if it does not match its digest; a digest given
/// twice is written once. Before `index.json` is written, every descriptor reachable from
/// `index` is checked to name a blob just written, with the right size.
pub fn write_layout<'a>(
    dir: &Path,
    index: &JsonBlob,
    blobs: impl IntoIterator<Item = (Digest, BlobSource<'a>)>,
    ref_name: &str,
) -> Result<(), OciError> {
    write_with_top(dir, MediaType::ImageIndex, index, None, blobs, ref_name, &BTreeSet::new())
}

/// [`write_layout`] for a **shallow** layout: the layer blobs in `absent` (a pulled base's,
/// say) may be missing, recorded only by the descriptors that name them. Indexes, manifests
/// and configs are always there.
pub fn write_shallow_layout<'a>(
    dir: &Path,
    index: &JsonBlob,
    blobs: impl IntoIterator<Item = (Digest, BlobSource<'a>)>,
    ref_name: &str,
    absent: &BTreeSet<Digest>,
) -> Result<(), OciError> {
    write_with_top(dir, MediaType::ImageIndex, index, None, blobs, ref_name, absent)
}

/// [`write_image_layout`] for a shallow layout, as [`write_shallow_layout`].
pub fn write_shallow_image_layout<'a>(
    dir: &Path,
    manifest: &JsonBlob,
    arch: Arch,
    blobs: impl IntoIterator<Item = (Digest, BlobSource<'a>)>,
    ref_name: &str,
    absent: &BTreeSet<Digest>,
) -> Result<(), OciError> {
    write_with_top(dir, MediaType::ImageManifest, manifest, Some(arch), blobs, ref_name, absent)
}

/// Writes a single-platform image layout to `dir`: like [`write_layout`], but `index.json`
/// points straight at `manifest` (with `arch`'s platform) and no image index is written.
pub fn write_image_layout<'a>(
    dir: &Path,
    manifest: &JsonBlob,
    arch: Arch,
    blobs: impl IntoIterator<Item = (Digest, BlobSource<'a>)>,
    ref_name: &str,
) -> Result<(), OciError> {
    write_with_top(dir, MediaType::ImageManifest, manifest, Some(arch), blobs, ref_name, &BTreeSet::new())
}

fn write_with_top<'a>(
    dir: &Path,
    media_type: MediaType,
    top: &JsonBlob,
    arch: Option<Arch>,
    blobs: impl IntoIterator<Item = (Digest, BlobSource<'a>)>,
    ref_name: &str,
    absent: &BTreeSet<Digest>,
) -> Result<(), OciError> {
    if !valid_ref_name(ref_name) {
        return Err(OciError::InvalidRefName { name: ref_name.to_owned() });
    }
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(OciError::io("cannot create directory", &blob_dir))?;

    // Invariant: every key names a file under `blob_dir` whose bytes hash to it, of that size.
    let mut written: BTreeMap<Digest, u64> = BTreeMap::new();
    written.insert(top.digest, write_blob(&blob_dir, top.digest, BlobSource::Bytes(&top.bytes))?);
    for (digest, source) in blobs {
        if let Entry::Vacant(slot) = written.entry(digest) {
            slot.insert(write_blob(&blob_dir, digest, source)?);
        }
    }
    let reach = Reach { dir, written: &written, absent };
    reach.check(&media_type, top.digest, top.size(), "index.json", 0)?;

    let layout = OciLayoutBuilder::default()
        .image_layout_version(LAYOUT_VERSION)
        .build()
        .map_err(OciError::spec("oci-layout"))?;
    let layout = JsonBlob::of(&layout).map_err(OciError::serialize("oci-layout"))?;
    write_atomically(&dir.join("oci-layout"), &layout.bytes)?;

    let mut descriptor = Descriptor::new(media_type, top.size(), oci_digest(top.digest)?);
    descriptor.set_annotations(Some(HashMap::from([(ANNOTATION_REF_NAME.to_owned(), ref_name.to_owned())])));
    descriptor.set_platform(arch.map(platform));
    let mut index = ImageIndex::default();
    index.set_media_type(Some(MediaType::ImageIndex));
    index.set_manifests(vec![descriptor]);
    let index = JsonBlob::of(&index).map_err(OciError::serialize("index.json"))?;
    write_atomically(&dir.join("index.json"), &index.bytes)
}

/// Puts `source` at `blob_dir/<hex>` through a temporary name; the final name appears only if
/// the bytes match `digest`. A file source is linked where it can be, copied otherwise.
/// Returns the length.
fn write_blob(blob_dir: &Path, digest: Digest, source: BlobSource<'_>) -> Result<u64, OciError> {
    let path = blob_dir.join(digest.hex());
    let tmp = blob_dir.join(format!(".{}.tmp", digest.hex()));
    let (actual, len, what) = match source {
        BlobSource::Bytes(bytes) => {
            let actual = Digest::of(bytes);
            if actual == digest {
                fs::write(&tmp, bytes).map_err(OciError::io("cannot write", &tmp))?;
            }
            (actual, bytes.len() as u64, path.display().to_string())
        }
        BlobSource::File(src) => {
            // Hashed where it is; then linked (no bytes copied) where the file system
            // allows, copied otherwise. The link is to a read-only file nobody edits in place
            // (an action's verified input), and the layout is itself an action's output.
            let input = File::open(src).map_err(OciError::io("cannot open", src))?;
            let (actual, len) = hash_reader(input).map_err(OciError::io("cannot read", src))?;
            if actual == digest {
                let linked = match fs::hard_link(src, &tmp) {
                    Ok(()) => true,
                    // Left by a killed build: replace it.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        fs::remove_file(&tmp).is_ok() && fs::hard_link(src, &tmp).is_ok()
                    }
                    Err(_) => false,
                };
                if !linked {
                    fs::copy(src, &tmp).map_err(|e| {
                        let _ = fs::remove_file(&tmp);
                        OciError::Io(executor_base::io::PathError::new("cannot copy", src.to_owned(), e))
                    })?;
                }
            }
            (actual, len, src.display().to_string())
        }
    };
    if actual != digest {
        let _ = fs::remove_file(&tmp);
        return Err(OciError::DigestMismatch { what, expected: digest, actual });
    }
    fs::rename(&tmp, &path).map_err(OciError::io("cannot rename", &tmp))?;
    Ok(len)
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    fs::write(&tmp, bytes).map_err(OciError::io("cannot write", &tmp))?;
    fs::rename(&tmp, path).map_err(OciError::io("cannot rename", &tmp))
}

/// What [`Reach::check`] compares a layout's descriptors with.
struct Reach<'a> {
    dir: &'a Path,
    /// Blobs written, with their sizes.
    written: &'a BTreeMap<Digest, u64>,
    /// Layer blobs allowed to be missing (a shallow layout's).
    absent: &'a BTreeSet<Digest>,
}

impl Reach<'_> {
    /// Checks that the blob `digest` was written with `size` (or is an allowed absent
    /// layer), and recursively every blob an index or manifest blob references.
    fn check(
        &self,
        media_type: &MediaType,
        digest: Digest,
        size: u64,
        referenced_by: &str,
        depth: usize,
    ) -> Result<(), OciError> {
        let dir = self.dir;
        if depth > MAX_INDEX_DEPTH {
            return Err(OciError::TooDeep { dir: dir.to_owned(), max: MAX_INDEX_DEPTH });
        }
        let is_document =
            matches!(media_type, MediaType::ImageIndex | MediaType::ImageManifest | MediaType::ImageConfig);
        let Some(&actual) = self.written.get(&digest) else {
            if !is_document && self.absent.contains(&digest) {
                return Ok(());
            }
            return Err(OciError::MissingBlob { dir: dir.to_owned(), digest, referenced_by: referenced_by.to_owned() });
        };
        if actual != size {
            return Err(OciError::SizeMismatch {
                what: format!("blob {digest} referenced by {referenced_by}"),
                expected: size,
                actual,
            });
        }
        let children: Vec<Descriptor> = match media_type {
            MediaType::ImageIndex => parse_blob::<ImageIndex>(dir, digest, "image index")?.manifests().clone(),
            MediaType::ImageManifest => {
                let manifest = parse_blob::<ImageManifest>(dir, digest, "image manifest")?;
                std::iter::once(manifest.config().clone()).chain(manifest.layers().iter().cloned()).collect()
            }
            _ => Vec::new(),
        };
        let me = format!("{} {digest}", kind(media_type));
        for child in &children {
            let child_digest = our_digest(child.digest(), &me)?;
            self.check(child.media_type(), child_digest, child.size(), &me, depth + 1)?;
        }
        Ok(())
    }
}

fn kind(media_type: &MediaType) -> &'static str {
    match media_type {
        MediaType::ImageIndex => "image index",
        MediaType::ImageManifest => "image manifest",
        MediaType::ImageConfig => "image config",
        _ => "blob",
    }
}

fn blob_path(dir: &Path, digest: Digest) -> PathBuf {
    dir.join("blobs").join("sha256").join(digest.hex())
}

fn parse_blob<T: serde::de::DeserializeOwned>(dir: &Path, digest: Digest, what: &'static str) -> Result<T, OciError> {
    let path = blob_path(dir, digest);
    let bytes = fs::read(&path).map_err(OciError::io("cannot read", &path))?;
    serde_json::from_slice(&bytes).map_err(|source| OciError::Parse { what, path, source })
}

/// `true` if `name` matches the image-spec's `org.opencontainers.image.ref.name` grammar:
/// components of letters and digits joined by one of `-._:@+` or `--`, separated by `/`.
fn valid_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|component| {
            let b = component.as_bytes();
            let mut i = 0;
            loop {
                let start = i;
                while i < b.len() && b[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                if i == start {
                    return false;
                }
                if i == b.len() {
                    return true;
                }
                if b[i..].starts_with(b"--") {
                    i += 2;
                } else if b"-._:@+".contains(&b[i]) {
                    i += 1;
                } else {
                    return false;
                }
            }
        })
}

/// A base image read from a layout: what building `FROM` it needs.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The digest of the platform's manifest.
    pub manifest_digest: Digest,
    /// The platform's manifest.
    pub manifest: ImageManifest,
    /// Its config (checked to be for the platform asked for, with one diff_id per layer).
    pub config: ImageConfiguration,
    /// Its layers in order, each present in the layout with the right size.
    pub layers: Vec<BaseLayer>,
}

/// One layer of a [`BaseImage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseLayer {
    /// As the base manifest lists it (media type kept).
    pub descriptor: LayerDescriptor,
    /// The blob in the base layout, or in a directory of fetched blobs
    /// ([`BaseImage::find_missing`]); `None` while a shallow layout lacks it. Not re-hashed
    /// when read: [`write_layout`] hashes it when copying it.
    pub path: Option<PathBuf>,
}

impl BaseImage {
    /// The layer descriptors, to put before the new layers in a manifest.
    pub fn layer_descriptors(&self) -> Vec<LayerDescriptor> {
        self.layers.iter().map(|l| l.descriptor.clone()).collect()
    }

    /// The layer blobs at hand, for [`write_layout`] (a shallow layout's absent ones left
    /// out: see [`BaseImage::missing`]).
    pub fn layer_blobs(&self) -> impl Iterator<Item = (Digest, BlobSource<'_>)> {
        self.layers.iter().filter_map(|l| Some((l.descriptor.digest, BlobSource::File(l.path.as_deref()?))))
    }

    /// The layer blobs the layout lacks (it is shallow), bottom first.
    pub fn missing(&self) -> Vec<Digest> {
        self.layers.iter().filter(|l| l.path.is_none()).map(|l| l.descriptor.digest).collect()
    }

    /// Looks for the missing layer blobs in `dirs` (each holding `blobs/sha256/<hex>`, as
    /// layouts do), checking sizes.
    pub fn find_missing(&mut self, dirs: &[&Path]) -> Result<(), OciError> {
        for layer in self.layers.iter_mut().filter(|l| l.path.is_none()) {
            let digest = layer.descriptor.digest;
            for dir in dirs {
                if blob_path(dir, digest).exists() {
                    layer.path =
                        Some(existing_blob(dir, digest, layer.descriptor.size, "a directory of pulled blobs")?);
                    break;
                }
            }
        }
        Ok(())
    }

    /// The paths of every layer blob, bottom first; an error naming the first absent one.
    pub fn layer_paths(&self, dir: &Path) -> Result<Vec<&Path>, OciError> {
        self.layers
            .iter()
            .map(|l| {
                l.path.as_deref().ok_or_else(|| OciError::MissingBlob {
                    dir: dir.to_owned(),
                    digest: l.descriptor.digest,
                    referenced_by: format!("image manifest {}", self.manifest_digest),
                })
            })
            .collect()
    }
}

/// Reads the image for `arch` from the layout in `dir`: the `index.json` entry named
/// `ref_name` (or its only entry, when `None`), through nested image indexes to the
/// platform's manifest and config. Manifests, indexes and the config are checked against
/// their digests and sizes; layer blobs are checked to exist with the right size.
pub fn read_layout_image(dir: &Path, ref_name: Option<&str>, arch: Arch) -> Result<BaseImage, OciError> {
    let layout_path = dir.join("oci-layout");
    let layout: OciLayout = parse_file(&layout_path, "oci-layout")?;
    if layout.image_layout_version() != LAYOUT_VERSION {
        return Err(OciError::LayoutVersion { path: layout_path, found: layout.image_layout_version().clone() });
    }
    let index: ImageIndex = parse_file(&dir.join("index.json"), "index.json")?;
    let name_of = |d: &Descriptor| d.annotations().as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned();
    let entries = index.manifests();
    let chosen = match ref_name {
        Some(want) => entries.iter().find(|d| name_of(d).as_deref() == Some(want)).ok_or_else(|| {
            let names: Vec<String> = entries.iter().filter_map(name_of).collect();
            let mut hint = executor_base::hints::did_you_mean(want, names.iter().map(String::as_str));
            if hint.is_empty() {
                let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                hint = if quoted.is_empty() {
                    " (it has no named images)".to_owned()
                } else {
                    format!(" (it has: {})", quoted.join(", "))
                };
            }
            OciError::RefNotFound { dir: dir.to_owned(), ref_name: want.to_owned(), hint }
        })?,
        None => match entries.as_slice() {
            [only] => only,
            _ => {
                let names: Vec<String> = entries
                    .iter()
                    .map(|d| name_of(d).map_or_else(|| "<none>".to_owned(), |n| format!("`{n}`")))
                    .collect();
                return Err(OciError::AmbiguousRef {
                    dir: dir.to_owned(),
                    count: entries.len(),
                    names: names.join(", "),
                });
            }
        },
    };
    resolve(dir, chosen, arch, "index.json", 0)
}

fn resolve(
    dir: &Path,
    descriptor: &Descriptor,
    arch: Arch,
    referenced_by: &str,
    depth: usize,
) -> Result<BaseImage, OciError> {
    if depth > MAX_INDEX_DEPTH {
        return Err(OciError::TooDeep { dir: dir.to_owned(), max: MAX_INDEX_DEPTH });
    }
    let digest = our_digest(descriptor.digest(), referenced_by)?;
    match descriptor.media_type() {
        MediaType::ImageIndex => {
            let (path, index) =
                read_json_blob::<ImageIndex>(dir, digest, descriptor.size(), referenced_by, "image index")?;
            let me = format!("image index {digest}");
            match index.manifests().iter().find(|d| d.platform().as_ref().is_some_and(|p| platform_matches(p, arch))) {
                Some(d) => resolve(dir, d, arch, &me, depth + 1),
                None => {
                    let available: Vec<String> = index
                        .manifests()
                        .iter()
                        .map(|d| d.platform().as_ref().map_or_else(|| "<no platform>".to_owned(), platform_text))
                        .collect();
                    Err(OciError::NoSuchPlatform {
                        path,
                        platform: arch.oci_platform(),
                        available: available.join(", "),
                    })
                }
            }
        }
        MediaType::ImageManifest => {
            let (path, manifest) =
                read_json_blob::<ImageManifest>(dir, digest, descriptor.size(), referenced_by, "image manifest")?;
            let me = format!("image manifest {digest}");
            let config_desc = manifest.config();
            if *config_desc.media_type() != MediaType::ImageConfig {
                return Err(OciError::UnsupportedMediaType {
                    what: format!("the config of `{}`", path.display()),
                    media_type: config_desc.media_type().to_string(),
                });
            }
            let config_digest = our_digest(config_desc.digest(), &me)?;
            let (config_path, config) =
                read_json_blob::<ImageConfiguration>(dir, config_digest, config_desc.size(), &me, "image config")?;
            check_platform(&config, arch, &format!("image config `{}`", config_path.display()))?;
            let mut layers = Vec::with_capacity(manifest.layers().len());
            for l in manifest.layers() {
                let layer_digest = our_digest(l.digest(), &me)?;
                // A shallow layout lacks its base's layer blobs: they are fetched only where
                // their bytes are needed.
                let path = match existing_blob(dir, layer_digest, l.size(), &me) {
                    Ok(path) => Some(path),
                    Err(OciError::MissingBlob { .. }) => None,
                    Err(e) => return Err(e),
                };
                let descriptor =
                    LayerDescriptor { media_type: l.media_type().clone(), digest: layer_digest, size: l.size() };
                layers.push(BaseLayer { descriptor, path });
            }
            let diff_ids = config.rootfs().diff_ids().len();
            if diff_ids != layers.len() {
                return Err(OciError::DiffIdCount {
                    what: format!("image config `{}`", config_path.display()),
                    diff_ids,
                    layers: layers.len(),
                });
            }
            Ok(BaseImage { manifest_digest: digest, manifest, config, layers })
        }
        other => Err(OciError::UnsupportedMediaType {
            what: format!("a descriptor in {referenced_by} (expected an OCI image index or manifest)"),
            media_type: other.to_string(),
        }),
    }
}

/// `true` if an index entry's platform is `arch` (for arm64, variant `v8` or none).
pub fn platform_matches(p: &oci_spec::image::Platform, arch: Arch) -> bool {
    let variant = p.variant().as_deref();
    *p.os() == Os::Linux
        && p.architecture().to_string() == arch.oci_architecture()
        && (variant == arch.oci_variant() || (arch == Arch::Aarch64 && variant == Some("v8")))
}

pub fn platform_text(p: &oci_spec::image::Platform) -> String {
    match p.variant() {
        Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
        None => format!("{}/{}", p.os(), p.architecture()),
    }
}

fn parse_file<T: serde::de::DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, OciError> {
    let bytes = fs::read(path).map_err(OciError::io("cannot read", path))?;
    serde_json::from_slice(&bytes).map_err(|source| OciError::Parse { what, path: path.to_owned(), source })
}

/// The path of blob `digest`, checked to exist with `size` bytes.
fn existing_blob(dir: &Path, digest: Digest, size: u64, referenced_by: &str) -> Result<PathBuf, OciError> {
    let path = blob_path(dir, digest);
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(OciError::MissingBlob { dir: dir.to_owned(), digest, referenced_by: referenced_by.to_owned() })
        }
        Err(e) => return Err(OciError::Io(executor_base::io::PathError::new("cannot read", path, e))),
    };
    if meta.len() != size {
        return Err(OciError::SizeMismatch { what: path.display().to_string(), expected: size, actual: meta.len() });
    }
    Ok(path)
}

/// Reads blob `digest` (checking size and digest) and parses it as `T`.
fn read_json_blob<T: serde::de::DeserializeOwned>(
    dir: &Path,
    digest: Digest,
    size: u64,
    referenced_by: &str,
    what: &'static str,
) -> Result<(PathBuf, T), OciError> {
    let path = existing_blob(dir, digest, size, referenced_by)?;
    let bytes = fs::read(&path).map_err(OciError::io("cannot read", &path))?;
    let actual = Digest::of(&bytes);
    if actual != digest {
        return Err(OciError::DigestMismatch { what: path.display().to_string(), expected: digest, actual });
    }
    let value =
        serde_json::from_slice(&bytes).map_err(|source| OciError::Parse { what, path: path.clone(), source })?;
    Ok((path, value))
}
