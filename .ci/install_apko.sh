#!/usr/bin/env bash
# Installs apko, the peer the apko side-by-side tests compare executor with, at the one
# version pinned here, into /usr/local/bin (or $GOBIN). Built with `go get` in a throwaway
# module, then `go build`: `go install chainguard.dev/apko@VERSION` fails on this project's
# machines because the module proxy refuses the version list it reads for deprecation notices.
# v1.2.31 is the newest release whose whole module graph the proxy serves (v1.2.32 to v1.2.39
# need a github.com/erofs/go-erofs pseudo-version it refuses).
set -euo pipefail
APKO_VERSION=v1.2.31
dest=${GOBIN:-/usr/local/bin}
if [ -x "$dest/apko" ] && "$dest/apko" version 2>/dev/null | grep -q "GitVersion: *${APKO_VERSION}$"; then
  echo "apko ${APKO_VERSION} already in $dest"; exit 0
fi
command -v go >/dev/null || { echo "error: go not found: the apko side-by-side tests need Go to build apko" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init apko-peer >/dev/null 2>&1
GOTOOLCHAIN=local GOFLAGS=-mod=mod go get "chainguard.dev/apko@${APKO_VERSION}" >"$work/get.log" 2>&1 \
  || { cat "$work/get.log" >&2; echo "error: cannot fetch apko ${APKO_VERSION}" >&2; exit 1; }
GOTOOLCHAIN=local GOFLAGS=-mod=mod go build -trimpath -o "$dest/apko" chainguard.dev/apko
echo "installed apko ${APKO_VERSION} in $dest"
