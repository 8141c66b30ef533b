//! `oci_pull`: apps on a published base pulled by digest, shallow builds, and what a pull
//! refuses. The seed's use case (`FROM static`, `COPY hello /hello`) runs end to end against
//! a real registry; the bad inputs against a fake one that can lie.

use std::path::Path;
use std::process::Command;

use crate::harness::{executor_bin, to_run, Run, Workspace};
use executor_testkit::registry::{Auth, FakeRegistry};

/// Pushes `//images:static` of a copy of this repository to `repo` (only `platforms`, a
/// comma-separated list, when not empty); returns the pushed digest.
fn push_static(repo: &str, platforms: &str, temp: &Path) -> String {
    push_base("//images:static", repo, platforms, temp)
}

/// The copy of this repository the bases are pushed from, with `//layered:static`: the
/// static image for amd64 with its packages spread over layers by origin.
fn base_workspace(temp: &Path) -> std::path::PathBuf {
    let ws = temp.join("base-ws");
    if !ws.exists() {
        crate::images::copy_repository_with_layered_static(&ws, &temp.join("base-cache"));
    }
    ws
}

/// Pushes `target` of [`base_workspace`] to `repo` (only `platforms` when not empty);
/// returns the pushed digest.
fn push_base(target: &str, repo: &str, platforms: &str, temp: &Path) -> String {
    push_base_with(target, repo, platforms, temp, &no_auth(temp))
}

/// [`push_base`] with the auth file `auth`.
fn push_base_with(target: &str, repo: &str, platforms: &str, temp: &Path, auth: &Path) -> String {
    let ws = base_workspace(temp);
    let mut args = vec!["push", target, "--repository", repo];
    if !platforms.is_empty() {
        args.extend(["--platforms", platforms]);
    }
    let run = to_run(
        Command::new(executor_bin())
            .args(&args)
            .current_dir(&ws)
            .env("EXECUTOR_CACHE_DIR", temp.join("base-cache"))
            .env("REGISTRY_AUTH_FILE", auth)
            .output()
            .expect("push"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pushed = run.stdout.trim();
    pushed.rsplit_once('@').expect("HOST/REPO@DIGEST").1.to_owned()
}

/// An auth file with no credentials (anonymous access), so that the machine's own docker
/// config is never read.
fn no_auth(temp: &Path) -> std::path::PathBuf {
    let path = temp.join("no-auth.json");
    std::fs::write(&path, "{\"auths\": {}}").expect("auth file");
    path
}

/// A workspace pulling `image` as `@static` (by `pin`: `digest = "…"` or `tag = "…"`) for
/// `platforms`, with an app image of one text file on its amd64 image.
fn app_workspace(image: &str, pin: &str, platforms: &[&str]) -> Workspace {
    let platforms: Vec<String> = platforms.iter().map(|p| format!("\"{p}\"")).collect();
    Workspace::new()
        .file(
            "WORKSPACE",
            &format!(
                "oci_pull(\n    name = \"static\",\n    image = \"{image}\",\n    {pin},\n    platforms = [{}],\n)\n",
                platforms.join(", ")
            ),
        )
        .file("greeting.txt", "hello\n")
        .file(
            "BUILD",
            r#"layer(name = "app_layer", files = {"/greeting.txt": "greeting.txt"})

oci_image(
    name = "app",
    base = "@static//:linux_amd64",
    layers = [":app_layer"],
    cmd = ["/greeting.txt"],
    user = "65532",
)

oci_load(name = "app_tarball", image = ":app", repo_tags = ["app:latest"])
"#,
        )
}

/// Runs `executor ARGS` in `ws` with no credentials.
fn run(ws: &Workspace, args: &[&str]) -> Run {
    let auth = ws.root().join("../no-auth.json");
    std::fs::write(&auth, "{\"auths\": {}}").expect("auth file");
    to_run(ws.command_in("", args).env("REGISTRY_AUTH_FILE", &auth).output().expect("executor"))
}

/// The seed's use case, end to end: `//images:static` is pushed to a real registry; a second
/// workspace pulls it by digest, puts a static hello (compiled here) on it, builds without
/// downloading the base's layers, pushes (the base layer is mounted, not sent), and the
/// image the registry serves runs under runc as uid 65532. Pushed to another registry, the
/// base layer is copied from the first; `oci_load` downloads it; two apps share it.
#[test]
#[ignore = "needs docker-registry, skopeo, crane, runc, umoci and a C compiler (bash .ci/run installs them)"]
fn the_seed_use_case_end_to_end() {
    let tool = crate::harness::shared_tools(&["run_oci.sh"], &["runc", "umoci", "skopeo", "crane", "cc"]);
    let registry = crate::push::Registry::start();
    let other_registry = crate::push::Registry::start();
    let temp = tempfile::tempdir().expect("tempdir");
    let host = format!("127.0.0.1:{}", registry.port);
    let base_repo = format!("{host}/executor/static");
    let digest = push_static(&base_repo, "", temp.path());
    let layered_repo = format!("{host}/executor/static-layered");
    let layered_digest = push_base("//layered:static_x86_64", &layered_repo, "", temp.path());

    let ws = Workspace::new()
        .file(
            "WORKSPACE",
            &format!(
                "oci_pull(\n    name = \"static\",\n    image = \"{base_repo}\",\n    digest = \"{digest}\",\n    platforms = [\"linux/amd64\", \"linux/arm64\"],\n)\n\
                 oci_pull(name = \"layered\", image = \"{layered_repo}\", digest = \"{layered_digest}\", platforms = [\"linux/amd64\"])\n"
            ),
        )
        .file("BUILD", SEED_BUILD)
        .file("hello.c", "#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf(\"hello from uid %u\\n\", (unsigned)getuid()); return 0; }\n")
        .file("other.txt", "another app\n");
    let cc = Command::new("cc")
        .args(["-static", "-Os", "-o", "hello", "hello.c"])
        .current_dir(ws.root())
        .status()
        .expect("cc");
    assert!(cc.success(), "cc -static failed");

    // A shallow build: the base's manifest and config, never its layers.
    let built = run(&ws, &["build", "//:app", "//:other"]).success();
    assert!(built.stderr.contains("PullImage @static//:linux_amd64"), "{}", built.stderr);
    assert!(!built.stderr.contains("PullLayers"), "{}", built.stderr);
    let base_blobs = std::fs::read_dir(ws.root().join("executor-out/@static/linux_amd64/blobs/sha256")).expect("blobs");
    assert_eq!(base_blobs.count(), 2, "the base's manifest and config only");
    let app: serde_json::Value = serde_json::from_str(&ws.read("executor-out/app.image.json")).expect("json");
    let remote = app["remote_blobs"].as_object().expect("remote_blobs");
    assert_eq!(remote.len(), 1, "{app}");
    let base_layer = remote.keys().next().expect("one").clone();
    assert_eq!(remote[&base_layer], base_repo.as_str());
    assert!(!ws.root().join("executor-out/app/blobs/sha256").join(&base_layer["sha256:".len()..]).exists());
    // The manifest says which base it is on (as ko does).
    let manifest = crane(&["manifest", &format!("{base_repo}@{digest}")]);
    let index: serde_json::Value = serde_json::from_str(&manifest).expect("index");
    let amd64 = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64")
        .expect("amd64")["digest"]
        .as_str()
        .expect("digest")
        .to_owned();
    let app_layout: serde_json::Value =
        serde_json::from_str(&ws.read("executor-out/app/index.json")).expect("index.json");
    let app_digest = app_layout["manifests"][0]["digest"].as_str().expect("digest").to_owned();
    let local_manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.root().join("executor-out/app/blobs/sha256").join(&app_digest["sha256:".len()..]))
            .expect("manifest"),
    )
    .expect("json");
    assert_eq!(local_manifest["annotations"]["org.opencontainers.image.base.digest"], amd64.as_str());
    assert_eq!(local_manifest["annotations"]["org.opencontainers.image.base.name"], "@static//:linux_amd64");

    // Pushed to the base's registry: the base layer is mounted from the base's repository.
    let app_repo = format!("{host}/apps/hello");
    let pushed = run(&ws, &["push", "//:app", "--repository", &app_repo]).success();
    assert_eq!(pushed.stdout, format!("{app_repo}@{app_digest}\n"));
    assert!(pushed.stderr.contains(", 1 mounted,"), "{}", pushed.stderr);
    let other_repo = format!("{host}/apps/other");
    run(&ws, &["push", "//:other", "--repository", &other_repo]).success();
    // The registry holds one blob for the base layer, which both apps and the base list.
    let layers = |reference: &str| -> Vec<String> {
        let m: serde_json::Value = serde_json::from_str(&crane(&["manifest", reference])).expect("manifest");
        m["layers"].as_array().expect("layers").iter().map(|l| l["digest"].as_str().expect("d").to_owned()).collect()
    };
    let base_layers = layers(&format!("{base_repo}@{amd64}"));
    assert_eq!(base_layers, std::slice::from_ref(&base_layer));
    assert_eq!(layers(&format!("{app_repo}@{app_digest}"))[0], base_layer);
    assert_eq!(layers(&format!("{other_repo}:latest"))[0], base_layer);
    assert_eq!(crane(&["digest", &format!("{app_repo}:latest")]).trim(), app_digest);

    // What the registry serves runs, as the image's user.
    let copy = temp.path().join("pulled");
    let status = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{app_repo}@{app_digest}"),
            &format!("oci:{}:latest", copy.display()),
        ])
        .status()
        .expect("skopeo");
    assert!(status.success(), "skopeo copy failed");
    let ran = to_run(Command::new("bash").arg(tool.join("run_oci.sh")).arg(&copy).arg("latest").output().expect("run"));
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    assert_eq!(ran.stdout, "hello from uid 65532\n");

    // To another registry, the base layer is read from the base's and uploaded.
    let elsewhere = format!("127.0.0.1:{}/apps/hello", other_registry.port);
    let copied = run(&ws, &["push", "//:app", "--repository", &elsewhere]).success();
    assert!(copied.stderr.contains("1 of them read from the base's registry"), "{}", copied.stderr);
    assert_eq!(layers(&format!("{elsewhere}@{app_digest}"))[0], base_layer);

    // With layering on, the base is four layers (three origins, then the rest), and two
    // apps on it share all four with it in the registry: each push mounts them.
    let layered_base = layers(&format!("{layered_repo}@{layered_digest}"));
    assert_eq!(layered_base.len(), 4, "{layered_base:?}");
    run(&ws, &["build", "//:on_layered_1", "//:on_layered_2"]).success();
    for (n, target) in ["on_layered_1", "on_layered_2"].iter().enumerate() {
        let repo = format!("{host}/apps/layered-{n}");
        let pushed = run(&ws, &["push", &format!("//:{target}"), "--repository", &repo]).success();
        assert!(pushed.stderr.contains(", 4 mounted,"), "{}", pushed.stderr);
        let app_layers = layers(&format!("{repo}:latest"));
        assert_eq!(app_layers.len(), 5);
        assert_eq!(app_layers[..4], layered_base[..]);
    }

    // A docker-archive needs every layer: only now are the base's downloaded.
    let tarball = run(&ws, &["build", "//:hello_tarball"]).success();
    assert!(tarball.stderr.contains("PullLayers @static//:linux_amd64"), "{}", tarball.stderr);

    // Once the metadata is in the cache, a build needs no registry.
    drop(registry);
    std::fs::remove_dir_all(ws.root().join("executor-out")).expect("rm executor-out");
    let offline = run(&ws, &["build", "//:app"]).success();
    assert!(offline.stdout.contains(&app_digest), "{}", offline.stdout);
}

/// The seed's Dockerfile (`FROM static`, `COPY hello /hello`, `CMD ["/hello"]`) as a BUILD
/// file, with a second app on the same base; README shows the first part.
const SEED_BUILD: &str = r#"layer(
    name = "hello_layer",
    files = {"/hello": "hello"},  # an executable source keeps its mode: 0755
)

oci_image(
    name = "app",
    base = "@static//:linux_amd64",
    layers = [":hello_layer"],
    cmd = ["/hello"],
    user = "65532",
)

oci_load(name = "hello_tarball", image = ":app", repo_tags = ["hello:latest"])

layer(name = "other_layer", files = {"/other.txt": "other.txt"})

oci_image(name = "other", base = "@static//:linux_amd64", layers = [":other_layer"], user = "65532")

oci_image(name = "on_layered_1", base = "@layered//:linux_amd64", layers = [":hello_layer"], cmd = ["/hello"])

oci_image(name = "on_layered_2", base = "@layered//:linux_amd64", layers = [":other_layer"])
"#;

/// `crane ARGS` (plain HTTP to 127.0.0.1); its stdout.
fn crane(args: &[&str]) -> String {
    let out = Command::new("crane").args(args).arg("--insecure").output().expect("crane");
    assert!(out.status.success(), "crane {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A fake registry holding `//images:static` for amd64 and arm64, and the temporary
/// directory of the base workspace.
fn fake_base() -> (FakeRegistry, tempfile::TempDir, String, String) {
    let registry = FakeRegistry::start(Auth::Anonymous);
    let temp = tempfile::tempdir().expect("tempdir");
    let repo = format!("{}/executor/static", registry.host());
    let digest = push_static(&repo, "linux/amd64,linux/arm64", temp.path());
    (registry, temp, repo, digest)
}

/// Replaces the fake registry's port, which changes from run to run.
fn normalize(ws: &Workspace, text: &str, registry: &FakeRegistry) -> String {
    ws.normalize(text).replace(&registry.host(), "[REGISTRY]")
}

/// Bad input: a tag in a build, a platform the base lacks, a registry that lies about a
/// digest, and one that is down. Each is refused with what and where, and the fix.
#[test]
fn pulls_refuse_tags_missing_platforms_lies_and_survive_a_registry_that_is_down() {
    let (registry, _temp, repo, digest) = fake_base();

    // A tag is for `executor lock` to pin; a build never resolves it.
    let ws = app_workspace(&repo, "tag = \"latest\"", &["linux/amd64"]);
    let unlocked = run(&ws, &["build", "//:app"]).failure(1);
    insta::assert_snapshot!("pull_tag_without_lock", normalize(&ws, &unlocked.stderr, &registry));
    assert_eq!(registry.count("GET", "/v2/executor/static/manifests/latest"), 0, "a build resolved a tag");
    let lock = run(&ws, &["lock"]).success();
    assert!(lock.stderr.contains(&format!("`{repo}:latest` is {digest}")), "{}", lock.stderr);
    let lockfile = ws.read("executor.lock");
    assert!(
        lockfile.contains(&format!(
            "[[image]]\nname = \"static\"\nimage = \"{repo}\"\ntag = \"latest\"\ndigest = \"{digest}\"\n"
        )),
        "{lockfile}"
    );
    run(&ws, &["build", "//:app"]).success();
    // The app's SBOM names the base it descends from, by this platform's manifest digest.
    let sbom: serde_json::Value = serde_json::from_str(&ws.read("executor-out/app.spdx.json")).expect("sbom");
    let base: serde_json::Value =
        serde_json::from_str(&ws.read("executor-out/@static/linux_amd64.image.json")).expect("meta");
    let named = sbom["packages"].as_array().expect("packages").iter().find(|p| p["SPDXID"] == "SPDXRef-BaseImage");
    assert_eq!(named.map(|p| &p["versionInfo"]), Some(&base["digest"]), "{sbom}");
    assert_eq!(named.map(|p| &p["name"]), Some(&serde_json::Value::from(repo.as_str())));
    let check = run(&ws, &["lock", "--check"]);
    assert_eq!(check.code, 0, "{}", check.stderr);

    // The generated repository's targets, by pattern.
    let query = run(&ws, &["query", "@static//..."]).success();
    assert_eq!(query.stdout, "pulled_image rule @static//:image\npulled_image rule @static//:linux_amd64\n");

    // A platform the base lacks.
    let ws = app_workspace(&repo, &format!("digest = \"{digest}\""), &["linux/amd64", "linux/s390x"]);
    let missing = run(&ws, &["build", "@static//:linux_s390x"]).failure(1);
    insta::assert_snapshot!("pull_missing_platform", normalize(&ws, &missing.stderr, &registry));

    // A digest nobody has.
    let nobody = executor::digest::Digest::of(b"nothing").to_string();
    let ws = app_workspace(&repo, &format!("digest = \"{nobody}\""), &["linux/amd64"]);
    let unknown = run(&ws, &["build", "//:app"]).failure(1);
    assert!(unknown.stderr.contains(&format!("has no manifest {nobody}")), "{}", unknown.stderr);

    // A registry serving other bytes than the digest names: nothing of them is used.
    let ws = app_workspace(&repo, &format!("digest = \"{digest}\""), &["linux/amd64"]);
    let good = registry.manifest("executor/static", &digest).expect("index").bytes;
    let mut forged: serde_json::Value = serde_json::from_slice(&good).expect("json");
    forged["annotations"] = serde_json::json!({"forged": "yes"});
    registry.tamper_manifest("executor/static", &digest, serde_json::to_vec(&forged).expect("json"));
    let lied = run(&ws, &["build", "//:app"]).failure(1);
    insta::assert_snapshot!("pull_forged_index", normalize(&ws, &lied.stderr, &registry));
    assert!(!ws.root().join("executor-out/@static").exists());
    registry.tamper_manifest("executor/static", &digest, good);

    // A forged layer blob: the shallow build never reads it; a docker-archive refuses it.
    run(&ws, &["build", "//:app"]).success();
    let app: serde_json::Value = serde_json::from_str(&ws.read("executor-out/app.image.json")).expect("json");
    let layer = app["remote_blobs"].as_object().expect("remote").keys().next().expect("one").clone();
    let real = registry.blobs()[&layer].clone();
    registry.tamper_blob(&layer, vec![0u8; real.len()]);
    let forged_layer = run(&ws, &["build", "//:app_tarball"]).failure(1);
    assert!(
        forged_layer.stderr.contains("served a blob whose digest is")
            && forged_layer.stderr.contains(&format!("not {layer}")),
        "{}",
        forged_layer.stderr
    );
    registry.tamper_blob(&layer, real);
    run(&ws, &["build", "//:app_tarball"]).success();

    // A layer adding accounts to a pulled base reads the base's `/etc/passwd` from its
    // layers, which are fetched for it.
    let mut build = ws.read("BUILD");
    build.push_str(
        "layer(name = \"accounts\", base = \"@static//:linux_amd64\", users = [\"app:1000:1000:/home/app:/sbin/nologin\"], groups = [\"app:1000\"])\n",
    );
    ws.write("BUILD", &build);
    run(&ws, &["build", "//:accounts"]).success();
    let accounts: serde_json::Value = serde_json::from_str(&ws.read("executor-out/accounts.layer.json")).expect("json");
    let users: Vec<&String> = accounts["users"].as_object().expect("users").keys().collect();
    assert_eq!(users, ["app", "nobody", "nonroot", "root"], "{accounts}");

    // The registry goes down: what is cached builds offline; what is not fails clearly.
    let host = registry.host();
    drop(registry);
    std::fs::remove_dir_all(ws.root().join("executor-out")).expect("rm");
    let offline = run(&ws, &["build", "//:app", "//:app_tarball"]).success();
    assert!(offline.stderr.contains("0 actions run"), "{}", offline.stderr);
    let cold = app_workspace(&repo, &format!("digest = \"{digest}\""), &["linux/amd64"]);
    let down = run(&cold, &["build", "//:app", "--fetch-retries", "0"]).failure(1);
    let text = cold.normalize(&down.stderr).replace(&host, "[REGISTRY]");
    assert!(text.contains("PullImage @static//:linux_amd64"), "{text}");
    assert!(text.contains("`http://[REGISTRY]/v2/executor/static/manifests/sha256:"), "{text}");
    assert!(text.contains("check the host and that the registry is up"), "{text}");
}

/// A registry that wants a bearer token for pulls too: a build reads the credentials from the
/// auth file as `push` does, and without them stops saying where it looked.
#[test]
fn pulls_authenticate_as_pushes_do() {
    use base64::Engine as _;
    let (user, password) = ("puller", "pull-Secret-7");
    let registry = FakeRegistry::start(Auth::Bearer { user: user.into(), password: password.into() });
    let temp = tempfile::tempdir().expect("tempdir");
    let auth = temp.path().join("auth.json");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(&auth, format!("{{\"auths\": {{\"{}\": {{\"auth\": \"{basic}\"}}}}}}", registry.host()))
        .expect("auth");
    let repo = format!("{}/executor/static", registry.host());
    let digest = push_base_with("//images:static", &repo, "linux/amd64", temp.path(), &auth);
    let ws = app_workspace(&repo, &format!("digest = \"{digest}\""), &["linux/amd64"]);
    let anonymous = run(&ws, &["build", "//:app"]).failure(1);
    assert!(
        anonymous
            .stderr
            .contains(&format!("`{}` requires authentication and there are no credentials for it", registry.host())),
        "{}",
        anonymous.stderr
    );
    let built =
        to_run(ws.command_in("", &["build", "//:app"]).env("REGISTRY_AUTH_FILE", &auth).output().expect("build"));
    assert_eq!(built.code, 0, "{}", built.stderr);
    crate::harness::assert_secret_not_shown(&built, user, password);
    crate::harness::assert_secret_not_shown(&anonymous, user, password);
    // The token asked for is for pulling, nothing more.
    assert!(
        registry.requests().iter().any(|r| r.path == "/token"
            && r.query.contains("pull")
            && !r.query.contains("push%2C")
            && r.query.contains("executor%2Fstatic%3Apull")),
        "{:?}",
        registry.requests().iter().filter(|r| r.path == "/token").collect::<Vec<_>>()
    );
}

/// `oci_pull` calls are checked where they are written, each error with its fix.
#[test]
fn oci_pull_declarations_are_checked_in_workspace() {
    let cases = [
        r#"oci_pull(name = "s", image = "cgr.dev/chainguard/static:latest", platforms = ["linux/amd64"])"#,
        r#"oci_pull(name = "s", image = "cgr.dev/chainguard/static@sha256:0123", platforms = ["linux/amd64"])"#,
        r#"oci_pull(name = "s", image = "cgr.dev/chainguard/static", platforms = ["linux/amd64"])"#,
        r#"oci_pull(name = "s", image = "cgr.dev/chainguard/static", digest = "sha256:00", platforms = ["linux/amd64"])"#,
        r#"oci_pull(name = "s", image = "cgr.dev/chainguard/static", tag = "v1", platforms = [])"#,
        r#"oci_pull(name = "s", image = "cgr.dev/chainguard/static", tag = "v1", platforms = ["linux/amd64", "x86_64"])"#,
        "local_repository(name = \"s\", path = \".\")\noci_pull(name = \"s\", image = \"cgr.dev/chainguard/static\", tag = \"v1\", platforms = [\"linux/amd64\"])",
    ];
    let mut all = String::new();
    for case in cases {
        let ws = Workspace::new().file("WORKSPACE", &format!("{case}\n")).file("BUILD", "");
        let out = ws.run(&["query", "//..."]).failure(1);
        all.push_str(&format!("=== {case}\n{}\n", ws.normalize(&out.stderr)));
    }
    insta::assert_snapshot!("oci_pull_declarations", all);
}
