"""The one public load point of executor's rules.

Native rules are re-exported here so that BUILD files load everything from one place;
macros live in private files behind this one.

- `filegroup(name, srcs)`: names a set of files.
- `write_file(name, out, content, is_executable)`: writes a string to a file.
- `text_files(name, files)`: one `write_file` per entry of `files`, grouped under `name`.
"""

load("//rules:private/files.bzl", _text_files = "text_files")

filegroup = native.filegroup
write_file = native.write_file
text_files = _text_files
