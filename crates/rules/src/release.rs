//! Release commands of the image rule set: what `executor push` and `executor verify` do
//! with a built image or index (the command line builds it first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::action::Artifact;
use crate::digest::Digest;
use crate::error::{built_error, registry_error, verify_error};
use crate::fetch::FetchOptions;
use crate::label::Label;
use crate::rules::Provided;
use crate::{BuiltMeta, ImageInfo, IndexInfo};
use executor_engine::Error;

/// The push target `repository` with `--tag`s, checked, and the credentials for its host.
pub fn push_destination(
    repository: &str,
    mut tags: Vec<String>,
) -> Result<(crate::registry::Reference, Option<crate::registry::Credentials>), Error> {
    use crate::registry::{load_credentials, AuthEnv, Reference};
    let mut reference = Reference::parse(repository).map_err(|e| Error::Usage(format!("--repository: {e}")))?;
    for tag in &tags {
        crate::registry::reference::check_tag(tag)
            .map_err(|reason| Error::Usage(format!("--tag `{tag}`: {reason}")))?;
    }
    if !tags.is_empty() {
        // `--tag` replaces the default `latest`, unless the repository named a tag itself.
        let explicit = repository.rsplit('/').next().is_some_and(|last| last.contains(':'));
        if !explicit {
            reference.tags.clear();
        }
        reference.tags.append(&mut tags);
        reference.tags.sort();
        reference.tags.dedup();
    }
    let creds =
        load_credentials(&reference.host, &AuthEnv::from_process()).map_err(|e| registry_error(e.to_string()))?;
    Ok((reference, creds))
}

/// The one image or index target a command built.
pub struct BuiltImage<'a> {
    /// Its label.
    pub label: &'a Label,
    /// Its OCI layout directory.
    pub layout: PathBuf,
    /// Its description (`*.index.json` or `*.image.json`).
    pub meta: BuiltMeta,
    /// `index` or `image`.
    pub kind: &'static str,
}

/// The single requested target of a build, which must be an `oci_index` or `oci_image`, for
/// `command` (whose outputs are `done`, as in "only images can be pushed"). `out_root` is
/// where the build materialized outputs.
pub fn built_image<'a>(
    requested: &'a [Label],
    provided: &BTreeMap<Label, Provided>,
    out_root: &Path,
    command: &str,
    done: &str,
) -> Result<BuiltImage<'a>, Error> {
    let [label] = requested else {
        return Err(Error::Usage(format!("`{command}` takes one target; the pattern matched {}", requested.len())));
    };
    let provided = provided
        .get(label)
        .ok_or_else(|| built_error(format!("internal error: `{label}` was built but provides nothing")))?;
    let (layout, meta, kind) = match (provided.get::<IndexInfo>(), provided.get::<ImageInfo>()) {
        (Some(index), _) => (&index.layout, &index.meta, "index"),
        (None, Some(image)) => (&image.layout, &image.meta, "image"),
        _ => {
            return Err(Error::Usage(format!(
                "`{label}` is not an `oci_index` or `oci_image` target; only images can be {done}"
            )))
        }
    };
    let path = |a: &Artifact| match a {
        Artifact::Derived { path, .. } => out_root.join(path),
        Artifact::Source { file, .. } => file.clone(),
    };
    let meta_path = path(meta);
    let meta = BuiltMeta::read(&meta_path, kind == "index")
        .map_err(|e| built_error(format!("cannot read `{}`: {e}", meta_path.display())))?;
    Ok(BuiltImage { label, layout: path(layout), meta, kind })
}

/// Pushes a built image or index to `reference`; prints `HOST/REPO@DIGEST` on stdout.
pub fn push(
    image: &BuiltImage<'_>,
    reference: &crate::registry::Reference,
    creds: Option<crate::registry::Credentials>,
    options: crate::registry::PushOptions,
    signer: Option<&dyn executor_image::sign::Signer>,
    workspace_root: &Path,
) -> Result<(), Error> {
    use crate::registry::{load_credentials, push_shallow_layout, AuthEnv, RemoteBlobs};
    let BuiltImage { label, layout, meta, kind } = image;
    // The layout's own tag: an index's `tag` attribute, `latest` for an image.
    let ref_name = meta.tag().to_owned();
    // A shallow layout's absent layers are mounted or copied from where they were pulled.
    let mut remote = RemoteBlobs { blobs: meta.remote_blobs().clone(), ..RemoteBlobs::default() };
    for source in remote.blobs.values() {
        let host = source.split('/').next().unwrap_or_default().to_owned();
        if remote.creds.contains_key(&host) {
            continue;
        }
        if let Some(found) =
            load_credentials(&host, &AuthEnv::from_process()).map_err(|e| registry_error(e.to_string()))?
        {
            remote.creds.insert(host, found);
        }
    }
    let report = push_shallow_layout(layout, &ref_name, reference, &options, creds.clone(), &remote)
        .map_err(|e| registry_error(e.to_string()))?;
    println!("{}/{}@{}", reference.host, reference.repository, report.digest);
    eprintln!(
        "pushed {kind} `{label}` to {}/{} (tags: {}): {} blobs uploaded ({} bytes{}), {} already there, {} mounted, {} manifests",
        reference.host,
        reference.repository,
        reference.tags.join(", "),
        report.uploaded_blobs,
        report.bytes_uploaded,
        if report.copied_blobs > 0 { format!(", {} of them read from the base's registry", report.copied_blobs) } else { String::new() },
        report.skipped_blobs,
        report.mounted_blobs,
        report.manifests
    );
    if report.referrers > 0 {
        let (what, of) = if report.referrers == 1 {
            ("1 SBOM".to_owned(), "a referrer of the image manifest")
        } else {
            (format!("{} SBOMs", report.referrers), "referrers of the image manifests")
        };
        eprintln!(
            "attached {what} as {of}{}",
            if report.referrers_tag_schema {
                " (the registry has no referrers API: listed under the tags `sha256-<manifest hex>`)"
            } else {
                ""
            }
        );
    }
    if let Some(signer) = signer {
        let signed = crate::registry::push_signatures(reference, &options, creds.clone(), signer, &report.pushed)
            .map_err(|e| registry_error(e.to_string()))?;
        eprintln!(
            "signed {} manifests with key {} (cosign's `.sig` tags and Sigstore bundles{}): {} blobs and manifests put",
            signed.signed,
            signer.public_key().hint(),
            if signed.referrers_tag_schema { ", listed under the referrers tag schema" } else { "" },
            signed.uploaded
        );
        let statements = attestations(image, &report.pushed, workspace_root)?;
        let attested = crate::registry::push_attestations(reference, &options, creds, signer, &statements)
            .map_err(|e| registry_error(e.to_string()))?;
        eprintln!(
            "attested {} platform images (SLSA provenance v1 and the SPDX SBOM, signed; `.att` tags and bundles): {} blobs and manifests put",
            statements.iter().filter(|a| a.predicate_type == executor_image::sign::cosign::SLSA_PROVENANCE).count(),
            attested.uploaded
        );
    }
    Ok(())
}

/// The builder's identity in provenance.
const BUILDER_ID: &str = "https://executor.invalid/executor";
/// What kind of build a provenance describes.
const BUILD_TYPE: &str = "https://executor.invalid/build/oci-image/v1";

/// Per platform image of `image`: an SLSA provenance v1 statement and its SPDX SBOM as an
/// in-toto statement, both about the platform manifest. The provenance names the target, the
/// lockfile (by digest) and every package the image installs (URL and sha256 from the
/// lockfile, the apk identity as SHA-1), the repositories' keys and the digest of the main
/// repository's Starlark sources; nothing from the clock.
fn attestations(
    image: &BuiltImage<'_>,
    pushed: &[(String, u64, Digest)],
    workspace_root: &Path,
) -> Result<Vec<crate::registry::Attestation>, Error> {
    use executor_image::sign::cosign;
    use serde_json::json;
    // Walked only here (push --sign, verify --key), never on an ordinary build.
    let sources = crate::workspace::starlark_digest(workspace_root).map_err(|e| registry_error(e.to_string()))?;
    let lock_bytes = std::fs::read(workspace_root.join(crate::lockfile::LOCKFILE)).ok();
    let lock = lock_bytes
        .as_ref()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|text| crate::lockfile::Lockfile::parse(text, crate::lockfile::LOCKFILE).ok());
    let platforms: Vec<(String, Digest, Option<Digest>)> = match &image.meta {
        BuiltMeta::Index(index) => index
            .images
            .iter()
            .map(|(platform, digest)| (platform.clone(), *digest, index.sboms.get(platform).copied()))
            .collect(),
        BuiltMeta::Image(meta) => {
            vec![(meta.arch.oci_platform().to_string(), meta.digest, meta.sbom.as_ref().map(|s| s.digest))]
        }
    };
    let mut out = Vec::new();
    for (platform, digest, sbom) in platforms {
        let Some(subject) = pushed.iter().find(|(_, _, d)| *d == digest).cloned() else { continue };
        let sbom: Option<serde_json::Value> = sbom.and_then(|s| {
            let bytes = std::fs::read(image.layout.join("blobs/sha256").join(s.hex())).ok()?;
            serde_json::from_slice(&bytes).ok()
        });
        let mut dependencies = Vec::new();
        for package in sbom.as_ref().and_then(|s| s["packages"].as_array()).into_iter().flatten() {
            let is_apk = package["externalRefs"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["referenceLocator"].as_str().is_some_and(|l| l.starts_with("pkg:apk/")));
            if !is_apk {
                continue;
            }
            let sha256 = package["checksums"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["algorithm"] == "SHA256")
                .and_then(|c| c["checksumValue"].as_str())
                .unwrap_or_default()
                .to_owned();
            // A `noarch` package has the same bytes under every arch: this platform's pin.
            let apk_arch =
                crate::platform::Arch::ALL.into_iter().find(|a| a.oci_platform() == platform).map(|a| a.apk());
            let pinned = lock.as_ref().and_then(|l| {
                let mut same = l.packages.iter().filter(|p| p.sha256.hex() == sha256);
                same.clone().find(|p| Some(p.arch.as_str()) == apk_arch).or_else(|| same.next())
            });
            let mut digests = json!({ "sha256": sha256 });
            if let Some(sha1) = pinned.and_then(|p| q1_hex(&p.identity)) {
                digests["sha1"] = json!(sha1);
            }
            dependencies.push(json!({
                "name": format!(
                    "{}-{}",
                    package["name"].as_str().unwrap_or_default(),
                    package["versionInfo"].as_str().unwrap_or_default()
                ),
                "uri": pinned.map(|p| p.url.clone()).unwrap_or_default(),
                "digest": digests,
                "annotations": { "apk.identity": pinned.map(|p| p.identity.clone()).unwrap_or_default() },
            }));
        }
        // The base image, as the manifest names it (`org.opencontainers.image.base.*`); a
        // pulled one with the repository it was pulled from.
        let manifest: Option<serde_json::Value> = std::fs::read(image.layout.join("blobs/sha256").join(digest.hex()))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let annotations = manifest.as_ref().map(|m| &m["annotations"]);
        if let Some(base) = annotations.and_then(|a| a[crate::oci_image::ANNOTATION_BASE_DIGEST].as_str()) {
            let name = annotations.and_then(|a| a[crate::oci_image::ANNOTATION_BASE_NAME].as_str()).unwrap_or_default();
            let pulled_from = image.meta.remote_blobs().values().next();
            dependencies.push(json!({
                "name": name,
                "uri": pulled_from.map(|repo| format!("oci://{repo}@{base}")).unwrap_or_default(),
                "digest": { "sha256": base.strip_prefix("sha256:").unwrap_or(base) },
            }));
        }
        dependencies.push(json!({
            "name": "WORKSPACE, BUILD and .bzl sources",
            "digest": { "sha256": sources.hex() },
        }));
        for repo in lock.as_ref().map(|l| l.repositories.as_slice()).unwrap_or_default() {
            for key in &repo.keys {
                dependencies.push(json!({
                    "name": format!("{} key {}", repo.name, key.name),
                    "digest": { "sha256": key.sha256.hex() },
                }));
            }
        }
        let predicate = json!({
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "target": image.label.to_string(),
                    "platform": platform,
                    "lockfile": {
                        "path": crate::lockfile::LOCKFILE,
                        "digest": { "sha256": lock_bytes.as_ref().map(|b| Digest::of(b).hex()).unwrap_or_default() },
                    },
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": { "id": BUILDER_ID, "version": { "executor": crate::action::EXECUTOR_VERSION } },
            },
        });
        out.push(crate::registry::Attestation {
            subject: subject.clone(),
            predicate_type: cosign::SLSA_PROVENANCE.to_owned(),
            statement: cosign::statement(&digest, cosign::SLSA_PROVENANCE, &predicate),
        });
        if let Some(sbom) = sbom {
            out.push(crate::registry::Attestation {
                subject,
                predicate_type: cosign::SPDX_PREDICATE.to_owned(),
                statement: cosign::statement(&digest, cosign::SPDX_PREDICATE, &sbom),
            });
        }
    }
    Ok(out)
}

/// The hex SHA-1 of an apk identity `Q1<base64>`.
fn q1_hex(identity: &str) -> Option<String> {
    use base64::Engine as _;
    let b64 = identity.strip_prefix("Q1")?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok().map(hex::encode)
}

/// The digest `verify --digest` names: `sha256:…`, `HOST/REPO@sha256:…`, or what the registry
/// serves for `HOST/REPO:TAG`.
pub fn expected_digest(expected: &str, insecure: bool, fetch_options: &FetchOptions) -> Result<Digest, Error> {
    use crate::registry::{load_credentials, resolve_digest, AuthEnv, Reference};
    let expected_digest = match expected.rsplit_once('@') {
        _ if expected.starts_with("sha256:") => parse_digest(expected)?,
        Some((_, digest)) => parse_digest(digest)?,
        None => {
            let reference = Reference::parse(expected).map_err(|e| Error::Usage(format!("--digest: {e}")))?;
            let creds = load_credentials(&reference.host, &AuthEnv::from_process())
                .map_err(|e| registry_error(e.to_string()))?;
            let options = push_options(fetch_options, insecure);
            let digest = resolve_digest(&reference, &options, creds).map_err(|e| registry_error(e.to_string()))?;
            eprintln!("`{expected}` is {digest}");
            digest
        }
    };
    Ok(expected_digest)
}

/// Compares a rebuilt image's digest with the expected one; prints `verified LABEL: DIGEST`
/// on stdout when they match.
pub fn check_rebuilt(image: &BuiltImage<'_>, expected_digest: &Digest) -> Result<(), Error> {
    let BuiltImage { label, meta, .. } = image;
    let rebuilt = meta.digest();
    if rebuilt == expected_digest {
        println!("verified {label}: {rebuilt}");
        eprintln!("`{label}` rebuilt from {} in an empty cache is {rebuilt}, as expected", crate::lockfile::LOCKFILE);
        return Ok(());
    }
    let mut message = format!(
        "release check failed: `{label}` rebuilt from {} in an empty cache is {rebuilt}, not {expected_digest}",
        crate::lockfile::LOCKFILE
    );
    if let BuiltMeta::Index(index) = meta {
        message.push_str(
            "
  rebuilt platform images:",
        );
        for (platform, digest) in &index.images {
            message.push_str(&format!(
                "
    {platform}  {digest}"
            ));
        }
    }
    message.push_str(&format!(
        "
  fix: check out the commit the release was built from (its BUILD files, rules and {}) and use executor {}; \
         if they match, the release was not built from them",
        crate::lockfile::LOCKFILE,
        crate::action::EXECUTOR_VERSION
    ));
    Err(verify_error(message))
}
/// How registry requests behave: `--fetch-timeout` and `--fetch-retries` apply to them as
/// to downloads.
pub fn push_options(fetch: &FetchOptions, insecure: bool) -> crate::registry::PushOptions {
    crate::registry::PushOptions {
        insecure,
        connect_timeout: fetch.connect_timeout,
        read_timeout: fetch.read_timeout,
        retries: fetch.retries,
        // Named in "no credentials" errors only if it exists (else the error says where to
        // create one).
        auth_file: crate::registry::AuthEnv::from_process().auth_file().map(|(path, _)| path).filter(|p| p.is_file()),
        ..crate::registry::PushOptions::default()
    }
}

pub fn parse_digest(text: &str) -> Result<crate::digest::Digest, Error> {
    text.parse().map_err(|_| Error::Usage(format!("--digest: `{text}` is not `sha256:` and 64 lowercase hex digits")))
}

/// What `verify --key` checks: the public key and the repository holding the signatures.
pub struct SignatureCheck {
    key: executor_image::sign::PublicKey,
    key_path: String,
    reference: crate::registry::Reference,
}

/// Reads `--key` and takes the repository from `--digest`, which must name one.
pub fn signature_check(key: &Path, expected: &str) -> Result<SignatureCheck, Error> {
    let key_path = key.display().to_string();
    let text =
        std::fs::read_to_string(key).map_err(|e| Error::Usage(format!("cannot read the key `{key_path}`: {e}")))?;
    let key = executor_image::sign::PublicKey::from_pem(&text, &key_path).map_err(|e| Error::Usage(e.to_string()))?;
    let name = match expected.rsplit_once('@') {
        Some((name, _)) => name.to_owned(),
        None if expected.starts_with("sha256:") => {
            return Err(Error::Usage(format!(
                "`--key` checks the registry's signatures, but `--digest {expected}` names no registry\n  fix: pass `--digest HOST/REPO@{expected}`"
            )))
        }
        None => expected.to_owned(),
    };
    let mut reference = crate::registry::Reference::parse(&name).map_err(|e| Error::Usage(format!("--digest: {e}")))?;
    reference.tags.clear();
    Ok(SignatureCheck { key, key_path, reference })
}

/// Checks that the registry holds a signature by the key for the image and each of its
/// platform manifests; prints what was found on stderr.
pub fn check_signatures(
    image: &BuiltImage<'_>,
    check: &SignatureCheck,
    insecure: bool,
    fetch_options: &FetchOptions,
    workspace_root: &Path,
) -> Result<(), Error> {
    use crate::registry::{load_credentials, verify_signatures, AuthEnv};
    let mut subjects = vec![*image.meta.digest()];
    if let BuiltMeta::Index(index) = &image.meta {
        subjects.extend(index.images.values().copied());
    }
    let reference = &check.reference;
    let creds =
        load_credentials(&reference.host, &AuthEnv::from_process()).map_err(|e| registry_error(e.to_string()))?;
    let options = push_options(fetch_options, insecure);
    let checks = verify_signatures(reference, &options, creds, &check.key, &subjects)
        .map_err(|e| registry_error(e.to_string()))?;
    let unsigned: Vec<_> = checks.iter().filter(|c| !c.legacy && !c.bundle).collect();
    if unsigned.is_empty() {
        let (bundles, legacy) =
            (checks.iter().filter(|c| c.bundle).count(), checks.iter().filter(|c| c.legacy).count());
        eprintln!(
            "signed by `{}`: {} manifests in {}/{} ({bundles} with a Sigstore bundle, {legacy} with a `.sig` signature)",
            check.key_path,
            checks.len(),
            reference.host,
            reference.repository
        );
        return check_attestations(image, check, &options, workspace_root, &checks);
    }
    let mut message = format!(
        "signature check failed: {} of {} manifests in {}/{} have no valid signature by `{}`",
        unsigned.len(),
        checks.len(),
        reference.host,
        reference.repository,
        check.key_path
    );
    for c in unsigned {
        message.push_str(&format!("\n  {}: {}", c.digest, c.problems.join("; ")));
    }
    message.push_str("\n  fix: sign the release with the matching key (`executor push --sign KEY`), or check that the public key is the one the release is signed with");
    Err(registry_error(message))
}

/// Every attestation `push --sign` makes for the image is in the registry, signed by the key,
/// and byte for byte what this checkout makes: the provenance's dependencies are the
/// lockfile's, its subject the rebuilt manifest.
fn check_attestations(
    image: &BuiltImage<'_>,
    check: &SignatureCheck,
    options: &crate::registry::PushOptions,
    workspace_root: &Path,
    checks: &[crate::registry::SignatureCheck],
) -> Result<(), Error> {
    use crate::registry::{load_credentials, verified_attestations, AuthEnv};
    let reference = &check.reference;
    let creds =
        load_credentials(&reference.host, &AuthEnv::from_process()).map_err(|e| registry_error(e.to_string()))?;
    // The sizes and media types of the manifests do not enter statements; only digests do.
    let pushed: Vec<(String, u64, Digest)> = checks.iter().map(|c| (String::new(), 0, c.digest)).collect();
    let expected = attestations(image, &pushed, workspace_root)?;
    let mut failures = Vec::new();
    // One read of each platform manifest's attestations, for both predicate types.
    let mut found: BTreeMap<Digest, crate::registry::Attestations> = BTreeMap::new();
    for attestation in &expected {
        let digest = attestation.subject.2;
        let (statements, problems) = match found.entry(digest) {
            std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::btree_map::Entry::Vacant(entry) => entry.insert(
                verified_attestations(reference, options, creds.clone(), &check.key, &digest)
                    .map_err(|e| registry_error(e.to_string()))?,
            ),
        };
        let signed = statements.get(&attestation.predicate_type).map(Vec::as_slice).unwrap_or_default();
        if signed.contains(&attestation.statement) {
            continue;
        }
        let why = if signed.is_empty() {
            let problems = if problems.is_empty() { String::new() } else { format!(" ({})", problems.join("; ")) };
            format!("no `{}` attestation signed by the key{problems}", attestation.predicate_type)
        } else {
            format!(
                "its `{}` attestation, signed by the key, differs from what this checkout builds (another lockfile, target or image)",
                attestation.predicate_type
            )
        };
        failures.push(format!("{digest}: {why}"));
    }
    if failures.is_empty() {
        eprintln!(
            "attested: {} statements (SLSA provenance naming {}'s pins, SBOMs) signed by `{}`, equal to this checkout's",
            expected.len(),
            crate::lockfile::LOCKFILE,
            check.key_path
        );
        return Ok(());
    }
    Err(registry_error(format!(
        "attestation check failed for {} of {} statements:\n  {}\n  fix: push the release with `--sign` from this checkout, or verify from the commit it was built from",
        failures.len(),
        expected.len(),
        failures.join("\n  ")
    )))
}
