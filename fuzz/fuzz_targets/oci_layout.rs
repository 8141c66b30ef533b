//! An OCI image layout as `executor push` and a base image (`oci_image(base = ...)`) read
//! it: `oci-layout`, `index.json`, nested indexes, manifests, configs and SBOM referrers
//! (OCI 1.1 `subject`), every digest and size checked.
//!
//! Entry points: `oci::read_layout_image` (base images), and `registry::push_layout`,
//! whose first step is the crate-private `registry::plan::read_plan`; the push then fails
//! at once against a loopback port nothing listens on.
//!
//! Input: sections separated by a line `%%`: `oci-layout`, `index.json`, then blobs
//! 0, 1, ... stored under their real digest. `@D<n>` and `@S<n>` in a section stand for
//! blob n's digest and size (resolved in dependency order), so the fuzzer can build layouts
//! whose digests check out. The ref name looked for is `latest`.
#![no_main]

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use executor::oci::read_layout_image;
use executor::platform::Arch;
use executor::registry::{push_layout, PushOptions, Reference};
use libfuzzer_sys::fuzz_target;

static DIR: LazyLock<PathBuf> = LazyLock::new(|| executor_fuzz::scratch_dir("oci_layout"));

/// A loopback reference whose port was free a moment ago, so connecting is refused at once.
static TARGET: LazyLock<Reference> = LazyLock::new(|| {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind loopback").local_addr().expect("address").port();
    Reference::parse(&format!("127.0.0.1:{port}/fuzz:latest")).expect("valid reference")
});

fuzz_target!(|data: &[u8]| {
    let parts = executor_fuzz::sections(data);
    executor_fuzz::write_layout(&DIR, &parts);
    let base = read_layout_image(&DIR, Some("latest"), Arch::X86_64);
    let other = read_layout_image(&DIR, None, Arch::Aarch64);
    let opts = PushOptions {
        jobs: 1,
        retries: 0,
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(500),
        ..PushOptions::default()
    };
    let push = push_layout(&DIR, "latest", &TARGET, &opts, None);
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("oci_layout: base {base:?}\nother {other:?}\npush {push:?}");
    }
});
