//! The signatures `cosign verify` reads, as bytes: the legacy simple-signing payload and its
//! `.sig` manifest, and the Sigstore bundle v0.3 (a DSSE envelope over an in-toto statement)
//! with the referrer manifest that attaches it. Deterministic: no clock, keys sorted.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::digest::Digest;
use crate::sign::Signer;

/// The media type of a legacy signature's payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation of a legacy payload layer that holds the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// A Sigstore bundle, as a blob and as an artifact type.
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// DSSE's payload type for in-toto statements.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// The predicate type of cosign's image signatures in bundle form.
pub const SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// The OCI empty descriptor's media type, and its blob `{}`.
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The bytes of the OCI empty blob.
pub const EMPTY_BLOB: &[u8] = b"{}";
/// An OCI image manifest.
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image config.
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// The media type of a legacy attestation layer: a DSSE envelope.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// SLSA provenance v1's predicate type.
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// An SPDX document as an in-toto predicate.
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";

/// The legacy tag of `digest`'s attestations: `sha256-<hex>.att`.
pub fn attestation_tag(digest: &Digest) -> String {
    format!("sha256-{}.att", digest.hex())
}

/// An in-toto v1 statement about the manifest `digest`.
pub fn statement(digest: &Digest, predicate_type: &str, predicate: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "digest": { "sha256": digest.hex() } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    }))
    .expect("JSON serializes")
}

/// The legacy tag of `digest`'s signatures: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    format!("sha256-{}.sig", digest.hex())
}

/// cosign's simple-signing payload: `digest` under the name `docker_reference`
/// (`HOST/REPO`), as `cosign sign` writes it.
pub fn simple_signing_payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    // Field order as cosign writes it; `json!` would sort the keys.
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":{}}},"image":{{"docker-manifest-digest":{}}},"type":"cosign container image signature"}},"optional":null}}"#,
        Value::String(docker_reference.to_owned()),
        Value::String(digest.to_string())
    )
    .into_bytes()
}

/// The payload layer of a legacy signature: its descriptor and bytes.
pub fn legacy_layer(signer: &dyn Signer, docker_reference: &str, digest: &Digest) -> (Value, Vec<u8>) {
    let payload = simple_signing_payload(docker_reference, digest);
    let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign(&payload));
    let descriptor = json!({
        "mediaType": SIMPLE_SIGNING,
        "size": payload.len(),
        "digest": Digest::of(&payload).to_string(),
        "annotations": { SIGNATURE_ANNOTATION: signature },
    });
    (descriptor, payload)
}

/// The `.sig` manifest over payload `layers` (descriptors) and its config, as cosign builds
/// them: `(config bytes, manifest bytes)`.
pub fn signature_manifest(layers: &[Value]) -> (Vec<u8>, Vec<u8>) {
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config = serde_json::to_vec(&config).expect("JSON serializes");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": { "mediaType": CONFIG, "size": config.len(), "digest": Digest::of(&config).to_string() },
        "layers": layers,
    });
    (config, serde_json::to_vec(&manifest).expect("JSON serializes"))
}

/// DSSE's pre-authentication encoding of `payload`: what is signed.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The in-toto statement cosign signs in bundle form: subject `digest`, predicate type
/// [`SIGN_PREDICATE`], an empty predicate.
pub fn sign_statement(digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "digest": { "sha256": digest.hex() } }],
        "predicateType": SIGN_PREDICATE,
        "predicate": {},
    }))
    .expect("JSON serializes")
}

/// A DSSE envelope: `payload` of `payload_type`, signed over its [`pae`].
pub fn envelope(signer: &dyn Signer, payload_type: &str, payload: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    json!({
        "payload": b64.encode(payload),
        "payloadType": payload_type,
        // `keyid` empty: DSSE's "no hint"; securesystemslib wants the field present.
        "signatures": [{ "keyid": "", "sig": b64.encode(signer.sign(&pae(payload_type, payload))) }],
    })
}

/// A Sigstore bundle v0.3 around `envelope`, naming the key by its hint (no certificate, no
/// transparency-log entry: a key-based signature).
pub fn bundle(signer: &dyn Signer, envelope: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "mediaType": BUNDLE,
        "verificationMaterial": { "publicKey": { "hint": signer.public_key().hint() } },
        "dsseEnvelope": envelope,
    }))
    .expect("JSON serializes")
}

/// The artifact manifest that attaches `bundle` to the manifest `subject` (media type, size,
/// digest) as an OCI referrer, with the annotations cosign sets (and no creation time).
pub fn bundle_manifest(bundle: &[u8], predicate_type: &str, subject: (&str, u64, &Digest)) -> Vec<u8> {
    let (media_type, size, digest) = subject;
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": BUNDLE,
        "config": { "mediaType": EMPTY, "size": EMPTY_BLOB.len(), "digest": Digest::of(EMPTY_BLOB).to_string() },
        "layers": [{ "mediaType": BUNDLE, "size": bundle.len(), "digest": Digest::of(bundle).to_string() }],
        "annotations": {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": predicate_type,
        },
        "subject": { "mediaType": media_type, "size": size, "digest": digest.to_string() },
    }))
    .expect("JSON serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;

    #[test]
    fn the_simple_signing_payload_is_cosigns() {
        let digest = Digest::of(b"image");
        assert_eq!(
            String::from_utf8(simple_signing_payload("127.0.0.1:5000/base/static", &digest)).expect("utf-8"),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/base/static\"}},\"image\":{{\"docker-manifest-digest\":\"{digest}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}"
            )
        );
    }

    #[test]
    fn pae_is_dsse_v1() {
        assert_eq!(pae("application/vnd.in-toto+json", b"{}"), b"DSSEv1 28 application/vnd.in-toto+json 2 {}");
    }

    #[test]
    fn signatures_and_bundles_are_the_same_bytes_twice_and_verify() {
        let key = SigningKey::generate();
        let digest = Digest::of(b"image");
        let (a, payload) = legacy_layer(&key, "r/x", &digest);
        let (b, _) = legacy_layer(&key, "r/x", &digest);
        assert_eq!(a, b);
        let sig = base64::engine::general_purpose::STANDARD
            .decode(a["annotations"][SIGNATURE_ANNOTATION].as_str().expect("signature"))
            .expect("base64");
        assert!(key.public_key().verify(&payload, &sig));
        assert_eq!(signature_manifest(std::slice::from_ref(&a)), signature_manifest(&[b]));

        let statement = sign_statement(&digest);
        let one = bundle(&key, envelope(&key, IN_TOTO, &statement));
        assert_eq!(one, bundle(&key, envelope(&key, IN_TOTO, &statement)));
        let parsed: Value = serde_json::from_slice(&one).expect("json");
        let sig = base64::engine::general_purpose::STANDARD
            .decode(parsed["dsseEnvelope"]["signatures"][0]["sig"].as_str().expect("sig"))
            .expect("base64");
        assert!(key.public_key().verify(&pae(IN_TOTO, &statement), &sig));
        assert_eq!(parsed["verificationMaterial"]["publicKey"]["hint"], key.public_key().hint());
    }
}
