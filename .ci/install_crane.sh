#!/usr/bin/env bash
# Installs crane, which reads the registry in the seed's end-to-end test
# (tests/integration/pull.rs: the base layer blob an app image shares with its pulled base), at
# the one version pinned here, into /usr/local/bin (or $GOBIN), with `go install` from the Go
# module proxy. About a minute on 2 cores.
set -euo pipefail
CRANE_VERSION=v0.22.1
dest=${GOBIN:-/usr/local/bin}
if [ -x "$dest/crane" ] && [ "$("$dest/crane" version 2>/dev/null)" = "${CRANE_VERSION}" ]; then
  echo "crane ${CRANE_VERSION} already in $dest"; exit 0
fi
command -v go >/dev/null || { echo "error: go not found: the pull tests need Go to build crane" >&2; exit 1; }
GOBIN=$dest GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "github.com/google/go-containerregistry/cmd/crane@${CRANE_VERSION}"
echo "installed crane ${CRANE_VERSION} in $dest"
