#!/usr/bin/env bash
# Installs Trivy, the scanner tests/integration/scanners.rs runs on the flagship image, at
# the one version pinned here, into /usr/local/bin (or $GOBIN). Built from the Go module proxy
# in a throwaway module (as .ci/install_apko.sh does, for the same reason); Trivy needs Go's
# encoding/json/v2, hence GOEXPERIMENT=jsonv2. About 6 minutes on 2 cores.
set -euo pipefail
TRIVY_VERSION=v0.74.0
dest=${GOBIN:-/usr/local/bin}
if [ -x "$dest/trivy" ] && "$dest/trivy" --version 2>/dev/null | grep -q "Version: ${TRIVY_VERSION#v}$"; then
  echo "trivy ${TRIVY_VERSION} already in $dest"; exit 0
fi
command -v go >/dev/null || { echo "error: go not found: the scanner tests need Go to build Trivy" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init trivy-peer >/dev/null 2>&1
GOTOOLCHAIN=local GOFLAGS=-mod=mod go get "github.com/aquasecurity/trivy@${TRIVY_VERSION}" >"$work/get.log" 2>&1 \
  || { cat "$work/get.log" >&2; echo "error: cannot fetch trivy ${TRIVY_VERSION}" >&2; exit 1; }
GOEXPERIMENT=jsonv2 GOTOOLCHAIN=local GOFLAGS=-mod=mod go build \
  -ldflags "-X github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}" \
  -o "$dest/trivy" github.com/aquasecurity/trivy/cmd/trivy
echo "installed trivy ${TRIVY_VERSION} in $dest"
