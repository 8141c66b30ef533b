//! Dependency atoms (`D:`/`i:` in an index, `depend` in `.PKGINFO`, the
//! requested packages of an image) and provides entries (`p:`, `provides`).
//!
//! Vocabulary:
//! - a **name** ([`PackageName`]) is a package name (`musl`) or a virtual name
//!   that packages provide: `so:libc.musl-aarch64.so.1`, `cmd:sh`, `pc:zlib`,
//!   or a path such as `/bin/sh`;
//! - a **dependency** ([`Dependency`]) is a name, an optional version
//!   [`Constraint`] (`=`, `<`, `<=`, `>`, `>=`, `~` prefix match, `<~`, `>~`),
//!   and may be a **conflict** (`!name`: nothing matching may be installed);
//! - a **provide** ([`Provide`]) is a name a package answers to besides its
//!   own, with an optional version (`so:libz.so.1=1.2.13`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::version::{Version, VersionError};

/// A dependency atom or provides entry that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependencyError {
    #[error("empty package name in `{atom}`")]
    EmptyName { atom: String },
    #[error(
        "invalid package name `{name}`: names may not contain whitespace, control \
         characters or any of `<>=~!`"
    )]
    InvalidName { name: String },
    #[error(
        "invalid operator `{op}` in `{atom}`: use one of `=`, `<`, `<=`, `>`, `>=`, `~`, \
         `<~`, `>~`"
    )]
    InvalidOperator { atom: String, op: String },
    #[error("missing version after `{op}` in `{atom}`")]
    MissingVersion { atom: String, op: String },
    #[error("invalid version in `{atom}`: {source}")]
    Version {
        atom: String,
        #[source]
        source: VersionError,
    },
    #[error("invalid provides entry `{atom}`: a provided name takes only `=version`")]
    ProvideOperator { atom: String },
}

/// A package or virtual name.
///
/// Invariant: non-empty, no ASCII whitespace or control characters, none of
/// `<>=~!` (those delimit operators and conflicts in atoms).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(Box<str>);

impl PackageName {
    pub fn new(name: &str) -> Result<Self, DependencyError> {
        if name.is_empty() {
            return Err(DependencyError::EmptyName { atom: name.to_owned() });
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control() || is_op_char(c) || c == '!') {
            return Err(DependencyError::InvalidName { name: name.to_owned() });
        }
        Ok(PackageName(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PackageName {
    type Err = DependencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PackageName::new(s)
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageName({:?})", &*self.0)
    }
}

impl std::borrow::Borrow<str> for PackageName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '~')
}

/// A version comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `=`
    Equal,
    /// `<`
    Less,
    /// `<=`
    LessEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterEqual,
    /// `~`: the version starts with the given version's tokens (`~1.2`
    /// matches `1.2`, `1.2.9`, `1.2_rc1`, `1.2-r3`, not `1.20`).
    Fuzzy,
    /// `<~`: less than, or a fuzzy match.
    LessFuzzy,
    /// `>~`: greater than, or a fuzzy match.
    GreaterFuzzy,
}

impl Op {
    fn parse(op: &str) -> Option<Op> {
        Some(match op {
            "=" | "==" => Op::Equal,
            "<" => Op::Less,
            "<=" | "=<" => Op::LessEqual,
            ">" => Op::Greater,
            ">=" | "=>" => Op::GreaterEqual,
            "~" | "=~" | "~=" => Op::Fuzzy,
            "<~" | "~<" => Op::LessFuzzy,
            ">~" | "~>" => Op::GreaterFuzzy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Equal => "=",
            Op::Less => "<",
            Op::LessEqual => "<=",
            Op::Greater => ">",
            Op::GreaterEqual => ">=",
            Op::Fuzzy => "~",
            Op::LessFuzzy => "<~",
            Op::GreaterFuzzy => ">~",
        }
    }

    fn is_fuzzy(self) -> bool {
        matches!(self, Op::Fuzzy | Op::LessFuzzy | Op::GreaterFuzzy)
    }

    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Equal | Op::Fuzzy => ordering == Ordering::Equal,
            Op::Less => ordering == Ordering::Less,
            Op::LessEqual | Op::LessFuzzy => ordering != Ordering::Greater,
            Op::Greater => ordering == Ordering::Greater,
            Op::GreaterEqual | Op::GreaterFuzzy => ordering != Ordering::Less,
        }
    }
}

/// A version constraint on a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Constraint {
    /// Any version, including an unversioned provide.
    Any,
    /// `op version`, compared as apk-tools does.
    Version(Op, Version),
}

impl Constraint {
    /// Whether a package or provide at `version` satisfies the constraint.
    pub fn matches(&self, version: &Version) -> bool {
        match self {
            Constraint::Any => true,
            Constraint::Version(op, wanted) => op.accepts(version.compare_fuzzy(wanted, op.is_fuzzy())),
        }
    }

    /// Whether an unversioned provide (`p:cmd:foo`) satisfies the constraint:
    /// only when no version is asked for.
    pub fn matches_unversioned(&self) -> bool {
        matches!(self, Constraint::Any)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Constraint::Any => Ok(()),
            Constraint::Version(op, version) => write!(f, "{}{version}", op.as_str()),
        }
    }
}

/// A dependency atom: `[!]name[op version]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    pub name: PackageName,
    pub constraint: Constraint,
    /// `!name`: no package matching `name` and `constraint` may be installed.
    pub conflict: bool,
}

impl Dependency {
    /// Parses one atom such as `so:libc.musl-x86_64.so.1`, `busybox>=1.35`,
    /// `!openssl<3` or `tzdata~2023`.
    pub fn parse(atom: &str) -> Result<Self, DependencyError> {
        let (conflict, rest) = match atom.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, atom),
        };
        let name_end = rest.find(is_op_char).unwrap_or(rest.len());
        let name_text = &rest[..name_end];
        if name_text.is_empty() {
            return Err(DependencyError::EmptyName { atom: atom.to_owned() });
        }
        let name = PackageName::new(name_text)?;
        let after = &rest[name_end..];
        if after.is_empty() {
            return Ok(Dependency { name, constraint: Constraint::Any, conflict });
        }
        let op_len = after.find(|c| !is_op_char(c)).unwrap_or(after.len());
        let (op_text, version_text) = after.split_at(op_len);
        let op = Op::parse(op_text)
            .ok_or_else(|| DependencyError::InvalidOperator { atom: atom.to_owned(), op: op_text.to_owned() })?;
        if version_text.is_empty() {
            return Err(DependencyError::MissingVersion { atom: atom.to_owned(), op: op_text.to_owned() });
        }
        let version = Version::parse(version_text)
            .map_err(|source| DependencyError::Version { atom: atom.to_owned(), source })?;
        Ok(Dependency { name, constraint: Constraint::Version(op, version), conflict })
    }

    /// Parses a space-separated list, as in `D:` lines.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, DependencyError> {
        list.split_ascii_whitespace().map(Dependency::parse).collect()
    }

    /// Whether a package called `name` at `version` satisfies the atom's name
    /// and constraint (ignoring `conflict`).
    pub fn matches(&self, name: &str, version: &Version) -> bool {
        self.name.as_str() == name && self.constraint.matches(version)
    }
}

impl FromStr for Dependency {
    type Err = DependencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dependency::parse(s)
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conflict {
            f.write_str("!")?;
        }
        write!(f, "{}{}", self.name, self.constraint)
    }
}

/// A provides entry: `name` or `name=version`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provide {
    pub name: PackageName,
    /// `None` for an unversioned (purely virtual) provide, which satisfies
    /// only dependencies without a version constraint.
    pub version: Option<Version>,
}

impl Provide {
    pub fn parse(atom: &str) -> Result<Self, DependencyError> {
        let dep = Dependency::parse(atom)?;
        if dep.conflict {
            return Err(DependencyError::InvalidName { name: atom.to_owned() });
        }
        match dep.constraint {
            Constraint::Any => Ok(Provide { name: dep.name, version: None }),
            Constraint::Version(Op::Equal, version) => Ok(Provide { name: dep.name, version: Some(version) }),
            Constraint::Version(..) => Err(DependencyError::ProvideOperator { atom: atom.to_owned() }),
        }
    }

    /// Parses a space-separated list, as in `p:` lines.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, DependencyError> {
        list.split_ascii_whitespace().map(Provide::parse).collect()
    }

    /// Whether this provide satisfies `dep`'s name and constraint.
    pub fn satisfies(&self, dep: &Dependency) -> bool {
        self.name == dep.name
            && match &self.version {
                Some(version) => dep.constraint.matches(version),
                None => dep.constraint.matches_unversioned(),
            }
    }
}

impl FromStr for Provide {
    type Err = DependencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Provide::parse(s)
    }
}

impl fmt::Display for Provide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}={version}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(s: &str) -> Dependency {
        Dependency::parse(s).unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    fn ver(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    #[test]
    fn parses_atoms() {
        /// (atom, name, constraint, conflict)
        type Case<'a> = (&'a str, &'a str, Option<(Op, &'a str)>, bool);
        let cases: &[Case] = &[
            ("musl", "musl", None, false),
            ("so:libc.musl-x86_64.so.1", "so:libc.musl-x86_64.so.1", None, false),
            ("cmd:sh", "cmd:sh", None, false),
            ("cmd:[", "cmd:[", None, false),
            ("pc:zlib", "pc:zlib", None, false),
            ("/bin/sh", "/bin/sh", None, false),
            ("alpine-baselayout-data=3.4.0-r0", "alpine-baselayout-data", Some((Op::Equal, "3.4.0-r0")), false),
            ("openssl>3", "openssl", Some((Op::Greater, "3")), false),
            ("abuild>=2.20.0", "abuild", Some((Op::GreaterEqual, "2.20.0")), false),
            ("lua5.1-bit32<26", "lua5.1-bit32", Some((Op::Less, "26")), false),
            ("foo<=1.2", "foo", Some((Op::LessEqual, "1.2")), false),
            ("tzdata~2023", "tzdata", Some((Op::Fuzzy, "2023")), false),
            ("tzdata=~2023", "tzdata", Some((Op::Fuzzy, "2023")), false),
            ("foo>~1.2", "foo", Some((Op::GreaterFuzzy, "1.2")), false),
            ("!busybox-binsh", "busybox-binsh", None, true),
            ("!openssl<3", "openssl", Some((Op::Less, "3")), true),
            ("so:libfoo.so.1=1.2.3", "so:libfoo.so.1", Some((Op::Equal, "1.2.3")), false),
        ];
        for &(atom, name, constraint, conflict) in cases {
            let d = dep(atom);
            assert_eq!(d.name.as_str(), name, "{atom}");
            assert_eq!(d.conflict, conflict, "{atom}");
            let expected = match constraint {
                None => Constraint::Any,
                Some((op, v)) => Constraint::Version(op, ver(v)),
            };
            assert_eq!(d.constraint, expected, "{atom}");
        }
        assert_eq!(dep("tzdata=~2023").to_string(), "tzdata~2023");
        assert_eq!(dep("!openssl<3").to_string(), "!openssl<3");
    }

    #[test]
    fn rejects_bad_atoms_with_clear_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty package name in ``"),
            ("!", "empty package name in `!`"),
            (">=1.0", "empty package name in `>=1.0`"),
            (
                "foo<>1",
                "invalid operator `<>` in `foo<>1`: use one of `=`, `<`, `<=`, `>`, `>=`, `~`, \
                 `<~`, `>~`",
            ),
            ("foo>=", "missing version after `>=` in `foo>=`"),
            (
                "foo=1.0bc",
                "invalid version in `foo=1.0bc`: invalid version `1.0bc` at byte 4: a letter \
                 may only follow a number; an apk version looks like `1.2.3_rc1-r0`",
            ),
            (
                "fo!o",
                "invalid package name `fo!o`: names may not contain whitespace, control \
                 characters or any of `<>=~!`",
            ),
        ];
        for &(atom, message) in cases {
            match Dependency::parse(atom) {
                Ok(d) => panic!("`{atom}` should be rejected, got {d:?}"),
                Err(e) => assert_eq!(e.to_string(), message, "{atom}"),
            }
        }
    }

    #[test]
    fn constraints_match_versions() {
        let cases: &[(&str, &str, bool)] = &[
            ("a", "1.0", true),
            ("a=1.2-r0", "1.2-r0", true),
            ("a=1.2-r0", "1.2-r1", false),
            ("a=1.2", "1.2-r0", false),
            ("a>=1.2", "1.2", true),
            ("a>=1.2", "1.10", true),
            ("a>=1.2", "1.2_rc1", false),
            ("a>1.2", "1.2", false),
            ("a>1.2", "1.2-r1", true),
            ("a<1.2", "1.2_rc1", true),
            ("a<1.2", "1.2", false),
            ("a<=1.2", "1.2", true),
            ("a~1.2", "1.2", true),
            ("a~1.2", "1.2.9", true),
            ("a~1.2", "1.2_rc1", true),
            ("a~1.2", "1.2-r3", true),
            ("a~1.2", "1.20", false),
            ("a~1.2", "1.3", false),
            ("a<~1.2", "1.1", true),
            ("a<~1.2", "1.2.5", true),
            ("a<~1.2", "1.3", false),
            ("a>~1.2", "1.2.5", true),
            ("a>~1.2", "1.1", false),
            ("a~2023", "2023c-r0", true),
        ];
        for &(atom, version, expected) in cases {
            assert_eq!(dep(atom).constraint.matches(&ver(version)), expected, "{version} vs {atom}");
        }
    }

    #[test]
    fn provides() {
        let p = Provide::parse("so:libc.musl-aarch64.so.1=1").expect("versioned provide");
        assert_eq!(p.version.as_ref().map(Version::as_str), Some("1"));
        assert!(p.satisfies(&dep("so:libc.musl-aarch64.so.1")));
        assert!(p.satisfies(&dep("so:libc.musl-aarch64.so.1>=1")));
        assert!(!p.satisfies(&dep("so:libc.musl-aarch64.so.1>1")));
        assert!(!p.satisfies(&dep("so:libc.so.6")));

        let virt = Provide::parse("custom-ca-certificates").expect("unversioned provide");
        assert_eq!(virt.version, None);
        assert!(virt.satisfies(&dep("custom-ca-certificates")));
        assert!(!virt.satisfies(&dep("custom-ca-certificates>=1")));

        assert_eq!(
            Provide::parse("foo>=1").map_err(|e| e.to_string()),
            Err("invalid provides entry `foo>=1`: a provided name takes only `=version`".to_owned())
        );
        let list = Provide::parse_list("cmd:busybox=1.35.0-r29 /bin/sh").expect("list");
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["cmd:busybox=1.35.0-r29", "/bin/sh"]);
    }

    #[test]
    fn parses_lists() {
        let deps =
            Dependency::parse_list("alpine-baselayout-data=3.4.0-r0 /bin/sh  so:libc.musl-aarch64.so.1").expect("list");
        let shown: Vec<String> = deps.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["alpine-baselayout-data=3.4.0-r0", "/bin/sh", "so:libc.musl-aarch64.so.1"]);
        assert!(Dependency::parse_list("").expect("empty list").is_empty());
    }
}
