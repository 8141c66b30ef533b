//! The cache under stress: killed builds, concurrent builds, corrupted entries.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use crate::harness::{to_run, Workspace};

/// A workspace of `n` targets whose outputs are large enough that a build takes a while.
fn big_workspace(n: usize, size: usize) -> Workspace {
    let build = format!(
        "[write_file(name = \"t%d\" % i, out = \"out/t%d.txt\" % i, content = (\"%d-\" % i) * {}) for i in range({n})]\n",
        size / 4
    );
    Workspace::new().file("p/BUILD", &build)
}

fn expected_content(i: usize, size: usize) -> String {
    format!("{i}-").repeat(size / 4)
}

fn check_outputs(ws: &Workspace, n: usize, size: usize) {
    for i in 0..n {
        let got = fs::read_to_string(ws.root().join(format!("executor-out/p/out/t{i}.txt"))).expect("output exists");
        assert!(got == expected_content(i, size), "output t{i} is wrong after a killed build");
    }
}

#[test]
fn killed_build_then_rebuild_gives_correct_outputs() {
    let (n, size) = (150, 400_000);
    let ws = big_workspace(n, size);
    // Kill at different moments: during loading, while actions run, while materializing.
    for delay_ms in [5u64, 20, 50, 100, 200, 350] {
        let mut child = ws
            .command_in("", &["build", "//p:all", "-j", "2"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Whatever the killed build left under its final names is complete.
        for i in 0..n {
            if let Ok(got) = fs::read_to_string(ws.root().join(format!("executor-out/p/out/t{i}.txt"))) {
                assert!(got == expected_content(i, size), "half-written output t{i} after a kill at {delay_ms} ms");
            }
        }
        verify_store(&ws.cache());
        let run = ws.run(&["build", "//p:all"]).success();
        assert!(run.stdout.contains(&format!("//p:t{}", n - 1)), "{}", run.stdout);
        check_outputs(&ws, n, size);
        // Every store blob still matches its name.
        verify_store(&ws.cache());
        fs::remove_dir_all(ws.root().join("executor-out")).expect("rm");
        fs::remove_dir_all(ws.cache()).expect("rm cache");
    }
}

fn verify_store(cache: &Path) {
    let cas = cache.join("cas/sha256");
    let Ok(shards) = fs::read_dir(&cas) else {
        return;
    }; // killed before the store existed
    for shard in shards {
        for blob in fs::read_dir(shard.expect("shard").path()).expect("shard dir") {
            let path = blob.expect("blob").path();
            let bytes = fs::read(&path).expect("read blob");
            let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
            assert_eq!(executor::digest::Digest::of(&bytes).hex(), name, "corrupt blob {}", path.display());
        }
    }
}

#[test]
fn concurrent_builds_share_one_cache() {
    let (n, size) = (40, 100_000);
    let a = big_workspace(n, size);
    let b = big_workspace(n, size);
    let shared_cache = a.cache();
    // Two workspaces on one cache, plus a second build of the first workspace (which waits
    // for the workspace lock), all at once.
    let mut cmd_b = b.command_in("", &["build", "//p:all"]);
    cmd_b.env("EXECUTOR_CACHE_DIR", &shared_cache);
    let children = vec![
        a.command_in("", &["build", "//p:all"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn a"),
        cmd_b.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("spawn b"),
        a.command_in("", &["build", "//p:all"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn a2"),
    ];
    let runs: Vec<_> = children.into_iter().map(|c| to_run(c.wait_with_output().expect("wait"))).collect();
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    assert_eq!(runs[0].stdout, runs[1].stdout);
    assert_eq!(runs[0].stdout, runs[2].stdout);
    check_outputs(&a, n, size);
    check_outputs(&b, n, size);
    verify_store(&shared_cache);
}

#[test]
fn corrupted_store_entry_is_detected_and_rebuilt() {
    let ws = Workspace::new().file("p/BUILD", "write_file(name = \"a\", out = \"a.txt\", content = \"precious\")\n");
    let first = ws.run(&["build", "//p:a"]).success();
    let digest = first.stdout.split("sha256:").nth(1).expect("digest").trim().to_owned();
    let blob = ws.cache().join("cas/sha256").join(&digest[..2]).join(&digest);
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&blob, "tampered").expect("tamper");
    fs::remove_dir_all(ws.root().join("executor-out")).expect("rm out");
    let run = ws.run(&["build", "//p:a"]).success();
    assert!(run.stderr.contains("1 action run"), "corrupt entry must not count as a hit: {}", run.stderr);
    assert_eq!(ws.read("executor-out/p/a.txt"), "precious");
    assert_eq!(run.stdout, first.stdout);
    verify_store(&ws.cache());
}

#[test]
fn edited_output_is_restored() {
    // Two outputs with the same bytes: both are links to one blob of the store.
    let ws = Workspace::new().file(
        "p/BUILD",
        "write_file(name = \"a\", out = \"a.txt\", content = \"precious\")\nwrite_file(name = \"b\", out = \"b.txt\", content = \"precious\")\n",
    );
    ws.run(&["build", "//p:all"]).success();
    // A user (root, whom the read-only mode does not stop) edits one materialized output in
    // place, which edits the blob behind both: the next build finds out, runs the action
    // again, and puts the right bytes back in both, and in the store.
    std::thread::sleep(Duration::from_millis(20));
    ws.write("executor-out/p/a.txt", "edited!!");
    let run = ws.run(&["build", "//p:all"]).success();
    // Which actions run again depends on which worker finds the corrupt blob first (or, when
    // the two outputs were not the same inode, none needs to): what matters is below.
    assert!(run.stderr.contains("build succeeded"), "{}", run.stderr);
    assert_eq!(ws.read("executor-out/p/a.txt"), "precious");
    assert_eq!(ws.read("executor-out/p/b.txt"), "precious");
    verify_store(&ws.cache());
    let run = ws.run(&["build", "//p:all"]).success();
    assert!(run.stderr.contains("0 actions run, 2 cache hits"), "{}", run.stderr);
}

#[test]
fn source_edits_are_seen() {
    let ws = Workspace::new().file("p/BUILD", "filegroup(name = \"g\", srcs = [\"a.txt\"])\n").file("p/a.txt", "one");
    let first = ws.run(&["build", "//p:g"]).success();
    ws.write("p/a.txt", "two");
    let second = ws.run(&["build", "//p:g"]).success();
    assert_ne!(first.stdout, second.stdout);
    assert!(second.stdout.contains(&executor::digest::Digest::of(b"two").to_string()), "{}", second.stdout);
}
