//! executor: a hermetic, Bazel-like build tool for reproducible container images.
//!
//! # Vocabulary
//! - **workspace**: the directory tree below a `WORKSPACE` file; the main **repository**.
//! - **package**: a directory with a `BUILD` file; owns the files below it but not those of
//!   subpackages.
//! - **label**: the name of a target, `@repo//package:name` ([`label::Label`]).
//! - **rule**: a kind of target (`filegroup`, `write_file`, ...) with typed attributes.
//! - **target**: one call of a rule in a `BUILD` file ([`target::Target`]).
//! - **action**: a unit of work with declared inputs and outputs and a key
//!   ([`action::Action`]).
//! - **artifact**: a file or directory an action reads or writes ([`action::Artifact`]).
//! - **digest**: `sha256:<hex>` of a blob's bytes ([`digest::Digest`]).
//!
//! # Phases
//! Loading ([`load`]: Starlark -> targets), analysis ([`graph`]: targets -> actions),
//! execution ([`builder`]: actions -> outputs in the [`store`], materialized in
//! `executor-out/`). See ARCHITECTURE.md.

pub mod action;
pub mod builder;
pub mod cli;
pub mod commands;
pub mod error;
pub mod filecache;
pub mod graph;
pub mod image_rules;
pub mod label;
pub mod load;
pub mod remote_cache;
pub mod rules;
pub mod store;
pub mod target;
pub mod typemap;
pub mod workspace;

pub use error::Error;
pub use image_rules::{apko, lock, lockfile, repository};
// The crates below the engine, under the paths the rest of this crate uses.
pub use executor_apk as apk;
pub use executor_base::{digest, fetch, platform};
pub use executor_image::{docker_archive, install, layer, oci, registry, sbom};
