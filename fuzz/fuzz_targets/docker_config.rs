//! A docker-style auth file (`~/.docker/config.json`, `REGISTRY_AUTH_FILE`):
//! `registry::parse_auth_file` for a few hosts, including Docker Hub's aliases. Credential
//! helpers are never run by this entry point.
#![no_main]

use std::path::Path;

use executor::registry::parse_auth_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for host in ["registry.example.com", "127.0.0.1:5000", "docker.io", "index.docker.io"] {
        if let Ok(Some(creds)) = parse_auth_file(data, host, Path::new("/fuzz/config.json")) {
            // Displaying credentials must never print the secret, but must not fail either.
            let _ = format!("{creds:?}");
        }
    }
});
