//! apk versions and dependency atoms as index entries, `.PKGINFO` and `BUILD` files give
//! them (`apk::Version`, `apk::Dependency`, `apk::Provide`). Input: lines; the first three
//! are versions, every line is also tried as a dependency list and a provides list.
//!
//! Version order must be a total order: the index parser sorts entries by it, and Rust's
//! sort may panic on an inconsistent comparison. So the target checks antisymmetry and
//! transitivity on the versions it parsed.
#![no_main]

use std::cmp::Ordering;

use executor::apk::{Dependency, Provide, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().collect();
    let versions: Vec<Version> = lines.iter().take(3).filter_map(|l| Version::parse(l).ok()).collect();
    for a in &versions {
        assert_eq!(a.cmp(a), Ordering::Equal, "`{}` is not equal to itself", a.as_str());
        for b in &versions {
            assert_eq!(a.cmp(b), b.cmp(a).reverse(), "order of `{}` and `{}` is not antisymmetric", a.as_str(), b.as_str());
            let _ = a.compare_fuzzy(b, true);
            for c in &versions {
                if a.cmp(b) != Ordering::Greater && b.cmp(c) != Ordering::Greater {
                    assert_ne!(
                        a.cmp(c),
                        Ordering::Greater,
                        "order of `{}` <= `{}` <= `{}` is not transitive",
                        a.as_str(),
                        b.as_str(),
                        c.as_str()
                    );
                }
            }
        }
    }
    for line in &lines {
        let deps = Dependency::parse_list(line).unwrap_or_default();
        let provides = Provide::parse_list(line).unwrap_or_default();
        for dep in &deps {
            for version in &versions {
                let _ = dep.matches(dep.name.as_str(), version);
            }
            for provide in &provides {
                let _ = provide.satisfies(dep);
            }
        }
    }
});
