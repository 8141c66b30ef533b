//! The executor engine: a Bazel-like build engine with no domain of its own.
//!
//! # Vocabulary
//! - **workspace**: the directory tree below a `WORKSPACE` file; the main **repository**.
//! - **package**: a directory with a `BUILD` file; owns the files below it but not those of
//!   subpackages.
//! - **label**: the name of a target, `@repo//package:name` ([`label::Label`]).
//! - **rule**: a kind of target (`filegroup`, `write_file`, ...) with typed attributes
//!   ([`rules::Rule`]); rules come in **rule sets** ([`rules::RuleSet`]).
//! - **target**: one call of a rule in a `BUILD` file ([`target::Target`]).
//! - **provider**: a typed value a target hands its dependents ([`rules::Provided`]).
//! - **action**: a unit of work with declared inputs and outputs and a key
//!   ([`action::Action`]).
//! - **artifact**: a file or directory an action reads or writes ([`action::Artifact`]).
//!
//! # Phases
//! Loading ([`load`]: Starlark -> targets), analysis ([`graph`]: targets -> actions),
//! execution ([`builder`]: actions -> outputs in the [`store`], materialized in
//! `executor-out/`). See ARCHITECTURE.md.
//!
//! The engine depends on no rule set: the image rules (`executor-rules`) plug in through
//! [`rules::RuleSet`], and it knows nothing of APK, OCI or lockfiles.

pub mod action;
pub mod builder;
pub mod error;
pub mod filecache;
pub mod graph;
pub mod label;
pub mod load;
pub mod remote_cache;
pub mod rules;
pub mod store;
pub mod target;
pub mod typemap;
pub mod workspace;

pub use error::Error;
// The base crate under the paths this crate uses.
pub(crate) use executor_base::{digest, fetch};
