//! The image rule set: APK repositories, the lockfile, and the rules that turn locked packages
//! into layers, images, indexes and docker-archives.
//!
//! It plugs into the engine through [`ImageRules`] (a [`RuleSet`]): its rules, its `WORKSPACE`
//! function `apk_repository`, and the state its analysis reads ([`ImageState`]: the lockfile
//! and the repositories' keyrings). Its targets provide [`ApkInfo`], [`LayerInfo`],
//! [`ImageInfo`] and [`IndexInfo`]; the engine knows none of them.

// The crates below, under the paths this crate uses.
pub(crate) use executor_apk as apk;
pub(crate) use executor_base::{digest, fetch, platform};
pub(crate) use executor_engine::{action, graph, label, load, rules, store, target, typemap, workspace};
pub(crate) use executor_image::{docker_archive, install, layer as layer_tree, oci, registry, sbom};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::action::{Artifact, ProofCache};
use crate::apk::{Keyring, VerdictCache};
use crate::label::RepoName;
use crate::platform::Arch;
use crate::rules::{DynRule, Provided, Provider, RuleSet, WorkspaceFunction};
use crate::typemap::{Entry, TypeMap};
use crate::workspace::Workspace;

pub mod apk_fetch;
pub mod apko;
pub mod error;
pub mod layer;
pub mod lock;
pub mod lockfile;
pub mod oci_image;
pub mod oci_index;
pub mod oci_load;
pub mod oci_pull;
pub mod release;
pub mod repository;

use lockfile::{LockedKey, Lockfile};
use repository::ApkRepository;

/// The image rule set.
pub struct ImageRules;

/// [`ImageRules`], for registries.
pub static IMAGE_RULES: ImageRules = ImageRules;

impl RuleSet for ImageRules {
    fn title(&self) -> &'static str {
        "Image rules"
    }

    fn doc(&self) -> &'static str {
        "APK repositories, locked packages, layers, OCI images and indexes, and docker-archives. \
         `executor lock` pins what `apk_fetch` targets resolve to in `executor.lock`; builds read \
         only the lockfile."
    }

    fn rules(&self) -> &'static [&'static dyn DynRule] {
        &[
            &apk_fetch::ApkFetch,
            &layer::LayerRule,
            &oci_image::OciImage,
            &oci_index::OciIndex,
            &oci_load::OciLoad,
            &oci_pull::PulledImage,
        ]
    }

    fn workspace_functions(&self) -> &'static [&'static dyn WorkspaceFunction] {
        &[&repository::ApkRepositoryFunction, &oci_pull::OciPullFunction]
    }

    fn analysis_state(&self, workspace: &Workspace, state: &mut TypeMap) -> Result<(), executor_engine::Error> {
        let lock = Lockfile::read(&workspace.root).map_err(error::RulesError::Lockfile)?;
        state.insert(ImageState::new(workspace.clone(), lock));
        Ok(())
    }

    fn describe(&self, provided: &Provided, out_root: &Path) -> Option<String> {
        describe_image(provided, out_root)
    }
}

/// A target's annotations with `--stamp`'s added (the target's own win); unchanged for an
/// unstamped build.
pub(crate) fn stamped(
    env: &crate::rules::AnalysisEnv,
    annotations: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = annotations.clone();
    if let Some(settings) = env.state.get::<crate::rules::BuildSettings>() {
        for (key, value) in &settings.stamp {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    out
}

/// Refuses a negative `epoch` attribute of `rule` (unix seconds).
pub(crate) fn check_epoch(rule: &str, epoch: Option<i64>) -> Result<(), String> {
    if epoch.is_some_and(|e| e < 0) {
        return Err(format!("attribute `epoch` of rule `{rule}` must not be negative"));
    }
    Ok(())
}

/// A repository's lockfile as read: none, or why it could not be read.
type LockRead = Result<Option<Arc<Lockfile>>, String>;

/// A repository's keyring and the digests of its key files.
type RepositoryKeys = (Arc<Keyring>, Vec<LockedKey>);

/// What the image rules' analysis reads besides the targets: the lockfiles and the
/// repositories' keyrings (each read once per command).
///
/// A target pins its packages in its own repository's lockfile: the main repository's
/// `executor.lock` for its targets, `<repo>/executor.lock` for those of a `local_repository`,
/// so that a repository's image builds the same wherever it is used.
#[derive(Debug)]
pub struct ImageState {
    workspace: Workspace,
    /// The main repository's lockfile, if it has one.
    lock: Option<Arc<Lockfile>>,
    /// Other repositories' lockfiles, read when a target of theirs is analyzed.
    other_locks: Mutex<BTreeMap<RepoName, LockRead>>,
    keyrings: Mutex<BTreeMap<(Option<RepoName>, String), RepositoryKeys>>,
}

impl Entry for ImageState {
    const NAME: &'static str = "ImageState";
}

impl ImageState {
    /// State for one command.
    pub fn new(workspace: Workspace, lock: Option<Lockfile>) -> Self {
        ImageState {
            workspace,
            lock: lock.map(Arc::new),
            other_locks: Mutex::new(BTreeMap::new()),
            keyrings: Mutex::new(BTreeMap::new()),
        }
    }

    /// The lockfile of repository `repo` (`None` = main), if it has one.
    pub fn lock_of(&self, repo: Option<&RepoName>) -> Result<Option<Arc<Lockfile>>, String> {
        let Some(repo) = repo else {
            return Ok(self.lock.clone());
        };
        let mut cache = self.other_locks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.get(repo) {
            return found.clone();
        }
        let read = match self.workspace.repo_root(Some(repo)) {
            None => Err(format!("repository `{repo}` is not declared")),
            Some(root) => {
                let display = self.workspace.display_path(Some(repo), lockfile::LOCKFILE);
                Lockfile::read_as(root, &display).map(|l| l.map(Arc::new)).map_err(|e| e.to_string())
            }
        };
        cache.insert(repo.clone(), read.clone());
        read
    }

    /// The trusted keys of a repository and their digests.
    pub fn keyring(&self, repo: &ApkRepository) -> Result<(Arc<Keyring>, Vec<LockedKey>), String> {
        let mut cache = self.keyrings.lock().unwrap_or_else(|e| e.into_inner());
        let key = (repo.declared_in.clone(), repo.name.clone());
        if let Some((k, d)) = cache.get(&key) {
            return Ok((Arc::clone(k), d.clone()));
        }
        let (keyring, digests) = repo.keyring(&self.workspace)?;
        let keyring = Arc::new(keyring);
        cache.insert(key, (Arc::clone(&keyring), digests.clone()));
        Ok((keyring, digests))
    }
}

/// The APK repositories the `WORKSPACE` of repository `repo` (`None` = main) declares, by
/// name.
pub fn apk_repositories<'a>(
    workspace: &'a Workspace,
    repo: Option<&'a RepoName>,
) -> BTreeMap<&'a str, &'a ApkRepository> {
    workspace.declared::<ApkRepository>(repo, repository::APK_REPOSITORY).collect()
}

/// The package verdicts of [`crate::apk`] kept as the engine's proofs.
pub struct Verdicts<'a>(pub &'a dyn ProofCache);

impl VerdictCache for Verdicts<'_> {
    fn holds(&self, key: &[u8; 32]) -> bool {
        self.0.holds(key)
    }
    fn record(&self, key: &[u8; 32]) {
        self.0.record(key)
    }
}

/// What an `apk_fetch` target provides: per arch, its packages in install order, and where
/// they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkInfo {
    /// Per arch, the package files in install order.
    pub apks: BTreeMap<Arch, Vec<ApkFile>>,
    /// The requested packages (`/etc/apk/world`).
    pub world: Vec<String>,
    /// The repository URL (`/etc/apk/repositories`).
    pub repository_url: String,
    /// Trusted keys: file name and the key file (`/etc/apk/keys/<name>`).
    pub keys: Vec<(String, Artifact)>,
    /// The repository sets `allow_untrusted = True`: packages need no trusted signature.
    pub allow_untrusted: bool,
}

impl Provider for ApkInfo {
    const NAME: &'static str = "ApkInfo";
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

/// What a `layer` target provides: the `.tar.gz` and its description ([`layer::LayerMeta`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// The compressed layer.
    pub tar: Artifact,
    /// `<name>.layer.json`.
    pub meta: Artifact,
    /// The arch of its packages, if it installs any.
    pub arch: Option<Arch>,
}

impl Provider for LayerInfo {
    const NAME: &'static str = "LayerInfo";
}

/// What an `oci_image` target provides: its single-image layout directory and its
/// description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The OCI layout directory.
    pub layout: Artifact,
    /// `<name>.image.json` ([`oci_image::ImageMeta`]).
    pub meta: Artifact,
    /// The platform.
    pub arch: Arch,
    /// Directories of layer blobs (`blobs/sha256/<hex>`) the layout lacks because it is
    /// shallow (a pulled base's layers). They are made by actions that download them, which
    /// run only when an action that needs the layers' bytes lists them as inputs.
    pub blobs: Vec<Artifact>,
}

impl Provider for ImageInfo {
    const NAME: &'static str = "ImageInfo";
}

/// What an `oci_index` target provides: its layout directory and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexInfo {
    /// The OCI layout directory.
    pub layout: Artifact,
    /// `<name>.index.json` ([`oci_index::IndexMeta`]).
    pub meta: Artifact,
    /// The platforms of its images, in index order.
    pub archs: Vec<Arch>,
    /// Per platform, the directories of layer blobs its layout lacks ([`ImageInfo::blobs`]).
    pub blobs: BTreeMap<Arch, Vec<Artifact>>,
}

impl Provider for IndexInfo {
    const NAME: &'static str = "IndexInfo";
}

/// What an image or index action reported about its output (`*.index.json`,
/// `*.image.json`), typed.
#[derive(Debug)]
pub enum BuiltMeta {
    /// `*.index.json`.
    Index(oci_index::IndexMeta),
    /// `*.image.json`.
    Image(oci_image::ImageMeta),
}

impl BuiltMeta {
    /// Reads `path`, an `*.index.json` (`index`) or `*.image.json`.
    pub fn read(path: &Path, index: bool) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
        let meta = if index {
            BuiltMeta::Index(serde_json::from_slice(&bytes).map_err(|e| e.to_string())?)
        } else {
            BuiltMeta::Image(serde_json::from_slice(&bytes).map_err(|e| e.to_string())?)
        };
        Ok(meta)
    }

    /// The digest a registry serves for the image or index.
    pub fn digest(&self) -> &crate::digest::Digest {
        match self {
            BuiltMeta::Index(m) => &m.digest,
            BuiltMeta::Image(m) => &m.digest,
        }
    }

    /// The layer blobs the layout lacks (it is shallow) and where each is.
    pub fn remote_blobs(&self) -> &BTreeMap<crate::digest::Digest, String> {
        match self {
            BuiltMeta::Index(m) => &m.remote_blobs,
            BuiltMeta::Image(m) => &m.remote_blobs,
        }
    }

    /// The layout's own tag: an index's `tag` attribute, `latest` for an image.
    pub fn tag(&self) -> &str {
        match self {
            BuiltMeta::Index(m) => &m.tag,
            BuiltMeta::Image(_) => oci_image::IMAGE_TAG,
        }
    }
}

/// `  executor-out/<layout>  sha256:<digest>  (OCI image index, tag latest)` for an index or
/// image target whose description was built.
fn describe_image(provided: &Provided, out_root: &Path) -> Option<String> {
    let path = |artifact: &Artifact| match artifact {
        Artifact::Derived { path, .. } => Some(out_root.join(path)),
        Artifact::Source { .. } => None,
    };
    if let Some(index) = provided.get::<IndexInfo>() {
        let BuiltMeta::Index(meta) = BuiltMeta::read(&path(&index.meta)?, true).ok()? else { return None };
        return Some(format!(
            "  {}  {}  (OCI image index, tag `{}`)",
            index.layout.display_path(),
            meta.digest,
            meta.tag
        ));
    }
    let image = provided.get::<ImageInfo>()?;
    let meta = BuiltMeta::read(&path(&image.meta)?, false).ok()?;
    Some(format!("  {}  {}  (OCI image, {})", image.layout.display_path(), meta.digest(), image.arch.oci_platform()))
}
