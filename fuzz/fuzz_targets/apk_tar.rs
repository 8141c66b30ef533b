//! Tar streams of a package, from the input as an uncompressed tar:
//! - as a package's data: the input is wrapped into an unsigned `.apk` whose `.PKGINFO`
//!   records its `datahash`, verified (`apk::Package::verify`) and installed
//!   (`install::Installer::install`, then the layer writer): entry kinds, PAX and GNU long
//!   names, hostile paths, links, xattrs, `APK-TOOLS.checksum.*` records. The installer's
//!   own tar entry point, `Installer::install_archive`, is private;
//! - gzip-compressed, as the first member of a package and of an index, which reaches the
//!   crate-private `apk::tar_member::read_files` through `Package::read` and `Index::read`.
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use executor::apk::{Index, Keyring, Package, PackagePin, SignaturePolicy, TrustPolicy};
use executor::install::Installer;
use executor::layer::{LayerOptions, LayerWriter};
use executor::platform::Arch;
use libfuzzer_sys::fuzz_target;
use sha2::Digest as _;

static KEYRING: LazyLock<Keyring> = LazyLock::new(executor_fuzz::keyring);
static SPOOL: LazyLock<PathBuf> = LazyLock::new(|| executor_fuzz::scratch_dir("apk_tar"));

/// An unsigned `.apk` whose data is `data_tar` (compressed here) and whose `.PKGINFO`
/// pins it with `datahash`.
fn wrap(data_tar: &[u8]) -> Vec<u8> {
    let data = executor_fuzz::gzip(data_tar);
    let datahash = hex::encode(sha2::Sha256::digest(&data));
    let pkginfo =
        format!("pkgname = fuzz\npkgver = 1.0-r0\narch = noarch\norigin = fuzz\nsize = 1\ndatahash = {datahash}\n");
    let mut control = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(pkginfo.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    control.append_data(&mut header, ".PKGINFO", pkginfo.as_bytes()).expect("tar in memory");
    let mut apk = executor_fuzz::gzip(&control.into_inner().expect("tar in memory"));
    apk.extend_from_slice(&data);
    apk
}

fuzz_target!(|data: &[u8]| {
    let compressed = executor_fuzz::gzip(data);
    let _ = Package::read(&compressed, "fuzz.apk");
    let _ = Index::read(&compressed, "fuzz/APKINDEX.tar.gz", &KEYRING, TrustPolicy::AllowUntrusted);

    let apk = wrap(data);
    let package = Package::read(&apk, "fuzz.apk").expect("the wrapper package reads");
    let pin = PackagePin {
        name: package.info().name.clone(),
        version: package.info().version.clone(),
        identity: package.identity(),
        size: None,
        sha256: None,
    };
    let verified = Package::verify(&apk, "fuzz.apk", &pin, &KEYRING, SignaturePolicy::IfPresent)
        .expect("the wrapper package verifies");
    let mut installer = Installer::with_spool_dir(Arch::X86_64, SPOOL.as_path());
    if installer.install(&verified, "fuzz").is_err() {
        return;
    }
    if let Ok((tree, _summaries)) = installer.finish() {
        let options = LayerOptions { epoch: 0, jobs: 1, level: 1 };
        let writer = LayerWriter::new(std::io::sink(), options).expect("valid layer options");
        let _ = writer.write_tree(tree);
    }
});
