//! Private and public key files as `push --sign` and cosign read them
//! (`sign::SigningKey::from_pem`, `sign::PublicKey::from_pem`): any text is refused or read,
//! never a panic, and never more scrypt work than the bound (a hostile key file asks for
//! `N` = 2^40). A key that is read signs, and its public half verifies the signature.
#![no_main]

use executor::sign::{PublicKey, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = SigningKey::from_pem(text, "fuzz.key", || Ok(b"fuzz".to_vec())) {
        let signature = key.sign(b"payload");
        assert!(key.public_key().verify(b"payload", &signature));
    }
    let _ = PublicKey::from_pem(text, "fuzz.pub");
});
