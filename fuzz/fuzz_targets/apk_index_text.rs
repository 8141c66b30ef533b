//! The `APKINDEX` text inside an index (`apk::index::parse_text`), then what is done with
//! the entries: resolving a few of their names (`apk::resolve`) and writing the text back
//! (`executor_testkit::apk::index_text`, which must accept what the parser returned).
#![no_main]

use executor::apk::index::parse_text;
use executor::apk::{resolve, Dependency};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_text(text, "fuzz/APKINDEX") else {
        return;
    };
    // What `lock` does next: resolve requested names over the entries. A handful of the
    // names in the index, so that dependencies, provides and conflicts are followed.
    let requests: Vec<Dependency> = parsed
        .entries
        .iter()
        .take(3)
        .filter_map(|e| Dependency::parse(e.name.as_str()).ok())
        .collect();
    let _ = resolve(&parsed.entries, &requests);
    let _ = executor_testkit::apk::index_text(&parsed.entries);
});
