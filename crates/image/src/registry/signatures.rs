//! Checking a registry's cosign signatures of manifests against a public key (`executor
//! verify --key`): the legacy `.sig` manifest's simple-signing layers and the Sigstore bundles
//! attached as referrers (through the referrers API, else the referrers tag schema). Every
//! blob is read bounded and checked against its digest before its signature is.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

use crate::digest::Digest;
use crate::registry::auth::Credentials;
use crate::registry::client::Client;
use crate::registry::error::RegistryError;
use crate::registry::push::{PushOptions, MANIFEST_ACCEPT};
use crate::registry::reference::Reference;
use crate::sign::cosign;
use crate::sign::PublicKey;

/// Verified attestation statements by predicate type, and why others did not count.
pub type Attestations = (BTreeMap<String, Vec<Vec<u8>>>, Vec<String>);

/// A bundle's predicate type (as its manifest names it), its manifest's digest, its DSSE
/// envelope.
type BundleEnvelope = (String, String, Value);

/// Signature manifests, bundles and payloads larger than this are refused.
const MAX_SIGNATURE_BLOB: usize = 1 << 20;

/// What the registry holds for one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    /// The signed manifest.
    pub digest: Digest,
    /// A legacy simple-signing signature by the key, for this digest, verifies.
    pub legacy: bool,
    /// A Sigstore bundle by the key, for this digest, verifies.
    pub bundle: bool,
    /// Why other signatures found did not count (tampered, another digest, another key).
    pub problems: Vec<String>,
}

/// Checks the signatures of each of `subjects` in `target`'s repository against `key`.
pub fn verify_signatures(
    target: &Reference,
    opts: &PushOptions,
    creds: Option<Credentials>,
    key: &PublicKey,
    subjects: &[Digest],
) -> Result<Vec<SignatureCheck>, RegistryError> {
    let client = Client::new(target, opts, creds).pull_only();
    let mut checks = Vec::new();
    for digest in subjects {
        let mut check = SignatureCheck { digest: *digest, legacy: false, bundle: false, problems: Vec::new() };
        legacy(&client, key, digest, &mut check)?;
        bundles(&client, key, digest, &mut check)?;
        checks.push(check);
    }
    Ok(checks)
}

/// The in-toto statements attached to `digest` (as `.att` layers or bundle referrers) that
/// `key` signed, as signed, by predicate type; and why others did not count. Reads the `.att`
/// manifest and the referrers of `digest` once, whatever the number of predicate types.
pub fn verified_attestations(
    target: &Reference,
    opts: &PushOptions,
    creds: Option<Credentials>,
    key: &PublicKey,
    digest: &Digest,
) -> Result<Attestations, RegistryError> {
    let client = Client::new(target, opts, creds).pull_only();
    let mut check = SignatureCheck { digest: *digest, legacy: false, bundle: false, problems: Vec::new() };
    // (predicate type, DSSE envelope) from both places.
    let mut envelopes: Vec<(String, Value)> = Vec::new();
    let tag = cosign::attestation_tag(digest);
    if let Some(manifest) = get(&client, &format!("/manifests/{tag}"), MANIFEST_ACCEPT)? {
        let manifest: Value = parse(&manifest, &client, &tag)?;
        for layer in manifest["layers"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let (Some(predicate), Some(layer_digest)) =
                (layer["annotations"]["predicateType"].as_str(), layer["digest"].as_str())
            else {
                continue;
            };
            if let Some(bytes) = blob(&client, layer_digest, &mut check)? {
                envelopes.push((predicate.to_owned(), serde_json::from_slice(&bytes).unwrap_or(Value::Null)));
            }
        }
    }
    for (predicate, _, envelope) in bundle_envelopes(&client, digest, &mut check)?.unwrap_or_default() {
        envelopes.push((predicate, envelope));
    }
    let mut statements: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (predicate, envelope) in envelopes {
        match signed_payload(&envelope, key) {
            Some(payload) => statements.entry(predicate).or_default().push(payload),
            None => check.problems.push(format!("a `{predicate}` attestation not signed by the key (or altered)")),
        }
    }
    Ok((statements, check.problems))
}

/// The legacy `.sig` manifest's layers.
fn legacy(client: &Client, key: &PublicKey, digest: &Digest, check: &mut SignatureCheck) -> Result<(), RegistryError> {
    let tag = cosign::signature_tag(digest);
    let Some(manifest) = get(client, &format!("/manifests/{tag}"), MANIFEST_ACCEPT)? else {
        check.problems.push(format!("no `{tag}` manifest (legacy signatures)"));
        return Ok(());
    };
    let manifest: Value = parse(&manifest, client, &tag)?;
    for layer in manifest["layers"].as_array().map(Vec::as_slice).unwrap_or_default() {
        if layer["mediaType"] != cosign::SIMPLE_SIGNING {
            continue;
        }
        let (Some(layer_digest), Some(signature)) =
            (layer["digest"].as_str(), layer["annotations"][cosign::SIGNATURE_ANNOTATION].as_str())
        else {
            continue;
        };
        let Some(payload) = blob(client, layer_digest, check)? else { continue };
        let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            check.problems.push(format!("`{tag}`: a signature that is not base64"));
            continue;
        };
        if !key.verify(&payload, &signature) {
            check.problems.push(format!("`{tag}`: a signature by another key (or over altered bytes)"));
            continue;
        }
        let payload: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        let signed = payload["critical"]["image"]["docker-manifest-digest"].as_str().unwrap_or_default();
        if signed != digest.to_string() || payload["critical"]["type"] != "cosign container image signature" {
            check.problems.push(format!("`{tag}`: a signature by the key for another image ({signed})"));
            continue;
        }
        check.legacy = true;
    }
    Ok(())
}

/// The signature bundles attached to `digest` as referrers.
fn bundles(client: &Client, key: &PublicKey, digest: &Digest, check: &mut SignatureCheck) -> Result<(), RegistryError> {
    let Some(envelopes) = bundle_envelopes(client, digest, check)? else {
        check.problems.push("no referrers (bundles)".to_owned());
        return Ok(());
    };
    for (predicate, manifest_digest, envelope) in envelopes {
        if predicate != cosign::SIGN_PREDICATE {
            continue;
        }
        let Some(payload) = signed_payload(&envelope, key) else {
            check.problems.push(format!("bundle {manifest_digest}: not signed by the key (or altered)"));
            continue;
        };
        let statement: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        let names_digest = statement["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["digest"]["sha256"].as_str() == Some(digest.hex().as_str()));
        if !names_digest || statement["predicateType"] != cosign::SIGN_PREDICATE {
            check.problems.push(format!("bundle {manifest_digest}: signed by the key for another image"));
            continue;
        }
        check.bundle = true;
    }
    Ok(())
}

/// The DSSE envelopes of the Sigstore bundles attached to `digest` (the referrers API, else
/// the referrers tag schema), with the predicate type their manifest names and the manifest's
/// digest; every manifest and blob checked against its digest. `None` without referrers.
fn bundle_envelopes(
    client: &Client,
    digest: &Digest,
    check: &mut SignatureCheck,
) -> Result<Option<Vec<BundleEnvelope>>, RegistryError> {
    let index = match referrers_api(client, digest)? {
        Some(index) => Some(index),
        None => get(client, &format!("/manifests/sha256-{}", digest.hex()), "application/vnd.oci.image.index.v1+json")?,
    };
    let Some(index) = index else { return Ok(None) };
    let index: Value = parse(&index, client, "the referrers index")?;
    let listed = index["manifests"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !listed.iter().any(|d| d["artifactType"] == cosign::BUNDLE) {
        check.problems.push("no Sigstore bundle among its referrers".to_owned());
    }
    let mut out = Vec::new();
    for descriptor in listed.iter().filter(|d| d["artifactType"] == cosign::BUNDLE) {
        let Some(manifest_digest) = descriptor["digest"].as_str() else { continue };
        let Some(manifest) = get(client, &format!("/manifests/{manifest_digest}"), MANIFEST_ACCEPT)? else {
            check.problems.push(format!("the bundle manifest {manifest_digest} is listed but missing"));
            continue;
        };
        if Digest::of(&manifest).to_string() != manifest_digest {
            check.problems.push(format!("the bundle manifest {manifest_digest} was served altered"));
            continue;
        }
        let manifest: Value = parse(&manifest, client, manifest_digest)?;
        let predicate = manifest["annotations"]["dev.sigstore.bundle.predicateType"].as_str().unwrap_or_default();
        let Some(layer_digest) = manifest["layers"][0]["digest"].as_str() else { continue };
        let Some(bundle) = blob(client, layer_digest, check)? else { continue };
        let bundle: Value = serde_json::from_slice(&bundle).unwrap_or(Value::Null);
        out.push((predicate.to_owned(), manifest_digest.to_owned(), bundle["dsseEnvelope"].clone()));
    }
    Ok(Some(out))
}

/// The payload of a DSSE envelope if one of its signatures is `key`'s over its PAE.
fn signed_payload(envelope: &Value, key: &PublicKey) -> Option<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.decode(envelope["payload"].as_str()?).ok()?;
    let pae = cosign::pae(envelope["payloadType"].as_str().unwrap_or_default(), &payload);
    let signed = envelope["signatures"]
        .as_array()?
        .iter()
        .any(|s| s["sig"].as_str().and_then(|sig| b64.decode(sig).ok()).is_some_and(|sig| key.verify(&pae, &sig)));
    signed.then_some(payload)
}

/// The referrers API's index for `digest`; `None` from a registry without the API (which
/// answers 404 as the spec says, or 400, 405 or 501 as some do).
fn referrers_api(client: &Client, digest: &Digest) -> Result<Option<Vec<u8>>, RegistryError> {
    let url = client.repo_url(&format!("/referrers/{digest}"));
    client.with_retries(|| {
        let resp = client.request("GET", &url, &[("Accept", "application/vnd.oci.image.index.v1+json")], None)?;
        match resp.status {
            200 if resp.body.len() > MAX_SIGNATURE_BLOB => Err(RegistryError::Protocol {
                method: "GET",
                url: url.clone(),
                detail: format!("a referrers index of {} bytes", resp.body.len()),
            }),
            200 => Ok(Some(resp.body)),
            400 | 404 | 405 | 501 => Ok(None),
            _ => Err(client.fail("GET", &url, &resp)),
        }
    })
}

/// GET `rest` of the repository, at most [`MAX_SIGNATURE_BLOB`] bytes; `None` on 404.
fn get(client: &Client, rest: &str, accept: &str) -> Result<Option<Vec<u8>>, RegistryError> {
    let url = client.repo_url(rest);
    client.with_retries(|| {
        let resp = client.request("GET", &url, &[("Accept", accept)], None)?;
        match resp.status {
            200 if resp.body.len() > MAX_SIGNATURE_BLOB => Err(RegistryError::Protocol {
                method: "GET",
                url: url.clone(),
                detail: format!("{} bytes; signature material is refused above {MAX_SIGNATURE_BLOB}", resp.body.len()),
            }),
            200 => Ok(Some(resp.body)),
            404 => Ok(None),
            _ => Err(client.fail("GET", &url, &resp)),
        }
    })
}

/// A blob checked against `digest`; `None` (and a problem noted) when missing or altered.
fn blob(client: &Client, digest: &str, check: &mut SignatureCheck) -> Result<Option<Vec<u8>>, RegistryError> {
    let Some(bytes) = get(client, &format!("/blobs/{digest}"), "*/*")? else {
        check.problems.push(format!("blob {digest} is missing"));
        return Ok(None);
    };
    if Digest::of(&bytes).to_string() != digest {
        check.problems.push(format!("blob {digest} was served altered (its bytes hash to {})", Digest::of(&bytes)));
        return Ok(None);
    }
    Ok(Some(bytes))
}

fn parse(bytes: &[u8], client: &Client, what: &str) -> Result<Value, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Protocol {
        method: "GET",
        url: client.repo_url(""),
        detail: format!("{what} is not JSON: {e}"),
    })
}
