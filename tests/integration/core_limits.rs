//! Hostile input: deep target graphs and `load()` chains work; runaway Starlark stops with
//! an exact error naming the file, line and column and the flag that raises the limit,
//! within a few hundred MiB; nothing crashes (no panic, stack overflow or abort).

use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::Workspace;

/// A `BUILD` file declaring `//p:t0` .. `//p:t<n-1>`, each depending on the one before,
/// the first on the source file `a.txt`.
fn filegroup_chain(n: usize) -> String {
    format!(
        "filegroup(name = \"t0\", srcs = [\"a.txt\"])\n\
         [filegroup(name = \"t%d\" % i, srcs = [\":t%d\" % (i - 1)]) for i in range(1, {n})]\n"
    )
}

#[test]
fn filegroup_chain_100000_deep_builds_and_queries() {
    let n = 100_000;
    let ws = Workspace::new().file("p/BUILD", &filegroup_chain(n)).file("p/a.txt", "a");
    let last = format!("//p:t{}", n - 1);
    let run = ws.run(&["build", &last]).success();
    assert_eq!(
        run.stdout,
        format!("{last}\n  p/a.txt  {}\n", executor::digest::Digest::of(b"a")),
        "the chain provides its one file"
    );
    let run = ws.run(&["query", &format!("deps({last})"), "--output", "label"]).success();
    let labels: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(labels.len(), n + 1, "every target and the file");
    assert_eq!((labels[0], labels[1], labels[n]), ("//p:a.txt", "//p:t0", "//p:t99999"));
}

#[test]
fn load_chain_10000_deep() {
    let n = 10_000;
    let ws = Workspace::new()
        .file("p/BUILD", "load(\":m0.bzl\", \"v0\")\nwrite_file(name = \"x\", out = \"x.txt\", content = str(v0))\n");
    for i in 0..n {
        let text = if i + 1 < n {
            format!("load(\":m{next}.bzl\", \"v{next}\")\nv{i} = v{next} + 1\n", next = i + 1)
        } else {
            format!("v{i} = 0\n")
        };
        ws.write(&format!("p/m{i}.bzl"), &text);
    }
    let run = ws.run(&["query", "//p:x", "--output", "json"]).success();
    assert!(run.stdout.contains("\"content\": \"9999\""), "{}", run.stdout);
}

#[test]
fn load_cycle_in_a_long_chain_is_named() {
    let ws = Workspace::new().file("p/BUILD", "load(\":m0.bzl\", \"v0\")\n");
    for i in 0..1000 {
        ws.write(&format!("p/m{i}.bzl"), &format!("load(\":m{}.bzl\", \"v\")\nv{i} = 1\n", (i + 1) % 1000));
    }
    let run = ws.run(&["query", "//p:all"]).failure(1);
    assert!(
        run.stderr.starts_with("error: p/m999.bzl:1:6: load cycle: `//p:m0.bzl` -> `//p:m1.bzl` -> "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.ends_with("`//p:m999.bzl` -> `//p:m0.bzl`\n"), "{}", run.stderr);
}

/// A load cycle through six packages whose `BUILD` files load in parallel (`//...`): each
/// run ends with the cycle named, never hangs (a review found a per-thread cycle check
/// could wait forever on a module another thread was loading).
#[test]
fn load_cycle_across_packages_loaded_in_parallel_ends() {
    let ws = Workspace::new();
    for i in 0..6 {
        ws.write(&format!("p{i}/m.bzl"), &format!("load(\"//p{}:m.bzl\", \"v\")\nv = 1\n", (i + 1) % 6));
        ws.write(&format!("p{i}/BUILD"), "load(\":m.bzl\", \"v\")\nfilegroup(name = \"x\", srcs = [])\n");
    }
    for _ in 0..10 {
        let mut child =
            ws.command_in("", &["query", "//..."]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("`executor query //...` still runs after 60 s: the load cycle hangs");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read");
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(": load cycle: `//p"), "{stderr}");
    }
}

const DOUBLING: &str = "
def double():
    s = \"x\"
    for i in range(64):
        s = s + s
    return s

y = double()
";

const ENDLESS: &str = "
def spin():
    for a in range(10000000):
        for b in range(10000000):
            pass

y = spin()
";

const RECURSION: &str = "
def down(n):
    return down(n + 1)

y = down(0)
";

const DEEP_VALUE: &str = "
def nest():
    x = ()
    for i in range(2000000):
        x = (x,)
    return x

y = nest()
";

/// A snapshot name, the files of the workspace, and the command line.
type Case = (&'static str, Vec<(&'static str, String)>, Vec<&'static str>);

/// Each command must fail with exit code 1, having used at most [`MAX_RSS_MIB`].
fn cases() -> Vec<Case> {
    let uses_y = || ("p/BUILD", "load(\":defs.bzl\", \"y\")\n".to_owned());
    vec![
        ("huge_range", vec![("p/BUILD", "x = [x for x in range(1000000000)]\n".into())], vec!["query", "//p:all"]),
        ("huge_string_repeat", vec![("p/BUILD", "x = \"x\" * 2000000000\n".into())], vec!["query", "//p:all"]),
        ("huge_string_repeat_shift", vec![("p/BUILD", "x = \"x\" * (1 << 40)\n".into())], vec!["query", "//p:all"]),
        ("huge_list_repeat", vec![("p/BUILD", "x = [1] * (1 << 30)\n".into())], vec!["query", "//p:all"]),
        ("string_doubling", vec![uses_y(), ("p/defs.bzl", DOUBLING.into())], vec!["query", "//p:all"]),
        (
            "string_join_in_one_statement",
            vec![uses_y(), ("p/defs.bzl", "y = \"\".join([\"x\" * 1000000] * 2000)\n".into())],
            vec!["query", "//p:all"],
        ),
        ("endless_loop", vec![uses_y(), ("p/defs.bzl", ENDLESS.into())], vec!["build", "//p:all"]),
        (
            "slow_loop_timeout",
            vec![uses_y(), ("p/defs.bzl", ENDLESS.into())],
            vec!["query", "//p:all", "--starlark-timeout", "1", "--starlark-max-steps", "1000000000000"],
        ),
        ("endless_loop_in_workspace", vec![("WORKSPACE", ENDLESS.into())], vec!["query", "//..."]),
        ("endless_recursion", vec![uses_y(), ("p/defs.bzl", RECURSION.into())], vec!["query", "//p:all"]),
        (
            "deep_syntax",
            vec![("p/BUILD", format!("x = {}{}\n", "[".repeat(2000), "]".repeat(2000)))],
            vec!["query", "//p:all"],
        ),
        ("deep_values", vec![uses_y(), ("p/defs.bzl", DEEP_VALUE.into())], vec!["query", "//p:all"]),
    ]
}

/// The most resident memory a runaway evaluation may reach under the default limits.
const MAX_RSS_MIB: u64 = 640;

#[test]
fn runaway_evaluation_stops_with_exact_text() {
    for (name, files, args) in cases() {
        let ws = Workspace::new();
        for (path, content) in files {
            ws.write(path, &content);
        }
        let (run, rss_mib) = ws.run_measuring_memory(&args);
        assert_eq!(run.code, 1, "{name}: expected exit code 1\n{}", run.stderr);
        eprintln!("{name}: peak {rss_mib} MiB");
        assert!(rss_mib <= MAX_RSS_MIB, "{name}: used {rss_mib} MiB of memory\n{}", run.stderr);
        insta::assert_snapshot!(name, run.normalized(&ws));
    }
}

#[test]
fn limits_are_raised_by_flags() {
    let ws = Workspace::new().file("p/BUILD", "x = [i for a in range(2000) for i in range(1000)]\n");
    ws.run(&["query", "//p:all"]).success();
    let run = ws.run(&["query", "//p:all", "--starlark-max-steps", "1000000"]).failure(1);
    insta::assert_snapshot!("steps_limit_flag", run.normalized(&ws));
    let run = ws.run(&["query", "//p:all", "--starlark-max-memory", "0"]).failure(2);
    assert_eq!(run.stderr, "error: `--starlark-max-memory` must be at least 1\n");
}
