//! `executor.lock` text (`lockfile::Lockfile::parse`). A lockfile that parses must write
//! back to text that parses to the same lockfile (the canonical-text round trip that
//! `lock --check` relies on).
#![no_main]

use executor::lockfile::Lockfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(lock) = Lockfile::parse(text, "executor.lock") else {
        return;
    };
    let written = lock.to_text();
    let again = Lockfile::parse(&written, "executor.lock")
        .unwrap_or_else(|e| panic!("the canonical text of a parsed lockfile does not parse: {e}\n{written}"));
    let mut normalized = lock.clone();
    normalized.normalize();
    assert_eq!(again, normalized, "the canonical text does not round-trip");
    assert_eq!(again.to_text(), written, "the canonical text is not stable");
    for package in &lock.packages {
        let _ = lock.package(&package.repository, &package.arch, &package.name, &package.version);
    }
});
