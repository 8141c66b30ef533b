//! Building, querying and cleaning whole workspaces.

use std::process::Command;

use crate::harness::{to_run, tree_contents, Workspace};

const DEFS: &str = r#"
def greeting(name, who, **kwargs):
    """Writes `hello <who>` to `<name>.txt`."""
    native.write_file(name = name, out = name + ".txt", content = "hello %s\n" % who, **kwargs)
"#;

fn sample() -> Workspace {
    Workspace::new()
        .file("rules/BUILD", "")
        .file("rules/defs.bzl", DEFS)
        .file(
            "app/BUILD",
            r##"load("//rules:defs.bzl", "greeting")

greeting(name = "hi", who = "world")

write_file(
    name = "tool",
    out = "bin/tool.sh",
    content = "#!/bin/sh\necho " + package_name() + "\n",
    is_executable = True,
)

filegroup(
    name = "bundle",
    srcs = [":hi", ":tool", "data/config.txt"] + glob(["docs/*.md"], exclude = ["docs/skip.md"]),
)
"##,
        )
        .file("app/data/config.txt", "key = value\n")
        .file("app/docs/a.md", "# a\n")
        .file("app/docs/skip.md", "# skip\n")
        .file("lib/BUILD", "filegroup(name = \"lib\", srcs = [\"//app:hi\"])\n")
}

#[test]
fn build_prints_outputs_and_materializes_them() {
    let ws = sample();
    let run = ws.run(&["build", "//app:bundle", "//lib"]).success();
    insta::assert_snapshot!("build_bundle", run.normalized(&ws));
    assert_eq!(ws.read("executor-out/app/hi.txt"), "hello world\n");
    assert_eq!(ws.read("executor-out/app/bin/tool.sh"), "#!/bin/sh\necho app\n");
    let files = tree_contents(&ws.root().join("executor-out"));
    let modes: Vec<(String, u32)> = files.into_iter().map(|(p, _, m)| (p, m)).collect();
    // Outputs are read-only, as Bazel makes them.
    assert_eq!(modes, [("app/bin/tool.sh".to_owned(), 0o555), ("app/hi.txt".to_owned(), 0o444)]);
}

#[test]
fn second_build_runs_no_action() {
    let ws = sample();
    let first = ws.run(&["build", "//..."]).success();
    assert!(first.stderr.contains("2 actions run, 0 cache hits"), "{}", first.stderr);
    let second = ws.run(&["build", "//..."]).success();
    assert!(second.stderr.contains("0 actions run, 2 cache hits"), "{}", second.stderr);
    assert_eq!(first.stdout, second.stdout);
    // An edit reruns exactly the affected action.
    ws.write("app/BUILD", &ws.read("app/BUILD").replace("who = \"world\"", "who = \"there\""));
    let third = ws.run(&["build", "//..."]).success();
    assert!(third.stderr.contains("1 action run, 1 cache hit"), "{}", third.stderr);
    assert_eq!(ws.read("executor-out/app/hi.txt"), "hello there\n");
    // Deleting a materialized output restores it from the store without running anything.
    std::fs::remove_file(ws.root().join("executor-out/app/hi.txt")).expect("rm");
    let fourth = ws.run(&["build", "//..."]).success();
    assert!(fourth.stderr.contains("0 actions run, 2 cache hits"), "{}", fourth.stderr);
    assert_eq!(ws.read("executor-out/app/hi.txt"), "hello there\n");
}

#[test]
fn patterns_relative_to_the_current_directory() {
    let ws = sample();
    let run = ws.run_in("app", &["query", ":all", "--output", "label"]).success();
    assert_eq!(run.stdout, "//app:bundle\n//app:hi\n//app:tool\n");
    let run = ws.run_in("app/docs", &["query", "//lib", "--output", "label"]).success();
    assert_eq!(run.stdout, "//lib:lib\n");
    let run = ws.run_in("app", &["build", ":hi"]).success();
    assert!(run.stdout.starts_with("//app:hi\n"), "{}", run.stdout);
}

#[test]
fn query_formats() {
    let ws = sample();
    let all = ws.run(&["query", "//..."]).success();
    insta::assert_snapshot!("query_label_kind", all.stdout);
    // Bazel's spelling of the format works too.
    for spelling in ["label_kind", "label-kind"] {
        let run = ws.run(&["query", "//...", "--output", spelling]).success();
        assert_eq!(run.stdout, all.stdout, "--output {spelling}");
    }
    let deps = ws.run(&["query", "deps(//lib)"]).success();
    insta::assert_snapshot!("query_deps", deps.stdout);
    let json = ws.run(&["query", "deps(//app:bundle)", "--output", "json"]).success();
    insta::assert_snapshot!("query_json", json.stdout);
    let parsed: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid json");
    assert_eq!(parsed.as_array().map(Vec::len), Some(5));
}

/// Bazel's query functions: `rdeps`, `kind`, `somepath`, `allpaths` (quoted arguments too),
/// nested; an unknown function or an unfinished expression is a usage error that says what
/// executor knows.
#[test]
fn query_functions() {
    let ws = sample();
    let q = |expr: &str| ws.run(&["query", expr, "--output", "label"]).success().stdout;
    assert_eq!(q("rdeps(//..., //app:hi)"), "//app:bundle\n//app:hi\n//lib:lib\n");
    assert_eq!(q("kind(write_file, //...)"), "//app:hi\n//app:tool\n");
    assert_eq!(q("kind(\"file rule\", //...)"), "//app:hi\n//app:tool\n");
    assert_eq!(q("kind('source file', deps(//app:bundle))"), "//app:data/config.txt\n//app:docs/a.md\n");
    assert_eq!(q("somepath(//lib, //app:hi)"), "//app:hi\n//lib:lib\n");
    assert_eq!(q("allpaths(//app:bundle, //app:tool)"), "//app:bundle\n//app:tool\n");
    assert_eq!(q("somepath(//app:hi, //lib)"), "", "no path against the edges");
    assert_eq!(q("kind(filegroup, rdeps(//..., kind(write_file, //app:all)))"), "//app:bundle\n//lib:lib\n");
    for (expr, says) in [
        ("rdeps(", "query `rdeps(`: expected a target pattern or a function (at column 7)"),
        ("somefunc(//app:hi)", "unknown function `somefunc`"),
        ("deps(//app:hi", "expected `)`"),
        ("rdeps(//..., //app:hi) extra", "unexpected `extra`"),
    ] {
        let run = ws.run(&["query", expr]).failure(2);
        assert!(run.stderr.contains(says), "{expr}: {}", run.stderr);
        assert!(run.stderr.contains("`rdeps(UNIVERSE, E)`"), "{expr}: {}", run.stderr);
    }
}

#[test]
fn target_named_all_wins_over_the_wildcard() {
    let ws = Workspace::new()
        .file("p/BUILD", "write_file(name = \"all\", out = \"a\")\nwrite_file(name = \"b\", out = \"b\")\n");
    let run = ws.run(&["query", "//p:all", "--output", "label"]).success();
    assert_eq!(run.stdout, "//p:all\n");
    let run = ws.run(&["query", "//p/...", "--output", "label"]).success();
    assert_eq!(run.stdout, "//p:all\n//p:b\n");
}

#[test]
fn local_repositories() {
    let ws = Workspace::new()
        .file("WORKSPACE", "workspace(name = \"main\")\nlocal_repository(name = \"other\", path = \"third_party/other\")\n")
        .file("third_party/other/WORKSPACE", "")
        .file("third_party/other/lib/BUILD", "write_file(name = \"x\", out = \"x.txt\", content = \"from other\")\nfilegroup(name = \"data\", srcs = [\"d.txt\", \"//lib:x\"])\n")
        .file("third_party/other/lib/d.txt", "d")
        .file("p/BUILD", "filegroup(name = \"p\", srcs = [\"@other//lib:data\"])\n");
    // The nested workspace is not part of `//...`.
    let run = ws.run(&["query", "//...", "--output", "label"]).success();
    assert_eq!(run.stdout, "//p:p\n");
    let run = ws.run(&["build", "//p"]).success();
    insta::assert_snapshot!("local_repository_build", run.normalized(&ws));
    assert_eq!(ws.read("executor-out/@other/lib/x.txt"), "from other");
}

#[test]
fn clean_removes_outputs_and_optionally_the_cache() {
    let ws = sample();
    ws.run(&["build", "//app:hi"]).success();
    assert!(ws.root().join("executor-out/app/hi.txt").exists());
    ws.run(&["clean"]).success();
    assert!(!ws.root().join("executor-out").exists());
    // The cache survives a plain clean: the rebuild runs nothing.
    let run = ws.run(&["build", "//app:hi"]).success();
    assert!(run.stderr.contains("0 actions run, 1 cache hit"), "{}", run.stderr);
    let run = ws.run(&["clean", "--cache"]).success();
    assert!(run.stderr.contains("emptied the cache"), "{}", run.stderr);
    let run = ws.run(&["build", "//app:hi"]).success();
    assert!(run.stderr.contains("1 action run, 0 cache hits"), "{}", run.stderr);
}

/// `expand_template` from a source template and from another target's output: one pass of
/// replacements, the mode asked for, and a rebuild only when the template or the
/// substitutions change.
#[test]
fn expand_template_replaces_in_one_pass() {
    let ws = Workspace::new()
        .file("etc/os-release.in", "NAME={NAME}\nVERSION_ID={VERSION}\nPRETTY_NAME=\"{NAME} {VERSION}\"\n")
        .file(
            "etc/BUILD",
            r##"expand_template(
    name = "os_release",
    template = "os-release.in",
    out = "os-release",
    substitutions = {"{NAME}": "executor {VERSION}", "{VERSION}": "1.0"},
)

write_file(name = "script_in", out = "run.sh.in", content = "#!/bin/sh\necho @GREETING@\n")

expand_template(
    name = "script",
    template = ":script_in",
    out = "run.sh",
    substitutions = {"@GREETING@": "hello"},
    is_executable = True,
)
"##,
        );
    let run = ws.run(&["build", "//etc:all"]).success();
    assert!(run.stderr.contains("3 actions run"), "{}", run.stderr);
    // `{VERSION}` inside the replacement of `{NAME}` is not replaced again.
    assert_eq!(
        ws.read("executor-out/etc/os-release"),
        "NAME=executor {VERSION}\nVERSION_ID=1.0\nPRETTY_NAME=\"executor {VERSION} 1.0\"\n"
    );
    assert_eq!(ws.read("executor-out/etc/run.sh"), "#!/bin/sh\necho hello\n");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(ws.root().join(p)).expect("output").permissions().mode() & 0o777;
    assert_eq!(mode("executor-out/etc/run.sh"), 0o555);
    assert_eq!(mode("executor-out/etc/os-release"), 0o444);
    let run = ws.run(&["build", "//etc:all"]).success();
    assert!(run.stderr.contains("0 actions run, 3 cache hits"), "{}", run.stderr);
    ws.write("etc/os-release.in", "ID={NAME}\n");
    let run = ws.run(&["build", "//etc:all"]).success();
    assert!(run.stderr.contains("1 action run, 2 cache hits"), "{}", run.stderr);
    assert_eq!(ws.read("executor-out/etc/os-release"), "ID=executor {VERSION}\n");
    // A template that is not one file is refused at analysis, naming the attribute.
    ws.write("etc/BUILD", "filegroup(name = \"two\", srcs = [\"os-release.in\", \"BUILD\"])\nexpand_template(name = \"bad\", template = \":two\", out = \"x\")\n");
    let run = ws.run(&["build", "//etc:bad"]).failure(1);
    assert!(
        run.stderr.contains("attribute `template`: `//etc:two` must provide exactly one file, it provides 2"),
        "{}",
        run.stderr
    );
}

/// `executor help` and `executor help COMMAND` print usage on stdout, as `--help` does.
#[test]
fn help_is_a_command() {
    let ws = Workspace::new();
    let run = ws.run(&["help"]).success();
    assert!(run.stdout.contains("Usage: executor"), "{}", run.stdout);
    assert!(run.stdout.contains("build"), "{}", run.stdout);
    let run = ws.run(&["help", "build"]).success();
    assert!(run.stdout.contains("Usage: executor build"), "{}", run.stdout);
    assert!(run.stdout.contains("--locked"), "{}", run.stdout);
}

/// Each command takes the options that apply to it, after it or before it; one that does
/// not apply is a usage error, and a command's help lists only its own.
#[test]
fn commands_take_only_their_own_options() {
    let ws = sample();
    let run = ws.run(&["version", "--remote-cache", "http://127.0.0.1:1"]).failure(2);
    assert!(run.stderr.contains("unexpected argument '--remote-cache'"), "{}", run.stderr);
    let run = ws.run(&["clean", "--fetch-timeout", "1"]).failure(2);
    assert!(run.stderr.contains("unexpected argument '--fetch-timeout'"), "{}", run.stderr);
    let help = |command: &str| ws.run(&[command, "--help"]).success().stdout;
    assert!(!help("version").contains("--workspace"), "{}", help("version"));
    assert!(!help("query").contains("--remote-cache"), "{}", help("query"));
    assert!(help("query").contains("--starlark-timeout"), "{}", help("query"));
    assert!(help("build").contains("--remote-cache"), "{}", help("build"));
    // After the command or before it, an option applies; after it wins.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let cache = elsewhere.path().join("cache");
    let cache = cache.to_str().expect("utf-8");
    ws.run(&["--cache-dir", cache, "build", "//app:hi"]).success();
    assert!(elsewhere.path().join("cache/ac").is_dir(), "the cache given before `build` was used");
    let run = ws.run(&["--starlark-max-steps", "0", "query", "//...", "--starlark-max-steps", "1000000"]).success();
    assert!(run.stdout.contains("//app:hi"), "{}", run.stdout);
    let run = ws.run(&["--starlark-max-steps", "0", "query", "//..."]).failure(2);
    assert!(run.stderr.contains("`--starlark-max-steps` must be at least 1"), "{}", run.stderr);
}

#[test]
fn version() {
    let ws = Workspace::new();
    let run = ws.run(&["version"]).success();
    assert_eq!(run.stdout, format!("executor {}\n", env!("CARGO_PKG_VERSION")));
    let run = ws.run(&["--version"]).success();
    assert_eq!(run.stdout, format!("executor {}\n", env!("CARGO_PKG_VERSION")));
}

/// `docs/rules.md` is what `executor docs` generates from the rules' attribute tables: a rule
/// or attribute added, renamed or documented differently shows up here until the file is
/// generated again.
#[test]
fn docs_rules_md_is_generated_from_the_rules() {
    let ws = Workspace::new();
    let run = ws.run(&["docs"]).success();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/rules.md");
    let committed = std::fs::read_to_string(&path).expect("docs/rules.md");
    assert!(
        run.stdout == committed,
        "docs/rules.md is out of date\n  fix: run `executor docs > docs/rules.md` (from the repository root) and commit it"
    );
    // Every rule and WORKSPACE function of the binary has its section.
    for kind in
        ["apk_repository", "apk_fetch", "filegroup", "layer", "oci_image", "oci_index", "oci_load", "write_file"]
    {
        assert!(run.stdout.contains(&format!("\n### `{kind}`\n")), "no section for `{kind}`");
    }
}

#[test]
fn workspace_flag_overrides_discovery() {
    let ws = sample();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = Command::new(crate::harness::executor_bin())
        .args(["query", "//lib", "--output", "label", "--workspace"])
        .arg(ws.root())
        .current_dir(elsewhere.path())
        .output()
        .expect("run");
    let run = to_run(out).success();
    assert_eq!(run.stdout, "//lib:lib\n");
    let out = Command::new(crate::harness::executor_bin())
        .args(["query", "//lib", "--workspace"])
        .arg(elsewhere.path())
        .current_dir(elsewhere.path())
        .output()
        .expect("run");
    let run = to_run(out).failure(1);
    assert!(run.stderr.contains("is not a workspace: it has no `WORKSPACE` file"), "{}", run.stderr);
}

/// Builds the same sources in two places with different caches, time zones and umasks: the
/// outputs, their modes and the printed digests must be identical.
#[test]
fn same_outputs_from_different_paths_caches_tz_and_umask() {
    let a = sample();
    let b = sample();
    let build = |ws: &Workspace, tz: &str, umask: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask}; exec \"$0\" build //..."))
            .arg(crate::harness::executor_bin())
            .current_dir(ws.root())
            .env("EXECUTOR_CACHE_DIR", ws.cache())
            .env("TZ", tz);
        to_run(cmd.output().expect("run")).success()
    };
    let run_a = build(&a, "UTC", "022");
    let run_b = build(&b, "Asia/Kathmandu", "077");
    assert_ne!(a.root(), b.root());
    assert_eq!(run_a.stdout, run_b.stdout);
    let out_a = tree_contents(&a.root().join("executor-out"));
    let out_b = tree_contents(&b.root().join("executor-out"));
    assert!(!out_a.is_empty());
    assert_eq!(out_a, out_b);
}

#[test]
fn print_goes_to_stderr() {
    let ws = Workspace::new()
        .file("p/BUILD", "print(\"hello from\", package_name())\nwrite_file(name = \"a\", out = \"a\")\n");
    let run = ws.run(&["query", "//p:all", "--output", "label"]).success();
    assert_eq!(run.stdout, "//p:a\n");
    assert_eq!(run.stderr, "DEBUG: p/BUILD: hello from p\n");
}
