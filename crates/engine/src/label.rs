//! Labels and target patterns: the names of targets.
//!
//! A **label** names one target: `@repo//package/path:name`. The repository part is absent for
//! the main workspace. A **package path** is the directory of a `BUILD` file relative to its
//! repository root (empty for the root package). A **target name** is unique within a package;
//! it may contain `/` (file targets such as `dir/file.txt`).
//!
//! A **target pattern** selects targets on the command line: a label, `//pkg:all` (or
//! `//pkg:*`), `//pkg/...` and `//...`.
//!
//! Every type here validates on construction, so code holding a [`Label`] never re-checks it.

use std::fmt;

/// Why a label or pattern was rejected; the message names the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{text}`: {reason}")]
pub struct LabelError {
    /// "label", "target pattern", "package path", "target name" or "repository name".
    pub what: &'static str,
    /// The text as the user wrote it.
    pub text: String,
    /// What is wrong, lowercase, with the fix where there is one.
    pub reason: String,
}

fn label_error(what: &'static str, text: &str, reason: impl Into<String>) -> LabelError {
    LabelError { what, text: text.to_owned(), reason: reason.into() }
}

/// A repository declared in `WORKSPACE` (`local_repository(name = ...)`), without the `@`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

impl RepoName {
    /// Validates `[A-Za-z][A-Za-z0-9_.-]*`.
    pub fn new(name: &str) -> Result<Self, LabelError> {
        let mut chars = name.chars();
        match chars.next() {
            None => return Err(label_error("repository name", name, "it is empty")),
            Some(c) if !c.is_ascii_alphabetic() => {
                return Err(label_error("repository name", name, "it must start with a letter"))
            }
            _ => {}
        }
        if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
            return Err(label_error(
                "repository name",
                name,
                format!("character `{c}` is not allowed (use letters, digits, `_`, `.`, `-`)"),
            ));
        }
        Ok(RepoName(name.to_owned()))
    }

    /// The name without `@`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

fn valid_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '_' | '-' | '.' | '+' | '=' | ',' | '~' | '@' | '#' | '%' | '^' | '&' | '!')
}

/// Checks `/`-separated components: none empty, none `.` or `..`, allowed characters only.
fn check_components(what: &'static str, text: &str, allow_at: bool) -> Result<(), LabelError> {
    if text.starts_with('/') {
        return Err(label_error(what, text, "it must not start with `/`"));
    }
    if text.ends_with('/') {
        return Err(label_error(what, text, "it must not end with `/`"));
    }
    for component in text.split('/') {
        match component {
            "" => return Err(label_error(what, text, "it contains an empty path component (`//`)")),
            "." | ".." => return Err(label_error(what, text, format!("path component `{component}` is not allowed"))),
            _ => {}
        }
        if let Some(c) = component.chars().find(|&c| !valid_path_char(c) || (c == '@' && !allow_at)) {
            let shown = if c.is_control() || c == ' ' { format!("{c:?}") } else { format!("`{c}`") };
            return Err(label_error(what, text, format!("character {shown} is not allowed")));
        }
    }
    Ok(())
}

/// The directory of a package relative to its repository root; empty for the root package.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackagePath(String);

impl PackagePath {
    /// Validates a `/`-separated relative path (`images`, `a/b`), or the empty root path.
    pub fn new(path: &str) -> Result<Self, LabelError> {
        if !path.is_empty() {
            check_components("package path", path, false)?;
        }
        Ok(PackagePath(path.to_owned()))
    }

    /// The root package of a repository.
    pub fn root() -> Self {
        PackagePath(String::new())
    }

    /// The path as written, `""` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last component, or `""` for the root.
    pub fn last_component(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// `self/rest`, validated.
    pub fn join(&self, rest: &str) -> Result<Self, LabelError> {
        if self.0.is_empty() {
            PackagePath::new(rest)
        } else if rest.is_empty() {
            Ok(self.clone())
        } else {
            PackagePath::new(&format!("{}/{}", self.0, rest))
        }
    }

    /// True if `self` is `other` or lies below it.
    pub fn is_within(&self, other: &PackagePath) -> bool {
        other.0.is_empty()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for PackagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a target within its package; may contain `/` for files in subdirectories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetName(String);

impl TargetName {
    /// Validates a non-empty relative path of allowed characters.
    pub fn new(name: &str) -> Result<Self, LabelError> {
        if name.is_empty() {
            return Err(label_error("target name", name, "it is empty"));
        }
        check_components("target name", name, true)?;
        Ok(TargetName(name.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fully qualified target name: repository (none = main workspace), package and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// `None` for the main workspace.
    pub repo: Option<RepoName>,
    /// The package holding the target.
    pub package: PackagePath,
    /// The target's name within the package.
    pub name: TargetName,
}

/// Where a relative label is resolved: the repository and package of the file that wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelContext {
    /// Repository of the referring file; `None` for the main workspace.
    pub repo: Option<RepoName>,
    /// Package of the referring file.
    pub package: PackagePath,
}

/// Splits `@repo//rest` into the repository and `//rest`.
fn split_repo<'a>(what: &'static str, text: &'a str) -> Result<(Option<RepoName>, &'a str), LabelError> {
    let Some(rest) = text.strip_prefix('@') else {
        return Ok((None, text));
    };
    let Some(slash) = rest.find("//") else {
        return Err(label_error(what, text, "a repository must be followed by `//` (write `@repo//pkg:name`)"));
    };
    let repo = RepoName::new(&rest[..slash]).map_err(|e| label_error(what, text, e.reason))?;
    Ok((Some(repo), &rest[slash..]))
}

impl Label {
    /// Builds a label from parts already validated.
    pub fn new(repo: Option<RepoName>, package: PackagePath, name: TargetName) -> Self {
        Label { repo, package, name }
    }

    /// Parses an absolute label (`//pkg:name`, `//pkg`, `@repo//pkg:name`).
    pub fn parse_absolute(text: &str) -> Result<Self, LabelError> {
        Self::parse(text, &LabelContext::default()).and_then(|l| {
            if text.starts_with("//") || text.starts_with('@') {
                Ok(l)
            } else {
                Err(label_error("label", text, "it must start with `//` or `@repo//`"))
            }
        })
    }

    /// Parses a label as written in a `BUILD` or `.bzl` file of `context`: absolute forms, and
    /// `:name` or `name` for a target of the same package.
    pub fn parse(text: &str, context: &LabelContext) -> Result<Self, LabelError> {
        let err = |reason: &str| label_error("label", text, reason);
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let (repo, rest) = split_repo("label", text)?;
        if let Some(abs) = rest.strip_prefix("//") {
            let repo = repo.or_else(|| if text.starts_with('@') { None } else { context.repo.clone() });
            let (pkg, name) = match abs.split_once(':') {
                Some((pkg, name)) => (pkg, name),
                None => {
                    let last = abs.rsplit('/').next().unwrap_or("");
                    if last.is_empty() {
                        return Err(err("the root package has no default target; write `//:name`"));
                    }
                    (abs, last)
                }
            };
            let package = PackagePath::new(pkg).map_err(|e| err(&e.reason))?;
            if name.contains(':') {
                return Err(err("it contains more than one `:`"));
            }
            let name = TargetName::new(name).map_err(|e| err(&e.reason))?;
            return Ok(Label { repo, package, name });
        }
        let name = match rest.strip_prefix(':') {
            Some(name) => name,
            None if rest.contains(':') => {
                return Err(err("a label with a package must start with `//` (write `//pkg:name`)"))
            }
            None => rest,
        };
        let name = TargetName::new(name).map_err(|e| err(&e.reason))?;
        Ok(Label { repo: context.repo.clone(), package: context.package.clone(), name })
    }

    /// The context in which labels written inside this target's package resolve.
    pub fn context(&self) -> LabelContext {
        LabelContext { repo: self.repo.clone(), package: self.package.clone() }
    }
}

impl<'de> serde::Deserialize<'de> for Label {
    /// From the absolute form [`Display`](fmt::Display) writes (`//p:n`, `@repo//p:n`).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Label::parse_absolute(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(repo) = &self.repo {
            write!(f, "{repo}")?;
        }
        write!(f, "//{}:{}", self.package, self.name)
    }
}

/// What a target pattern selects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TargetPattern {
    /// One target.
    Target(Label),
    /// Every target of one package (`//pkg:all`, `//pkg:*`).
    AllInPackage { repo: Option<RepoName>, package: PackagePath },
    /// Every target of every package at or below a path (`//pkg/...`, `//...`).
    Recursive { repo: Option<RepoName>, package: PackagePath },
}

impl TargetPattern {
    /// Parses a command-line pattern. Patterns without `//` are relative to `cwd_package`, the
    /// package directory the command runs in (`:name`, `sub/...`, `sub:name`, `...`).
    pub fn parse(text: &str, cwd_package: &PackagePath) -> Result<Self, LabelError> {
        let what = "target pattern";
        let err = |reason: &str| label_error(what, text, reason);
        if text.is_empty() {
            return Err(err("it is empty"));
        }
        let (repo, rest) = split_repo(what, text)?;
        let (absolute, body) = match rest.strip_prefix("//") {
            Some(body) => (true, body),
            None => (false, rest),
        };
        let base = if absolute { PackagePath::root() } else { cwd_package.clone() };
        let (pkg_part, name_part) = match body.split_once(':') {
            Some((p, n)) => (p, Some(n)),
            None => (body, None),
        };
        if let Some(prefix) = pkg_part.strip_suffix("...") {
            if name_part.is_some() {
                return Err(err("`...` cannot be followed by `:name`"));
            }
            let prefix = match prefix.strip_suffix('/') {
                Some(p) => p,
                None if prefix.is_empty() => prefix,
                None => return Err(err("`...` must be a whole path component (write `//pkg/...`)")),
            };
            let package = base.join(prefix).map_err(|e| err(&e.reason))?;
            return Ok(TargetPattern::Recursive { repo, package });
        }
        let package = base.join(pkg_part).map_err(|e| err(&e.reason))?;
        match name_part {
            Some("all" | "*" | "all-targets") => Ok(TargetPattern::AllInPackage { repo, package }),
            Some(name) => {
                if name.contains(':') {
                    return Err(err("it contains more than one `:`"));
                }
                let name = TargetName::new(name).map_err(|e| err(&e.reason))?;
                Ok(TargetPattern::Target(Label { repo, package, name }))
            }
            None => {
                let last = package.last_component();
                if last.is_empty() {
                    return Err(err("the root package has no default target; write `//:name` or `//:all`"));
                }
                let name = TargetName::new(last).map_err(|e| err(&e.reason))?;
                Ok(TargetPattern::Target(Label { repo, package, name }))
            }
        }
    }

    /// The repository the pattern looks in.
    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            TargetPattern::Target(label) => label.repo.as_ref(),
            TargetPattern::AllInPackage { repo, .. } | TargetPattern::Recursive { repo, .. } => repo.as_ref(),
        }
    }
}

impl fmt::Display for TargetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let repo = |r: &Option<RepoName>| r.as_ref().map(|r| r.to_string()).unwrap_or_default();
        match self {
            TargetPattern::Target(label) => write!(f, "{label}"),
            TargetPattern::AllInPackage { repo: r, package } => {
                write!(f, "{}//{package}:all", repo(r))
            }
            TargetPattern::Recursive { repo: r, package } if package.as_str().is_empty() => {
                write!(f, "{}//...", repo(r))
            }
            TargetPattern::Recursive { repo: r, package } => {
                write!(f, "{}//{package}/...", repo(r))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pkg: &str) -> LabelContext {
        LabelContext { repo: None, package: PackagePath::new(pkg).expect("valid package") }
    }

    #[test]
    fn labels_accepted() {
        let cases = [
            ("//images:static", "images", "//images:static"),
            ("//images", "", "//images:images"),
            ("//a/b", "", "//a/b:b"),
            ("//:root", "x", "//:root"),
            (":name", "pkg", "//pkg:name"),
            ("file.txt", "pkg", "//pkg:file.txt"),
            ("dir/file.txt", "pkg", "//pkg:dir/file.txt"),
            ("@alpine//x86_64:apks", "pkg", "@alpine//x86_64:apks"),
            ("//a-b/c_d.e:f+g=h,i~j@k", "", "//a-b/c_d.e:f+g=h,i~j@k"),
        ];
        for (text, pkg, want) in cases {
            let label = Label::parse(text, &ctx(pkg)).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(label.to_string(), want, "{text}");
        }
    }

    #[test]
    fn labels_rejected() {
        let cases = [
            ("", "invalid label ``: it is empty"),
            ("//a/../b:c", "invalid label `//a/../b:c`: path component `..` is not allowed"),
            ("//a//b:c", "invalid label `//a//b:c`: it contains an empty path component (`//`)"),
            ("//a:b:c", "invalid label `//a:b:c`: it contains more than one `:`"),
            ("//a:", "invalid label `//a:`: it is empty"),
            ("//", "invalid label `//`: the root package has no default target; write `//:name`"),
            ("a/b:c", "invalid label `a/b:c`: a label with a package must start with `//` (write `//pkg:name`)"),
            ("@//a:b", "invalid label `@//a:b`: it is empty"),
            ("@1x//a:b", "invalid label `@1x//a:b`: it must start with a letter"),
            ("@repo", "invalid label `@repo`: a repository must be followed by `//` (write `@repo//pkg:name`)"),
            ("//a b:c", "invalid label `//a b:c`: character ' ' is not allowed"),
            ("//a:b/", "invalid label `//a:b/`: it must not end with `/`"),
            ("//pkg@x:y", "invalid label `//pkg@x:y`: character `@` is not allowed"),
        ];
        for (text, want) in cases {
            let err = Label::parse(text, &ctx("pkg")).expect_err(text);
            assert_eq!(err.to_string(), want, "{text}");
        }
        assert_eq!(
            Label::parse_absolute(":x").expect_err("relative").to_string(),
            "invalid label `:x`: it must start with `//` or `@repo//`"
        );
    }

    #[test]
    fn patterns_accepted() {
        let cwd = PackagePath::new("images").expect("valid");
        let cases = [
            ("//...", "//..."),
            ("//images/...", "//images/..."),
            ("//images:all", "//images:all"),
            ("//images:*", "//images:all"),
            ("//images:static", "//images:static"),
            ("//images", "//images:images"),
            (":static", "//images:static"),
            ("...", "//images/..."),
            ("sub/...", "//images/sub/..."),
            ("sub:x", "//images/sub:x"),
            ("sub", "//images/sub:sub"),
            ("@r//...", "@r//..."),
            ("@r//p:all", "@r//p:all"),
        ];
        for (text, want) in cases {
            let p = TargetPattern::parse(text, &cwd).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.to_string(), want, "{text}");
        }
    }

    #[test]
    fn patterns_rejected() {
        let root = PackagePath::root();
        let cases = [
            ("", "invalid target pattern ``: it is empty"),
            ("//a...", "invalid target pattern `//a...`: `...` must be a whole path component (write `//pkg/...`)"),
            ("//a/...:x", "invalid target pattern `//a/...:x`: `...` cannot be followed by `:name`"),
            ("//", "invalid target pattern `//`: the root package has no default target; write `//:name` or `//:all`"),
            ("//../x", "invalid target pattern `//../x`: path component `..` is not allowed"),
        ];
        for (text, want) in cases {
            let err = TargetPattern::parse(text, &root).expect_err(text);
            assert_eq!(err.to_string(), want, "{text}");
        }
    }

    #[test]
    fn package_within() {
        let p = |s: &str| PackagePath::new(s).expect("valid");
        assert!(p("a/b").is_within(&p("a")));
        assert!(p("a").is_within(&p("a")));
        assert!(p("a").is_within(&p("")));
        assert!(!p("ab").is_within(&p("a")));
        assert!(!p("a").is_within(&p("a/b")));
    }
}
