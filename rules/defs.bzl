"""The one public load point of executor's rules.

Native rules are re-exported here so that BUILD files load everything from one place;
macros live in private files behind this one.

Rules: every native rule, with its attributes, is documented in docs/rules.md (generated from
the rules themselves by `executor docs`).

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
