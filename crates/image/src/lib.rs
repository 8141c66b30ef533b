//! Images from packages: installing verified APK packages and files into a layer tree
//! ([`install`]), deterministic layer tarballs ([`layer`]), OCI configs, manifests, indexes and
//! layouts ([`oci`]), SPDX SBOMs ([`sbom`]), registries ([`registry`]: push, resolve) and
//! `docker save` archives ([`docker_archive`]). Knows nothing of Starlark, targets or the
//! build graph.

// The crates below, under the paths these modules use.
pub(crate) use executor_apk as apk;
pub(crate) use executor_base::{digest, fetch, platform};

pub mod docker_archive;
pub mod install;
pub mod layer;
pub mod oci;
pub mod registry;
pub mod sbom;
pub mod sign;
