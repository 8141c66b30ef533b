//! Starlark loading (`load::Loader`): a `WORKSPACE`, a `BUILD` file and a `.bzl` module it
//! may `load("//:fuzz.bzl", ...)`, evaluated in a scratch workspace that also holds a copy
//! of the repository's `rules/` (so `load("//rules:defs.bzl", ...)` and its macros work).
//! `Loader::new` evaluates the `WORKSPACE`, `Loader::package` the root `BUILD` file, its
//! loads, rule calls and attribute conversion into targets.
//!
//! Input: sections separated by lines `%%`: the `BUILD` file, then optionally `fuzz.bzl`,
//! then optionally the `WORKSPACE` (default: `workspace(name = "fuzz")`).
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use executor::label::PackagePath;
use executor::load::Loader;
use libfuzzer_sys::fuzz_target;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read rules dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).expect("copy rules file");
        }
    }
}

static ROOT: LazyLock<PathBuf> = LazyLock::new(|| {
    let root = executor_fuzz::scratch_dir("starlark_load");
    copy_dir(&executor_fuzz::repo_root().join("rules"), &root.join("rules"));
    std::fs::write(root.join("hello.txt"), "hello\n").expect("write a source file");
    root
});

fuzz_target!(|data: &[u8]| {
    let parts = executor_fuzz::sections(data);
    let root = ROOT.as_path();
    let (Ok(build), Ok(bzl), Ok(workspace)) = (
        std::str::from_utf8(parts[0]),
        std::str::from_utf8(parts.get(1).copied().unwrap_or_default()),
        std::str::from_utf8(parts.get(2).copied().unwrap_or(b"workspace(name = \"fuzz\")\n")),
    ) else {
        return;
    };
    std::fs::write(root.join("BUILD"), build).expect("write BUILD");
    std::fs::write(root.join("fuzz.bzl"), bzl).expect("write fuzz.bzl");
    std::fs::write(root.join("WORKSPACE"), workspace).expect("write WORKSPACE");
    let Ok(loader) =
        Loader::new(root.to_path_buf(), "WORKSPACE", executor::load::Limits::DEFAULT, executor::commands::registry())
    else {
        return;
    };
    if let Ok(Some(package)) = loader.package(None, &PackagePath::root()) {
        for target in package.targets.values() {
            let _ = format!("{target:?}");
        }
    }
});
