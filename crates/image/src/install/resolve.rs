//! Paths inside the image root: turning what a package (or the caller) names into a
//! [`LayerPath`], and following symlinks that are already in the tree without ever leaving
//! the root.
//!
//! Two kinds of path are involved:
//! - the **package path**: the name as written in the package's data, after lexical
//!   cleaning (`./usr/bin/` -> `usr/bin`). It is what the installed database records.
//! - the **tree path**: where the entry really lands once symlinked parent directories are
//!   followed (`lib/x` with `lib -> usr/lib` lands at `usr/lib/x`). The tree holds no entry
//!   below a symlink, so this is the only path an entry can be written at.

use std::collections::VecDeque;

use crate::install::error::Unsafe;
use crate::layer::{EntryKind, LayerPath, LayerTree};

/// How many symlinks one resolution may follow, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// Cleans a path as written in package data: drops `.` components, empty components and a
/// trailing `/`; refuses absolute paths and `..`. Returns `None` for the root itself (`./`),
/// which carries nothing to install.
pub(crate) fn package_path(raw: &str) -> Result<Option<LayerPath>, Unsafe> {
    if raw.starts_with('/') {
        return Err(Unsafe::Absolute);
    }
    clean(raw)
}

/// Cleans a destination chosen by the caller (`/etc/app.conf` or `etc/app.conf`): as
/// [`package_path`], but a leading `/` means the image root. The root itself is refused.
pub(crate) fn destination_path(raw: &str) -> Result<LayerPath, Unsafe> {
    clean(raw.trim_start_matches('/'))?.ok_or(Unsafe::Root)
}

/// Cleans a home directory (`/home/nonroot`); `None` for the root itself.
pub(crate) fn home_path(raw: &str) -> Result<Option<LayerPath>, Unsafe> {
    clean(raw.trim_start_matches('/'))
}

fn clean(raw: &str) -> Result<Option<LayerPath>, Unsafe> {
    if raw.contains('\0') {
        return Err(Unsafe::Nul);
    }
    let mut parts = Vec::new();
    for component in raw.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err(Unsafe::DotDot),
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    // Every rule of `LayerPath` is checked above, so this cannot fail; map it anyway.
    LayerPath::new(parts.join("/")).map(Some).map_err(|e| Unsafe::Invalid(e.to_string()))
}

/// Where `path` lands in `tree`: every component but the last is followed if it is a
/// symlink (absolute targets start at the image root). Fails if a followed symlink leads
/// outside the root or symlinks nest deeper than Linux allows.
pub(crate) fn resolve_parent(tree: &LayerTree, path: &LayerPath) -> Result<LayerPath, Unsafe> {
    let components: Vec<String> = path.components().map(str::to_owned).collect();
    let parts = walk(tree, components, false)?;
    join(&parts).ok_or(Unsafe::Root)
}

/// Where `path` finally points: like [`resolve_parent`], and the last component is followed
/// too. `None` means the image root.
pub(crate) fn resolve_full(tree: &LayerTree, path: &LayerPath) -> Result<Option<LayerPath>, Unsafe> {
    let components: Vec<String> = path.components().map(str::to_owned).collect();
    Ok(join(&walk(tree, components, true)?))
}

/// Checks that a symlink at `link` (a tree path) with a relative `target` stays inside the
/// root when read lexically from the link's own directory. Absolute targets are relative to
/// the image root and always stay inside; they are checked when something goes through them.
pub(crate) fn check_symlink_target(link: &LayerPath, target: &str) -> Result<(), Unsafe> {
    if target.starts_with('/') {
        return Ok(());
    }
    let mut depth = link.components().count() - 1;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                depth =
                    depth.checked_sub(1).ok_or_else(|| Unsafe::SymlinkTargetEscapes { target: target.to_owned() })?
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

/// Resolves `components` against `tree` like the kernel would inside a chroot, except that
/// `..` above the root is an error instead of staying at the root.
fn walk(tree: &LayerTree, components: Vec<String>, follow_last: bool) -> Result<Vec<String>, Unsafe> {
    let mut todo: VecDeque<String> = components.into();
    let mut done: Vec<String> = Vec::new();
    let mut hops = 0;
    // The symlink being followed, for the error message.
    let mut via: Option<(LayerPath, String)> = None;
    let escape = |via: &Option<(LayerPath, String)>| match via {
        Some((link, target)) => Unsafe::ThroughSymlink { link: link.to_string(), target: target.clone() },
        None => Unsafe::DotDot,
    };
    while let Some(component) = todo.pop_front() {
        match component.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop().ok_or_else(|| escape(&via))?;
                continue;
            }
            _ => {}
        }
        done.push(component);
        if todo.is_empty() && !follow_last {
            break;
        }
        let Some(here) = join(&done) else { continue };
        if let Some(EntryKind::Symlink(target)) = tree.get(&here).map(|e| &e.kind) {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(Unsafe::SymlinkLoop { link: here.to_string() });
            }
            done.pop();
            if target.starts_with('/') {
                done.clear();
            }
            for part in target.split('/').rev() {
                todo.push_front(part.to_owned());
            }
            via = Some((here, target.clone()));
        }
    }
    Ok(done)
}

fn join(parts: &[String]) -> Option<LayerPath> {
    if parts.is_empty() {
        return None;
    }
    LayerPath::new(parts.join("/")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Entry;

    fn path(s: &str) -> LayerPath {
        LayerPath::new(s).expect("valid test path")
    }

    #[test]
    fn cleans_package_paths() {
        let ok =
            [("usr/bin/", Some("usr/bin")), ("./etc/passwd", Some("etc/passwd")), ("./", None), ("a//b", Some("a/b"))];
        for (raw, want) in ok {
            assert_eq!(package_path(raw).expect(raw).as_ref().map(LayerPath::as_str), want, "{raw}");
        }
        let bad = [
            ("/etc/passwd", "absolute paths are not allowed in package data"),
            ("../etc/passwd", "`..` components would leave the image root"),
            ("usr/../../x", "`..` components would leave the image root"),
            ("a\0b", "it contains a NUL byte"),
        ];
        for (raw, text) in bad {
            assert_eq!(package_path(raw).expect_err(raw).to_string(), text, "{raw}");
        }
        assert_eq!(destination_path("/etc/app.conf").expect("dest"), path("etc/app.conf"));
        assert_eq!(destination_path("/").expect_err("root").to_string(), "it names the image root itself");
    }

    #[test]
    fn follows_symlinks_inside_the_root() {
        let mut tree = LayerTree::new();
        tree.insert(path("usr/lib"), Entry::directory()).expect("dir");
        tree.insert(path("lib"), Entry::symlink("usr/lib")).expect("link");
        tree.insert(path("usr/lib64"), Entry::symlink("../lib")).expect("link");
        tree.insert(path("var/run"), Entry::symlink("/run")).expect("link");
        tree.insert(path("evil"), Entry::symlink("../../..")).expect("link");
        tree.insert(path("abs-evil"), Entry::symlink("/../x")).expect("link");
        tree.insert(path("loop"), Entry::symlink("loop")).expect("link");

        assert_eq!(resolve_parent(&tree, &path("lib/x")).expect("ok"), path("usr/lib/x"));
        assert_eq!(resolve_parent(&tree, &path("usr/lib64/x")).expect("ok"), path("usr/lib/x"));
        assert_eq!(resolve_parent(&tree, &path("var/run/x")).expect("ok"), path("run/x"));
        // The last component is not followed.
        assert_eq!(resolve_parent(&tree, &path("lib")).expect("ok"), path("lib"));
        assert_eq!(resolve_full(&tree, &path("lib")).expect("ok"), Some(path("usr/lib")));

        let cases = [
            ("evil/etc/passwd", "it goes through symlink `evil` -> `../../..`, which leads outside the image root"),
            ("abs-evil/y", "it goes through symlink `abs-evil` -> `/../x`, which leads outside the image root"),
            ("loop/x", "too many levels of symlinks at `loop`"),
        ];
        for (raw, text) in cases {
            assert_eq!(resolve_parent(&tree, &path(raw)).expect_err(raw).to_string(), text, "{raw}");
        }
    }

    #[test]
    fn symlink_targets_must_stay_inside() {
        let ok = [("usr/bin/x", "../lib/y"), ("usr/bin/x", "../../etc"), ("a", "/anywhere/../at/all"), ("a", "b")];
        for (link, target) in ok {
            check_symlink_target(&path(link), target).expect(target);
        }
        let bad = [("usr/bin/x", "../../../etc/passwd"), ("a", ".."), ("a/b", "c/../../..")];
        for (link, target) in bad {
            let err = check_symlink_target(&path(link), target).expect_err(target);
            assert_eq!(err.to_string(), format!("its target `{target}` leads outside the image root"));
        }
    }
}
