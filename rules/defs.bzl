"""The one public load point of executor's rules.

Native rules are re-exported here so that BUILD files load everything from one place;
macros live in private files behind this one.

Rules:
- `apk_fetch(name, repository, packages, arch | archs)`: locked APK packages.
- `layer(name, packages, arch, files, directories, symlinks, modes, owners, users, groups, epoch)`.
- `oci_image(name, base, layers, arch, entrypoint, cmd, env, user, workdir, labels, annotations, epoch, sbom, distro)`.
- `oci_index(name, images, annotations, tag, epoch)`.
- `oci_load(name, image, platform, repo_tags)`: a docker-archive tarball of one platform.
- `filegroup(name, srcs)`, `write_file(name, out, content, is_executable)`.

Macros:
- `distroless_image(name, repository, packages, archs, ...)`: per-arch apk_fetch + layer +
  oci_image (with an SBOM), one oci_index, and oci_load tarballs when `repo_tags` is set.
- `text_files(name, files)`: one `write_file` per entry of `files`, grouped under `name`.
"""

load("//rules:private/files.bzl", _text_files = "text_files")
load("//rules:private/images.bzl", _ALL_ARCHS = "ALL_ARCHS", _distroless_image = "distroless_image")

apk_fetch = native.apk_fetch
layer = native.layer
oci_image = native.oci_image
oci_index = native.oci_index
oci_load = native.oci_load
filegroup = native.filegroup
write_file = native.write_file

ALL_ARCHS = _ALL_ARCHS
distroless_image = _distroless_image
text_files = _text_files
