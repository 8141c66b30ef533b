#!/bin/sh
# Compiles the statically linked `hello` binary this example layers into its image
# (examples.rs runs every example's prepare.sh before building it).
set -eu
cd "$(dirname "$0")"
CC="${CC:-cc}"
if command -v musl-gcc >/dev/null 2>&1; then CC=musl-gcc; fi
mkdir -p bin
"$CC" -static -Os -o bin/hello hello.c
