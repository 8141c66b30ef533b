//! `APKINDEX.tar.gz` bytes as `executor lock` reads them from a repository: gzip members,
//! signature entries, signature verification against the test and real keys, tar
//! members, `DESCRIPTION` and the `APKINDEX` text (`apk::Index::read`).
#![no_main]

use std::sync::LazyLock;

use executor::apk::{Index, Keyring, TrustPolicy};
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<Keyring> = LazyLock::new(executor_fuzz::keyring);

fuzz_target!(|data: &[u8]| {
    // Untrusted is accepted so that unsigned inputs reach the text parser; trusted-only
    // takes the same path up to the policy check.
    if let Ok(index) = Index::read(data, "fuzz/APKINDEX.tar.gz", &KEYRING, TrustPolicy::AllowUntrusted) {
        for entry in index.entries() {
            let _ = index.get(entry.name.as_str(), &entry.version);
            let _ = entry.file_name();
        }
    }
});
