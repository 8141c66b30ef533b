#!/usr/bin/env bash
# Installs cosign, which checks executor's signatures in tests/integration/signing.rs, at the
# one version pinned here, into /usr/local/bin (or $GOBIN), with `go install` from the Go
# module proxy. (Debian's skopeo and podman have sigstore support patched out: they cannot
# check these signatures.) About 3 minutes on 2 cores.
set -euo pipefail
COSIGN_VERSION=v3.1.2
dest=${GOBIN:-/usr/local/bin}
if [ -x "$dest/cosign" ] && "$dest/cosign" version 2>/dev/null | grep -q "GitVersion: *${COSIGN_VERSION}$"; then
  echo "cosign ${COSIGN_VERSION} already in $dest"; exit 0
fi
command -v go >/dev/null || { echo "error: go not found: the signing tests need Go to build cosign" >&2; exit 1; }
GOBIN=$dest GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "github.com/sigstore/cosign/v3/cmd/cosign@${COSIGN_VERSION}"
echo "installed cosign ${COSIGN_VERSION} in $dest"
