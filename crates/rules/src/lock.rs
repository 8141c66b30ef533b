//! `executor lock`: the only step that reads repository indexes.
//!
//! It finds every `apk_fetch` target of the workspace, reads and verifies the indexes of the
//! repositories and archs they need, resolves each request per arch, fetches and verifies
//! every resolved package once (into the store, so a later build fetches nothing), and writes
//! the lockfile. A package already pinned with the same identity is not fetched again.
//! [`check`] is the offline half: does the lockfile pin everything the `BUILD` files ask for?

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rayon::prelude::*;

use crate::apk::{
    Dependency, Index, IndexEntry, Keyring, Package, PackagePin, Provide, Providers, SignaturePolicy, TrustPolicy,
    Version,
};
use crate::apk_fetch::{requested_archs, requested_packages, stale_reasons};
use crate::digest::Digest;
use crate::error::{fetch_error, lock_error, verify_error, RulesError};
use crate::fetch::Fetcher;
use crate::graph::{expand, Node, TargetGraph};
use crate::label::{PackagePath, TargetPattern};
use crate::load::Loader;
use crate::lockfile::{
    LockedIndex, LockedKey, LockedPackage, LockedRepository, LockedTarget, Lockfile, LOCKFILE, LOCK_VERSION,
};
use crate::platform::Arch;
use crate::repository::ApkRepository;
use crate::store::Store;
use crate::target::{did_you_mean, Target};
use executor_engine::Error;

/// Indexes larger than this are refused (Alpine's largest is a few MiB).
const INDEX_LIMIT: u64 = 256 << 20;

/// Every `apk_fetch` target of the main repository, sorted by label. Those of other
/// repositories (an image built `FROM` a repository's image) are pinned by their own
/// repository's lockfile, so that they build the same wherever they are used.
pub fn apk_fetch_targets(loader: &Loader) -> Result<Vec<Target>, Error> {
    let packages = loader.workspace.find_packages(None, &PackagePath::root()).map_err(|e| lock_error(e.to_string()))?;
    if packages.is_empty() {
        return Ok(Vec::new());
    }
    let labels = expand(loader, &[TargetPattern::Recursive { repo: None, package: PackagePath::root() }])?;
    let graph = TargetGraph::build(loader, labels)?;
    Ok(graph
        .nodes
        .values()
        .filter_map(|n| match n {
            Node::Rule(t) if t.kind() == "apk_fetch" && t.label.repo.is_none() => Some(t.clone()),
            _ => None,
        })
        .collect())
}

fn repository<'a>(loader: &'a Loader, target: &Target) -> Result<&'a ApkRepository, Error> {
    let name = crate::apk_fetch::attrs_of(target).map(|a| a.repository.as_str()).unwrap_or_default();
    crate::apk_repositories(&loader.workspace, None).get(name).copied().ok_or_else(|| {
        let hint = did_you_mean(name, crate::apk_repositories(&loader.workspace, None).keys().copied());
        lock_error(format!(
            "{}: `{}`: unknown repository `{name}`{hint}\n  fix: declare it in {} with `apk_repository(name = \"{name}\", url = ..., keys = [...])`",
            target.location, target.label, loader.workspace.workspace_file
        ))
    })
}

/// What `executor lock` did, for its closing line.
#[derive(Debug, Default)]
pub struct LockReport {
    /// `apk_fetch` targets locked.
    pub targets: usize,
    /// Packages pinned.
    pub packages: usize,
    /// Packages fetched (the others were already pinned with the same identity).
    pub fetched: usize,
    /// Whether the lockfile's bytes changed.
    pub changed: bool,
}

struct RepoState<'a> {
    repo: &'a ApkRepository,
    keyring: Arc<Keyring>,
    keys: Vec<LockedKey>,
}

/// What `executor lock --dry-run` shows: each target's resolution, per arch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Resolution {
    /// The `apk_fetch` target.
    pub label: String,
    /// Its repository's name and URL.
    pub repository: String,
    /// The repository URL.
    pub url: String,
    /// Per APK arch, the packages in install order.
    pub archs: BTreeMap<String, Vec<ResolvedPackage>>,
}

/// One package of a [`Resolution`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ResolvedPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// Resolves every `apk_fetch` target against fresh, verified indexes, without fetching a
/// package or writing anything: `executor lock --dry-run`.
pub fn dry_run(loader: &Loader, fetcher: &dyn Fetcher, store: &Store) -> Result<Vec<Resolution>, Error> {
    match resolve_and_lock(loader, fetcher, store, true)? {
        Locked::DryRun(resolutions) => Ok(resolutions),
        Locked::Written(_) => Err(lock_error("internal error: a dry run wrote the lockfile".into())),
    }
}

/// Resolves every `apk_fetch` target against fresh indexes and writes the lockfile.
pub fn lock(loader: &Loader, fetcher: &dyn Fetcher, store: &Store) -> Result<LockReport, Error> {
    match resolve_and_lock(loader, fetcher, store, false)? {
        Locked::Written(report) => Ok(report),
        Locked::DryRun(_) => Err(lock_error("internal error: lock made a dry run".into())),
    }
}

/// What [`resolve_and_lock`] did.
enum Locked {
    Written(LockReport),
    DryRun(Vec<Resolution>),
}

fn resolve_and_lock(loader: &Loader, fetcher: &dyn Fetcher, store: &Store, dry_run: bool) -> Result<Locked, Error> {
    let targets = apk_fetch_targets(loader)?;
    let previous = Lockfile::read(&loader.workspace.root).ok().flatten().unwrap_or_default();

    // Repositories and the (repository, arch) indexes the targets need.
    let mut repos: BTreeMap<String, RepoState> = BTreeMap::new();
    let mut needed: BTreeSet<(String, Arch)> = BTreeSet::new();
    for target in &targets {
        let repo = repository(loader, target)?;
        if !repos.contains_key(&repo.name) {
            let (keyring, keys) = repo.keyring(&loader.workspace).map_err(lock_error)?;
            repos.insert(repo.name.clone(), RepoState { repo, keyring: Arc::new(keyring), keys });
        }
        for arch in requested_archs(target).map_err(lock_error)? {
            needed.insert((repo.name.clone(), arch));
        }
    }

    // Read and verify the indexes, in parallel.
    // Warnings are printed in a fixed order after the parallel work.
    type Read = ((String, Arch), (Index, LockedIndex, Option<String>));
    let indexes: Vec<Read> = needed
        .par_iter()
        .map(|(name, arch)| {
            let state = &repos[name];
            read_index(fetcher, state, *arch).map(|i| ((name.clone(), *arch), i))
        })
        .collect::<Result<_, _>>()?;
    let indexes: BTreeMap<(String, Arch), (Index, LockedIndex)> = indexes
        .into_iter()
        .map(|(k, (index, locked, warning))| {
            if let Some(w) = warning {
                eprintln!("{w}");
            }
            (k, (index, locked))
        })
        .collect();

    // Resolve every target per arch, indexing each index's providers once.
    let providers: BTreeMap<&(String, Arch), Providers> =
        indexes.iter().map(|(k, (index, _))| (k, Providers::new(index.entries()))).collect();
    let mut locked_targets = Vec::new();
    let mut wanted: BTreeMap<(String, Arch, String, String), &IndexEntry> = BTreeMap::new();
    for target in &targets {
        let repo = repository(loader, target)?;
        let packages = requested_packages(target);
        let requests: Vec<Dependency> = packages
            .iter()
            .map(|p| {
                Dependency::parse(p).map_err(|e| lock_error(format!("{}: `{}`: {e}", target.location, target.label)))
            })
            .collect::<Result<_, _>>()?;
        let mut install = BTreeMap::new();
        let mut versions: BTreeMap<String, (Arch, String)> = BTreeMap::new();
        for arch in requested_archs(target).map_err(lock_error)? {
            let resolution = providers[&(repo.name.clone(), arch)]
                .resolve(&requests)
                .map_err(|e| lock_error(format!("{}: `{}` ({arch}): {e}", target.location, target.label)))?;
            let mut order = Vec::new();
            for entry in &resolution.install_order {
                let (name, version) = (entry.name.as_str().to_owned(), entry.version.as_str().to_owned());
                if let Some((other_arch, other)) = versions.get(&name) {
                    if *other != version {
                        return Err(lock_error(format!(
                            "{}: `{}`: package `{name}` resolves to {other} on {other_arch} but to {version} on {arch}\n  fix: ask for a version every arch has (e.g. `{name}={other}`), or lock the archs in separate targets",
                            target.location, target.label
                        )));
                    }
                } else {
                    versions.insert(name.clone(), (arch, version.clone()));
                }
                order.push(format!("{name}={version}"));
                wanted.insert((repo.name.clone(), arch, name, version), entry);
            }
            install.insert(arch.apk().to_owned(), order);
        }
        locked_targets.push(LockedTarget {
            label: target.label.to_string(),
            repository: repo.name.clone(),
            packages,
            install,
        });
    }

    if dry_run {
        let resolutions = locked_targets
            .iter()
            .map(|t| Resolution {
                label: t.label.clone(),
                repository: t.repository.clone(),
                url: repos.get(&t.repository).map(|r| r.repo.url.clone()).unwrap_or_default(),
                archs: t
                    .install
                    .iter()
                    .map(|(arch, entries)| {
                        let packages = entries
                            .iter()
                            .filter_map(|e| crate::lockfile::split_install_entry(e))
                            .map(|(name, version)| ResolvedPackage {
                                name: name.to_owned(),
                                version: version.to_owned(),
                            })
                            .collect();
                        (arch.clone(), packages)
                    })
                    .collect(),
            })
            .collect();
        return Ok(Locked::DryRun(resolutions));
    }

    // Pin every package: reuse a previous pin of the same identity, else fetch and verify.
    let pins: Vec<(LockedPackage, bool, Option<String>)> = wanted
        .par_iter()
        .map(|((repo_name, arch, name, version), entry)| {
            let state = &repos[repo_name];
            if let Some(old) = previous.package(repo_name, arch.apk(), name, version) {
                if old.identity == entry.identity.to_string()
                    && Some(old.size) == entry.size
                    && old.url == state.repo.package_url(*arch, name, version)
                {
                    return Ok((old.clone(), false, None));
                }
            }
            pin_package(fetcher, store, state, *arch, entry).map(|(p, w)| (p, true, w))
        })
        .collect::<Result<_, _>>()?;
    for (_, _, warning) in &pins {
        if let Some(w) = warning {
            eprintln!("{w}");
        }
    }
    let fetched = pins.iter().filter(|(_, f, _)| *f).count();
    let images = lock_images(loader, fetcher)?;

    let mut lockfile = Lockfile {
        version: LOCK_VERSION,
        repositories: repos
            .values()
            .map(|s| LockedRepository {
                name: s.repo.name.clone(),
                url: s.repo.url.clone(),
                keys: s.keys.clone(),
                indexes: indexes
                    .iter()
                    .filter(|((r, _), _)| *r == s.repo.name)
                    .map(|(_, (_, locked))| locked.clone())
                    .collect(),
            })
            .collect(),
        targets: locked_targets,
        packages: pins.into_iter().map(|(p, _, _)| p).collect(),
        images,
    };
    lockfile.normalize();
    let changed = lockfile.write(&loader.workspace.root).map_err(RulesError::Lockfile)?;
    Ok(Locked::Written(LockReport { targets: targets.len(), packages: lockfile.packages.len(), fetched, changed }))
}

/// The digest of every `oci_pull` of the main `WORKSPACE`: the one it gives, or what its
/// tag names in the registry now (the only place a tag is ever resolved).
fn lock_images(loader: &Loader, fetcher: &dyn Fetcher) -> Result<Vec<crate::lockfile::LockedImage>, Error> {
    use crate::registry::{load_credentials, resolve_digest, AuthEnv, Reference};
    let mut images = Vec::new();
    for (name, pull) in crate::oci_pull::pulls(&loader.workspace) {
        let digest = match pull.digest {
            Some(digest) => digest,
            None => {
                let tag = pull.tag.clone().unwrap_or_else(|| "latest".to_owned());
                let mut reference = Reference::parse(&pull.image).map_err(|e| lock_error(e.to_string()))?;
                reference.tags = vec![tag.clone()];
                let creds = load_credentials(&reference.host, &AuthEnv::from_process())
                    .map_err(|e| lock_error(format!("{}: oci_pull `{name}`: {e}", pull.location)))?;
                let options = crate::release::push_options(&fetcher.options(), false);
                let digest = resolve_digest(&reference, &options, creds)
                    .map_err(|e| lock_error(format!("{}: oci_pull `{name}`: {e}", pull.location)))?;
                eprintln!("oci_pull `{name}`: `{}:{tag}` is {digest}", pull.image);
                digest
            }
        };
        images.push(crate::lockfile::LockedImage {
            name: name.to_owned(),
            image: pull.image.clone(),
            tag: if pull.digest.is_some() { None } else { pull.tag.clone().or_else(|| Some("latest".to_owned())) },
            digest,
        });
    }
    Ok(images)
}

fn read_index(
    fetcher: &dyn Fetcher,
    state: &RepoState,
    arch: Arch,
) -> Result<(Index, LockedIndex, Option<String>), Error> {
    let url = state.repo.index_url(arch);
    let bytes = fetcher.fetch_bytes(&url, INDEX_LIMIT).map_err(|e| {
        if e.is_not_found() {
            // Most often an arch the repository does not publish (Wolfi: x86_64 and aarch64).
            fetch_error(format!(
                "repository `{}` has no index for arch `{arch}`: {e}\n  fix: if it does not publish `{arch}`, set `archs` \
                 on the `apk_fetch` targets that use it to the archs it publishes (`archs = [\"x86_64\", \"aarch64\"]` for \
                 Wolfi); else correct its `url`",
                state.repo.name
            ))
        } else {
            fetch_error(format!("repository `{}`: {e}", state.repo.name))
        }
    })?;
    let policy = if state.repo.allow_untrusted { TrustPolicy::AllowUntrusted } else { TrustPolicy::RequireTrusted };
    let index = Index::read(&bytes, &url, &state.keyring, policy)
        .map_err(|e| verify_error(format!("repository `{}`: {e}", state.repo.name)))?;
    let warning = (!matches!(index.trust, crate::apk::Trust::Verified { .. })).then(|| {
        format!(
            "warning: index `{url}` is not signed by a trusted key; accepted because repository `{}` sets `allow_untrusted = True`",
            state.repo.name
        )
    });
    Ok((index, LockedIndex { arch: arch.apk().to_owned(), url: url.clone(), sha256: Digest::of(&bytes) }, warning))
}

/// The resolver chose `entry` by what the index says it depends on, provides and installs
/// with; the package's own `.PKGINFO` must say the same, or the image could miss a
/// dependency the package declares (the index's `D:` would silently override it).
fn agrees_with_index(info: &crate::apk::PkgInfo, entry: &IndexEntry, url: &str) -> Result<(), Error> {
    fn sorted<T: ToString>(items: &[T]) -> Vec<String> {
        let mut v: Vec<String> = items.iter().map(ToString::to_string).collect();
        v.sort();
        v
    }
    let fields = [
        ("depends (`D:`/`depend`)", sorted(&entry.depends), sorted(&info.depends)),
        ("provides (`p:`/`provides`)", sorted(&entry.provides), sorted(&info.provides)),
        ("install_if (`i:`/`install_if`)", sorted(&entry.install_if), sorted(&info.install_if)),
    ];
    let mut differences = Vec::new();
    for (what, index, package) in fields {
        if index != package {
            differences.push(format!(
                "{what}: the index says [{}], the package says [{}]",
                index.join(" "),
                package.join(" ")
            ));
        }
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(verify_error(format!(
        "`{url}` ({}): the package's `.PKGINFO` disagrees with its index entry on {}\n  fix: the repository's index \
         was not made from this package; regenerate the index (`apk index`) or report it to the repository's owner",
        entry.package_id(),
        differences.join("; ")
    )))
}

fn pin_package(
    fetcher: &dyn Fetcher,
    store: &Store,
    state: &RepoState,
    arch: Arch,
    entry: &IndexEntry,
) -> Result<(LockedPackage, Option<String>), Error> {
    let (name, version) = (entry.name.as_str(), entry.version.as_str());
    let url = state.repo.package_url(arch, name, version);
    let tmp = store.temp_path("apk");
    let result = (|| {
        let limit = entry.size.unwrap_or(crate::fetch::MAX_UNPINNED_PACKAGE);
        let fetched = fetcher.fetch_to_file(&url, &tmp, limit).map_err(|e| fetch_error(e.to_string()))?;
        let bytes = std::fs::read(&tmp).map_err(|e| fetch_error(format!("cannot read `{}`: {e}", tmp.display())))?;
        let policy = if state.repo.allow_untrusted { SignaturePolicy::Untrusted } else { SignaturePolicy::Required };
        let verified = Package::verify(&bytes, &url, &PackagePin::from_entry(entry), &state.keyring, policy)
            .map_err(|e| verify_error(e.to_string()))?;
        let warning = verified.signed_by().is_none().then(|| {
            format!(
                "warning: `{url}` is not signed by a trusted key; accepted because repository `{}` sets `allow_untrusted = True`",
                state.repo.name
            )
        });
        agrees_with_index(verified.package().info(), entry, &url)?;
        let datahash = verified.package().info().datahash.map(hex::encode).unwrap_or_default();
        store.commit_blob(&tmp, &fetched.sha256)?;
        let pinned = LockedPackage {
            repository: state.repo.name.clone(),
            arch: arch.apk().to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            url: url.clone(),
            size: fetched.size,
            sha256: fetched.sha256,
            identity: entry.identity.to_string(),
            datahash,
        };
        Ok((pinned, warning))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Checks, without reading any index, that the lockfile pins exactly what the `BUILD`
/// files ask for. Every problem is listed, each naming the target and the package.
pub fn check(loader: &Loader) -> Result<(), Error> {
    let targets = apk_fetch_targets(loader)?;
    let lock = Lockfile::read(&loader.workspace.root).map_err(RulesError::Lockfile)?;
    let tag_pulls: Vec<&crate::oci_pull::OciPull> =
        crate::oci_pull::pulls(&loader.workspace).into_values().filter(|p| p.digest.is_none()).collect();
    let Some(lock) = lock else {
        if targets.is_empty() && tag_pulls.is_empty() {
            return Ok(());
        }
        if targets.is_empty() {
            return Err(lock_error(format!(
                "there is no lockfile (`{LOCKFILE}`), and `oci_pull` `{}` names a tag, which only `executor lock` resolves\n  fix: run `executor lock`",
                tag_pulls[0].name
            )));
        }
        return Err(lock_error(format!(
            "there is no lockfile (`{LOCKFILE}`), and {} `apk_fetch` target{} need one\n  fix: run `executor lock`",
            targets.len(),
            if targets.len() == 1 { "" } else { "s" }
        )));
    };
    let mut problems = Vec::new();
    for pull in &tag_pulls {
        let tag = pull.tag.as_deref().unwrap_or("latest");
        match lock.image(&pull.name) {
            Some(locked) if locked.image == pull.image && locked.tag.as_deref() == Some(tag) => {}
            Some(_) => {
                problems.push(format!("oci_pull `{}` changed (image or tag) since the lockfile was written", pull.name))
            }
            None => problems.push(format!("oci_pull `{}` (tag `{tag}`) is not pinned", pull.name)),
        }
    }
    let mut repos_seen = BTreeSet::new();
    for target in &targets {
        let repo = repository(loader, target)?;
        let archs = requested_archs(target).map_err(lock_error)?;
        let label = target.label.to_string();
        match lock.target(&label) {
            None => {
                for p in requested_packages(target) {
                    problems.push(format!("`{label}` asks for `{p}`, which the lockfile does not pin"));
                }
            }
            Some(locked) => {
                for reason in stale_reasons(locked, &repo.name, &requested_packages(target), &archs) {
                    problems.push(format!("`{label}`: {reason}"));
                }
                for (arch, entries) in &locked.install {
                    for entry in entries {
                        let pinned = crate::lockfile::split_install_entry(entry)
                            .and_then(|(n, v)| lock.package(&locked.repository, arch, n, v));
                        if pinned.is_none() {
                            problems.push(format!("`{label}`: `{entry}` ({arch}) is listed but not pinned"));
                        }
                    }
                }
            }
        }
        if repos_seen.insert(repo.name.clone()) {
            let (_, keys) = repo.keyring(&loader.workspace).map_err(lock_error)?;
            match lock.repository(&repo.name) {
                Some(r) if r.url == repo.url && r.keys == keys => {}
                Some(_) => problems
                    .push(format!("repository `{}` changed (URL or keys) since the lockfile was written", repo.name)),
                None => problems.push(format!("repository `{}` is not in the lockfile", repo.name)),
            }
        }
    }
    let labels: BTreeSet<String> = targets.iter().map(|t| t.label.to_string()).collect();
    for locked in &lock.targets {
        if !labels.contains(&locked.label) {
            problems.push(format!("the lockfile pins `{}`, which is no longer an `apk_fetch` target", locked.label));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(lock_error(format!(
        "`{LOCKFILE}` is out of date:\n  - {}\n  fix: run `executor lock`",
        problems.join("\n  - ")
    )))
}

/// Checks every package the lockfile pins for an `apk_fetch` target against its bytes:
/// size, sha256, identity, name, version, arch, signature by the repository's keys and
/// datahash, as a build would. Bytes come from the store, or are fetched (by the pinned
/// URL) when the store lacks them. A verdict recorded by an earlier check or build is reused.
/// This catches a lockfile whose entry points at another package's file.
pub fn check_pins(loader: &Loader, fetcher: &dyn Fetcher, store: &Store) -> Result<(), Error> {
    let Some(lock) = Lockfile::read(&loader.workspace.root).map_err(RulesError::Lockfile)? else {
        return Ok(());
    };
    let mut work = Vec::new();
    let mut seen = BTreeSet::new();
    for locked in &lock.targets {
        let Some(repo) = crate::apk_repositories(&loader.workspace, None).get(locked.repository.as_str()).copied()
        else {
            continue;
        };
        for (arch, entries) in &locked.install {
            for entry in entries {
                let Some(pinned) = crate::lockfile::split_install_entry(entry)
                    .and_then(|(n, v)| lock.package(&locked.repository, arch, n, v))
                else {
                    continue;
                };
                if seen.insert((
                    pinned.repository.clone(),
                    pinned.arch.clone(),
                    pinned.name.clone(),
                    pinned.version.clone(),
                )) {
                    work.push((repo, pinned));
                }
            }
        }
    }
    let mut keyrings = BTreeMap::new();
    for (repo, _) in &work {
        if !keyrings.contains_key(&repo.name) {
            let (keyring, _) = repo.keyring(&loader.workspace).map_err(lock_error)?;
            keyrings.insert(repo.name.clone(), keyring);
        }
    }
    let checked: Vec<(&LockedPackage, Result<Vec<Provide>, String>)> = work
        .par_iter()
        .filter_map(|(repo, pinned)| {
            let keyring = keyrings.get(&repo.name)?;
            let policy = crate::apk_fetch::signature_policy(repo.allow_untrusted);
            Some((*pinned, check_pin(fetcher, store, pinned, keyring, policy)))
        })
        .collect();
    let mut problems: Vec<String> = checked.iter().filter_map(|(_, r)| r.as_ref().err().cloned()).collect();
    if problems.is_empty() {
        // Every pin is its package: now each target's pins must install what it asks for (an
        // imported or hand-edited lockfile could pin a set that does not).
        let provides: BTreeMap<(&str, &str, &str, &str), &[Provide]> = checked
            .iter()
            .filter_map(|(p, r)| {
                let key = (p.repository.as_str(), p.arch.as_str(), p.name.as_str(), p.version.as_str());
                Some((key, r.as_ref().ok()?.as_slice()))
            })
            .collect();
        let mut unmet = Vec::new();
        for locked in &lock.targets {
            for (arch, entries) in &locked.install {
                let installed: Vec<(&str, &str)> =
                    entries.iter().filter_map(|e| crate::lockfile::split_install_entry(e)).collect();
                for request in &locked.packages {
                    let Ok(dep) = Dependency::parse(request) else { continue };
                    let met = installed.iter().any(|&(name, version)| {
                        Version::parse(version).is_ok_and(|v| dep.matches(name, &v))
                            || provides
                                .get(&(locked.repository.as_str(), arch.as_str(), name, version))
                                .is_some_and(|ps| ps.iter().any(|p| p.satisfies(&dep)))
                    });
                    if met == dep.conflict {
                        unmet.push(format!(
                            "`{}` asks for `{request}`, which its pins for {arch} do not install",
                            locked.label
                        ));
                    }
                }
            }
        }
        if unmet.is_empty() {
            return Ok(());
        }
        return Err(lock_error(format!(
            "`{LOCKFILE}` does not pin what the BUILD files ask for:\n  - {}\n  fix: run `executor lock`",
            unmet.join("\n  - ")
        )));
    }
    problems.sort();
    Err(verify_error(format!(
        "`{LOCKFILE}` pins packages whose files do not match it:\n  - {}\n  fix: run `executor lock` (and review the \
         lockfile's history: an entry that names another package's file was edited by hand or by an attacker)",
        problems.join("\n  - ")
    )))
}

fn check_pin(
    fetcher: &dyn Fetcher,
    store: &Store,
    pinned: &LockedPackage,
    keyring: &Keyring,
    policy: SignaturePolicy,
) -> Result<Vec<Provide>, String> {
    let id = format!("`{}-{}` ({})", pinned.name, pinned.version, pinned.arch);
    let path = if store.has_blob(&pinned.sha256, pinned.size) {
        store.blob_path(&pinned.sha256)
    } else {
        let tmp = store.temp_path("apk");
        let fetched = fetcher.fetch_to_file(&pinned.url, &tmp, pinned.size).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("{id}: {e}")
        })?;
        if fetched.sha256 != pinned.sha256 || fetched.size != pinned.size {
            let _ = std::fs::remove_file(&tmp);
            return Err(format!(
                "{id}: `{}` serves {} bytes with {}, the lockfile pins {} bytes with {}",
                pinned.url, fetched.size, fetched.sha256, pinned.size, pinned.sha256
            ));
        }
        store.commit_blob(&tmp, &fetched.sha256).map_err(|e| format!("{id}: {e}"))?
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{id}: cannot read `{}`: {e}", path.display()))?;
    Package::verify_locked(&bytes, &pinned.url, &pinned.pin(), keyring, policy, &crate::Verdicts(store))
        .map(|verified| verified.package().info().provides.clone())
        .map_err(|e| format!("{id}: {e}"))
}
