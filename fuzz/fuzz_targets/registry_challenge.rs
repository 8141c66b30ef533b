//! A registry's `WWW-Authenticate` header (`registry::parse_challenge`).
#![no_main]

use executor::registry::parse_challenge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser only when they are text.
    if let Ok(header) = std::str::from_utf8(data) {
        let _ = parse_challenge(header);
    }
});
