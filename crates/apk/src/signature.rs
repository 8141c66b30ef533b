//! Signatures: tar entries named `.SIGN.<ALG>.<key name>` whose content is an
//! RSA PKCS#1 v1.5 signature over the compressed bytes of the next gzip
//! member (the control member of a package, the content member of an index).
//! `<ALG>` is `RSA` (SHA-1), `RSA256` (SHA-256) or `RSA512` (SHA-512).
//!
//! Several signatures may be present; one that verifies with a key of the
//! [`Keyring`] suffices. A signature by a trusted key that does *not* verify
//! is an error even when others are fine or untrusted input is allowed: it
//! means the signed bytes were altered.

use std::fmt;

use rsa::Pkcs1v15Sign;
use sha1::{Digest as _, Sha1};
use sha2::{Sha256, Sha512};

use crate::key::{KeyError, KeyName, Keyring};

/// Prefix of the tar entry names that hold signatures.
pub const SIGNATURE_PREFIX: &str = ".SIGN.";

/// A signature entry that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "unsupported signature entry `{entry}`: expected `.SIGN.RSA.<key>`, \
         `.SIGN.RSA256.<key>` or `.SIGN.RSA512.<key>`"
    )]
    Unsupported { entry: String },
    #[error("invalid key name in signature entry `{entry}`: {source}")]
    KeyName {
        entry: String,
        #[source]
        source: KeyError,
    },
    #[error(
        "bad {algorithm} signature by trusted key `{key}`: the signed bytes were altered or \
         corrupted; fetch the file again"
    )]
    Bad { key: KeyName, algorithm: SignatureAlgorithm },
}

/// The digest a signature is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignatureAlgorithm {
    /// `.SIGN.RSA.`: RSA PKCS#1 v1.5 with SHA-1.
    RsaSha1,
    /// `.SIGN.RSA256.`: RSA PKCS#1 v1.5 with SHA-256.
    RsaSha256,
    /// `.SIGN.RSA512.`: RSA PKCS#1 v1.5 with SHA-512.
    RsaSha512,
}

impl SignatureAlgorithm {
    /// The `<ALG>` part of the entry name.
    pub fn tag(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaSha1 => "RSA",
            SignatureAlgorithm::RsaSha256 => "RSA256",
            SignatureAlgorithm::RsaSha512 => "RSA512",
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureAlgorithm::RsaSha1 => "RSA/SHA-1",
            SignatureAlgorithm::RsaSha256 => "RSA/SHA-256",
            SignatureAlgorithm::RsaSha512 => "RSA/SHA-512",
        })
    }
}

/// One signature entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    pub algorithm: SignatureAlgorithm,
    /// The name of the key that made it.
    pub key: KeyName,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}{}.{})", SIGNATURE_PREFIX, self.algorithm.tag(), self.key)
    }
}

impl Signature {
    /// Whether a tar entry name is a signature entry.
    pub fn is_signature_entry(name: &str) -> bool {
        name.starts_with(SIGNATURE_PREFIX)
    }

    /// Builds a signature from its tar entry name and content.
    pub fn from_entry(entry: &str, bytes: Vec<u8>) -> Result<Self, SignatureError> {
        let unsupported = || SignatureError::Unsupported { entry: entry.to_owned() };
        let rest = entry.strip_prefix(SIGNATURE_PREFIX).ok_or_else(unsupported)?;
        let (tag, key) = rest.split_once('.').ok_or_else(unsupported)?;
        let algorithm = match tag {
            "RSA" => SignatureAlgorithm::RsaSha1,
            "RSA256" => SignatureAlgorithm::RsaSha256,
            "RSA512" => SignatureAlgorithm::RsaSha512,
            _ => return Err(unsupported()),
        };
        let key = KeyName::new(key).map_err(|source| SignatureError::KeyName { entry: entry.to_owned(), source })?;
        Ok(Signature { algorithm, key, bytes })
    }

    /// Checks the signature over `signed` with `key`.
    fn verifies(&self, key: &rsa::RsaPublicKey, signed: &[u8]) -> bool {
        let result = match self.algorithm {
            SignatureAlgorithm::RsaSha1 => key.verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(signed), &self.bytes),
            SignatureAlgorithm::RsaSha256 => {
                key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(signed), &self.bytes)
            }
            SignatureAlgorithm::RsaSha512 => {
                key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(signed), &self.bytes)
            }
        };
        result.is_ok()
    }
}

/// What the signatures over some bytes prove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// A signature by this trusted key verified.
    Verified { key: KeyName, algorithm: SignatureAlgorithm },
    /// There are no signatures.
    Unsigned,
    /// Signatures exist, but none is by a key of the keyring (sorted names).
    UnknownKeys(Vec<KeyName>),
    /// Signature entries sit in the same gzip member as the content, so they
    /// cannot cover it (a hand-made single-member index).
    Unverifiable,
}

impl Trust {
    pub fn is_verified(&self) -> bool {
        matches!(self, Trust::Verified { .. })
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Verified { key, algorithm } => {
                write!(f, "signed ({algorithm}) by trusted key `{key}`")
            }
            Trust::Unsigned => f.write_str("not signed"),
            Trust::Unverifiable => {
                f.write_str("signed, but the signature shares a gzip member with the content it should cover")
            }
            Trust::UnknownKeys(keys) => {
                f.write_str("signed only by keys that are not trusted: ")?;
                for (i, key) in keys.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{key}`")?;
                }
                Ok(())
            }
        }
    }
}

impl Keyring {
    /// Checks `signatures` over `signed`. The first signature (in the given
    /// order) by a trusted key that verifies wins; a signature by a trusted
    /// key that fails is [`SignatureError::Bad`].
    pub fn verify(&self, signatures: &[Signature], signed: &[u8]) -> Result<Trust, SignatureError> {
        let mut bad = None;
        let mut unknown = Vec::new();
        for signature in signatures {
            match self.get(signature.key.as_str()) {
                Some(key) if signature.verifies(key.rsa(), signed) => {
                    return Ok(Trust::Verified { key: signature.key.clone(), algorithm: signature.algorithm })
                }
                Some(_) => {
                    bad.get_or_insert(signature);
                }
                None => unknown.push(signature.key.clone()),
            }
        }
        if let Some(signature) = bad {
            return Err(SignatureError::Bad { key: signature.key.clone(), algorithm: signature.algorithm });
        }
        if unknown.is_empty() {
            return Ok(Trust::Unsigned);
        }
        unknown.sort();
        unknown.dedup();
        Ok(Trust::UnknownKeys(unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entry_names() {
        let s = Signature::from_entry(".SIGN.RSA256.melange.rsa.pub", vec![1, 2, 3]).expect("valid entry");
        assert_eq!(s.algorithm, SignatureAlgorithm::RsaSha256);
        assert_eq!(s.key.as_str(), "melange.rsa.pub");
        let s = Signature::from_entry(".SIGN.RSA.alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub", vec![])
            .expect("valid entry");
        assert_eq!(s.algorithm, SignatureAlgorithm::RsaSha1);
        let s = Signature::from_entry(".SIGN.RSA512.k.pub", vec![]).expect("valid entry");
        assert_eq!(s.algorithm, SignatureAlgorithm::RsaSha512);
        for entry in [".SIGN.DSA.k.pub", ".SIGN.RSA", "SIGN.RSA.k", ".SIGN.RSA384.k"] {
            assert!(matches!(Signature::from_entry(entry, vec![]), Err(SignatureError::Unsupported { .. })), "{entry}");
        }
        assert!(matches!(Signature::from_entry(".SIGN.RSA.", vec![]), Err(SignatureError::KeyName { .. })));
    }

    #[test]
    fn unsigned_and_unknown() {
        let keyring = Keyring::new();
        assert_eq!(keyring.verify(&[], b"x").expect("no signatures"), Trust::Unsigned);
        let sigs = [
            Signature::from_entry(".SIGN.RSA.b.pub", vec![0; 4]).expect("entry"),
            Signature::from_entry(".SIGN.RSA256.a.pub", vec![0; 4]).expect("entry"),
        ];
        let trust = keyring.verify(&sigs, b"x").expect("unknown keys only");
        assert_eq!(trust.to_string(), "signed only by keys that are not trusted: `a.pub`, `b.pub`");
    }
}
