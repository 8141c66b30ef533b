//! Sending a [`PushPlan`]: blobs (checked, mounted or uploaded), then manifests, then tags.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use oci_spec::image::{Descriptor, ImageIndex, MediaType, SCHEMA_VERSION};
use sha2::{Digest as _, Sha256};

use crate::digest::{hash_reader, Digest};
use crate::oci::{canonical_json, OciError};
use crate::registry::auth::Credentials;
use crate::registry::client::{percent_encode, Client, Response};
use crate::registry::error::RegistryError;
use crate::registry::plan::{read_plan, PlanBlob, PlanManifest, PlanReferrer};
use crate::registry::reference::Reference;

/// What a manifest request accepts: the OCI types first (distribution 2.8 answers 404 for
/// an OCI manifest unless they are named), then Docker's.
pub(crate) const MANIFEST_ACCEPT: &str =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How a push talks to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOptions {
    /// Use plain HTTP even for a host that is not loopback (which always gets HTTP).
    pub insecure: bool,
    /// A repository on the same registry to mount blobs from instead of uploading them,
    /// when the registry offers it.
    pub mount_from: Option<String>,
    /// How many blobs are checked and uploaded at once (at least 1).
    pub jobs: usize,
    /// Blobs larger than this are uploaded in chunks (`PATCH`es), smaller ones in one `PUT`.
    pub chunk_threshold: u64,
    /// The size of each chunk of a chunked upload (at least 1).
    pub chunk_size: u64,
    /// Longest time to resolve the host and connect.
    pub connect_timeout: Duration,
    /// Longest time without progress sending a request or receiving its response, so a
    /// stalled registry fails instead of hanging the push.
    pub read_timeout: Duration,
    /// How many times a transient failure (5xx, 429, timeouts, broken connections) of one
    /// step is retried.
    pub retries: u32,
    /// The pause before the first retry; it doubles for each further one.
    pub backoff_initial: Duration,
    /// The auth file that was searched for credentials, named when the registry wants some
    /// and there are none.
    pub auth_file: Option<std::path::PathBuf>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            insecure: false,
            mount_from: None,
            jobs: 4,
            chunk_threshold: 16 * 1024 * 1024,
            chunk_size: 8 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
            retries: 3,
            backoff_initial: Duration::from_millis(200),
            auth_file: None,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The digest of the pushed image (index or manifest): the layout's own, byte for byte.
    pub digest: Digest,
    /// Blobs uploaded.
    pub uploaded_blobs: usize,
    /// Blobs the repository already had.
    pub skipped_blobs: usize,
    /// Blobs mounted from [`PushOptions::mount_from`] or, for a shallow layout, from the
    /// repository its absent blobs are in.
    pub mounted_blobs: usize,
    /// Blobs of a shallow layout read from their repository on another registry and
    /// uploaded (counted in `uploaded_blobs` too).
    pub copied_blobs: usize,
    /// Bytes of blobs uploaded (manifests not counted).
    pub bytes_uploaded: u64,
    /// Manifests and indexes put (by digest), the image itself included.
    pub manifests: usize,
    /// Artifacts (SBOMs) put with the image as its referrers.
    pub referrers: usize,
    /// Whether the registry lacks the referrers API, so that the referrers were listed
    /// under the fallback tags `sha256-<subject hex>` instead.
    pub referrers_tag_schema: bool,
    /// The manifests and indexes pushed (media type, size, digest), children first, the
    /// image itself last: what `--sign` signs.
    pub pushed: Vec<(String, u64, Digest)>,
}

/// What happened to one blob.
enum BlobOutcome {
    Present,
    Mounted,
    Uploaded(u64),
    /// Read from another registry, then uploaded.
    Copied(u64),
}

/// Pushes the image named `ref_name` in the OCI layout at `layout_dir` to `target`: every
/// config and layer blob, every manifest (and nested index) by digest, then the image by
/// digest and by each of `target.tags`. `creds` are used if the registry asks for them
/// (see [`load_credentials`](crate::registry::load_credentials)).
pub fn push_layout(
    layout_dir: &Path,
    ref_name: &str,
    target: &Reference,
    opts: &PushOptions,
    creds: Option<Credentials>,
) -> Result<PushReport, RegistryError> {
    push_shallow_layout(layout_dir, ref_name, target, opts, creds, &RemoteBlobs::default())
}

/// Where the layer blobs a shallow layout lacks are (a pulled base's layers).
#[derive(Debug, Clone, Default)]
pub struct RemoteBlobs {
    /// Each absent blob's repository, `HOST/REPO`.
    pub blobs: BTreeMap<Digest, String>,
    /// Credentials for the hosts of those repositories, where there are some.
    pub creds: BTreeMap<String, Credentials>,
}

/// [`push_layout`] for a shallow layout: each blob it lacks is mounted from its repository
/// when that is on the target's registry (and the registry mounts), else read from its
/// repository (checked against its digest) and uploaded.
pub fn push_shallow_layout(
    layout_dir: &Path,
    ref_name: &str,
    target: &Reference,
    opts: &PushOptions,
    creds: Option<Credentials>,
    remote: &RemoteBlobs,
) -> Result<PushReport, RegistryError> {
    let plan = read_plan(layout_dir, ref_name, &remote.blobs)?;
    // Mounting needs pull access to the source repositories on the same registry.
    let mounts: BTreeSet<String> = plan
        .blobs
        .iter()
        .filter_map(|b| b.remote.as_deref())
        .filter_map(|source| source.strip_prefix(&format!("{}/", target.host)).map(str::to_owned))
        .collect();
    let client = Client::new(target, opts, creds).also_pull(&mounts);
    client.ping()?;
    let scratch = tempfile::tempdir().map_err(|e| RegistryError::Request {
        method: "GET",
        url: String::new(),
        detail: format!("cannot create a temporary directory for blobs read from other registries: {e}"),
        transient: false,
    })?;

    let outcomes = run_parallel(&plan.blobs, opts.jobs, |blob| match &blob.remote {
        Some(source) => push_remote_blob(&client, blob, source, opts, remote, scratch.path()),
        None => push_blob(&client, blob, opts),
    })?;
    let mut report = PushReport {
        digest: plan.top().digest,
        uploaded_blobs: 0,
        skipped_blobs: 0,
        mounted_blobs: 0,
        copied_blobs: 0,
        bytes_uploaded: 0,
        manifests: plan.manifests.len(),
        referrers: plan.referrers.len(),
        referrers_tag_schema: false,
        pushed: plan.manifests.iter().map(|m| (m.media_type.clone(), m.bytes.len() as u64, m.digest)).collect(),
    };
    for outcome in outcomes {
        match outcome {
            BlobOutcome::Present => report.skipped_blobs += 1,
            BlobOutcome::Mounted => report.mounted_blobs += 1,
            BlobOutcome::Uploaded(bytes) => {
                report.uploaded_blobs += 1;
                report.bytes_uploaded += bytes;
            }
            BlobOutcome::Copied(bytes) => {
                report.uploaded_blobs += 1;
                report.bytes_uploaded += bytes;
                report.copied_blobs += 1;
            }
        }
    }
    // Children before parents: a registry may refuse a manifest whose references it lacks.
    for manifest in &plan.manifests {
        put_manifest(&client, manifest, &manifest.digest.to_string())?;
    }
    for tag in &target.tags {
        put_manifest(&client, plan.top(), tag)?;
    }
    // Referrers last: a registry with the referrers API says so with `OCI-Subject`; for one
    // without, the distribution spec's fallback lists them in an index tagged
    // `sha256-<subject hex>`.
    let mut unlisted: BTreeMap<Digest, Vec<&PlanReferrer>> = BTreeMap::new();
    for referrer in &plan.referrers {
        let listed = put_manifest(&client, &referrer.manifest, &referrer.manifest.digest.to_string())?;
        if !listed {
            unlisted.entry(referrer.subject).or_default().push(referrer);
        }
    }
    report.referrers_tag_schema = !unlisted.is_empty();
    for (subject, referrers) in unlisted {
        update_referrers_tag(&client, subject, &referrers)?;
    }
    Ok(report)
}

/// What [`push_signatures`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignReport {
    /// Manifests signed (each in both formats).
    pub signed: usize,
    /// Blobs and manifests put (0 when every signature was there already).
    pub uploaded: usize,
    /// Whether the bundles were listed under the referrers tag schema.
    pub referrers_tag_schema: bool,
}

/// Signs each of `subjects` (media type, size, digest of manifests in `target`'s repository)
/// with `signer`, as `cosign sign --recursive` does, in both formats `cosign verify` reads: a
/// simple-signing layer added to the manifest tagged `sha256-<hex>.sig` (keeping the
/// signatures already there), and a Sigstore bundle attached as a referrer. Signatures are
/// deterministic; one already in place is not sent again.
pub fn push_signatures(
    target: &Reference,
    opts: &PushOptions,
    creds: Option<Credentials>,
    signer: &dyn crate::sign::Signer,
    subjects: &[(String, u64, Digest)],
) -> Result<SignReport, RegistryError> {
    use crate::sign::cosign;
    let client = Client::new(target, opts, creds);
    client.ping()?;
    let docker_reference = format!("{}/{}", target.host, target.repository);
    let mut report = SignReport::default();
    for (media_type, size, digest) in subjects {
        report.signed += 1;
        let (layer, payload) = cosign::legacy_layer(signer, &docker_reference, digest);
        put_legacy(&client, &cosign::signature_tag(digest), layer, &payload, &mut report)?;
        let statement = cosign::sign_statement(digest);
        let bundle = cosign::bundle(signer, cosign::envelope(signer, cosign::IN_TOTO, &statement));
        put_bundle(&client, &bundle, cosign::SIGN_PREDICATE, (media_type, *size, digest), &mut report)?;
    }
    Ok(report)
}

/// One in-toto statement to sign and attach to a pushed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The manifest it is about: media type, size, digest.
    pub subject: (String, u64, Digest),
    /// The statement's `predicateType`.
    pub predicate_type: String,
    /// The statement, as signed.
    pub statement: Vec<u8>,
}

/// Signs each attestation (a DSSE envelope) and attaches it as `cosign attest` does: a layer
/// of the manifest tagged `sha256-<hex>.att` (keeping the ones there), and a Sigstore bundle
/// referrer. Deterministic; one already in place is not sent again.
pub fn push_attestations(
    target: &Reference,
    opts: &PushOptions,
    creds: Option<Credentials>,
    signer: &dyn crate::sign::Signer,
    attestations: &[Attestation],
) -> Result<SignReport, RegistryError> {
    use crate::sign::cosign;
    let client = Client::new(target, opts, creds);
    client.ping()?;
    let mut report = SignReport::default();
    for attestation in attestations {
        report.signed += 1;
        let (media_type, size, digest) = &attestation.subject;
        let envelope = cosign::envelope(signer, cosign::IN_TOTO, &attestation.statement);
        let envelope_bytes = serde_json::to_vec(&envelope).expect("JSON serializes");
        let layer = serde_json::json!({
            "mediaType": cosign::DSSE_ENVELOPE,
            "size": envelope_bytes.len(),
            "digest": Digest::of(&envelope_bytes).to_string(),
            "annotations": { cosign::SIGNATURE_ANNOTATION: "", "predicateType": attestation.predicate_type },
        });
        put_legacy(&client, &cosign::attestation_tag(digest), layer, &envelope_bytes, &mut report)?;
        let bundle = cosign::bundle(signer, envelope);
        put_bundle(&client, &bundle, &attestation.predicate_type, (media_type, *size, digest), &mut report)?;
    }
    Ok(report)
}

/// Adds `layer` (whose blob is `blob`) to the cosign manifest tagged `tag`, keeping the layers
/// there; nothing when it is there already.
fn put_legacy(
    client: &Client,
    tag: &str,
    layer: serde_json::Value,
    blob: &[u8],
    report: &mut SignReport,
) -> Result<(), RegistryError> {
    use crate::sign::cosign;
    let mut layers: Vec<serde_json::Value> = match get_manifest(client, tag)? {
        Some(bytes) => {
            let existing: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                method: "GET",
                url: client.repo_url(&format!("/manifests/{tag}")),
                detail: format!("the cosign manifest `{tag}` is not JSON: {e}"),
            })?;
            existing["layers"].as_array().cloned().unwrap_or_default()
        }
        None => Vec::new(),
    };
    if layers.contains(&layer) {
        return Ok(());
    }
    layers.push(layer);
    let (config, manifest) = cosign::signature_manifest(&layers);
    report.uploaded += usize::from(put_blob_bytes(client, blob)?);
    report.uploaded += usize::from(put_blob_bytes(client, &config)?);
    let manifest = PlanManifest { digest: Digest::of(&manifest), media_type: cosign::MANIFEST.into(), bytes: manifest };
    put_manifest(client, &manifest, tag)?;
    report.uploaded += 1;
    Ok(())
}

/// Attaches `bundle` to `subject` as a referrer (the referrers tag schema where the registry
/// has no referrers API); nothing when it is there already.
fn put_bundle(
    client: &Client,
    bundle: &[u8],
    predicate_type: &str,
    subject: (&str, u64, &Digest),
    report: &mut SignReport,
) -> Result<(), RegistryError> {
    use crate::sign::cosign;
    let manifest = cosign::bundle_manifest(bundle, predicate_type, subject);
    let manifest = PlanManifest { digest: Digest::of(&manifest), media_type: cosign::MANIFEST.into(), bytes: manifest };
    if get_manifest(client, &manifest.digest.to_string())?.is_some() {
        return Ok(());
    }
    report.uploaded += usize::from(put_blob_bytes(client, cosign::EMPTY_BLOB)?);
    report.uploaded += usize::from(put_blob_bytes(client, bundle)?);
    let listed = put_manifest(client, &manifest, &manifest.digest.to_string())?;
    report.uploaded += 1;
    if !listed {
        report.referrers_tag_schema = true;
        let referrer = PlanReferrer {
            manifest,
            subject: *subject.2,
            artifact_type: cosign::BUNDLE.into(),
            annotations: BTreeMap::from([
                ("dev.sigstore.bundle.content".to_owned(), "dsse-envelope".to_owned()),
                ("dev.sigstore.bundle.predicateType".to_owned(), predicate_type.to_owned()),
            ]),
        };
        update_referrers_tag(client, *subject.2, &[&referrer])?;
    }
    Ok(())
}

/// The manifest at `reference` (a tag or digest), if the repository has one.
fn get_manifest(client: &Client, reference: &str) -> Result<Option<Vec<u8>>, RegistryError> {
    let url = client.repo_url(&format!("/manifests/{reference}"));
    client.with_retries(|| {
        let resp = client.request("GET", &url, &[("Accept", MANIFEST_ACCEPT)], None)?;
        match resp.status {
            200 => Ok(Some(resp.body)),
            404 => Ok(None),
            _ => Err(client.fail("GET", &url, &resp)),
        }
    })
}

/// Makes sure the repository has the blob `bytes` (small: sent in one request); whether it
/// was sent.
fn put_blob_bytes(client: &Client, bytes: &[u8]) -> Result<bool, RegistryError> {
    let digest = Digest::of(bytes);
    let url = client.repo_url(&format!("/blobs/{digest}"));
    client.with_retries(|| {
        let resp = client.request("HEAD", &url, &[], None)?;
        if matches!(resp.status, 200 | 302 | 303 | 307) {
            check_digest_header(&resp, "HEAD", &url, digest)?;
            return Ok(false);
        }
        if resp.status != 404 {
            return Err(client.fail("HEAD", &url, &resp));
        }
        let start = client.repo_url("/blobs/uploads/");
        let resp = client.request("POST", &start, &[], Some(&[]))?;
        if resp.status != 202 {
            return Err(client.fail("POST", &start, &resp));
        }
        let put = with_digest(&location(client, &resp, "POST", &start)?, digest);
        let resp = client.request("PUT", &put, &[("Content-Type", "application/octet-stream")], Some(bytes))?;
        if resp.status != 201 {
            return Err(client.fail("PUT", &put, &resp));
        }
        check_digest_header(&resp, "PUT", &put, digest)?;
        Ok(true)
    })
}

/// The referrers tag schema: adds `referrers` to the index tagged `sha256-<subject hex>`
/// (created if missing), keeping what other clients listed there; puts it only if it
/// changed, so a repeated push sends nothing.
fn update_referrers_tag(client: &Client, subject: Digest, referrers: &[&PlanReferrer]) -> Result<(), RegistryError> {
    let tag = format!("sha256-{}", subject.hex());
    let url = client.repo_url(&format!("/manifests/{tag}"));
    let current = client.with_retries(|| {
        let resp = client.request("GET", &url, &[("Accept", "application/vnd.oci.image.index.v1+json")], None)?;
        match resp.status {
            200 => Ok(Some(resp.body)),
            404 => Ok(None),
            _ => Err(client.fail("GET", &url, &resp)),
        }
    })?;
    let mut index: ImageIndex = match &current {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| RegistryError::Protocol {
            method: "GET",
            url: url.clone(),
            detail: format!("the referrers tag `{tag}` is not an image index: {e}"),
        })?,
        None => {
            let mut index = ImageIndex::default();
            index.set_schema_version(SCHEMA_VERSION);
            index.set_media_type(Some(MediaType::ImageIndex));
            index.set_manifests(Vec::new());
            index
        }
    };
    let mut manifests = index.manifests().clone();
    let mut changed = false;
    for referrer in referrers {
        let digest = referrer.manifest.digest.to_string();
        if manifests.iter().any(|d| d.digest().to_string() == digest) {
            continue;
        }
        let oci_digest = oci_spec::image::Digest::from_str(&digest).map_err(|e| RegistryError::Protocol {
            method: "PUT",
            url: url.clone(),
            detail: format!("digest `{digest}`: {e}"),
        })?;
        let mut descriptor =
            Descriptor::new(MediaType::ImageManifest, referrer.manifest.bytes.len() as u64, oci_digest);
        descriptor.set_artifact_type(Some(MediaType::from(referrer.artifact_type.as_str())));
        if !referrer.annotations.is_empty() {
            descriptor.set_annotations(Some(referrer.annotations.clone().into_iter().collect()));
        }
        manifests.push(descriptor);
        changed = true;
    }
    if !changed {
        return Ok(());
    }
    index.set_manifests(manifests);
    let bytes = canonical_json(&index).map_err(|e| RegistryError::Protocol {
        method: "PUT",
        url: url.clone(),
        detail: format!("cannot serialize the referrers index: {e}"),
    })?;
    let manifest = PlanManifest { digest: Digest::of(&bytes), media_type: MediaType::ImageIndex.to_string(), bytes };
    put_manifest(client, &manifest, &tag)?;
    Ok(())
}

/// Runs `work` over `items` on up to `jobs` threads; the results in item order, or the
/// error of the first failing item (by index, so the error does not depend on timing).
/// After a failure no new item is started.
fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> Result<R, RegistryError> + Sync,
) -> Result<Vec<R>, RegistryError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R, RegistryError>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() || failed.load(Ordering::Relaxed) {
                    break;
                }
                let result = work(&items[i]);
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut out = Vec::with_capacity(items.len());
    for result in results {
        match result {
            Some(Ok(value)) => out.push(value),
            Some(Err(err)) => return Err(err),
            // Not started because another item failed; that error comes first or later.
            None => {}
        }
    }
    Ok(out)
}

/// Whether the repository already has blob `digest` (a `HEAD`, retried).
fn blob_present(client: &Client, digest: Digest) -> Result<bool, RegistryError> {
    let url = client.repo_url(&format!("/blobs/{digest}"));
    client.with_retries(|| {
        let resp = client.request("HEAD", &url, &[], None)?;
        match resp.status {
            // Redirects are not followed: a registry redirecting to its storage has the blob.
            200 | 302 | 303 | 307 => {
                check_digest_header(&resp, "HEAD", &url, digest)?;
                Ok(true)
            }
            404 => Ok(false),
            _ => Err(client.fail("HEAD", &url, &resp)),
        }
    })
}

/// Makes sure the repository has `blob`: skips it if present, else mounts or uploads it.
fn push_blob(client: &Client, blob: &PlanBlob, opts: &PushOptions) -> Result<BlobOutcome, RegistryError> {
    if blob_present(client, blob.digest)? {
        return Ok(BlobOutcome::Present);
    }
    // Checked once before the first byte is sent; the upload hashes again as it reads.
    let file = File::open(&blob.path).map_err(OciError::io("cannot open", &blob.path))?;
    let (actual, _) = hash_reader(file).map_err(OciError::io("cannot read", &blob.path))?;
    if actual != blob.digest {
        return Err(
            OciError::DigestMismatch { what: blob.path.display().to_string(), expected: blob.digest, actual }.into()
        );
    }
    client.with_retries(|| upload(client, blob, opts))
}

/// Makes sure the repository has `blob`, which the layout lacks and `source` (`HOST/REPO`)
/// holds: skips it if present, mounts it from `source` on the same registry, else reads it
/// from `source` into `scratch` (checked against its digest and size) and uploads it.
fn push_remote_blob(
    client: &Client,
    blob: &PlanBlob,
    source: &str,
    opts: &PushOptions,
    remote: &RemoteBlobs,
    scratch: &Path,
) -> Result<BlobOutcome, RegistryError> {
    if blob_present(client, blob.digest)? {
        return Ok(BlobOutcome::Present);
    }
    let source_ref = Reference::parse(source)?;
    if source_ref.host == client.host {
        let start = mount_url(client, blob.digest, &source_ref.repository);
        let mounted = client.with_retries(|| {
            let resp = client.request("POST", &start, &[], Some(&[]))?;
            match resp.status {
                201 => {
                    check_digest_header(&resp, "POST", &start, blob.digest)?;
                    Ok(true)
                }
                // The registry opened an upload session instead: it will not mount.
                202 => {
                    if let Ok(location) = location(client, &resp, "POST", &start) {
                        cancel(client, &location);
                    }
                    Ok(false)
                }
                _ => Err(client.fail("POST", &start, &resp)),
            }
        })?;
        if mounted {
            return Ok(BlobOutcome::Mounted);
        }
    }
    let puller = crate::registry::pull::Puller::new(&source_ref, opts, remote.creds.get(&source_ref.host).cloned());
    let path = scratch.join(blob.digest.hex());
    puller.blob_to_file(blob.digest, blob.size, &path)?;
    let local = PlanBlob { path: path.clone(), remote: None, ..blob.clone() };
    let outcome = client.with_retries(|| upload(client, &local, &PushOptions { mount_from: None, ..opts.clone() }));
    let _ = std::fs::remove_file(&path);
    match outcome? {
        BlobOutcome::Uploaded(bytes) => Ok(BlobOutcome::Copied(bytes)),
        other => Ok(other),
    }
}

/// The `POST` that asks the registry to mount blob `digest` from repository `from`.
fn mount_url(client: &Client, digest: Digest, from: &str) -> String {
    client.repo_url(&format!(
        "/blobs/uploads/?mount={}&from={}",
        percent_encode(&digest.to_string()),
        percent_encode(from)
    ))
}

/// One attempt at mounting or uploading `blob`, from a fresh upload session.
fn upload(client: &Client, blob: &PlanBlob, opts: &PushOptions) -> Result<BlobOutcome, RegistryError> {
    let start = match &opts.mount_from {
        Some(from) => mount_url(client, blob.digest, from),
        None => client.repo_url("/blobs/uploads/"),
    };
    let resp = client.request("POST", &start, &[], Some(&[]))?;
    match resp.status {
        201 if opts.mount_from.is_some() => {
            check_digest_header(&resp, "POST", &start, blob.digest)?;
            return Ok(BlobOutcome::Mounted);
        }
        202 => {}
        _ => return Err(client.fail("POST", &start, &resp)),
    }
    let location = location(client, &resp, "POST", &start)?;
    if blob.size <= opts.chunk_threshold {
        upload_monolithic(client, blob, &location)
    } else {
        upload_chunked(client, blob, location, opts.chunk_size.max(1))
    }
}

fn upload_monolithic(client: &Client, blob: &PlanBlob, location: &str) -> Result<BlobOutcome, RegistryError> {
    let bytes = std::fs::read(&blob.path).map_err(OciError::io("cannot read", &blob.path))?;
    let actual = Digest::of(&bytes);
    if actual != blob.digest {
        cancel(client, location);
        return Err(RegistryError::BlobChanged { path: blob.path.clone(), expected: blob.digest, actual });
    }
    let url = with_digest(location, blob.digest);
    let resp = client.request("PUT", &url, &[("Content-Type", "application/octet-stream")], Some(bytes.as_slice()))?;
    if resp.status != 201 {
        let err = client.fail("PUT", &url, &resp);
        cancel(client, location);
        return Err(err);
    }
    check_digest_header(&resp, "PUT", &url, blob.digest)?;
    Ok(BlobOutcome::Uploaded(bytes.len() as u64))
}

fn upload_chunked(
    client: &Client,
    blob: &PlanBlob,
    mut location: String,
    chunk_size: u64,
) -> Result<BlobOutcome, RegistryError> {
    let mut file = File::open(&blob.path).map_err(OciError::io("cannot open", &blob.path))?;
    let mut hasher = Sha256::new();
    let mut buf = Vec::new();
    let mut offset: u64 = 0;
    loop {
        buf.clear();
        (&mut file).take(chunk_size).read_to_end(&mut buf).map_err(OciError::io("cannot read", &blob.path))?;
        if buf.is_empty() {
            break;
        }
        hasher.update(&buf);
        let end = offset + buf.len() as u64 - 1;
        let range = format!("{offset}-{end}");
        let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
        let resp = client.request("PATCH", &location, &headers, Some(buf.as_slice()))?;
        if resp.status != 202 {
            let err = client.fail("PATCH", &location, &resp);
            cancel(client, &location);
            return Err(err);
        }
        let received = resp.header("range").and_then(|r| r.rsplit_once('-')).and_then(|(_, e)| e.parse::<u64>().ok());
        if received.is_some_and(|r| r != end) {
            cancel(client, &location);
            return Err(RegistryError::Protocol {
                method: "PATCH",
                url: location,
                detail: format!("the registry has bytes up to {} of the blob, expected {end}", received.unwrap_or(0)),
            });
        }
        location = self::location(client, &resp, "PATCH", &location)?;
        offset = end + 1;
    }
    let actual = Digest::from_bytes(hasher.finalize().into());
    if actual != blob.digest || offset != blob.size {
        cancel(client, &location);
        return Err(RegistryError::BlobChanged { path: blob.path.clone(), expected: blob.digest, actual });
    }
    let url = with_digest(&location, blob.digest);
    let resp = client.request("PUT", &url, &[], Some(&[]))?;
    if resp.status != 201 {
        let err = client.fail("PUT", &url, &resp);
        cancel(client, &location);
        return Err(err);
    }
    check_digest_header(&resp, "PUT", &url, blob.digest)?;
    Ok(BlobOutcome::Uploaded(offset))
}

/// Puts `manifest` under `reference` (its digest or a tag), with its media type; whether
/// the registry answered `OCI-Subject` (it indexed the manifest's `subject` as a referrer).
fn put_manifest(client: &Client, manifest: &PlanManifest, reference: &str) -> Result<bool, RegistryError> {
    let url = client.repo_url(&format!("/manifests/{reference}"));
    let headers = [("Content-Type", manifest.media_type.as_str()), ("Accept", MANIFEST_ACCEPT)];
    client.with_retries(|| {
        let resp = client.request("PUT", &url, &headers, Some(manifest.bytes.as_slice()))?;
        if !matches!(resp.status, 200 | 201) {
            return Err(client.fail("PUT", &url, &resp));
        }
        check_digest_header(&resp, "PUT", &url, manifest.digest)?;
        Ok(resp.header("oci-subject").is_some())
    })
}

/// Abandons an upload session; a failure to do so only leaves it for the registry to
/// expire.
fn cancel(client: &Client, location: &str) {
    let _ = client.request("DELETE", location, &[], None);
}

/// The absolute `Location` of an upload session.
fn location(client: &Client, resp: &Response, method: &'static str, url: &str) -> Result<String, RegistryError> {
    match resp.header("location") {
        Some(location) if !location.is_empty() => Ok(client.resolve(location)),
        _ => Err(RegistryError::Protocol {
            method,
            url: url.to_owned(),
            detail: format!("http {} without a `Location` header for the upload", resp.status),
        }),
    }
}

/// `location` with `digest=<digest>` added to its query.
fn with_digest(location: &str, digest: Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={}", percent_encode(&digest.to_string()))
}

/// Fails if the registry's `Docker-Content-Digest` names another digest than `expected`.
pub(crate) fn check_digest_header(
    resp: &Response,
    method: &'static str,
    url: &str,
    expected: Digest,
) -> Result<(), RegistryError> {
    match resp.header("docker-content-digest") {
        Some(got) if got.trim() != expected.to_string() => {
            Err(RegistryError::WrongDigest { method, url: url.to_owned(), expected, got: got.trim().to_owned() })
        }
        _ => Ok(()),
    }
}
