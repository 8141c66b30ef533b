//! docker-archive tarballs: one platform image of an OCI layout as `docker save` writes
//! it, for `docker load`, `podman load` and `skopeo copy docker-archive:...`.
//!
//! The tarball holds, as plain files sorted by name:
//! - `<config hex>.json`: the image config, byte for byte the layout's blob (so the image
//!   ID that `docker load` reports is the OCI config digest);
//! - `<diff_id hex>.tar`: each distinct layer, **uncompressed** (gzip layers are
//!   decompressed; every loader accepts uncompressed layers, only newer ones compressed);
//!   the name is the layer's diff_id, which the bytes are checked against, twice: before
//!   the entry is written and while it is;
//! - `manifest.json`: `[{"Config": ..., "RepoTags": [...], "Layers": [...]}]`, layers
//!   bottom first, a repeated layer listed again but stored once.
//!
//! No `repositories` file and no legacy `<id>/json`/`<id>/VERSION`: they serve only
//! loaders older than `manifest.json` (Docker < 1.10), and their v1 layer ids would have
//! to be invented.
//!
//! Deterministic: entries sorted, mode `0644`, owner `0:0` without names, mtime 0, USTAR
//! headers, canonical JSON. The same layout image and tags give the same bytes.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde::Serialize;

use crate::digest::{hash_reader, Digest, HashingWriter};
use crate::oci::{canonical_json, read_layout_image, BaseImage, MediaType, OciError};
use crate::platform::Arch;
use crate::registry::reference::valid_component;

/// Tar block size.
const BLOCK: u64 = 512;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerArchive {
    /// The config digest: the image ID `docker load` reports.
    pub config: Digest,
    /// The layers' diff_ids, bottom first (as `manifest.json` lists them).
    pub diff_ids: Vec<Digest>,
    /// The tags given.
    pub repo_tags: Vec<String>,
}

/// Everything that can go wrong writing a docker-archive.
#[derive(Debug, thiserror::Error)]
pub enum DockerArchiveError {
    /// Reading the layout failed.
    #[error(transparent)]
    Oci(#[from] OciError),

    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] executor_base::io::PathError),

    /// A tag that `docker load` would refuse.
    #[error("invalid repo tag `{tag}`: expected `name:tag` like `example.com/team/app:1.0` (lowercase name)")]
    InvalidRepoTag {
        /// The tag as given.
        tag: String,
    },

    /// A layer compressed in a way the archive cannot carry.
    #[error("layer {digest} has media type `{media_type}`; only gzip and uncompressed tar layers can be exported")]
    UnsupportedLayer {
        /// The layer blob.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },

    /// A config `rootfs.diff_ids` entry that is not a sha256 digest.
    #[error("image config {config} has an invalid diff_id `{diff_id}`")]
    InvalidDiffId {
        /// The config blob.
        config: Digest,
        /// The entry.
        diff_id: String,
    },

    /// A layer's uncompressed bytes do not hash to its diff_id.
    #[error("layer {digest} uncompresses to {actual}, but the image config says diff_id {expected}")]
    DiffIdMismatch {
        /// The layer blob.
        digest: Digest,
        /// The config's diff_id.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },

    /// A layer blob changed between the two reads.
    #[error("layer {digest} changed while it was being exported")]
    Changed {
        /// The layer blob.
        digest: Digest,
    },
}

impl DockerArchiveError {
    fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> DockerArchiveError {
        let path = path.into();
        move |source| DockerArchiveError::Io(executor_base::io::PathError::new(what, path, source))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry<'a> {
    config: String,
    repo_tags: &'a [String],
    layers: Vec<String>,
}

/// Writes `arch`'s image of the layout `layout` (the `index.json` entry `image_ref`, or
/// its only entry) to the docker-archive `out`, through a temporary file beside it,
/// tagged `repo_tags` (none: the loaded image is untagged). The layer blobs a shallow
/// layout lacks are looked for in `blob_dirs` (directories of pulled blobs).
pub fn write_docker_archive(
    layout: &Path,
    image_ref: Option<&str>,
    arch: Arch,
    repo_tags: &[String],
    blob_dirs: &[&Path],
    out: &Path,
) -> Result<DockerArchive, DockerArchiveError> {
    let mut image = read_layout_image(layout, image_ref, arch)?;
    image.find_missing(blob_dirs)?;
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = out.with_file_name(name);
    let file = File::create(&tmp).map_err(DockerArchiveError::io("cannot create", &tmp))?;
    let result = write_archive(layout, &image, repo_tags, BufWriter::new(file))
        .and_then(|(archive, writer)| {
            let file = writer.into_inner().map_err(|e| {
                DockerArchiveError::Io(executor_base::io::PathError::new("cannot write", tmp.clone(), e.into_error()))
            })?;
            file.sync_all().map_err(DockerArchiveError::io("cannot write", &tmp))?;
            Ok(archive)
        })
        .and_then(|archive| {
            fs::rename(&tmp, out).map_err(DockerArchiveError::io("cannot rename", &tmp))?;
            Ok(archive)
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes the docker-archive of `image` (read from the layout `layout`) to `out`; returns
/// the summary and the writer.
pub fn write_archive<W: Write>(
    layout: &Path,
    image: &BaseImage,
    repo_tags: &[String],
    mut out: W,
) -> Result<(DockerArchive, W), DockerArchiveError> {
    if let Some(bad) = repo_tags.iter().find(|t| !valid_repo_tag(t)) {
        return Err(DockerArchiveError::InvalidRepoTag { tag: bad.clone() });
    }
    let config_digest =
        Digest::from_hex(image.manifest.config().digest().digest()).ok_or_else(|| OciError::UnsupportedDigest {
            what: "the image manifest's config".to_owned(),
            digest: image.manifest.config().digest().to_string(),
        })?;
    let config_path = layout.join("blobs").join("sha256").join(config_digest.hex());
    let config_bytes = fs::read(&config_path).map_err(DockerArchiveError::io("cannot read", &config_path))?;
    let actual = Digest::of(&config_bytes);
    if actual != config_digest {
        return Err(OciError::DigestMismatch {
            what: config_path.display().to_string(),
            expected: config_digest,
            actual,
        }
        .into());
    }
    let mut diff_ids = Vec::with_capacity(image.layers.len());
    for text in image.config.rootfs().diff_ids() {
        let diff_id = text
            .parse::<Digest>()
            .map_err(|_| DockerArchiveError::InvalidDiffId { config: config_digest, diff_id: text.clone() })?;
        diff_ids.push(diff_id);
    }

    // Every entry, by name: (name, what to write). Layers are checked against their
    // diff_id now, so a bad layer fails before anything is written.
    enum Source<'a> {
        Bytes(Vec<u8>),
        Layer { path: &'a Path, gzip: bool, digest: Digest, diff_id: Digest, len: u64 },
    }
    let mut entries: std::collections::BTreeMap<String, Source<'_>> = std::collections::BTreeMap::new();
    let mut layer_names = Vec::with_capacity(image.layers.len());
    let paths = image.layer_paths(layout)?;
    for ((layer, diff_id), path) in image.layers.iter().zip(&diff_ids).zip(paths) {
        let digest = layer.descriptor.digest;
        let gzip = match &layer.descriptor.media_type {
            MediaType::ImageLayerGzip => true,
            MediaType::ImageLayer => false,
            other => {
                return Err(DockerArchiveError::UnsupportedLayer { digest, media_type: other.to_string() });
            }
        };
        let name = format!("{}.tar", diff_id.hex());
        layer_names.push(name.clone());
        if entries.contains_key(&name) {
            continue;
        }
        let (actual, len) =
            hash_reader(open_layer(path, gzip)?).map_err(DockerArchiveError::io("cannot decompress", path))?;
        if actual != *diff_id {
            return Err(DockerArchiveError::DiffIdMismatch { digest, expected: *diff_id, actual });
        }
        entries.insert(name, Source::Layer { path, gzip, digest, diff_id: *diff_id, len });
    }
    let config_name = format!("{}.json", config_digest.hex());
    let manifest = [ManifestEntry { config: config_name.clone(), repo_tags, layers: layer_names }];
    let manifest_bytes =
        canonical_json(&manifest).map_err(|source| OciError::Serialize { what: "manifest.json", source })?;
    entries.insert(config_name, Source::Bytes(config_bytes));
    entries.insert("manifest.json".to_owned(), Source::Bytes(manifest_bytes));

    let write_err = |e: io::Error| {
        DockerArchiveError::Io(executor_base::io::PathError::new("cannot write", PathBuf::from("<docker-archive>"), e))
    };
    for (name, source) in &entries {
        match source {
            Source::Bytes(bytes) => {
                out.write_all(&header(name, bytes.len() as u64)?).map_err(write_err)?;
                out.write_all(bytes).map_err(write_err)?;
                pad(&mut out, bytes.len() as u64).map_err(write_err)?;
            }
            Source::Layer { path, gzip, digest, diff_id, len } => {
                out.write_all(&header(name, *len)?).map_err(write_err)?;
                let mut hashing = HashingWriter::new(&mut out);
                io::copy(&mut open_layer(path, *gzip)?.take(*len), &mut hashing)
                    .map_err(DockerArchiveError::io("cannot decompress", *path))?;
                let (actual, written, _) = hashing.finish();
                if actual != *diff_id || written != *len {
                    return Err(DockerArchiveError::Changed { digest: *digest });
                }
                pad(&mut out, *len).map_err(write_err)?;
            }
        }
    }
    // End of archive: two zero blocks.
    out.write_all(&[0u8; 2 * BLOCK as usize]).map_err(write_err)?;
    out.flush().map_err(write_err)?;
    Ok((DockerArchive { config: config_digest, diff_ids, repo_tags: repo_tags.to_vec() }, out))
}

fn open_layer(path: &Path, gzip: bool) -> Result<Box<dyn Read>, DockerArchiveError> {
    let file = File::open(path).map_err(DockerArchiveError::io("cannot open", path))?;
    let reader = io::BufReader::new(file);
    Ok(if gzip { Box::new(MultiGzDecoder::new(reader)) } else { Box::new(reader) })
}

/// A USTAR header for a regular file: mode 0644, owner 0:0 without names, mtime 0.
fn header(name: &str, size: u64) -> Result<[u8; BLOCK as usize], DockerArchiveError> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).map_err(DockerArchiveError::io("cannot name entry", name))?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(*header.as_bytes())
}

/// Zero-pads an entry of `len` bytes to the block size.
fn pad(out: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = len % BLOCK;
    if rem == 0 {
        return Ok(());
    }
    out.write_all(&[0u8; BLOCK as usize][..(BLOCK - rem) as usize])
}

/// Whether `tag` is a docker reference `name:tag` as `docker load` accepts in `RepoTags`:
/// an optional registry host (with a `.` or `:port`, or `localhost`), lowercase path
/// components (`a-z0-9` joined by `.`, `_`, `__` or dashes), and a tag of up to 128
/// characters from `A-Za-z0-9_.-` not starting with `.` or `-`.
pub fn valid_repo_tag(tag: &str) -> bool {
    let Some((name, tag)) = tag.rsplit_once(':') else { return false };
    if tag.is_empty()
        || tag.len() > 128
        || tag.starts_with(['.', '-'])
        || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        || tag.contains('/')
    {
        return false;
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        if first.contains(['.', ':']) || first == "localhost" {
            let (host, port) = match first.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (first, None),
            };
            let host_ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty()
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !(host_ok && port_ok) {
                return false;
            }
            components.remove(0);
        }
    }
    !components.is_empty() && components.iter().all(|c| valid_component(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags() {
        for ok in [
            "static:latest",
            "executor/static:v1.2",
            "example.com/team/app:1.0",
            "localhost:5000/a/b:tag_1",
            "localhost/a:x",
            "a__b/c--d.e:T",
        ] {
            assert!(valid_repo_tag(ok), "{ok}");
        }
        for bad in [
            "static",
            "Static:latest",
            "static:",
            "static:-x",
            "a//b:t",
            "/a:t",
            "a_:t",
            "a:b c",
            "ex ample.com/a:t",
            "localhost:port/a:t",
            &format!("a:{}", "x".repeat(129)),
        ] {
            assert!(!valid_repo_tag(bad), "{bad}");
        }
    }
}
