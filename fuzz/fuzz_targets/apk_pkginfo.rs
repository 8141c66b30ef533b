//! A `.PKGINFO` text from a package's control member (`apk::PkgInfo::parse`).
#![no_main]

use executor::apk::PkgInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PkgInfo::parse(text);
    }
});
