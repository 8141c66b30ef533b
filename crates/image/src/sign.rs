//! Signing images as cosign does, with a key: the key files cosign reads and writes
//! ([`keys`]), and the signatures cosign verifies ([`cosign`]): the legacy simple-signing
//! manifest at tag `sha256-<hex>.sig`, and the Sigstore bundle v0.3 (a DSSE envelope over an
//! in-toto statement) attached as an OCI referrer.
//!
//! Signatures are deterministic (ECDSA P-256 with RFC 6979 nonces, SHA-256): the same key over
//! the same image gives the same bytes, so a signature is as reproducible as the image, and a
//! second push finds everything in place. No clock enters a signed payload or a manifest.
//!
//! [`Signer`] is the seam for signers without a key file (keyless: a Fulcio certificate and a
//! Rekor entry), which cannot be reached from here yet.

pub mod cosign;
pub mod keys;

pub use keys::{KeyError, PublicKey, SigningKey};

/// What signs: a key here, a keyless identity later.
pub trait Signer: Send + Sync {
    /// The public key that verifies [`Signer::sign`]'s signatures.
    fn public_key(&self) -> PublicKey;
    /// An ASN.1 DER ECDSA signature of SHA-256(`message`).
    fn sign(&self, message: &[u8]) -> Vec<u8>;
}

impl Signer for SigningKey {
    fn public_key(&self) -> PublicKey {
        SigningKey::public_key(self)
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        SigningKey::sign(self, message)
    }
}
