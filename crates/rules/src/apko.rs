//! Migration from apko: `executor lock --import-apko apko.lock.json --target LABEL` pins an
//! `apk_fetch` target to exactly the packages an apko lockfile (v1) lists.
//!
//! apko's lock records, per package, the byte ranges and checksums of the signature,
//! control and data segments and the `Q1` identity. Each package is fetched from the
//! target's repository (apko's URLs are relative to wherever apko ran), checked against every
//! one of those figures, verified as any package is (signature, `datahash`), and pinned by
//! the sha256 of the whole file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

use crate::apk::{Dependency, Identity, Package, PackageName, PackagePin, Provide, SignaturePolicy, Version};
use crate::apk_fetch::{requested_archs, requested_packages};
use crate::error::{fetch_error, import_error, verify_error, RulesError};
use crate::fetch::Fetcher;
use crate::label::Label;
use crate::load::Loader;
use crate::lock::LockReport;
use crate::lockfile::{LockedPackage, LockedRepository, LockedTarget, Lockfile, LOCK_VERSION};
use crate::platform::Arch;
use crate::store::Store;
use executor_engine::Error;

#[derive(Debug, Deserialize)]
struct ApkoLock {
    version: String,
    contents: Contents,
}

#[derive(Debug, Deserialize)]
struct Contents {
    #[serde(default)]
    packages: Vec<ApkoPackage>,
}

#[derive(Debug, Deserialize)]
struct ApkoPackage {
    name: String,
    version: String,
    architecture: String,
    #[serde(default)]
    signature: Option<Segment>,
    control: Segment,
    data: Segment,
    checksum: String,
}

#[derive(Debug, Deserialize)]
struct Segment {
    range: String,
    checksum: String,
}

/// `bytes=a-b` (inclusive) as a half-open range.
fn parse_range(text: &str) -> Option<Range<usize>> {
    let (a, b) = text.strip_prefix("bytes=")?.split_once('-')?;
    let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then(|| a..b + 1)
}

/// Checks one segment's range and SRI checksum (`sha1-<b64>` or `sha256-<b64>`).
fn check_segment(what: &str, segment: &Segment, actual: Range<usize>, bytes: &[u8]) -> Result<(), String> {
    let range =
        parse_range(&segment.range).ok_or_else(|| format!("{what} range `{}` is not `bytes=A-B`", segment.range))?;
    if range != actual {
        return Err(format!(
            "{what} is at bytes {}-{} of the file, but the apko lockfile says `{}`",
            actual.start,
            actual.end.saturating_sub(1),
            segment.range
        ));
    }
    let content = &bytes[actual];
    let b64 = base64::engine::general_purpose::STANDARD;
    let got = match segment.checksum.split_once('-') {
        Some(("sha1", _)) => format!("sha1-{}", b64.encode(Sha1::digest(content))),
        Some(("sha256", _)) => format!("sha256-{}", b64.encode(Sha256::digest(content))),
        _ => return Err(format!("{what} checksum `{}` is neither `sha1-...` nor `sha256-...`", segment.checksum)),
    };
    if got != segment.checksum {
        return Err(format!("{what} checksum is {got}, but the apko lockfile says {}", segment.checksum));
    }
    Ok(())
}

/// Imports `file` as the pins of the `apk_fetch` target `label`, merging into the lockfile.
pub fn import(
    loader: &Loader,
    fetcher: &dyn Fetcher,
    store: &Store,
    file: &Path,
    label: &Label,
) -> Result<LockReport, Error> {
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| import_error(format!("cannot read `{shown}`: {e}")))?;
    let apko: ApkoLock =
        serde_json::from_str(&text).map_err(|e| import_error(format!("`{shown}` is not an apko lockfile: {e}")))?;
    if apko.version != "v1" {
        return Err(import_error(format!(
            "`{shown}` is an apko lockfile of version `{}`; only `v1` can be imported",
            apko.version
        )));
    }
    let package = loader.package(label.repo.as_ref(), &label.package)?;
    let target = package
        .as_ref()
        .and_then(|p| p.targets.get(&label.name))
        .filter(|t| t.kind() == "apk_fetch")
        .ok_or_else(|| import_error(format!("`{label}` is not an `apk_fetch` target; `--target` must name one")))?;
    let repo_name = crate::apk_fetch::attrs_of(target).map(|a| a.repository.as_str()).unwrap_or_default();
    let repos = crate::apk_repositories(&loader.workspace, None);
    let repo = repos
        .get(repo_name)
        .copied()
        .ok_or_else(|| import_error(format!("{}: `{label}`: unknown repository `{repo_name}`", target.location)))?;
    let (keyring, keys) = repo.keyring(&loader.workspace).map_err(import_error)?;
    let policy = if repo.allow_untrusted { SignaturePolicy::Untrusted } else { SignaturePolicy::Required };

    let mut install = BTreeMap::new();
    let mut pins = Vec::new();
    // Requests the imported packages do not satisfy, and for which archs.
    let mut missing: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let archs = requested_archs(target).map_err(import_error)?;
    for arch in &archs {
        let listed: Vec<&ApkoPackage> =
            apko.contents.packages.iter().filter(|p| p.architecture == arch.apk()).collect();
        if listed.is_empty() {
            return Err(import_error(format!(
                "`{shown}` has no packages for arch `{arch}`, which `{label}` asks for\n  fix: import a lockfile made for every arch of the target, or remove `{arch}` from it"
            )));
        }
        let mut order = Vec::new();
        let mut installed: Vec<(PackageName, Version, Vec<Provide>)> = Vec::new();
        for p in listed {
            let (pin, provides) = import_package(fetcher, store, repo, *arch, p, &keyring, policy, &shown)?;
            installed.push((
                PackageName::new(&pin.name).map_err(|e| import_error(e.to_string()))?,
                Version::parse(&pin.version).map_err(|e| import_error(e.to_string()))?,
                provides,
            ));
            pins.push(pin);
            order.push(format!("{}={}", p.name, p.version));
        }
        for request in requested_packages(target) {
            let dep = Dependency::parse(&request).map_err(|e| import_error(e.to_string()))?;
            let met = installed.iter().any(|(name, version, provides)| {
                dep.matches(name.as_str(), version) || provides.iter().any(|p| p.satisfies(&dep))
            });
            // `!name` asks that nothing matching it is installed.
            if met == dep.conflict {
                missing.entry(request).or_default().push(arch.apk());
            }
        }
        install.insert(arch.apk().to_owned(), order);
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(p, archs)| format!("`{p}` ({})", archs.join(", "))).collect();
        return Err(import_error(format!(
            "`{shown}` does not install what `{label}` asks for: {}\n  fix: make the apko lockfile again with these packages, or remove them from the target's `packages`",
            list.join(", ")
        )));
    }
    let fetched = pins.len();

    let mut lock = Lockfile::read(&loader.workspace.root).ok().flatten().unwrap_or_default();
    lock.version = LOCK_VERSION;
    let label_text = label.to_string();
    lock.targets.retain(|t| t.label != label_text);
    lock.targets.push(LockedTarget {
        label: label_text,
        repository: repo.name.clone(),
        packages: requested_packages(target),
        install,
    });
    let indexes =
        lock.repository(&repo.name).filter(|r| r.url == repo.url).map(|r| r.indexes.clone()).unwrap_or_default();
    lock.repositories.retain(|r| r.name != repo.name);
    lock.repositories.push(LockedRepository { name: repo.name.clone(), url: repo.url.clone(), keys, indexes });
    for pin in pins {
        lock.packages.retain(|p| {
            (&p.repository, &p.arch, &p.name, &p.version) != (&pin.repository, &pin.arch, &pin.name, &pin.version)
        });
        lock.packages.push(pin);
    }
    lock.normalize();
    let changed = lock.write(&loader.workspace.root).map_err(RulesError::Lockfile)?;
    Ok(LockReport { targets: 1, packages: fetched, fetched, changed })
}

#[allow(clippy::too_many_arguments)]
fn import_package(
    fetcher: &dyn Fetcher,
    store: &Store,
    repo: &crate::repository::ApkRepository,
    arch: Arch,
    p: &ApkoPackage,
    keyring: &crate::apk::Keyring,
    policy: SignaturePolicy,
    shown: &str,
) -> Result<(LockedPackage, Vec<Provide>), Error> {
    let url = repo.package_url(arch, &p.name, &p.version);
    let context = |m: String| verify_error(format!("`{}-{}` ({arch}) from `{shown}`: {m}", p.name, p.version));
    let pin = PackagePin {
        name: PackageName::new(&p.name).map_err(|e| context(e.to_string()))?,
        version: Version::parse(&p.version).map_err(|e| context(e.to_string()))?,
        identity: Identity::parse(&p.checksum).map_err(|e| context(e.to_string()))?,
        size: None,
        sha256: None,
    };
    let tmp = store.temp_path("apk");
    let result = (|| {
        let fetched = fetcher
            .fetch_to_file(&url, &tmp, crate::fetch::MAX_UNPINNED_PACKAGE)
            .map_err(|e| fetch_error(e.to_string()))?;
        let bytes = std::fs::read(&tmp).map_err(|e| fetch_error(format!("cannot read `{}`: {e}", tmp.display())))?;
        let verified = Package::verify(&bytes, &url, &pin, keyring, policy).map_err(|e| verify_error(e.to_string()))?;
        let package = verified.package();
        match (&p.signature, package.signature_range()) {
            (Some(seg), Some(range)) => check_segment("the signature", seg, range, &bytes).map_err(context)?,
            (None, None) => {}
            (Some(_), None) => {
                return Err(context("the apko lockfile lists a signature, but the package has none".into()))
            }
            (None, Some(_)) => {
                return Err(context("the package is signed, but the apko lockfile lists no signature".into()))
            }
        }
        check_segment("the control segment", &p.control, package.control_range(), &bytes).map_err(context)?;
        check_segment("the data segment", &p.data, package.data_range(), &bytes).map_err(context)?;
        let datahash = package.info().datahash.map(hex::encode).unwrap_or_default();
        let provides = package.info().provides.clone();
        store.commit_blob(&tmp, &fetched.sha256)?;
        Ok((
            LockedPackage {
                repository: repo.name.clone(),
                arch: arch.apk().to_owned(),
                name: p.name.clone(),
                version: p.version.clone(),
                url: url.clone(),
                size: fetched.size,
                sha256: fetched.sha256,
                identity: p.checksum.clone(),
                datahash,
            },
            provides,
        ))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-646"), Some(0..647));
        assert_eq!(parse_range("bytes=647-1628"), Some(647..1629));
        assert_eq!(parse_range("0-1"), None);
        assert_eq!(parse_range("bytes=5-1"), None);
    }
}
