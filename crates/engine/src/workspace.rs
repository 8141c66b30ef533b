//! Workspaces, repositories and packages on disk.
//!
//! The **workspace** is the nearest ancestor directory holding a `WORKSPACE` (or
//! `WORKSPACE.bazel`) file. It is the main **repository**; `WORKSPACE` may declare others
//! (`local_repository`). A **package** is a directory of a repository holding a `BUILD` (or
//! `BUILD.bazel`) file; it owns the files below it except those of subpackages.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::label::{PackagePath, RepoName};

/// The directory below the workspace root where outputs are materialized; never a package.
pub const OUT_DIR: &str = "executor-out";

/// File names that mark a workspace root, in order of preference.
pub const WORKSPACE_FILES: [&str; 2] = ["WORKSPACE.bazel", "WORKSPACE"];

/// File names that mark a package, in order of preference.
pub const BUILD_FILES: [&str; 2] = ["BUILD.bazel", "BUILD"];

/// Errors finding the workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// No `WORKSPACE` above the start directory.
    #[error("no `WORKSPACE` file in `{0}` or any parent directory\n  fix: run executor inside a workspace, create a `WORKSPACE` file at the project root, or pass `--workspace DIR`")]
    NotFound(PathBuf),
    /// `--workspace` names a directory without `WORKSPACE`.
    #[error("`{0}` is not a workspace: it has no `WORKSPACE` file\n  fix: pass the directory that holds `WORKSPACE` to `--workspace`")]
    NotAWorkspace(PathBuf),
    /// A directory cannot be read.
    #[error(transparent)]
    Io(#[from] executor_base::io::PathError),
}

/// The main repository and the repositories `WORKSPACE` declares.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Absolute root directory of the main repository.
    pub root: PathBuf,
    /// The `WORKSPACE` file's name in `root`.
    pub workspace_file: &'static str,
    /// Declared repositories and their absolute roots.
    pub repos: BTreeMap<RepoName, PathBuf>,
    /// What rule sets' `WORKSPACE` functions declared ([`crate::rules::WorkspaceFunction`]),
    /// by repository, function and name: the main repository's `WORKSPACE` and each declared
    /// repository's own, so that a repository's targets see its own declarations wherever it
    /// is used.
    pub declarations: BTreeMap<DeclarationKey, Declaration>,
    /// Repositories a rule set's `WORKSPACE` function declares (`oci_pull`), by name: the
    /// source of their one `BUILD` file, at their root. They have no files on disk; their
    /// entry in `repos` is a directory that does not exist.
    pub generated: BTreeMap<RepoName, String>,
}

/// Which repository's `WORKSPACE` (`None` = main) declared what, with which function.
pub type DeclarationKey = (Option<RepoName>, &'static str, String);

/// One call of a rule set's `WORKSPACE` function.
#[derive(Clone)]
pub struct Declaration {
    /// What the function made of it, of the rule set's own type.
    pub value: crate::rules::Declared,
    /// Where it was called (`WORKSPACE:3:1`).
    pub location: String,
}

impl std::fmt::Debug for Declaration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Declaration").field("location", &self.location).finish_non_exhaustive()
    }
}

/// The workspace file in `dir`, if any.
pub fn workspace_file(dir: &Path) -> Option<&'static str> {
    WORKSPACE_FILES.into_iter().find(|f| dir.join(f).is_file())
}

/// The `BUILD` file of `dir`, if it is a package.
pub fn build_file(dir: &Path) -> Option<&'static str> {
    BUILD_FILES.into_iter().find(|f| dir.join(f).is_file())
}

/// Finds the workspace root: `explicit` if given, else the nearest ancestor of `start`.
pub fn find_root(start: &Path, explicit: Option<&Path>) -> Result<(PathBuf, &'static str), WorkspaceError> {
    if let Some(dir) = explicit {
        let dir = start.join(dir);
        let dir = fs::canonicalize(&dir).map_err(|_| WorkspaceError::NotAWorkspace(dir.clone()))?;
        return workspace_file(&dir).map(|f| (dir.clone(), f)).ok_or(WorkspaceError::NotAWorkspace(dir));
    }
    let start = fs::canonicalize(start).map_err(|source| {
        WorkspaceError::Io(executor_base::io::PathError::new("cannot read", start.to_owned(), source))
    })?;
    let mut dir = start.as_path();
    loop {
        if let Some(f) = workspace_file(dir) {
            return Ok((dir.to_owned(), f));
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return Err(WorkspaceError::NotFound(start)),
        }
    }
}

impl Workspace {
    /// A workspace rooted at `root` with nothing declared yet.
    pub fn new(root: PathBuf, workspace_file: &'static str) -> Self {
        Workspace {
            root,
            workspace_file,
            repos: BTreeMap::new(),
            declarations: BTreeMap::new(),
            generated: BTreeMap::new(),
        }
    }

    /// Every declaration of `WORKSPACE` function `kind` in repository `repo`'s `WORKSPACE`
    /// (`None` = main), by name, as the type it declares.
    pub fn declared<'a, T: std::any::Any>(
        &'a self,
        repo: Option<&'a RepoName>,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a T)> + 'a {
        self.declarations
            .iter()
            .filter(move |((r, k, _), _)| r.as_ref() == repo && *k == kind)
            .filter_map(|((_, _, name), d)| Some((name.as_str(), d.value.downcast_ref::<T>()?)))
    }

    /// The declaration `name` of `WORKSPACE` function `kind` in repository `repo`'s
    /// `WORKSPACE` (`None` = main).
    pub fn declaration<T: std::any::Any>(&self, repo: Option<&RepoName>, kind: &'static str, name: &str) -> Option<&T> {
        self.declarations.get(&(repo.cloned(), kind, name.to_owned())).and_then(|d| d.value.downcast_ref::<T>())
    }

    /// The `WORKSPACE` file of a repository as users see it: `WORKSPACE` for the main one,
    /// `@repo/WORKSPACE` for another.
    pub fn workspace_file_of(&self, repo: Option<&RepoName>) -> String {
        let file = self.repo_root(repo).and_then(workspace_file).unwrap_or(self.workspace_file);
        self.display_path(repo, file)
    }
    /// The root directory of a repository (`None` = main).
    pub fn repo_root(&self, repo: Option<&RepoName>) -> Option<&Path> {
        match repo {
            None => Some(&self.root),
            Some(r) => self.repos.get(r).map(PathBuf::as_path),
        }
    }

    /// The directory of a package.
    pub fn package_dir(&self, repo: Option<&RepoName>, package: &PackagePath) -> Option<PathBuf> {
        let root = self.repo_root(repo)?;
        Some(if package.as_str().is_empty() { root.to_owned() } else { root.join(package.as_str()) })
    }

    /// How a file of a repository is shown to users: workspace-relative for the main
    /// repository, `@repo/path` otherwise. Never absolute, so messages are stable.
    pub fn display_path(&self, repo: Option<&RepoName>, rel: &str) -> String {
        match repo {
            None => rel.to_owned(),
            Some(r) => format!("@{}/{rel}", r.as_str()),
        }
    }

    /// The package path that `dir` (absolute) lies in, for resolving relative command-line
    /// patterns: the path of `dir` relative to the root, or the root when outside.
    pub fn package_of_dir(&self, dir: &Path) -> PackagePath {
        let Ok(rel) = dir.strip_prefix(&self.root) else {
            return PackagePath::root();
        };
        let text = rel.to_string_lossy().replace('\\', "/");
        PackagePath::new(&text).unwrap_or_default()
    }

    /// Every package at or below `under` in a repository, sorted.
    pub fn find_packages(
        &self,
        repo: Option<&RepoName>,
        under: &PackagePath,
    ) -> Result<Vec<PackagePath>, WorkspaceError> {
        let mut out = Vec::new();
        if repo.is_some_and(|r| self.generated.contains_key(r)) {
            // A generated repository has one package, its root.
            if under.as_str().is_empty() {
                out.push(PackagePath::root());
            }
            return Ok(out);
        }
        let Some(dir) = self.package_dir(repo, under) else {
            return Ok(out);
        };
        if !dir.is_dir() {
            return Ok(out);
        }
        walk(&dir, under, under.as_str().is_empty(), &mut out)?;
        out.sort();
        Ok(out)
    }
}

/// The digest of the Starlark sources of the repository rooted at `root`: every `WORKSPACE`,
/// `BUILD` and `.bzl` file below it (hidden directories, `executor-out/` and nested workspaces
/// left out, symlinked directories not followed), as the sha256 of a sorted listing of
/// `<sha256>  <path>` lines. The same checkout gives the same digest wherever it sits on
/// disk; what a release's provenance names as its source.
pub fn starlark_digest(root: &Path) -> Result<crate::digest::Digest, WorkspaceError> {
    let io = |path: &Path, source| {
        WorkspaceError::Io(executor_base::io::PathError::new("cannot read", path.to_owned(), source))
    };
    let mut listing = BTreeMap::new();
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(kind) = entry.file_type() else { continue };
            let path = entry.path();
            let shown = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if kind.is_dir() {
                if !is_ignored_dir(&name) && workspace_file(&path).is_none() {
                    stack.push((path, shown));
                }
            } else if kind.is_file()
                && (WORKSPACE_FILES.contains(&name.as_str())
                    || BUILD_FILES.contains(&name.as_str())
                    || name.ends_with(".bzl"))
            {
                let bytes = fs::read(&path).map_err(|e| io(&path, e))?;
                listing.insert(shown, crate::digest::Digest::of(&bytes));
            }
        }
    }
    let text: String = listing.iter().map(|(path, digest)| format!("{digest}  {path}\n")).collect();
    Ok(crate::digest::Digest::of(text.as_bytes()))
}

/// True for directory names never searched for packages: hidden ones and the output tree.
pub fn is_ignored_dir(name: &str) -> bool {
    name.starts_with('.') || name == OUT_DIR
}

/// Packages at and below `dir` (the directory of `package`), depth-first with an explicit
/// stack of listings, not recursion.
fn walk(dir: &Path, package: &PackagePath, is_root: bool, out: &mut Vec<PackagePath>) -> Result<(), WorkspaceError> {
    let list = |dir: &Path| {
        fs::read_dir(dir).map_err(|source| {
            WorkspaceError::Io(executor_base::io::PathError::new("cannot read", dir.to_owned(), source))
        })
    };
    if !is_root && workspace_file(dir).is_some() {
        return Ok(()); // a nested workspace is its own world
    }
    if build_file(dir).is_some() {
        out.push(package.clone());
    }
    let mut stack = vec![(list(dir)?, dir.to_owned(), package.clone())];
    while let Some((entries, dir, package)) = stack.last_mut() {
        let Some(entry) = entries.next() else {
            stack.pop();
            continue;
        };
        let entry = entry.map_err(|source| {
            WorkspaceError::Io(executor_base::io::PathError::new("cannot read", dir.clone(), source))
        })?;
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if !file_type.is_dir() {
            continue; // symlinked directories are not followed, like Bazel's default
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_ignored_dir(name) {
            continue;
        }
        let Ok(child) = package.join(name) else {
            continue;
        }; // not a valid package name
        let path = entry.path();
        if workspace_file(&path).is_some() {
            continue; // a nested workspace is its own world
        }
        if build_file(&path).is_some() {
            out.push(child.clone());
        }
        stack.push((list(&path)?, path, child));
    }
    Ok(())
}

/// Refuses `path` (a source, `BUILD` or `.bzl` file of the repository rooted at `root`) if it
/// resolves, through symlinks, to a file outside `root`: a link must not pull a file from
/// elsewhere on the machine into outputs. `display` names it in the error.
pub fn check_inside(root: &Path, path: &Path, display: &str) -> Result<(), String> {
    let (Ok(real_root), Ok(real)) = (root.canonicalize(), path.canonicalize()) else {
        // A path that does not resolve fails where it is read, with its own message.
        return Ok(());
    };
    if real.starts_with(&real_root) {
        return Ok(());
    }
    Err(format!(
        "`{display}` is a symlink to `{}`, outside the repository: executor reads only files inside it\n  fix: copy the file into the repository, or declare its directory with `local_repository`",
        real.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, text) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
        dir
    }

    fn digest(dir: &Path) -> crate::digest::Digest {
        starlark_digest(dir).expect("digest")
    }

    #[test]
    fn the_starlark_digest_covers_starlark_files_only_wherever_the_checkout_is() {
        let files = [
            ("WORKSPACE", "w"),
            ("a/BUILD", "b"),
            ("rules/defs.bzl", "d"),
            ("a/notes.txt", "not starlark"),
            ("executor-out/x/BUILD", "an output"),
            (".git/BUILD", "hidden"),
            ("nested/WORKSPACE", "another world"),
            ("nested/BUILD", "of the nested workspace"),
        ];
        let (one, two) = (tree(&files), tree(&files));
        assert_eq!(digest(one.path()), digest(two.path()));
        let before = digest(one.path());
        for ignored in ["a/notes.txt", "executor-out/x/BUILD", ".git/BUILD", "nested/BUILD"] {
            fs::write(one.path().join(ignored), "changed").expect("write");
            assert_eq!(digest(one.path()), before, "{ignored} must not count");
        }
        fs::write(one.path().join("rules/defs.bzl"), "changed").expect("write");
        assert_ne!(digest(one.path()), before);
    }
}
