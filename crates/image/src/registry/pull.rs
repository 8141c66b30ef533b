//! Reading images from a registry by digest: manifests and indexes (in memory, bounded) and
//! blobs (streamed to a file, bounded by their descriptor's size). Nothing is returned or
//! left in place before its bytes hash to the digest that named it.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::digest::{Digest, HashingWriter};
use crate::oci::OciError;
use crate::registry::auth::Credentials;
use crate::registry::client::Client;
use crate::registry::error::RegistryError;
use crate::registry::push::{PushOptions, MANIFEST_ACCEPT};
use crate::registry::reference::Reference;

/// The largest manifest or index accepted (the distribution spec lets registries refuse
/// bigger ones; 4 MiB is what they commonly allow).
pub const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

/// A manifest or index as the registry served it, its bytes checked against its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledManifest {
    /// The digest that named it, which its bytes hash to.
    pub digest: Digest,
    /// Its `mediaType` (for an OCI document without one: an index if it has `manifests`).
    pub media_type: String,
    /// The bytes, exactly as served.
    pub bytes: Vec<u8>,
}

impl PulledManifest {
    /// Whether it is an image index (OCI) or a manifest list (Docker).
    pub fn is_index(&self) -> bool {
        self.media_type == MEDIA_TYPE_INDEX || self.media_type == DOCKER_MANIFEST_LIST
    }
}

/// The OCI image index media type.
pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The OCI image manifest media type.
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Docker's manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Reads one repository of one registry, asking only for pull access.
pub struct Puller {
    client: Client,
}

impl Puller {
    /// A reader of `image`'s repository (its tags are ignored).
    pub fn new(image: &Reference, opts: &PushOptions, creds: Option<Credentials>) -> Self {
        Puller { client: Client::new(image, opts, creds).pull_only() }
    }

    /// `HOST/REPOSITORY`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.client.host, self.client.repository)
    }

    /// The manifest or index `digest` names, its bytes checked against it.
    pub fn manifest(&self, digest: Digest) -> Result<PulledManifest, RegistryError> {
        let url = self.client.repo_url(&format!("/manifests/{digest}"));
        let bytes = self.client.with_retries(|| {
            let mut bytes = Vec::new();
            self.client
                .download(&url, Some(MANIFEST_ACCEPT), "a manifest", MAX_MANIFEST, &mut bytes)
                .map_err(|e| self.not_found(e, &format!("`{}` has no manifest {digest}", self.name())))?;
            Ok(bytes)
        })?;
        let actual = Digest::of(&bytes);
        if actual != digest {
            return Err(RegistryError::Served { what: "a manifest", url, expected: digest, actual });
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
            method: "GET",
            url: url.clone(),
            detail: format!("the manifest {digest} is not JSON: {e}"),
        })?;
        let media_type = match value.get("mediaType").and_then(|m| m.as_str()) {
            Some(t) => t.to_owned(),
            None if value.get("manifests").is_some() => MEDIA_TYPE_INDEX.to_owned(),
            None => MEDIA_TYPE_MANIFEST.to_owned(),
        };
        Ok(PulledManifest { digest, media_type, bytes })
    }

    /// Downloads blob `digest` of `size` bytes to `dest` (through a temporary name beside
    /// it): `dest` appears only with exactly those bytes. More bytes than `size` are refused
    /// as they arrive.
    pub fn blob_to_file(&self, digest: Digest, size: u64, dest: &Path) -> Result<(), RegistryError> {
        let url = self.client.repo_url(&format!("/blobs/{digest}"));
        let mut name = dest.file_name().unwrap_or_default().to_owned();
        name.push(".part");
        let tmp = dest.with_file_name(name);
        let result = self.client.with_retries(|| {
            let file = File::create(&tmp).map_err(OciError::io("cannot create", &tmp))?;
            let mut writer = HashingWriter::new(BufWriter::new(file));
            let written = self
                .client
                .download(&url, None, "a blob", size, &mut writer)
                .map_err(|e| self.not_found(e, &format!("`{}` has no blob {digest}", self.name())))?;
            let (actual, _, mut inner) = writer.finish();
            inner.flush().map_err(OciError::io("cannot write", &tmp))?;
            if written != size {
                return Err(RegistryError::Truncated {
                    method: "GET",
                    url: url.clone(),
                    expected: size,
                    received: written,
                });
            }
            if actual != digest {
                return Err(RegistryError::Served { what: "a blob", url: url.clone(), expected: digest, actual });
            }
            Ok(())
        });
        match result {
            Ok(()) => fs::rename(&tmp, dest).map_err(|e| OciError::io("cannot rename", &tmp)(e).into()),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// A blob small enough for memory (a config), checked against `digest` and `size`.
    pub fn blob_bytes(&self, digest: Digest, size: u64) -> Result<Vec<u8>, RegistryError> {
        let url = self.client.repo_url(&format!("/blobs/{digest}"));
        let bytes = self.client.with_retries(|| {
            let mut bytes = Vec::new();
            self.client
                .download(&url, None, "a blob", size, &mut bytes)
                .map_err(|e| self.not_found(e, &format!("`{}` has no blob {digest}", self.name())))?;
            Ok(bytes)
        })?;
        let actual = Digest::of(&bytes);
        if actual != digest || bytes.len() as u64 != size {
            return Err(RegistryError::Served { what: "a blob", url, expected: digest, actual });
        }
        Ok(bytes)
    }

    /// A 404's error with `hint`; other errors unchanged.
    fn not_found(&self, err: RegistryError, hint: &str) -> RegistryError {
        match err {
            RegistryError::NotFound { host, method, url, registry_says, .. } => {
                RegistryError::NotFound { host, method, url, registry_says, hint: hint.to_owned() }
            }
            other => other,
        }
    }
}
