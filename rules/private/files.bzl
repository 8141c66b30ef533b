"""Macros over write_file. Load them through //rules:defs.bzl."""

def text_files(name, files, **kwargs):
    """Writes one file per entry of `files` and groups them.

    Args:
      name: the filegroup's name; each file's target is `<name>_<path with / as _>`.
      files: dict of output path (relative to the package) to content.
      **kwargs: passed to every write_file (e.g. is_executable).
    """
    if type(files) != "dict" or not files:
        fail("text_files `%s`: `files` must be a non-empty dict of path to content" % name)
    targets = []
    for path in sorted(files.keys()):
        target = name + "_" + path.replace("/", "_").replace(".", "_")
        native.write_file(name = target, out = path, content = files[path], **kwargs)
        targets.append(":" + target)
    native.filegroup(name = name, srcs = targets)
