//! executor: a hermetic, Bazel-like build tool for reproducible container images.
//!
//! This crate is the command line: it parses arguments and composes the engine
//! (`executor-engine`) with the image rule set (`executor-rules`). The crates below it are
//! re-exported under the paths tests, benchmarks and fuzz targets use. See ARCHITECTURE.md.

pub mod cli;
pub mod commands;

// The crates below the command line, under the paths tests, benchmarks and fuzz targets use.
pub use executor_apk as apk;
pub use executor_base::{digest, fetch, platform};
pub use executor_engine::{
    action, builder, error, filecache, graph, label, load, remote_cache, rules, store, target, typemap, workspace,
    Error,
};
pub use executor_image::{docker_archive, install, layer, oci, registry, sbom, sign};
pub use executor_rules as image_rules;
pub use executor_rules::{apko, lock, lockfile, repository};
