//! Helpers shared by the fuzz targets in `fuzz_targets/`: the in-tree keys, scratch
//! directories, and the small input formats some targets use to carry several files in one
//! input. Nothing here decides whether input is valid: that is the job of executor's own
//! parsers, which every target calls.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use executor::apk::Keyring;

/// The repository root (`fuzz/..`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every public key the tests use: the in-tree test key and the real Alpine, Wolfi and
/// melange keys of `shared/fixtures/apk` when that directory is present. So that signed
/// seeds get past signature checks into the code behind them.
pub fn keyring() -> Keyring {
    let mut keyring = Keyring::new();
    let mut files = vec![repo_root().join("third_party/keys/executor-test-key.rsa.pub")];
    let fixtures = repo_root().join("../shared/fixtures/apk");
    for dir in ["alpine-keys", "wolfi/keys", "melange-rsa256", "melange-sha1", "rsa256-signed"] {
        if let Ok(entries) = std::fs::read_dir(fixtures.join(dir)) {
            let mut found: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            found.sort();
            files.extend(found.into_iter().filter(|p| p.to_string_lossy().ends_with(".rsa.pub")));
        }
    }
    for file in files {
        // A key that fails to load only makes signed seeds less useful.
        let _ = keyring.insert_file(&file);
    }
    keyring
}

/// A fresh scratch directory under the system's temporary directory (`TMPDIR`; the fuzz
/// scripts point it into `fuzz/target/tmp` and remove it afterwards).
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("executor-fuzz-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Empties `dir` (keeping it).
pub fn clear_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("recreate a scratch directory");
}

/// `data` as one gzip member (fast level: the target fuzzes the reader, not the writer).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("write to memory");
    encoder.finish().expect("finish gzip in memory")
}

/// The line that separates the sections of a multi-file input (`oci_layout`,
/// `registry_http`, `starlark_load`).
pub const SECTION: &[u8] = b"\n%%\n";

/// Splits `data` at every [`SECTION`] line.
pub fn sections(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(pos) = find(rest, SECTION) {
        out.push(&rest[..pos]);
        rest = &rest[pos + SECTION.len()..];
    }
    out.push(rest);
    out
}

/// The first position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Replaces every `@D<n>` in `text` with `sha256:<hex>` of `blobs[n]` and every `@S<n>`
/// with its size, for the `n` that `known(n)` answers. The placeholder format
/// lets the fuzzer build layouts whose digests check out without computing sha256.
pub fn substitute(text: &[u8], known: &dyn Fn(usize) -> Option<(String, usize)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'@' && i + 2 < text.len() && (text[i + 1] == b'D' || text[i + 1] == b'S') {
            let digits = text[i + 2..].iter().take_while(|b| b.is_ascii_digit()).count().min(4);
            if digits > 0 {
                let n: usize = std::str::from_utf8(&text[i + 2..i + 2 + digits])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                if let Some((digest, size)) = known(n) {
                    if text[i + 1] == b'D' {
                        out.extend_from_slice(digest.as_bytes());
                    } else {
                        out.extend_from_slice(size.to_string().as_bytes());
                    }
                    i += 2 + digits;
                    continue;
                }
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// The blob numbers that `@D<n>` and `@S<n>` placeholders in `text` name.
fn placeholder_refs(text: &[u8]) -> Vec<usize> {
    let mut refs = Vec::new();
    let mut i = 0;
    while i + 2 < text.len() {
        if text[i] == b'@' && (text[i + 1] == b'D' || text[i + 1] == b'S') {
            let digits = text[i + 2..].iter().take_while(|b| b.is_ascii_digit()).count().min(4);
            if let Some(n) = std::str::from_utf8(&text[i + 2..i + 2 + digits]).ok().and_then(|s| s.parse().ok()) {
                refs.push(n);
            }
        }
        i += 1;
    }
    refs
}

/// Resolves the placeholders in `blobs` in dependency order: a blob is final once every
/// blob it names is (a blob in a cycle, or naming itself, keeps those placeholders as
/// written). Returns the final bytes and the `sha256:<hex>` of each.
pub fn resolve_blobs(blobs: &[&[u8]]) -> Vec<(Vec<u8>, String)> {
    use sha2::Digest as _;
    let refs: Vec<Vec<usize>> = blobs.iter().map(|b| placeholder_refs(b)).collect();
    let mut done: Vec<Option<(Vec<u8>, String)>> = vec![None; blobs.len()];
    let finish = |n: usize, done: &mut Vec<Option<(Vec<u8>, String)>>| {
        let bytes = {
            let known = |m: usize| done.get(m).and_then(|d| d.as_ref()).map(|(b, d)| (d.clone(), b.len()));
            substitute(blobs[n], &known)
        };
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
        done[n] = Some((bytes, digest));
    };
    loop {
        let ready: Vec<usize> = (0..blobs.len())
            .filter(|&n| done[n].is_none())
            .filter(|&n| refs[n].iter().all(|&m| m >= blobs.len() || (m != n && done[m].is_some())))
            .collect();
        if ready.is_empty() {
            break;
        }
        for n in ready {
            finish(n, &mut done);
        }
    }
    // Cycles: resolve what remains in order, with whatever is known.
    for n in 0..blobs.len() {
        if done[n].is_none() {
            finish(n, &mut done);
        }
    }
    done.into_iter().map(|d| d.expect("every blob resolved")).collect()
}

/// Writes an OCI layout to `dir` from the sections `[oci-layout, index.json, blob 0, ...]`
/// with placeholders resolved (see [`resolve_blobs`]). Blob files are named by their digest.
pub fn write_layout(dir: &Path, parts: &[&[u8]]) {
    clear_dir(dir);
    let blobs = resolve_blobs(parts.get(2..).unwrap_or_default());
    let known = |m: usize| blobs.get(m).map(|(b, d)| (d.clone(), b.len()));
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).expect("create blobs dir");
    if let Some(layout) = parts.first() {
        std::fs::write(dir.join("oci-layout"), substitute(layout, &known)).expect("write oci-layout");
    }
    if let Some(index) = parts.get(1) {
        std::fs::write(dir.join("index.json"), substitute(index, &known)).expect("write index.json");
    }
    for (bytes, digest) in &blobs {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::write(blob_dir.join(hex), bytes).expect("write blob");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sections_and_resolves_placeholders() {
        assert_eq!(sections(b"a\n%%\nb\n%%\n"), [&b"a"[..], b"b", b""]);
        let blobs = resolve_blobs(&[b"{\"d\":\"@D1\",\"s\":@S1}", b"child"]);
        assert!(blobs[0].0.starts_with(b"{\"d\":\"sha256:"));
        assert!(blobs[0].0.ends_with(b"\"s\":5}"));
        assert_eq!(blobs[1].0, b"child");
        // References go either way; a blob cannot name itself.
        let blobs = resolve_blobs(&[b"x", b"@D0", b"@S2"]);
        assert!(blobs[1].0.starts_with(b"sha256:"));
        assert_eq!(blobs[2].0, b"@S2");
    }
}
