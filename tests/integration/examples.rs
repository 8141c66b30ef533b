//! Every `examples/*/` workspace builds, and builds the same outputs twice.

use std::path::Path;
use std::process::Command;

use crate::harness::{executor_bin, normalize_time, to_run};

#[test]
fn every_example_builds() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut names: Vec<String> = std::fs::read_dir(&examples)
        .expect("examples/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("WORKSPACE").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no examples found in {}", examples.display());
    for name in names {
        // Build a copy so the source tree stays clean and the cache is fresh.
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = examples.join(&name);
        let cache = temp.path().join("cache");
        let out = Command::new(executor_bin())
            .args(["build", "//..."])
            .current_dir(&dir)
            .env("EXECUTOR_CACHE_DIR", &cache)
            .output()
            .expect("run executor");
        let run = to_run(out);
        assert_eq!(run.code, 0, "example {name} failed:\n{}", run.stderr);
        insta::assert_snapshot!(
            format!("example_{name}"),
            format!("{}--- stderr\n{}", run.stdout, normalize_time(&run.stderr))
        );
        std::fs::remove_dir_all(dir.join("executor-out")).expect("clean example outputs");
    }
}
