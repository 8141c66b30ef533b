"""The distroless image macro. Load it through //rules:defs.bzl."""

# Every architecture executor builds for, in the order of a multi-arch index.
ALL_ARCHS = ["x86", "x86_64", "aarch64", "armhf", "armv7", "ppc64le", "riscv64", "s390x"]

def distroless_image(
        name,
        repository,
        packages,
        archs = ALL_ARCHS,
        users = [],
        groups = [],
        files = {},
        directories = [],
        symlinks = {},
        modes = {},
        owners = {},
        entrypoint = [],
        cmd = [],
        env = {},
        user = None,
        workdir = None,
        labels = {},
        annotations = {},
        epoch = None,
        compression_level = None,
        layering = None,
        tag = "latest",
        repo_tags = []):
    """A multi-arch image: one package list, accounts and config, expanded per arch.

    Targets (with `<arch>` each of `archs`, as APK names such as `x86_64`):
      <name>_apks           apk_fetch of `packages` for every arch (locked together, so
                            every arch gets the same versions)
      <name>_<arch>_layer   layer: the packages, `files`, `directories`, `symlinks`,
                            `users` and `groups`
      <name>_<arch>         oci_image with `entrypoint`, `cmd`, `env`, `user`, `workdir`,
                            `labels`, `annotations`
      <name>                oci_index over the images, tagged `tag`
      <name>_<arch>_tarball oci_load of each image, tagged `repo_tags` (only when
                            `repo_tags` is set): `<name>_<arch>_tarball.tar` for
                            `docker load` / `podman load`

    Args:
      name: the index's name.
      repository: an `apk_repository` declared in WORKSPACE.
      packages: what to install, with dependencies (`name`, `name>=1.2`, `so:...`).
      archs: APK architectures, default all eight.
      users: accounts, `name:uid:gid:home:shell`.
      groups: groups, `name:gid` or `name:gid:member,member`.
      files: absolute destination path -> label of one file.
      directories: absolute paths to create.
      symlinks: absolute link path -> target.
      modes: octal mode per path of `files` / `directories`.
      owners: `uid:gid` per path of `files` / `directories`.
      entrypoint: config.Entrypoint.
      cmd: config.Cmd.
      env: environment, over PATH and SSL_CERT_FILE defaults.
      user: config.User (an account name or numeric uid).
      workdir: config.WorkingDir.
      labels: config.Labels.
      annotations: manifest and index annotations.
      epoch: unix seconds for `created` and every mtime (default: newest package build time).
      compression_level: the layers' gzip level, 0 to 9 (default 6; lower is faster, larger).
      layering: `{"strategy": "origin", "budget": N}` spreads the packages over at most N
                layers grouped by origin (source package), plus a top layer for the rest,
                as apko's layering: images that share packages share those layers' blobs.
                Default: one layer.
      tag: the index's ref name in the layout's index.json.
      repo_tags: `name:tag` references for the docker-archive tarballs.
    """
    if not archs:
        fail("distroless_image `%s`: `archs` must not be empty" % name)
    layering_strategy = None
    layering_budget = None
    if layering != None:
        if type(layering) != "dict":
            fail("distroless_image `%s`: `layering` must be a dict like {\"strategy\": \"origin\", \"budget\": 4}" % name)
        for key in layering:
            if key not in ["strategy", "budget"]:
                fail("distroless_image `%s`: `layering` has an unknown key `%s` (it takes `strategy` and `budget`)" % (name, key))
        layering_strategy = layering.get("strategy", "origin")
        layering_budget = layering.get("budget")
        if layering_budget == None:
            fail("distroless_image `%s`: `layering` needs a `budget`, the most layers of packages" % name)
    native.apk_fetch(
        name = name + "_apks",
        repository = repository,
        packages = packages,
        archs = archs,
    )
    images = []
    for arch in archs:
        layer = "%s_%s_layer" % (name, arch)
        native.layer(
            name = layer,
            packages = ":" + name + "_apks",
            arch = arch,
            users = users,
            groups = groups,
            files = files,
            directories = directories,
            symlinks = symlinks,
            modes = modes,
            owners = owners,
            epoch = epoch,
            compression_level = compression_level,
            layering = layering_strategy,
            layering_budget = layering_budget,
        )
        image = "%s_%s" % (name, arch)
        native.oci_image(
            name = image,
            layers = [":" + layer],
            arch = arch,
            entrypoint = entrypoint,
            cmd = cmd,
            env = env,
            user = user,
            workdir = workdir,
            labels = labels,
            annotations = annotations,
            epoch = epoch,
        )
        images.append(":" + image)
        if repo_tags:
            native.oci_load(
                name = image + "_tarball",
                image = ":" + image,
                repo_tags = repo_tags,
            )
    native.oci_index(
        name = name,
        images = images,
        annotations = annotations,
        tag = tag,
        epoch = epoch,
    )
