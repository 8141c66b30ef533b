//! [`Identity`]: the package identity (`C:` in an index), `Q1` followed by
//! the standard base64 of the SHA-1 of the package's compressed control
//! member. A package file whose control member hashes to the pinned identity
//! is the pinned package: the control member pins `datahash`, which pins the
//! data.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

/// An identity string that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "invalid package identity `{text}`: expected `Q1` followed by the base64 of a \
         20-byte SHA-1 (28 characters)"
    )]
    Invalid { text: String },
}

/// A package identity: the raw 20-byte SHA-1 of the compressed control member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity([u8; 20]);

impl Identity {
    /// Parses `Q1` + standard base64 (with padding), as in `C:` lines.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let invalid = || IdentityError::Invalid { text: text.to_owned() };
        let encoded = text.strip_prefix("Q1").ok_or_else(invalid)?;
        // Room for a few bytes more than a SHA-1, so that overlong input is
        // reported as invalid rather than as a buffer error.
        let mut buf = [0u8; 24];
        let n = base64::engine::general_purpose::STANDARD.decode_slice(encoded, &mut buf).map_err(|_| invalid())?;
        let raw: [u8; 20] = buf.get(..n).and_then(|decoded| decoded.try_into().ok()).ok_or_else(invalid)?;
        Ok(Identity(raw))
    }

    /// The identity of a package whose compressed control member is `control`.
    pub fn of_control_member(control: &[u8]) -> Self {
        Identity(Sha1::digest(control).into())
    }

    pub fn from_sha1(raw: [u8; 20]) -> Self {
        Identity(raw)
    }

    pub fn sha1(&self) -> &[u8; 20] {
        &self.0
    }
}

impl FromStr for Identity {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identity::parse(s)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Q1{}", base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for text in ["Q1/JgpM8J6DWI/541tUX+uHEzSjqo=", "Q1ZfOyBH7XWYFHrZw8vrXYPABkX2g="] {
            let id = Identity::parse(text).expect("valid identity");
            assert_eq!(id.to_string(), text);
        }
        let id = Identity::parse("Q1jb30PjSe/IaKLU1FnoZ/0Kgq7Fs=").expect("valid identity");
        assert_eq!(hex::encode(id.sha1()), "8dbdf43e349efc868a2d4d459e867fd0a82aec5b");
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "Q1",
            "Q2/JgpM8J6DWI/541tUX+uHEzSjqo=",
            "Q1/JgpM8J6DWI/541tUX+uHEzSjq",
            "Q1/JgpM8J6DWI/541tUX+uHEzSjqoAAAA",
            "Q1!!!!",
        ] {
            assert_eq!(Identity::parse(text), Err(IdentityError::Invalid { text: text.to_owned() }), "{text}");
        }
        assert_eq!(
            Identity::parse("Q1x").map_err(|e| e.to_string()),
            Err("invalid package identity `Q1x`: expected `Q1` followed by the base64 of a \
                 20-byte SHA-1 (28 characters)"
                .to_owned())
        );
    }
}
