//! `apk_fetch(name, repository, packages, arch | archs)`: the packages a target needs, as the
//! lockfile pins them.
//!
//! Analysis reads only the lockfile: each pinned `.apk` becomes one fetch action whose key is
//! the package's digests (not its URL), so a package is fetched once per store and shared by
//! every arch, target and workspace that pins the same bytes. The action verifies size,
//! sha256, `Q1`, signature and `datahash` before its output can reach the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionContext, ActionError, ActionExec, OutputKind, OutputSpec, ProofCache, Status};
use crate::apk::{Identity, Keyring, LockPin, Package, PackageName, SignaturePolicy, Version};
use crate::digest::Digest;
use crate::fetch::Fetcher;
use crate::lockfile::{split_install_entry, LockedPackage};
use crate::platform::Arch;
use crate::repository::ApkRepository;
use crate::rules::{output_path, package_relative, AnalysisContext, AnalysisError, Provided, Rule};
use crate::target::{did_you_mean, AttrSpec, AttrType, Target};
use crate::{ApkFile, ApkInfo, ImageState, Verdicts};

/// The `apk_fetch` rule.
pub struct ApkFetch;

/// The attributes of an `apk_fetch` target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// An `apk_repository` name.
    pub repository: String,
    /// Package requests as written.
    pub packages: Vec<String>,
    /// One arch.
    #[serde(default)]
    pub arch: Option<String>,
    /// Several archs.
    #[serde(default)]
    pub archs: Option<Vec<String>>,
}

/// The typed attributes of an `apk_fetch` target; `None` for a target of another rule.
pub fn attrs_of(target: &Target) -> Option<&Attrs> {
    target.typed_attrs::<Attrs>()
}

/// The archs an `apk_fetch` target asks for, in [`Arch`] order.
pub fn requested_archs(target: &Target) -> Result<Vec<Arch>, String> {
    archs(attrs_of(target).ok_or_else(|| format!("internal error: `{}` is not an `apk_fetch` target", target.label))?)
}

/// The packages an `apk_fetch` target asks for, as written.
pub fn requested_packages(target: &Target) -> Vec<String> {
    attrs_of(target).map(|a| a.packages.clone()).unwrap_or_default()
}

/// The archs `attrs` ask for, in [`Arch`] order.
fn archs(attrs: &Attrs) -> Result<Vec<Arch>, String> {
    let names: Vec<&str> = match (&attrs.arch, &attrs.archs) {
        (Some(a), None) => vec![a.as_str()],
        (None, Some(list)) if !list.is_empty() => list.iter().map(String::as_str).collect(),
        (None, Some(_)) => return Err("attribute `archs` of rule `apk_fetch` must not be empty".into()),
        (Some(_), Some(_)) => return Err("rule `apk_fetch` takes `arch` or `archs`, not both".into()),
        _ => return Err("rule `apk_fetch` requires attribute `arch` (one arch) or `archs` (a list)".into()),
    };
    let mut archs = BTreeSet::new();
    for name in names {
        let arch = Arch::parse(name).map_err(|e| format!("rule `apk_fetch`: {e}"))?;
        if !archs.insert(arch) {
            return Err(format!("rule `apk_fetch`: arch `{arch}` is listed twice"));
        }
    }
    Ok(archs.into_iter().collect())
}

impl Rule for ApkFetch {
    type Attrs = Attrs;
    const KIND: &'static str = "apk_fetch";
    const DOC: &'static str =
        "Fetches the locked closure of `packages` from `repository` for each arch, verified against the lockfile.";
    const ATTRS: &'static [AttrSpec] = &[
        AttrSpec {
            name: "repository",
            ty: AttrType::String,
            mandatory: true,
            doc: "Name of an `apk_repository` declared in WORKSPACE.",
        },
        AttrSpec {
            name: "packages",
            ty: AttrType::StringList,
            mandatory: true,
            doc:
                "Packages to install with their dependencies: `name`, `name=1.2-r0`, `name>=1.2`, `so:...`, `cmd:...`.",
        },
        AttrSpec {
            name: "arch",
            ty: AttrType::String,
            mandatory: false,
            doc: "One APK arch (`x86_64`); or use `archs`.",
        },
        AttrSpec { name: "archs", ty: AttrType::StringList, mandatory: false, doc: "Several APK archs." },
    ];

    fn check(&self, attrs: &Attrs) -> Result<(), String> {
        archs(attrs)?;
        if attrs.packages.is_empty() {
            return Err("attribute `packages` of rule `apk_fetch` must not be empty".into());
        }
        let mut seen = BTreeSet::new();
        for p in &attrs.packages {
            crate::apk::Dependency::parse(p).map_err(|e| format!("attribute `packages` of rule `apk_fetch`: {e}"))?;
            if !seen.insert(p) {
                return Err(format!("attribute `packages` of rule `apk_fetch`: `{p}` is listed twice"));
            }
        }
        Ok(())
    }

    fn analyze(
        &self,
        target: &Target,
        attrs: &Attrs,
        ctx: &mut AnalysisContext<'_>,
    ) -> Result<Provided, AnalysisError> {
        let env = ctx.env;
        let state = env.state::<ImageState>()?;
        let repo_name = attrs.repository.as_str();
        // A target sees its own repository's declarations and lockfile: `@executor//images:static`
        // builds the same in every workspace that uses it.
        let home = target.label.repo.as_ref();
        let Some(repo) = env.workspace.declaration::<ApkRepository>(home, crate::repository::APK_REPOSITORY, repo_name)
        else {
            let repos = crate::apk_repositories(&env.workspace, home);
            let hint = did_you_mean(repo_name, repos.keys().copied());
            return Err(AnalysisError(format!(
                "unknown repository `{repo_name}`{hint}\n  fix: declare it in {} with `apk_repository(name = \"{repo_name}\", url = ..., keys = [...])`",
                env.workspace.workspace_file_of(home)
            )));
        };
        let archs = archs(attrs).map_err(AnalysisError)?;
        let packages = attrs.packages.clone();
        let lockfile = env.workspace.display_path(home, crate::lockfile::LOCKFILE);
        let run_lock = match home {
            None => "\n  fix: run `executor lock`".to_owned(),
            Some(r) => format!(
                "\n  fix: run `executor lock` in repository `{r}` (its lockfile pins its targets wherever they are used)"
            ),
        };
        let lock = state.lock_of(home).map_err(AnalysisError)?;
        let Some(lock) = lock.as_deref() else {
            return Err(AnalysisError(format!("there is no lockfile (`{lockfile}`) to pin its packages{run_lock}")));
        };
        // Its own repository's lockfile names it as that repository does: `//images:static_apks`.
        let label = crate::label::Label::new(None, target.label.package.clone(), target.label.name.clone()).to_string();
        let Some(locked) = lock.target(&label) else {
            return Err(AnalysisError(format!(
                "the lockfile (`{lockfile}`) pins no packages for this target{run_lock}"
            )));
        };
        let stale = stale_reasons(locked, repo_name, &packages, &archs);
        if !stale.is_empty() {
            return Err(AnalysisError(format!(
                "the lockfile does not pin what it asks for: {}{run_lock}",
                stale.join("; ")
            )));
        }
        let (keyring, key_digests) = state.keyring(repo).map_err(AnalysisError)?;
        if repo.allow_untrusted {
            ctx.warn(format!(
                "`{}` uses repository `{repo_name}`, which sets `allow_untrusted = True`: its content is pinned by digest but not by signature",
                target.label
            ));
        }
        if let Some(locked_repo) = lock.repository(repo_name) {
            if locked_repo.keys != *key_digests || locked_repo.url != repo.url {
                return Err(AnalysisError(format!(
                    "repository `{repo_name}` changed since the lockfile was written (its URL or keys differ){run_lock}"
                )));
            }
        }
        let mut files = Vec::new();
        let mut apks = BTreeMap::new();
        for arch in archs {
            let mut list = Vec::new();
            for entry in locked.install.get(arch.apk()).map(Vec::as_slice).unwrap_or_default() {
                let (name, version) = split_install_entry(entry).ok_or_else(|| {
                    AnalysisError(format!("the lockfile entry `{entry}` is not `name=version`{run_lock}"))
                })?;
                let pinned = lock.package(repo_name, arch.apk(), name, version).ok_or_else(|| {
                    AnalysisError(format!(
                        "the lockfile lists `{name}-{version}` ({arch}) without pinning it{run_lock}"
                    ))
                })?;
                let exec = FetchApk::new(pinned, Arc::clone(&keyring), repo.allow_untrusted, Arc::clone(&env.fetcher))
                    .map(|f| f.relative_to(&env.workspace, home))
                    .map_err(|e| AnalysisError(format!("{e}{run_lock}")))?;
                let rel = format!("{}/{arch}/{name}-{version}.apk", target.label.name);
                let out = ctx.graph.add(Action {
                    owner: target.label.clone(),
                    inputs: Vec::new(),
                    outputs: vec![OutputSpec {
                        path: output_path(&target.label, &rel),
                        kind: OutputKind::File { executable: false },
                    }],
                    exec: Arc::new(exec),
                });
                files.extend(out.iter().cloned());
                list.extend(out.into_iter().map(|artifact| ApkFile {
                    artifact,
                    name: name.to_owned(),
                    version: version.to_owned(),
                    sha256: pinned.sha256,
                    pin: pinned.pin(),
                }));
            }
            apks.insert(arch, list);
        }
        let mut keys = Vec::new();
        for label in &repo.keys {
            let file = crate::repository::key_path(&env.workspace, label)
                .ok_or_else(|| AnalysisError(format!("key `{label}`: its repository is not declared")))?;
            let rel = package_relative(label.package.as_str(), label.name.as_str());
            let path = env.workspace.display_path(label.repo.as_ref(), &rel);
            let name = label.name.as_str().rsplit('/').next().unwrap_or_default().to_owned();
            keys.push((name, crate::action::Artifact::Source { label: label.clone(), path, file }));
        }
        let info = ApkInfo {
            apks,
            world: packages,
            repository_url: repo.url.clone(),
            keys,
            allow_untrusted: repo.allow_untrusted,
        };
        Ok(Provided::files(files).with(info))
    }
}

/// Why a locked target no longer matches its `BUILD` declaration; empty when it matches.
pub fn stale_reasons(
    locked: &crate::lockfile::LockedTarget,
    repository: &str,
    packages: &[String],
    archs: &[Arch],
) -> Vec<String> {
    let mut reasons = Vec::new();
    if locked.repository != repository {
        reasons.push(format!("repository `{repository}` (locked: `{}`)", locked.repository));
    }
    for p in packages {
        if !locked.packages.contains(p) {
            let archs: Vec<&str> = archs.iter().map(|a| a.apk()).collect();
            reasons.push(format!("package `{p}` ({})", archs.join(", ")));
        }
    }
    for p in &locked.packages {
        if !packages.contains(p) {
            reasons.push(format!("package `{p}` is locked but no longer asked for"));
        }
    }
    for arch in archs {
        if !locked.install.contains_key(arch.apk()) {
            reasons.push(format!("arch `{arch}`"));
        }
    }
    for arch in locked.install.keys() {
        if !archs.iter().any(|a| a.apk() == arch) {
            reasons.push(format!("arch `{arch}` is locked but no longer asked for"));
        }
    }
    reasons
}

/// The action: fetch one pinned `.apk` and verify it completely. The URL is not part of the
/// key: the same bytes from a mirror are the same package.
#[derive(Serialize)]
pub struct FetchApk {
    #[serde(skip)]
    url: String,
    pin: LockPin,
    sha256: Digest,
    #[serde(rename = "keyring", serialize_with = "keyring_fingerprint")]
    keyring: Arc<Keyring>,
    allow_untrusted: bool,
    #[serde(skip)]
    fetcher: Arc<dyn Fetcher>,
}

/// A keyring enters keys as its fingerprint.
fn keyring_fingerprint<S: serde::Serializer>(keyring: &Arc<Keyring>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(keyring.fingerprint()))
}

impl std::fmt::Debug for FetchApk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchApk").field("url", &self.url).field("sha256", &self.sha256).finish()
    }
}

impl FetchApk {
    /// An action for one locked package.
    pub fn new(
        pinned: &LockedPackage,
        keyring: Arc<Keyring>,
        allow_untrusted: bool,
        fetcher: Arc<dyn Fetcher>,
    ) -> Result<Self, String> {
        let bad = |what: &str, e: String| {
            format!("the lockfile's {what} for `{}-{}` is invalid: {e}", pinned.name, pinned.version)
        };
        // Checked here so that a malformed lockfile is an analysis error, not a failed fetch.
        PackageName::new(&pinned.name).map_err(|e| bad("name", e.to_string()))?;
        Version::parse(&pinned.version).map_err(|e| bad("version", e.to_string()))?;
        Identity::parse(&pinned.identity).map_err(|e| bad("identity", e.to_string()))?;
        if pinned.datahash.len() != 64 || hex::decode(&pinned.datahash).is_err() {
            return Err(bad("datahash", format!("`{}` is not 64 hex digits", pinned.datahash)));
        }
        Ok(FetchApk {
            url: pinned.url.clone(),
            pin: pinned.pin(),
            sha256: pinned.sha256,
            keyring,
            allow_untrusted,
            fetcher,
        })
    }

    /// Fetches a relative `file://` URL of repository `repo`'s lockfile from that repository's
    /// root (the fetcher resolves them against the main one's). Only where the bytes come from
    /// changes: the URL is not part of the key, and no output records it.
    pub fn relative_to(
        mut self,
        workspace: &crate::workspace::Workspace,
        repo: Option<&crate::label::RepoName>,
    ) -> Self {
        let (Some(repo), Some(rest)) = (repo, self.url.strip_prefix("file://")) else { return self };
        if rest.starts_with('/') {
            return self;
        }
        if let Some(root) = workspace.repo_root(Some(repo)) {
            self.url = format!("file://{}", root.join(rest).display());
        }
        self
    }

    fn policy(&self) -> SignaturePolicy {
        signature_policy(self.allow_untrusted)
    }

    /// Verifies the file at `path` against every figure of the pin.
    fn verify_file(
        &self,
        path: &std::path::Path,
        origin: &str,
        proofs: &dyn ProofCache,
        status: &dyn Status,
    ) -> Result<(), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let verified =
            Package::verify_locked(&bytes, origin, &self.pin, &self.keyring, self.policy(), &Verdicts(proofs))
                .map_err(|e| e.to_string())?;
        if verified.signed_by().is_none() && self.allow_untrusted {
            status.warn(&format!(
                "`{origin}` is not signed by a trusted key; accepted because its repository sets `allow_untrusted = True`"
            ));
        }
        Ok(())
    }
}

/// The signature policy of a repository.
pub fn signature_policy(allow_untrusted: bool) -> SignaturePolicy {
    if allow_untrusted {
        SignaturePolicy::Untrusted
    } else {
        SignaturePolicy::Required
    }
}

impl ActionExec for FetchApk {
    fn mnemonic(&self) -> &'static str {
        "FetchApk"
    }
    fn version(&self) -> u32 {
        2
    }
    fn pinned_outputs(&self) -> Option<Vec<(Digest, u64)>> {
        Some(vec![(self.sha256, self.pin.size)])
    }
    fn verify_pinned(
        &self,
        outputs: &[std::path::PathBuf],
        proofs: &dyn ProofCache,
        status: &dyn Status,
    ) -> Result<(), String> {
        let [path] = outputs else { return Err("internal error: FetchApk has one output".into()) };
        self.verify_file(path, &self.url, proofs, status)
    }
    fn run(&self, ctx: &ActionContext<'_>) -> Result<(), ActionError> {
        let dest = &ctx.outputs[0];
        let fail = |message: String| {
            let _ = std::fs::remove_file(dest);
            ActionError(message)
        };
        // Stops at the pinned size: an endless body costs at most that much disk.
        let progress = |bytes| ctx.status.progress(bytes);
        let fetched =
            self.fetcher.fetch_to_file_reporting(&self.url, dest, self.pin.size, &progress).map_err(|e| match e {
                crate::fetch::FetchError::TooLarge { .. } => fail(format!(
                    "`{}` does not match the lockfile: it is larger than the pinned {} bytes (download stopped there)",
                    self.url, self.pin.size
                )),
                e => fail(e.to_string()),
            })?;
        if fetched.size != self.pin.size || fetched.sha256 != self.sha256 {
            return Err(fail(format!(
                "`{}` does not match the lockfile: expected {} bytes with {}, got {} bytes with {}",
                self.url, self.pin.size, self.sha256, fetched.size, fetched.sha256
            )));
        }
        self.verify_file(dest, &self.url, ctx.proofs, ctx.status).map_err(fail)
    }
}
