//! What tests, examples, benchmarks and fuzz targets build their inputs with; never part of
//! the product (`publish = false`, and no product crate depends on it).
//!
//! - [`apk`]: signed `.apk` packages, `APKINDEX.tar.gz` indexes and whole repositories, as
//!   abuild and apk-tools make them, plus hostile variants for tests of the verifiers;
//! - [`http`]: a static file server on loopback with injectable faults (downloads);
//! - [`registry`]: an OCI distribution registry on loopback with injectable faults (push).

pub mod apk;
pub mod http;
pub mod registry;
