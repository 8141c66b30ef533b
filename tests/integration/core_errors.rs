//! Bad input: every error's exact text, pinned by snapshots.

use crate::harness::Workspace;

const MACROS: &str = r#"
def greeting(name, who):
    native.write_file(name = name, out = name + ".txt", content = "hello " + who + "\n")

def at_load_time():
    pass

def recurse(name):
    native.write_file(name = name, out = name)
"#;

/// A snapshot name, the files of the workspace, and the command line.
type Case = (&'static str, Vec<(&'static str, &'static str)>, Vec<&'static str>);

/// Each command must fail with exit code 1.
fn cases() -> Vec<Case> {
    vec![
        ("syntax_error", vec![("p/BUILD", "filegroup(name = \"x\", srcs = [)\n")], vec!["build", "//p:x"]),
        ("unknown_rule", vec![("p/BUILD", "filegrup(name = \"x\")\n")], vec!["build", "//p:x"]),
        ("unknown_attribute", vec![("p/BUILD", "filegroup(name = \"x\", srcz = [])\n")], vec!["build", "//p:x"]),
        (
            "mistyped_attribute",
            vec![("p/BUILD", "write_file(\n    name = \"x\",\n    out = [\"x.txt\"],\n)\n")],
            vec!["build", "//p:x"],
        ),
        ("mistyped_list_element", vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\"a\", 1])\n")], vec!["build", "//p:x"]),
        ("missing_mandatory_attribute", vec![("p/BUILD", "write_file(name = \"x\")\n")], vec!["build", "//p:x"]),
        ("missing_name", vec![("p/BUILD", "write_file(out = \"x\")\n")], vec!["build", "//p:x"]),
        ("positional_argument", vec![("p/BUILD", "write_file(\"x\", out = \"x\")\n")], vec!["build", "//p:x"]),
        (
            "duplicate_target",
            vec![("p/BUILD", "write_file(name = \"x\", out = \"a\")\nwrite_file(name = \"x\", out = \"b\")\n")],
            vec!["build", "//p:x"],
        ),
        ("def_in_build_file", vec![("p/BUILD", "def f():\n    pass\n")], vec!["build", "//p:all"]),
        ("invalid_label_in_attribute", vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\"//a/../b:c\"])\n")], vec!["build", "//p:x"]),
        ("label_listed_twice", vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\"a\", \":a\"])\n")], vec!["build", "//p:x"]),
        (
            "error_inside_macro",
            vec![("rules/BUILD", ""), ("rules/defs.bzl", MACROS), ("p/BUILD", "load(\"//rules:defs.bzl\", \"greeting\")\ngreeting(name = \"x\", who = 1)\n")],
            vec!["build", "//p:x"],
        ),
        (
            "load_missing_file",
            vec![("p/BUILD", "load(\"//rules:nope.bzl\", \"x\")\n")],
            vec!["build", "//p:all"],
        ),
        (
            "load_missing_symbol",
            vec![("rules/BUILD", ""), ("rules/defs.bzl", MACROS), ("p/BUILD", "load(\"//rules:defs.bzl\", \"greting\")\n")],
            vec!["build", "//p:all"],
        ),
        (
            "load_cycle",
            vec![
                ("rules/BUILD", ""),
                ("rules/a.bzl", "load(\":b.bzl\", \"b\")\na = 1\n"),
                ("rules/b.bzl", "load(\":a.bzl\", \"a\")\nb = 2\n"),
                ("p/BUILD", "load(\"//rules:a.bzl\", \"a\")\n"),
            ],
            vec!["build", "//p:all"],
        ),
        (
            "rule_called_at_bzl_top_level",
            vec![("rules/BUILD", ""), ("rules/bad.bzl", "native.write_file(name = \"x\", out = \"x\")\n"), ("p/BUILD", "load(\"//rules:bad.bzl\", \"x\")\n")],
            vec!["build", "//p:all"],
        ),
        ("missing_source_file", vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\"nope.txt\"])\n")], vec!["build", "//p:x"]),
        (
            "file_in_subpackage",
            vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\"sub/a.txt\"])\n"), ("p/sub/BUILD", ""), ("p/sub/a.txt", "a")],
            vec!["build", "//p:x"],
        ),
        ("unknown_package_in_attribute", vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\"//nope:a\"])\n")], vec!["build", "//p:x"]),
        (
            "dependency_cycle",
            vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\":y\"])\nfilegroup(name = \"y\", srcs = [\":z\"])\nfilegroup(name = \"z\", srcs = [\":x\"])\n")],
            vec!["build", "//p:x"],
        ),
        ("self_cycle", vec![("p/BUILD", "filegroup(name = \"x\", srcs = [\":x\"])\n")], vec!["build", "//p:x"]),
        (
            "unknown_target_did_you_mean",
            vec![("images/BUILD", "write_file(name = \"static\", out = \"s\")\n")],
            vec!["build", "//images:statc"],
        ),
        ("unknown_package_did_you_mean", vec![("images/BUILD", "")], vec!["build", "//imags:static"]),
        ("no_packages_below", vec![("images/BUILD", "")], vec!["build", "//nothing/..."]),
        ("undeclared_repository", vec![("p/BUILD", "")], vec!["build", "@nope//p:x"]),
        (
            "conflicting_outputs",
            vec![("p/BUILD", "write_file(name = \"a\", out = \"o.txt\")\nwrite_file(name = \"b\", out = \"o.txt\")\n")],
            vec!["build", "//p:all"],
        ),
        (
            "nested_outputs",
            vec![("p/BUILD", "write_file(name = \"a\", out = \"d\")\nwrite_file(name = \"b\", out = \"d/o.txt\")\nwrite_file(name = \"c\", out = \"d-o.txt\")\n")],
            vec!["build", "//p:all"],
        ),
        ("invalid_out_path", vec![("p/BUILD", "write_file(name = \"a\", out = \"../o.txt\")\n")], vec!["build", "//p:a"]),
        ("glob_matches_nothing", vec![("p/BUILD", "filegroup(name = \"a\", srcs = glob([\"*.txt\"]))\n")], vec!["build", "//p:a"]),
        ("invalid_pattern", vec![("p/BUILD", "")], vec!["build", "//p/...:x"]),
        (
            "local_repository_missing_dir",
            vec![("WORKSPACE", "local_repository(name = \"other\", path = \"../nope\")\n")],
            vec!["build", "//..."],
        ),
        ("workspace_syntax_error", vec![("WORKSPACE", "workspace(name = \n")], vec!["query", "//..."]),
        (
            "unwritable_cache_dir",
            vec![("p/BUILD", "write_file(name = \"a\", out = \"a\")\n")],
            vec!["build", "//p:a", "--cache-dir", "WORKSPACE/cache"],
        ),
    ]
}

#[test]
fn errors_have_exact_text() {
    for (name, files, args) in cases() {
        let ws = Workspace::new();
        for (path, content) in files {
            ws.write(path, content);
        }
        let run = ws.run(&args);
        assert_eq!(run.code, 1, "{name}: expected exit code 1\n{}", run.stderr);
        insta::assert_snapshot!(name, run.normalized(&ws));
    }
}

#[test]
fn outside_any_workspace() {
    let temp = tempfile::tempdir().expect("tempdir");
    std::fs::write(temp.path().join("BUILD"), "").expect("write");
    let out = std::process::Command::new(crate::harness::executor_bin())
        .args(["build", "//:x"])
        .current_dir(temp.path())
        .output()
        .expect("run");
    let run = crate::harness::to_run(out);
    assert_eq!(run.code, 1);
    let canonical = std::fs::canonicalize(temp.path()).expect("canonical");
    let text = run.stderr.replace(&canonical.display().to_string(), "[DIR]");
    insta::assert_snapshot!("outside_any_workspace", text);
}

#[test]
fn usage_errors_exit_2() {
    let ws = Workspace::new();
    let run = ws.run(&["frobnicate"]).failure(2);
    assert!(run.stderr.contains("unrecognized subcommand 'frobnicate'"), "{}", run.stderr);
    ws.run(&["build"]).failure(2);
    let run = ws.run(&["build", "//...", "--jobs", "0"]).failure(2);
    insta::assert_snapshot!("jobs_zero", run.normalized(&ws));
}
