//! Key files as cosign writes them (`cosign generate-key-pair`): the private key is PKCS#8
//! DER encrypted with NaCl secretbox under a key derived with scrypt from a password, the whole
//! JSON document PEM-armoured as `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign:
//! `ENCRYPTED COSIGN PRIVATE KEY`); the public key is a PKIX `PUBLIC KEY` PEM. Unencrypted
//! PKCS#8 (`PRIVATE KEY`) and SEC1 (`EC PRIVATE KEY`) P-256 keys are read too.
//!
//! A private key lives in memory only: it is never written anywhere but the file
//! [`SigningKey::to_encrypted_pem`] makes, never printed, and errors never quote it.

use base64::Engine as _;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha256};

/// The PEM label cosign 2 and later write.
pub const ENCRYPTED_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM label cosign 1 wrote.
pub const LEGACY_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// scrypt's cost as cosign sets it (`N` = 2^16, `r` = 8, `p` = 1).
const SCRYPT_LOG_N: u8 = 16;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The largest scrypt cost a key file may ask for: `N` = 2^20 with `r` = 8 is 1 GiB of memory.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Key files larger than this are not key files.
pub const MAX_KEY_FILE: u64 = 64 << 10;

/// Why a key cannot be read or used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not PEM, or a PEM of another kind.
    #[error("{what} is not a P-256 key cosign reads: {detail}")]
    Format { what: String, detail: String },
    /// The password does not open the key.
    #[error("{what}: wrong password (the key did not decrypt)\n  fix: set COSIGN_PASSWORD to the key's password")]
    WrongPassword { what: String },
    /// No password and no terminal to ask for one.
    #[error("{what} is encrypted and no password was given\n  fix: set COSIGN_PASSWORD (an empty value for a key without a password)")]
    NoPassword { what: String },
}

/// The encrypted key document (go-securesystemslib's `encrypted` package).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

/// Go's `[]byte` in JSON: standard base64.
mod b64 {
    use base64::Engine as _;
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// An ECDSA P-256 private key.
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        write!(f, "SigningKey({})", self.public_key().hint())
    }
}

impl SigningKey {
    /// A new random key (from the operating system's generator).
    pub fn generate() -> Self {
        SigningKey { key: p256::ecdsa::SigningKey::random(&mut OsRng) }
    }

    /// Reads a key file's text; `what` names it in errors (its path); `password` is asked
    /// only for an encrypted key.
    pub fn from_pem(
        text: &str,
        what: &str,
        password: impl FnOnce() -> Result<Vec<u8>, KeyError>,
    ) -> Result<Self, KeyError> {
        let format = |detail: String| KeyError::Format { what: what.to_owned(), detail };
        let (label, der) =
            pem_rfc7468::decode_vec(text.trim().as_bytes()).map_err(|e| format(format!("not PEM ({e})")))?;
        let key = match label {
            ENCRYPTED_LABEL | LEGACY_ENCRYPTED_LABEL => {
                let doc: Encrypted = serde_json::from_slice(&der)
                    .map_err(|e| format(format!("its encrypted document is not cosign's: {e}")))?;
                let pkcs8 = decrypt(&doc, &password()?, what)?;
                p256::ecdsa::SigningKey::from_pkcs8_der(&pkcs8)
                    .map_err(|e| format(format!("the decrypted key is not a P-256 PKCS#8 key: {e}")))?
            }
            "PRIVATE KEY" => p256::ecdsa::SigningKey::from_pkcs8_der(&der)
                .map_err(|e| format(format!("not a P-256 PKCS#8 key: {e}")))?,
            "EC PRIVATE KEY" => {
                let secret =
                    p256::SecretKey::from_sec1_der(&der).map_err(|e| format(format!("not a P-256 SEC1 key: {e}")))?;
                p256::ecdsa::SigningKey::from(secret)
            }
            other => {
                return Err(format(format!("its PEM label is `{other}`, not `{ENCRYPTED_LABEL}` or `PRIVATE KEY`")))
            }
        };
        Ok(SigningKey { key })
    }

    /// The key encrypted with `password` as cosign writes it (`ENCRYPTED SIGSTORE PRIVATE
    /// KEY`), with a fresh salt and nonce.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> String {
        let mut salt = vec![0u8; 32];
        let mut nonce = vec![0u8; 24];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut nonce);
        let params =
            scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, 32).expect("cosign's scrypt parameters are valid");
        let mut secret = [0u8; 32];
        scrypt::scrypt(password, &salt, &params, &mut secret).expect("a 32-byte output is valid");
        let pkcs8 = self.key.to_pkcs8_der().expect("a P-256 key encodes");
        let cipher = XSalsa20Poly1305::new(&secret.into());
        let ciphertext = cipher
            .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), pkcs8.as_bytes())
            .expect("secretbox encryption does not fail");
        let doc = Encrypted {
            kdf: Kdf {
                name: "scrypt".into(),
                params: KdfParams { n: 1 << SCRYPT_LOG_N, r: SCRYPT_R, p: SCRYPT_P },
                salt,
            },
            cipher: Cipher { name: "nacl/secretbox".into(), nonce },
            ciphertext,
        };
        let json = serde_json::to_vec(&doc).expect("the document serializes");
        pem_rfc7468::encode_string(ENCRYPTED_LABEL, pem_rfc7468::LineEnding::LF, &json).expect("PEM encodes")
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey { key: *self.key.verifying_key() }
    }

    /// ASN.1 DER ECDSA signature of SHA-256(`message`), deterministic (RFC 6979).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: p256::ecdsa::Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }
}

/// Opens cosign's encrypted document with `password`.
fn decrypt(doc: &Encrypted, password: &[u8], what: &str) -> Result<Vec<u8>, KeyError> {
    let format = |detail: String| KeyError::Format { what: what.to_owned(), detail };
    if doc.kdf.name != "scrypt" || doc.cipher.name != "nacl/secretbox" {
        return Err(format(format!(
            "it uses `{}` and `{}`; cosign keys use `scrypt` and `nacl/secretbox`",
            doc.kdf.name, doc.cipher.name
        )));
    }
    let KdfParams { n, r, p } = doc.kdf.params;
    if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 {
        return Err(format(format!("its scrypt parameters N={n} r={r} p={p} are invalid")));
    }
    let memory = 128u64.saturating_mul(u64::from(r)).saturating_mul(n).saturating_mul(u64::from(p));
    if memory > MAX_SCRYPT_MEMORY || p > 16 {
        return Err(format(format!(
            "its scrypt parameters N={n} r={r} p={p} would take more than {} MiB to open",
            MAX_SCRYPT_MEMORY >> 20
        )));
    }
    if doc.cipher.nonce.len() != 24 {
        return Err(format(format!("its nonce is {} bytes, not 24", doc.cipher.nonce.len())));
    }
    let log_n = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| format(format!("scrypt parameters: {e}")))?;
    let mut secret = [0u8; 32];
    scrypt::scrypt(password, &doc.kdf.salt, &params, &mut secret).map_err(|e| format(format!("scrypt: {e}")))?;
    XSalsa20Poly1305::new(&secret.into())
        .decrypt(crypto_secretbox::Nonce::from_slice(&doc.cipher.nonce), doc.ciphertext.as_slice())
        .map_err(|_| KeyError::WrongPassword { what: what.to_owned() })
}

/// An ECDSA P-256 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: p256::ecdsa::VerifyingKey,
}

impl PublicKey {
    /// Reads a PKIX `PUBLIC KEY` PEM; `what` names it in errors.
    pub fn from_pem(text: &str, what: &str) -> Result<Self, KeyError> {
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(text.trim())
            .map_err(|e| KeyError::Format { what: what.to_owned(), detail: format!("not a P-256 public key: {e}") })?;
        Ok(PublicKey { key })
    }

    /// PKIX DER.
    pub fn der(&self) -> Vec<u8> {
        self.key.to_public_key_der().expect("a P-256 key encodes").as_bytes().to_vec()
    }

    /// The `PUBLIC KEY` PEM cosign writes.
    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).expect("a P-256 key encodes")
    }

    /// What a Sigstore bundle names the key by: base64 of SHA-256 of its PKIX DER.
    pub fn hint(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(self.der()))
    }

    /// Whether `signature` (ASN.1 DER) is this key's over SHA-256(`message`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        p256::ecdsa::Signature::from_der(signature).is_ok_and(|sig| self.key.verify(message, &sig).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_key_round_trips_and_refuses_a_wrong_password() {
        let key = SigningKey::generate();
        let pem = key.to_encrypted_pem(b"secret");
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"), "{pem}");
        let read = SigningKey::from_pem(&pem, "cosign.key", || Ok(b"secret".to_vec())).expect("opens");
        assert_eq!(read.public_key(), key.public_key());
        let err = SigningKey::from_pem(&pem, "cosign.key", || Ok(b"nope".to_vec())).expect_err("wrong password");
        assert_eq!(
            err.to_string(),
            "cosign.key: wrong password (the key did not decrypt)\n  fix: set COSIGN_PASSWORD to the key's password"
        );
    }

    #[test]
    fn signatures_are_deterministic_and_verify() {
        let key = SigningKey::generate();
        let (a, b) = (key.sign(b"payload"), key.sign(b"payload"));
        assert_eq!(a, b);
        assert!(key.public_key().verify(b"payload", &a));
        assert!(!key.public_key().verify(b"payloaD", &a));
        assert!(!SigningKey::generate().public_key().verify(b"payload", &a));
        let pem = key.public_key().to_pem();
        assert_eq!(PublicKey::from_pem(&pem, "cosign.pub").expect("reads"), key.public_key());
    }

    #[test]
    fn hostile_key_files_are_refused_without_work() {
        let doc = |n: u64, r: u32| {
            let json = format!(
                r#"{{"kdf":{{"name":"scrypt","params":{{"N":{n},"r":{r},"p":1}},"salt":"AAAA"}},"cipher":{{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},"ciphertext":"AAAA"}}"#
            );
            pem_rfc7468::encode_string(ENCRYPTED_LABEL, pem_rfc7468::LineEnding::LF, json.as_bytes()).expect("pem")
        };
        let huge = SigningKey::from_pem(&doc(1 << 30, 8), "k", || Ok(Vec::new())).expect_err("too costly");
        assert!(huge.to_string().contains("would take more than 1024 MiB"), "{huge}");
        let odd = SigningKey::from_pem(&doc(1000, 8), "k", || Ok(Vec::new())).expect_err("not a power of two");
        assert!(odd.to_string().contains("are invalid"), "{odd}");
        let not_pem = SigningKey::from_pem("hello", "k", || Ok(Vec::new())).expect_err("not pem");
        assert!(not_pem.to_string().starts_with("k is not a P-256 key cosign reads: not PEM"), "{not_pem}");
        let rsa = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let other = SigningKey::from_pem(rsa, "k", || Ok(Vec::new())).expect_err("label");
        assert!(other.to_string().contains("its PEM label is `RSA PRIVATE KEY`"), "{other}");
    }
}
