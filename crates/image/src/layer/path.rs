//! [`LayerPath`]: a validated path inside a layer, ordered so that parents come first.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::layer::error::LayerError;

/// A path inside a layer, relative to the image root: `usr/bin/env`, never `/usr/bin/env`.
///
/// Invariants (checked by [`LayerPath::new`]): not empty, no leading `/`, no empty, `.` or
/// `..` components (so no `//` and no trailing `/`), no NUL byte and no other control
/// character (a line break in a path would forge records in the line-based apk database
/// that scanners read, or in a listing). It is UTF-8 because it is a
/// `String`; names that are not ASCII are written with a PAX `path` record.
///
/// Ordering compares the list of components, byte by byte: `a` < `a/b` < `a/c` < `a-b` <
/// `ab`. This is not the order of the raw strings (`a-b` < `a/b` there, because `-` is
/// below `/`); it is the order that keeps every directory immediately followed by all of its
/// descendants, so a [`std::collections::BTreeMap`] keyed by `LayerPath` iterates parents
/// before children and each subtree as one contiguous range.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LayerPath(String);

impl LayerPath {
    /// Validates `path` and wraps it.
    pub fn new(path: impl Into<String>) -> Result<Self, LayerError> {
        let path = path.into();
        if path.is_empty() {
            return Err(LayerError::EmptyPath);
        }
        let reject = |reason| LayerError::InvalidPath { path: path.escape_debug().to_string(), reason };
        if path.contains('\0') {
            return Err(reject("it contains a NUL byte"));
        }
        if path.chars().any(char::is_control) {
            return Err(reject("it contains a control character (a line break, a tab, an escape...)"));
        }
        if path.starts_with('/') {
            return Err(reject("it must be relative (drop the leading `/`)"));
        }
        for component in path.split('/') {
            match component {
                "" => return Err(reject("empty components (`//` or a trailing `/`) are not allowed")),
                "." => return Err(reject("`.` components are not allowed")),
                ".." => return Err(reject("`..` components are not allowed")),
                _ => {}
            }
        }
        Ok(Self(path))
    }

    /// The path as written in the layer (without a trailing `/`, even for directories).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        match self.0.rfind('/') {
            Some(slash) => &self.0[slash + 1..],
            None => &self.0,
        }
    }

    /// The directory holding this path, or `None` at the top level.
    pub fn parent(&self) -> Option<LayerPath> {
        self.0.rfind('/').map(|slash| LayerPath(self.0[..slash].to_owned()))
    }

    /// All ancestors, innermost first: `a/b/c` gives `a/b`, then `a`.
    pub fn ancestors(&self) -> impl Iterator<Item = LayerPath> + '_ {
        self.0.char_indices().rev().filter(|&(_, c)| c == '/').map(|(slash, _)| LayerPath(self.0[..slash].to_owned()))
    }

    /// This path with one more component; `name` must be a single valid component.
    pub fn join(&self, name: &str) -> Result<LayerPath, LayerError> {
        if name.contains('/') {
            return Err(LayerError::InvalidPath {
                path: format!("{}/{}", self.0, name.escape_debug()),
                reason: "`join` takes a single component",
            });
        }
        LayerPath::new(format!("{}/{}", self.0, name))
    }

    /// Whether `other` lies strictly below this path.
    pub fn is_ancestor_of(&self, other: &LayerPath) -> bool {
        other.0.len() > self.0.len() && other.0.starts_with(&self.0) && other.0.as_bytes()[self.0.len()] == b'/'
    }
}

impl Ord for LayerPath {
    fn cmp(&self, other: &Self) -> Ordering {
        // Comparing component lists is the same as comparing the bytes with `/` ranked
        // below every other byte: at the first difference, a `/` means "this component
        // ended first". NUL never occurs, so the mapping is injective and agrees with `Eq`.
        let rank = |b: u8| if b == b'/' { 0 } else { b };
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        for (&x, &y) in a.iter().zip(b) {
            match rank(x).cmp(&rank(y)) {
                Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        a.len().cmp(&b.len())
    }
}

impl PartialOrd for LayerPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LayerPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayerPath({:?})", self.0)
    }
}

impl FromStr for LayerPath {
    type Err = LayerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LayerPath::new(s)
    }
}

impl TryFrom<&str> for LayerPath {
    type Error = LayerError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        LayerPath::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> LayerPath {
        LayerPath::new(s).expect("valid test path")
    }

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "a",
            "usr/bin/env",
            "etc/ssl/certs/ca-certificates.crt",
            "..a/b..",
            ".hidden/.x",
            "with space/ü-nicode",
            "a\\b",
        ] {
            assert_eq!(path(ok).as_str(), ok);
        }
    }

    #[test]
    fn rejects_bad_paths_with_exact_text() {
        let cases = [
            ("", "invalid layer path: it is empty"),
            ("/etc/passwd", "invalid layer path `/etc/passwd`: it must be relative (drop the leading `/`)"),
            ("../etc", "invalid layer path `../etc`: `..` components are not allowed"),
            ("a/../../b", "invalid layer path `a/../../b`: `..` components are not allowed"),
            ("./a", "invalid layer path `./a`: `.` components are not allowed"),
            ("a/.", "invalid layer path `a/.`: `.` components are not allowed"),
            (
                "a//b",
                "invalid layer path `a//b`: empty components (`//` or a trailing `/`) are not \
                 allowed",
            ),
            (
                "a/",
                "invalid layer path `a/`: empty components (`//` or a trailing `/`) are not \
                 allowed",
            ),
            ("a\0b", "invalid layer path `a\\0b`: it contains a NUL byte"),
        ];
        for (input, text) in cases {
            let error = LayerPath::new(input).expect_err(input);
            assert_eq!(error.to_string(), text, "input {input:?}");
        }
    }

    #[test]
    fn orders_by_components_so_parents_come_first() {
        let mut paths: Vec<LayerPath> =
            ["ab", "a-b", "a/c", "a", "a/b/c", "a/b", "a.b", "b", "a/b-c", "a/b/d", "A", "a0"]
                .into_iter()
                .map(path)
                .collect();
        paths.sort();
        let sorted: Vec<&str> = paths.iter().map(LayerPath::as_str).collect();
        assert_eq!(sorted, ["A", "a", "a/b", "a/b/c", "a/b/d", "a/b-c", "a/c", "a-b", "a.b", "a0", "ab", "b"]);
        // Every path comes after all of its ancestors.
        for (i, p) in paths.iter().enumerate() {
            for ancestor in p.ancestors() {
                let at = paths.iter().position(|q| *q == ancestor);
                if let Some(at) = at {
                    assert!(at < i, "{ancestor} must precede {p}");
                }
            }
        }
    }

    #[test]
    fn ordering_is_component_wise_not_bytewise() {
        // Raw strings would put `a-b` (0x2d) before `a/b` (0x2f).
        assert!(path("a/b") < path("a-b"));
        assert!(path("a/zzz") < path("a!"));
        assert!(path("a") < path("a/b"));
        assert_eq!(path("a/b").cmp(&path("a/b")), Ordering::Equal);
    }

    #[test]
    fn navigation() {
        let p = path("usr/lib/libc.so");
        assert_eq!(p.file_name(), "libc.so");
        assert_eq!(p.parent(), Some(path("usr/lib")));
        assert_eq!(path("usr").parent(), None);
        let ancestors: Vec<String> = p.ancestors().map(|a| a.to_string()).collect();
        assert_eq!(ancestors, ["usr/lib", "usr"]);
        assert_eq!(p.components().collect::<Vec<_>>(), ["usr", "lib", "libc.so"]);
        assert!(path("usr").is_ancestor_of(&p));
        assert!(!path("us").is_ancestor_of(&p));
        assert!(!p.is_ancestor_of(&p));
        assert_eq!(path("usr").join("bin").expect("join"), path("usr/bin"));
        assert_eq!(
            path("usr").join("a/b").expect_err("two components").to_string(),
            "invalid layer path `usr/a/b`: `join` takes a single component"
        );
        assert_eq!(
            path("usr").join("..").expect_err("dot dot").to_string(),
            "invalid layer path `usr/..`: `..` components are not allowed"
        );
    }
}
