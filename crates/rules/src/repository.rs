//! APK repositories as `WORKSPACE` declares them (`apk_repository`), and their keyrings.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

use crate::apk::{Keyring, PublicKey};
use crate::digest::Digest;
use crate::label::{Label, RepoName};
use crate::lockfile::LockedKey;
use crate::platform::Arch;
use crate::rules::{typed_attrs, Declared, WorkspaceFunction};
use crate::target::{AttrSpec, AttrType, AttrValue};
use crate::workspace::Workspace;

/// One `apk_repository(name, url, keys, allow_untrusted)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApkRepository {
    /// The name `apk_fetch` refers to.
    pub name: String,
    /// Base URL without a trailing `/`: `<url>/<arch>/APKINDEX.tar.gz`.
    pub url: String,
    /// Labels of trusted `.rsa.pub` files.
    pub keys: Vec<Label>,
    /// Accept indexes and packages not signed by a trusted key (warns on every use).
    pub allow_untrusted: bool,
    /// Where it was declared (`WORKSPACE:3:1`).
    pub location: String,
    /// The repository whose `WORKSPACE` declared it (`None` = main).
    pub declared_in: Option<RepoName>,
}

/// The `WORKSPACE` function that declares an [`ApkRepository`].
pub const APK_REPOSITORY: &str = "apk_repository";

/// `apk_repository(name, url, keys, allow_untrusted)` in `WORKSPACE`.
pub struct ApkRepositoryFunction;

/// The arguments of an `apk_repository` call.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    url: String,
    #[serde(default)]
    keys: Vec<Label>,
    #[serde(default)]
    allow_untrusted: bool,
}

impl WorkspaceFunction for ApkRepositoryFunction {
    fn kind(&self) -> &'static str {
        APK_REPOSITORY
    }
    fn doc(&self) -> &'static str {
        "Declares an APK repository: `<url>/<arch>/APKINDEX.tar.gz` signed by one of `keys`. `allow_untrusted = True` accepts unsigned content, with a warning on every use."
    }
    fn attrs(&self) -> &'static [AttrSpec] {
        &[
            AttrSpec {
                name: "url",
                ty: AttrType::String,
                mandatory: true,
                doc: "Base URL (`https://`, `http://` or `file://`; a `file://` path without a leading `/` is relative to the workspace root).",
            },
            AttrSpec {
                name: "keys",
                ty: AttrType::LabelList,
                mandatory: false,
                doc: "Labels of the trusted `.rsa.pub` files.",
            },
            AttrSpec {
                name: "allow_untrusted",
                ty: AttrType::Bool,
                mandatory: false,
                doc: "Accept indexes and packages no trusted key signed (default False).",
            },
        ]
    }
    fn declare(
        &self,
        name: &str,
        attrs: &BTreeMap<&'static str, AttrValue>,
        location: &str,
        repo: Option<&RepoName>,
    ) -> Result<Declared, String> {
        let args: Args = typed_attrs(APK_REPOSITORY, attrs)?;
        let url = check_url(&args.url)?;
        for label in &args.keys {
            if !label.name.as_str().ends_with(".rsa.pub") && !label.name.as_str().ends_with(".pub") {
                return Err(format!("repository `{name}`: key `{label}` must name a `.rsa.pub` file"));
            }
        }
        if args.keys.is_empty() && !args.allow_untrusted {
            return Err(format!(
                "repository `{name}` has no trusted keys\n  fix: add `keys = [\"//keys:<name>.rsa.pub\"]`, or `allow_untrusted = True` to accept unsigned content"
            ));
        }
        Ok(Arc::new(ApkRepository {
            name: name.to_owned(),
            url,
            keys: args.keys,
            allow_untrusted: args.allow_untrusted,
            location: location.to_owned(),
            declared_in: repo.cloned(),
        }))
    }
}

/// The URL schemes a repository may use.
pub const SCHEMES: [&str; 3] = ["https://", "http://", "file://"];

/// Checks and normalizes a repository URL (no trailing `/`).
pub fn check_url(url: &str) -> Result<String, String> {
    if !SCHEMES.iter().any(|s| url.starts_with(s)) {
        return Err(format!(
            "repository URL `{url}` must start with `https://`, `http://` or `file://` (a `file://` path without a leading `/` is relative to the workspace root)"
        ));
    }
    let trimmed = url.trim_end_matches('/');
    if SCHEMES.contains(&trimmed) || trimmed.len() < url.len() - 1 && trimmed.ends_with(':') {
        return Err(format!("repository URL `{url}` has no host or path"));
    }
    Ok(trimmed.to_owned())
}

impl ApkRepository {
    /// `<url>/<arch>/APKINDEX.tar.gz`.
    pub fn index_url(&self, arch: Arch) -> String {
        format!("{}/{}/APKINDEX.tar.gz", self.url, arch.apk())
    }

    /// `<url>/<arch>/<name>-<version>.apk`.
    pub fn package_url(&self, arch: Arch, name: &str, version: &str) -> String {
        format!("{}/{}/{name}-{version}.apk", self.url, arch.apk())
    }

    /// Reads the trusted keys: the keyring and, for the lockfile, each key's sha256.
    pub fn keyring(&self, workspace: &Workspace) -> Result<(Keyring, Vec<LockedKey>), String> {
        let mut keyring = Keyring::new();
        let mut locked = Vec::new();
        for label in &self.keys {
            let path = key_path(workspace, label).ok_or_else(|| {
                format!(
                    "{}: key `{label}` of repository `{}`: its repository is not declared",
                    self.location, self.name
                )
            })?;
            if let Some(root) = workspace.repo_root(label.repo.as_ref()) {
                crate::workspace::check_inside(root, &path, &label.to_string())
                    .map_err(|e| format!("{}: key `{label}` of repository `{}`: {e}", self.location, self.name))?;
            }
            let bytes = fs::read(&path).map_err(|e| {
                format!(
                    "{}: key `{label}` of repository `{}`: cannot read `{}`: {e}",
                    self.location,
                    self.name,
                    path.display()
                )
            })?;
            let text = String::from_utf8_lossy(&bytes);
            let key = PublicKey::from_pem(label.name.as_str().rsplit('/').next().unwrap_or_default(), &text)
                .map_err(|e| format!("{}: key `{label}` of repository `{}`: {e}", self.location, self.name))?;
            locked.push(LockedKey { name: key.name().as_str().to_owned(), sha256: Digest::of(&bytes) });
            keyring.insert(key).map_err(|e| format!("{}: repository `{}`: {e}", self.location, self.name))?;
        }
        locked.sort();
        Ok((keyring, locked))
    }
}

/// The file a key label names (keys need no `BUILD` file, like `load()`ed files).
pub fn key_path(workspace: &Workspace, label: &Label) -> Option<PathBuf> {
    Some(workspace.package_dir(label.repo.as_ref(), &label.package)?.join(label.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls() {
        assert_eq!(
            check_url("https://dl-cdn.alpinelinux.org/alpine/v3.17/main/").as_deref(),
            Ok("https://dl-cdn.alpinelinux.org/alpine/v3.17/main")
        );
        assert_eq!(check_url("file://third_party/apk").as_deref(), Ok("file://third_party/apk"));
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("https://").is_err());
    }
}
