//! A whole `.apk` as fetched from a repository: `apk::Package::read` (gzip members,
//! signature and control tar members, `.PKGINFO`), `apk::Package::verify` against the pin
//! the file itself implies (so the signature and `datahash` checks run on every input that
//! gets that far), then installing the verified package (`install::Installer`: the data
//! tar, hostile paths, PAX records, checksums) and writing the layer (`layer::LayerWriter`)
//! to a sink.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use executor::apk::{Keyring, Package, PackagePin, SignaturePolicy};
use executor::install::Installer;
use executor::layer::{LayerOptions, LayerWriter};
use executor::platform::Arch;
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<Keyring> = LazyLock::new(executor_fuzz::keyring);
static SPOOL: LazyLock<PathBuf> = LazyLock::new(|| executor_fuzz::scratch_dir("apk_package"));

fuzz_target!(|data: &[u8]| {
    let Ok(package) = Package::read(data, "fuzz.apk") else {
        return;
    };
    let pin = PackagePin {
        name: package.info().name.clone(),
        version: package.info().version.clone(),
        identity: package.identity(),
        size: Some(data.len() as u64),
        sha256: None,
    };
    // Untrusted: unknown keys pass, so fuzzed signatures do not stop the datahash check.
    let Ok(verified) = Package::verify(data, "fuzz.apk", &pin, &KEYRING, SignaturePolicy::Untrusted) else {
        return;
    };
    let arch = package.info().arch.as_deref().and_then(|a| Arch::parse(a).ok()).unwrap_or(Arch::X86_64);
    let mut installer = Installer::with_spool_dir(arch, SPOOL.as_path());
    if installer.install(&verified, "fuzz").is_err() {
        return;
    }
    if let Ok((tree, _summaries)) = installer.finish() {
        let options = LayerOptions { epoch: 0, jobs: 1, level: 1 };
        let writer = LayerWriter::new(std::io::sink(), options).expect("valid layer options");
        let _ = writer.write_tree(tree);
    }
});
