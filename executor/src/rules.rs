//! The native rules and the seam every rule implements.
//!
//! A rule has a kind, documented attributes, and an analysis function that turns one target
//! (with its dependencies already analyzed) into actions and the artifacts it provides.
//! Adding a rule means adding one file under `rules/` and one line to [`all_rules`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::action::{ActionGraph, Artifact};
use crate::apk::Keyring;
use crate::fetch::Fetcher;
use crate::label::Label;
use crate::lockfile::{LockedKey, Lockfile};
use crate::platform::Arch;
use crate::repository::ApkRepository;
use crate::target::{AttrSpec, Target};
use crate::workspace::Workspace;

pub mod apk_fetch;
pub mod filegroup;
pub mod layer;
pub mod oci_image;
pub mod oci_index;
pub mod oci_load;
pub mod write_file;

/// What a target provides to its dependents and to `executor build`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provided {
    /// The target's files, in a fixed order.
    pub files: Vec<Artifact>,
    /// For `apk_fetch` targets: per arch, the package files in install order.
    pub apks: BTreeMap<Arch, Vec<ApkFile>>,
    /// For `apk_fetch` targets: what a layer records about where packages came from.
    pub apk_meta: Option<ApkMeta>,
    /// For `layer` targets.
    pub layer: Option<LayerOutput>,
    /// For `oci_image` targets.
    pub image: Option<ImageOutput>,
    /// For `oci_index` targets.
    pub index: Option<IndexOutput>,
}

/// Where an `apk_fetch` target's packages come from, for `/etc/apk/*` of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkMeta {
    /// The requested packages (`/etc/apk/world`).
    pub world: Vec<String>,
    /// The repository URL (`/etc/apk/repositories`).
    pub repository_url: String,
    /// Trusted keys: file name and the key file (`/etc/apk/keys/<name>`).
    pub keys: Vec<(String, Artifact)>,
    /// The repository sets `allow_untrusted = True`: packages need no trusted signature.
    pub allow_untrusted: bool,
}

/// A layer: the `.tar.gz` and its description ([`layer::LayerMeta`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerOutput {
    /// The compressed layer.
    pub tar: Artifact,
    /// `<name>.layer.json`.
    pub meta: Artifact,
    /// The arch of its packages, if it installs any.
    pub arch: Option<Arch>,
}

/// An image: its single-image layout directory and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOutput {
    /// The OCI layout directory.
    pub layout: Artifact,
    /// `<name>.image.json` ([`oci_image::ImageMeta`]).
    pub meta: Artifact,
    /// The platform.
    pub arch: Arch,
}

/// An index: its layout directory and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOutput {
    /// The OCI layout directory.
    pub layout: Artifact,
    /// `<name>.index.json` ([`oci_index::IndexMeta`]).
    pub meta: Artifact,
    /// The platforms of its images, in index order.
    pub archs: Vec<Arch>,
}

/// One fetched, verified package file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkFile {
    /// The `.apk` file.
    pub artifact: Artifact,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// sha256 of the `.apk`, as the lockfile pins it.
    pub sha256: crate::digest::Digest,
    /// Every figure the lockfile pins: whoever reads the file verifies it against these.
    pub pin: crate::apk::LockPin,
}

/// A repository's keyring and the digests of its key files.
type RepositoryKeys = (Arc<Keyring>, Vec<LockedKey>);

/// What analysis may read besides the targets: the workspace's repositories, the lockfile,
/// and the fetcher that fetch actions will use. Shared by all targets of one command.
pub struct AnalysisEnv {
    /// The workspace and its repository declarations.
    pub workspace: Workspace,
    /// The lockfile, if the workspace has one.
    pub lock: Option<Lockfile>,
    /// How fetch actions transfer bytes.
    pub fetcher: Arc<dyn Fetcher>,
    /// Keyrings by repository name, read once.
    keyrings: Mutex<BTreeMap<String, RepositoryKeys>>,
}

impl AnalysisEnv {
    /// An environment for one command.
    pub fn new(workspace: Workspace, lock: Option<Lockfile>, fetcher: Arc<dyn Fetcher>) -> Self {
        AnalysisEnv { workspace, lock, fetcher, keyrings: Mutex::new(BTreeMap::new()) }
    }

    /// The trusted keys of a repository and their digests.
    pub fn keyring(&self, repo: &ApkRepository) -> Result<(Arc<Keyring>, Vec<LockedKey>), String> {
        let mut cache = self.keyrings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, d)) = cache.get(&repo.name) {
            return Ok((Arc::clone(k), d.clone()));
        }
        let (keyring, digests) = repo.keyring(&self.workspace)?;
        let keyring = Arc::new(keyring);
        cache.insert(repo.name.clone(), (Arc::clone(&keyring), digests.clone()));
        Ok((keyring, digests))
    }
}

/// Why a target's analysis failed; the caller adds the target's label and location.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AnalysisError(pub String);

/// What analysis of one target may see and do.
pub struct AnalysisContext<'a> {
    /// Repositories, lockfile, fetcher.
    pub env: &'a AnalysisEnv,
    /// What each dependency (rule target or source file) provides.
    pub deps: &'a BTreeMap<Label, Provided>,
    /// Where new actions go.
    pub graph: &'a mut ActionGraph,
}

impl AnalysisContext<'_> {
    /// What `label` provides; every label in the target's attributes is present.
    pub fn provided(&self, label: &Label) -> Result<&Provided, AnalysisError> {
        self.deps.get(label).ok_or_else(|| AnalysisError(format!("internal error: `{label}` was not analyzed")))
    }
}

/// A native rule.
pub trait Rule: Sync {
    /// The name `BUILD` files call, e.g. `write_file`.
    fn kind(&self) -> &'static str;
    /// One paragraph for docs.
    fn doc(&self) -> &'static str;
    /// The attributes besides `name`.
    fn attrs(&self) -> &'static [AttrSpec];
    /// Checks that need the whole attribute set (run at loading time, so errors point at the
    /// `BUILD` file). The default accepts everything.
    fn check(&self, _target: &Target) -> Result<(), String> {
        Ok(())
    }
    /// Creates the target's actions and returns what it provides.
    fn analyze(&self, target: &Target, ctx: &mut AnalysisContext<'_>) -> Result<Provided, AnalysisError>;
}

/// Every native rule, sorted by kind.
pub fn all_rules() -> &'static [&'static dyn Rule] {
    &[
        &apk_fetch::ApkFetch,
        &filegroup::Filegroup,
        &layer::LayerRule,
        &oci_image::OciImage,
        &oci_index::OciIndex,
        &oci_load::OciLoad,
        &write_file::WriteFile,
    ]
}

/// The rule named `kind`.
pub fn rule(kind: &str) -> Option<&'static dyn Rule> {
    all_rules().iter().copied().find(|r| r.kind() == kind)
}

/// Joins a package path and a relative name into a `/`-separated output path.
pub fn package_relative(package: &str, name: &str) -> String {
    if package.is_empty() {
        name.to_owned()
    } else {
        format!("{package}/{name}")
    }
}

/// The output path of `rel` for a target: below `@repo/` for an external repository.
pub fn output_root(label: &Label, rel: &str) -> String {
    match &label.repo {
        Some(repo) => format!("@{}/{rel}", repo.as_str()),
        None => rel.to_owned(),
    }
}
