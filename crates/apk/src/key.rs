//! Trusted public keys. A [`PublicKey`] is an RSA key read from a PEM
//! "PUBLIC KEY" (PKIX) file and known by that file's name, which is how
//! signatures name their key (`.SIGN.RSA.<key name>`). A [`Keyring`] is the
//! set of keys an index or package may be signed with.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use rsa::RsaPublicKey;
use sha2::{Digest as _, Sha256};

/// A key that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "invalid key name `{name}`: a key is named by its file name, e.g. \
         `alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub`"
    )]
    InvalidName { name: String },
    #[error("key `{name}` is not a PEM RSA public key (`-----BEGIN PUBLIC KEY-----`): {message}")]
    Pem { name: String, message: String },
    #[error("cannot read key file `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key `{name}` is already in the keyring: key names must be unique")]
    Duplicate { name: String },
}

/// A key name: the key's file name.
///
/// Invariant: non-empty, not `.` or `..`, no `/`, NUL or whitespace.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyName(Box<str>);

impl KeyName {
    pub fn new(name: &str) -> Result<Self, KeyError> {
        let valid = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.chars().any(|c| c == '/' || c == '\0' || c.is_whitespace() || c.is_control());
        if valid {
            Ok(KeyName(name.into()))
        } else {
            Err(KeyError::InvalidName { name: name.to_owned() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyName({:?})", &*self.0)
    }
}

/// An RSA public key and its name.
#[derive(Clone)]
pub struct PublicKey {
    name: KeyName,
    key: RsaPublicKey,
}

impl PublicKey {
    /// Parses a PEM "PUBLIC KEY" (PKIX), or a PEM "RSA PUBLIC KEY" (PKCS#1).
    pub fn from_pem(name: &str, pem: &str) -> Result<Self, KeyError> {
        let name = KeyName::new(name)?;
        let key = match RsaPublicKey::from_public_key_pem(pem.trim()) {
            Ok(key) => key,
            Err(pkix) => RsaPublicKey::from_pkcs1_pem(pem.trim())
                .map_err(|_| KeyError::Pem { name: name.to_string(), message: pkix.to_string() })?,
        };
        Ok(PublicKey { name, key })
    }

    /// Reads a key file; the key is named by the file name.
    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| KeyError::InvalidName { name: path.display().to_string() })?;
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_owned(), source })?;
        PublicKey::from_pem(name, &pem)
    }

    pub fn name(&self) -> &KeyName {
        &self.name
    }

    pub(crate) fn rsa(&self) -> &RsaPublicKey {
        &self.key
    }

    /// SHA-256 of the key's DER `SubjectPublicKeyInfo`: the key material, whatever the PEM
    /// flavour or whitespace of its file.
    pub fn fingerprint(&self) -> [u8; 32] {
        match self.key.to_public_key_der() {
            Ok(der) => Sha256::digest(der.as_bytes()).into(),
            // Encoding a parsed RSA key cannot fail; hash the modulus and exponent if it does.
            Err(_) => {
                use rsa::traits::PublicKeyParts as _;
                let mut h = Sha256::new();
                h.update(self.key.n().to_bytes_be());
                h.update(self.key.e().to_bytes_be());
                h.finalize().into()
            }
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.name)
    }
}

/// The trusted keys, by name.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: BTreeMap<KeyName, PublicKey>,
}

impl Keyring {
    pub fn new() -> Self {
        Keyring::default()
    }

    /// Adds a key; a second key with the same name is an error.
    pub fn insert(&mut self, key: PublicKey) -> Result<(), KeyError> {
        if self.keys.contains_key(&key.name) {
            return Err(KeyError::Duplicate { name: key.name.to_string() });
        }
        self.keys.insert(key.name.clone(), key);
        Ok(())
    }

    /// Reads and adds the key file at `path`.
    pub fn insert_file(&mut self, path: &Path) -> Result<(), KeyError> {
        self.insert(PublicKey::read_file(path)?)
    }

    pub fn get(&self, name: &str) -> Option<&PublicKey> {
        self.keys.get(name)
    }

    /// Key names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &KeyName> {
        self.keys.keys()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// SHA-256 over every key's name and [`PublicKey::fingerprint`], in name order: what a
    /// verdict made with this keyring depends on.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for (name, key) in &self.keys {
            h.update((name.as_str().len() as u64).to_be_bytes());
            h.update(name.as_str().as_bytes());
            h.update(key.fingerprint());
        }
        h.finalize().into()
    }
}

impl std::borrow::Borrow<str> for KeyName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/apk");

    #[test]
    fn loads_real_keys_by_file_name() {
        let mut keyring = Keyring::new();
        for name in [
            "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub",
            "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
            "alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub",
        ] {
            keyring.insert_file(&Path::new(FIXTURES).join("alpine-keys").join(name)).expect("real key loads");
        }
        keyring.insert_file(&Path::new(FIXTURES).join("wolfi/keys/wolfi-signing.rsa.pub")).expect("wolfi key loads");
        let names: Vec<&str> = keyring.names().map(KeyName::as_str).collect();
        assert_eq!(
            names,
            [
                "alpine-devel@lists.alpinelinux.org-4a6a0840.rsa.pub",
                "alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub",
                "alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub",
                "wolfi-signing.rsa.pub",
            ]
        );
        assert!(keyring.get("alpine-devel@lists.alpinelinux.org-616ae350.rsa.pub").is_some());
        let again = Path::new(FIXTURES).join("wolfi/keys/wolfi-signing.rsa.pub");
        assert_eq!(
            keyring.insert_file(&again).map_err(|e| e.to_string()),
            Err("key `wolfi-signing.rsa.pub` is already in the keyring: key names must be \
                 unique"
                .to_owned())
        );
    }

    #[test]
    fn rejects_bad_keys() {
        let err = PublicKey::from_pem("x.rsa.pub", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
            .expect_err("garbage key");
        assert!(err.to_string().starts_with("key `x.rsa.pub` is not a PEM RSA public key"), "{err}");
        for name in ["", "..", "a/b.pub", "a b.pub"] {
            assert!(matches!(KeyName::new(name), Err(KeyError::InvalidName { .. })), "{name:?}");
        }
        let missing = PublicKey::read_file(Path::new("/nonexistent/k.rsa.pub")).expect_err("missing");
        assert!(missing.to_string().starts_with("cannot read key file `/nonexistent/k.rsa.pub`"));
    }
}
