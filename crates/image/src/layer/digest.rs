//! [`Digest`]: a sha256 content digest, written `sha256:<64 lowercase hex digits>`.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::layer::error::LayerError;

/// A sha256 digest as OCI writes it: `sha256:<hex>`.
///
/// Invariant: exactly 32 bytes; the text form is always lowercase.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Wraps a finished sha256 hash.
    pub fn from_sha256(hash: [u8; 32]) -> Self {
        Digest(hash)
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(Sha256::digest(bytes).into())
    }

    /// The raw hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix (blob file names).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = LayerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || LayerError::InvalidDigest { digest: s.escape_debug().to_string() };
        let hex_part = s.strip_prefix("sha256:").ok_or_else(invalid)?;
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid());
        }
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut hash).map_err(|_| invalid())?;
        Ok(Digest(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn text_round_trip() {
        let digest = Digest::of(b"");
        assert_eq!(digest.to_string(), EMPTY);
        assert_eq!(EMPTY.parse::<Digest>().expect("valid"), digest);
        assert_eq!(digest.hex(), &EMPTY[7..]);
    }

    #[test]
    fn rejects_malformed_text() {
        let upper = EMPTY.to_uppercase().replace("SHA256", "sha256");
        for bad in [
            "",
            "sha256:",
            &EMPTY[7..],
            "sha512:e3b0",
            &EMPTY[..70],
            &upper,
            "sha256:zz0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            let error = bad.parse::<Digest>().expect_err(bad);
            assert_eq!(
                error.to_string(),
                format!(
                    "invalid digest `{bad}`: expected `sha256:` followed by 64 lowercase hex \
                     digits"
                )
            );
        }
    }
}
