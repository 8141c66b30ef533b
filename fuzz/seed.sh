#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seeds from the data in the tree: the in-tree apk
# repository, shared/fixtures/apk (real Alpine, Wolfi and melange files, when present),
# executor.lock, the repository's BUILD/.bzl/WORKSPACE files and the OCI JSON pinned by the
# integration snapshots. Large files are split (one .PKGINFO, one tar member, a few index
# entries per seed) so that seeds stay small. Re-running replaces only the `seed-*` files,
# so what a campaign added to a corpus stays.
#
# Usage: fuzz/seed.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec python3 - "$here" <<'PY'
import gzip, hashlib, io, json, os, re, sys, tarfile, zlib
from pathlib import Path

fuzz = Path(sys.argv[1])
root = fuzz.parent
fixtures = root.parent / "shared" / "fixtures" / "apk"
corpus = fuzz / "corpus"
MAX_SEED = 96 * 1024  # bigger files are split or left out: slow inputs fuzz slowly

counts = {}

def clear(target):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    for f in d.glob("seed-*"):
        f.unlink()

def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SEED:
        return
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80]
    (corpus / target / f"seed-{safe}").write_bytes(data)
    counts[target] = counts.get(target, 0) + 1

def rel(p):
    try:
        return str(p.relative_to(root.parent))
    except ValueError:
        return str(p)

def members(data):
    """The gzip members of data: (compressed bytes, decompressed bytes)."""
    out, offset = [], 0
    while offset < len(data):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            content = d.decompress(data[offset:]) + d.flush()
        except zlib.error:
            break
        end = len(data) - len(d.unused_data)
        out.append((data[offset:end], content))
        offset = end
    return out

def tar_files(content):
    """Regular files of a tar fragment (no end-of-archive blocks needed)."""
    files = []
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as t:
            for m in t:
                if m.isfile():
                    files.append((m.name, t.extractfile(m).read()))
    except (tarfile.TarError, EOFError):
        pass
    return files

def strip_insta(text):
    """The body of an insta .snap file."""
    parts = text.split("\n---\n", 1)
    return parts[1] if text.startswith("---") and len(parts) == 2 else text

targets = ["apk_index", "apk_index_text", "apk_package", "apk_pkginfo", "apk_gzip", "apk_tar",
           "apk_version", "lockfile", "apko_lock", "oci_layout", "registry_http",
           "registry_challenge", "docker_config", "starlark_load", "signing_key"]
for t in targets:
    clear(t)

apks = sorted(set(p.resolve() for p in (root / "third_party" / "apk-repository").rglob("*.apk")))
apks += sorted(fixtures.rglob("*.apk")) if fixtures.is_dir() else []
indexes = sorted((root / "third_party" / "apk-repository").rglob("APKINDEX.tar.gz"))
indexes += sorted(fixtures.rglob("APKINDEX.tar.gz")) if fixtures.is_dir() else []

# --- indexes: whole small ones; texts split into a few entries per seed
index_texts = []
for path in indexes:
    data = path.read_bytes()
    seed("apk_index", rel(path), data)
    seed("apk_gzip", rel(path), data)
    for _, content in members(data):
        for name, body in tar_files(content):
            if name == "APKINDEX":
                index_texts.append((rel(path), body.decode("utf-8", "replace")))
if fixtures.is_dir():
    subset = fixtures / "alpine-v3.17" / "aarch64" / "APKINDEX.static-subset.txt"
    if subset.is_file():
        index_texts.append((rel(subset), subset.read_text()))
        # An unsigned single-member index holding the subset, as a hand-made index would.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
            for name, body in [("DESCRIPTION", b"static subset\n"), ("APKINDEX", subset.read_bytes())]:
                info = tarfile.TarInfo(name)
                info.size = len(body)
                t.addfile(info, io.BytesIO(body))
        seed("apk_index", "unsigned-static-subset.tar.gz", gzip.compress(buf.getvalue(), mtime=0))
versions, deps = set(), set()
for origin, text in index_texts:
    entries = [e for e in text.split("\n\n") if e.strip()]
    for i in range(0, len(entries), 40):
        seed("apk_index_text", f"{origin}-{i}", "\n\n".join(entries[i:i + 40]) + "\n\n")
    for line in text.splitlines():
        if line.startswith("V:"):
            versions.add(line[2:])
        elif line[:2] in ("D:", "p:", "i:", "r:"):
            deps.add(line[2:])

# --- versions and dependency lists
versions = sorted(versions)
deps = sorted(deps)
for i in range(0, len(versions), 3):
    trio = versions[i:i + 3]
    dep = deps[(i // 3) % len(deps)] if deps else ""
    seed("apk_version", f"versions-{i}", "\n".join(trio + [dep]) + "\n")
for v in ["1.0", "1.0-r0", "1.2.3_alpha1-r2", "2.0_p1", "1.0a", "0.1_rc2_pre1", "9999999999999999999999",
          "1.0_git20230101", "1.01", "1.001-r10", "1_beta~abc", "1.0.0.0.0.0.0.0"]:
    seed("apk_version", f"hand-{v}", f"{v}\n1.0\n1.0-r1\nso:libc.musl-x86_64.so.1 busybox>=1.35 !openssl<3 tzdata~2023\n")

# --- packages, their .PKGINFO, their tar members
for path in apks:
    data = path.read_bytes()
    name = rel(path)
    seed("apk_package", name, data)
    seed("apk_gzip", name, data)
    ms = members(data)
    for n, (compressed, content) in enumerate(ms):
        seed("apk_tar", f"{name}-member{n}", content)
        for fname, body in tar_files(content):
            if fname == ".PKGINFO":
                seed("apk_pkginfo", name, body)
    # The data stream (all members after the control one) as one tar.
    if len(ms) >= 2:
        seed("apk_tar", f"{name}-data", b"".join(c for _, c in ms[2 if len(ms) > 2 and any(
            f.startswith(".SIGN.") for f, _ in tar_files(ms[0][1])) else 1:]))

# --- lockfiles
lock = root / "executor.lock"
if lock.is_file():
    seed("lockfile", "executor.lock", lock.read_bytes())
for snap in sorted(root.rglob("*.snap")):
    if "target" in snap.parts:
        continue
    body = strip_insta(snap.read_text(errors="replace"))
    if "[[packages]]" in body or "version = 1" in body and "[[" in body:
        seed("lockfile", snap.name, body)

# --- key files: an encrypted key (password "fuzz", made once by `executor keygen`), PKCS#8 and
# public keys, and the test repository's RSA key (refused)
for f in sorted((fuzz / "seeds" / "signing_key").glob("*")):
    seed("signing_key", f.name, f.read_bytes())
for f in sorted((root / "third_party" / "keys").glob("*")):
    seed("signing_key", f.name, f.read_bytes())

# --- apko lockfiles
apko = fixtures / "apko-lock" / "apko.lock.json"
if apko.is_file():
    seed("apko_lock", "apko.lock.json", apko.read_bytes())
    doc = json.loads(apko.read_text())
    pkgs = doc.get("contents", {}).get("packages", [])
    for i, p in enumerate(pkgs):
        one = dict(doc)
        one["contents"] = dict(doc["contents"], packages=[p])
        seed("apko_lock", f"apko-package-{i}", json.dumps(one, indent=2))
seed("apko_lock", "minimal", json.dumps({"version": "v1", "contents": {"packages": []}}))

# --- OCI layouts (fuzz_targets/oci_layout.rs format): from the manifests and configs the
# integration snapshots pin, with digests replaced by placeholders.
SEP = "\n%%\n"
snaps = {s.name: strip_insta(s.read_text()) for s in root.rglob("*.snap") if "target" not in s.parts}
def snap_json(key):
    for name, body in snaps.items():
        if key in name:
            try:
                return json.loads(body)
            except ValueError:
                return None
    return None
LAYOUT = json.dumps({"imageLayoutVersion": "1.0.0"})
def desc(media, n, extra=None):
    d = {"mediaType": media, "digest": f"@D{n}", "size": f"@S{n}"}
    d.update(extra or {})
    return d
def dump(obj):
    # Sizes are placeholders, which must not be quoted.
    return re.sub(r'"(@S\d+)"', r"\1", json.dumps(obj, sort_keys=True, separators=(",", ":")))
IDX = "application/vnd.oci.image.index.v1+json"
MAN = "application/vnd.oci.image.manifest.v1+json"
CFG = "application/vnd.oci.image.config.v1+json"
REF = "org.opencontainers.image.ref.name"
for arch in ["amd64", "arm64", "386", "arm_v7", "s390x"]:
    manifest, config = snap_json(f"static_{arch}_manifest"), snap_json(f"static_{arch}_config")
    if not manifest or not config:
        continue
    # blobs: 0 image index, 1 manifest, 2 config, 3 layer, 4 sbom list, 5 sbom manifest,
    # 6 empty config, 7 spdx document
    manifest["config"]["digest"], manifest["config"]["size"] = "@D2", "@S2"
    for layer in manifest.get("layers", []):
        layer["digest"], layer["size"] = "@D3", "@S3"
    platform = {"architecture": config.get("architecture", "amd64"), "os": "linux"}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    image_index = {"schemaVersion": 2, "mediaType": IDX, "manifests": [desc(MAN, 1, {"platform": platform})]}
    sbom = {"schemaVersion": 2, "mediaType": MAN, "artifactType": "application/spdx+json",
            "config": desc("application/vnd.oci.empty.v1+json", 6), "layers": [desc("application/spdx+json", 7)],
            "subject": desc(MAN, 1)}
    sbom_list = {"schemaVersion": 2, "mediaType": IDX, "manifests": [desc(MAN, 5)]}
    index = {"schemaVersion": 2, "mediaType": IDX, "manifests": [
        desc(IDX, 0, {"annotations": {REF: "latest"}}),
        desc(IDX, 4, {"annotations": {REF: "latest.sbom"}, "artifactType": "application/spdx+json"})]}
    parts = [LAYOUT, dump(index), dump(image_index), dump(manifest), json.dumps(config, sort_keys=True),
             "layer bytes", dump(sbom_list), dump(sbom), "{}", '{"spdxVersion":"SPDX-2.3"}']
    seed("oci_layout", f"static-{arch}-with-sbom", SEP.join(parts))
    # A single manifest named directly by index.json.
    index = {"schemaVersion": 2, "mediaType": IDX, "manifests": [desc(MAN, 0, {"annotations": {REF: "latest"}})]}
    manifest["config"]["digest"], manifest["config"]["size"] = "@D1", "@S1"
    for layer in manifest.get("layers", []):
        layer["digest"], layer["size"] = "@D2", "@S2"
    seed("oci_layout", f"static-{arch}-manifest", SEP.join([LAYOUT, dump(index), dump(manifest),
                                                             json.dumps(config, sort_keys=True), "layer"]))
layout_index = snap_json("static_layout_index_json")
if layout_index:
    seed("oci_layout", "static-layout-index-only", SEP.join([LAYOUT, json.dumps(layout_index)]))

# --- registry answers (fuzz_targets/registry_http.rs format: command byte, responses)
def resp(status, headers=(), body=b""):
    if isinstance(body, str):
        body = body.encode()
    head = f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
def http_seed(name, command, responses):
    seed("registry_http", name, bytes([command]) + SEP.encode().join(responses))
bearer = ("WWW-Authenticate", 'Bearer realm="http://@HOST/token",service="fake",scope="repository:fuzz/app:pull"')
manifest_body = json.dumps({"schemaVersion": 2, "mediaType": MAN, "config": {}, "layers": []})
digest = "sha256:" + hashlib.sha256(manifest_body.encode()).hexdigest()
ok_manifest = resp("200 OK", [("Content-Type", MAN), ("Docker-Content-Digest", digest)], manifest_body)
errors = json.dumps({"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]})
http_seed("resolve-anonymous", 0, [ok_manifest])
http_seed("resolve-bearer", 0, [resp("401 Unauthorized", [bearer], errors),
                               resp("200 OK", [("Content-Type", "application/json")], '{"token":"t0ken","expires_in":300}'),
                               ok_manifest])
http_seed("resolve-access-token", 0, [resp("401 Unauthorized", [bearer]),
                                      resp("200 OK", [], '{"access_token":"abc"}'), ok_manifest])
http_seed("resolve-basic", 0, [resp("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="fake"')]), ok_manifest])
http_seed("resolve-wrong-digest", 0, [resp("200 OK", [("Docker-Content-Digest", "sha256:" + "0" * 64)], manifest_body)])
http_seed("resolve-denied", 0, [resp("403 Forbidden", [("Content-Type", "application/json")], errors)])
http_seed("resolve-not-found", 0, [resp("404 Not Found", [], json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN"}]}))])
http_seed("resolve-500", 0, [resp("500 Internal Server Error", [], "oops")])
http_seed("resolve-truncated", 0, [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"])
http_seed("resolve-chunked", 0, [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"])
ok = resp("200 OK")
created = resp("201 Created")
missing = resp("404 Not Found")
upload = resp("202 Accepted", [("Location", "/v2/fuzz/app/blobs/uploads/1?state=x")])
# The fixed layout has 4 blobs (config, layer, empty config, SPDX document); the config is
# above the chunk threshold. Then 3 manifest PUTs: by digest, the tag, the SBOM referrer.
ping, heads, puts = [ok], [ok] * 4, [created] * 3
index_body = json.dumps({"schemaVersion": 2, "mediaType": IDX, "manifests": [
    {"mediaType": MAN, "digest": "sha256:" + "2" * 64, "size": 10, "artifactType": "application/spdx+json"}]})
subject = [("OCI-Subject", "sha256:" + "1" * 64)]
http_seed("push-referrers-api", 1, ping + heads + puts[:2] + [resp("201 Created", subject)])
http_seed("push-referrers-tag", 1, ping + heads + puts + [resp("200 OK", [("Content-Type", IDX)], index_body), created])
http_seed("push-referrers-tag-new", 1, ping + heads + puts + [missing, created])
monolithic = [missing, upload, created]
chunked = [missing, upload] + [resp("202 Accepted", [("Location", "http://@HOST/v2/fuzz/app/blobs/uploads/1"),
                                                     ("Range", "0-31")])] * 3 + [created]
http_seed("push-upload", 1, ping + chunked + monolithic * 3 + puts + [missing, created])
http_seed("push-mount", 1, ping + [missing, created] * 4 + puts + [missing, created])
http_seed("push-bearer", 1, [resp("401 Unauthorized", [bearer]), resp("200 OK", [], '{"token":"t"}'), ok]
          + heads + puts + [missing, created])
# Pulls (command 0xF0): the manifest `{}` by its digest, then the 5-byte blob `layer`.
pull_manifest = resp("200 OK", [("Content-Type", MAN)], "{}")
http_seed("pull", 0xF0, [pull_manifest, resp("200 OK", [], "layer")])
http_seed("pull-redirect", 0xF0, [pull_manifest, resp("307 Temporary Redirect", [("Location", "http://@HOST/storage/blob")]),
                                  resp("200 OK", [], "layer")])
http_seed("pull-forged", 0xF0, [resp("200 OK", [], '{"forged":1}'), resp("200 OK", [], "layer")])
http_seed("pull-long-blob", 0xF0, [pull_manifest, resp("200 OK", [], "layer and more")])
http_seed("pull-bearer", 0xF0, [resp("401 Unauthorized", [bearer]), resp("200 OK", [], '{"token":"t"}'), pull_manifest,
                                resp("200 OK", [], "layer")])

# --- WWW-Authenticate headers and docker config.json
for i, h in enumerate([
        'Basic realm="Registry Realm"',
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"',
        'Bearer realm=https://h/t, service="a \\"q\\" b", error="insufficient_scope"',
        'Bearer realm="x',
        'bearer REALM="http://127.0.0.1:5000/token"',
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
        'Negotiate',
        'Bearer ,,, realm="a"',
]):
    seed("registry_challenge", f"header-{i}", h)
for src in [root / "crates" / "image" / "src" / "registry" / "auth.rs"] + sorted((root / "tests").rglob("*.rs")):
    text = src.read_text(errors="replace")
    for i, m in enumerate(re.finditer(r'r#"(\{.*?\})"#', text)):
        if "auths" in m.group(1) or "creds" in m.group(1):
            seed("docker_config", f"{src.name}-{i}", m.group(1))
for name, cfg in {
    "auth": {"auths": {"registry.example.com": {"auth": "dXNlcjpwYXNz"}}},
    "fields": {"auths": {"https://127.0.0.1:5000/v1/": {"username": "bob", "password": "pw"}}},
    "hub": {"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"}}, "credsStore": "desktop"},
    "helpers": {"credHelpers": {"docker.io": "pass"}, "auths": {}},
    "identity": {"auths": {"registry.example.com": {"auth": "dXNlcjo=", "identitytoken": "tok"}}},
}.items():
    seed("docker_config", name, json.dumps(cfg, indent=1))

# --- Starlark: BUILD files as they are, .bzl modules loaded by a BUILD file, WORKSPACEs
skip = {"target", ".git", "executor-out", "fuzz"}
for path in sorted(root.rglob("*")):
    if any(p in skip for p in path.relative_to(root).parts) or not path.is_file():
        continue
    name = str(path.relative_to(root))
    if path.name == "BUILD":
        seed("starlark_load", name, path.read_bytes())
    elif path.suffix == ".bzl":
        module = path.read_text()
        symbols = re.findall(r"^def ([A-Za-z_]\w*)", module, re.M) or ["x"]
        build = "load(\"//:fuzz.bzl\", " + ", ".join(f'"{s}"' for s in symbols[:3]) + ")\n"
        # Relative loads inside rules/ become absolute ones in the scratch workspace.
        module = module.replace('load(":', 'load("//rules/private:') if "private" in name else module
        seed("starlark_load", name, build + SEP + module)
    elif path.name == "WORKSPACE":
        seed("starlark_load", name, "" + SEP + "" + SEP + path.read_text())
seed("starlark_load", "rules-and-macros", """load("//rules:defs.bzl", "ALL_ARCHS", "distroless_image")
filegroup(name = "files", srcs = ["hello.txt"])
write_file(name = "w", out = "w.txt", content = "x")
distroless_image(name = "img", repository = "r", packages = ["tzdata"], archs = ALL_ARCHS)
""" + SEP + """def m(name):
    native.filegroup(name = name, srcs = glob(["*.txt"]))
""")

for t in targets:
    print(f"{t}: {counts.get(t, 0)} seeds")
PY
