#!/usr/bin/env bash
# Installs what the build and the tests need beyond Go itself, pinned:
# Go tools from tools/go.mod into .bin/, protoc from Debian when it is missing.
# Sourced by the other scripts; safe to run again (Go's build cache makes it quick).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/.bin"
mkdir -p "$bin"

# Go tools, versions pinned by the tool directives in tools/go.mod.
go -C "$root/tools" build -o "$bin/" \
  google.golang.org/protobuf/cmd/protoc-gen-go \
  google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
  honnef.co/go/tools/cmd/staticcheck \
  github.com/fullstorydev/grpcurl/cmd/grpcurl

# protoc: Debian's protobuf-compiler (3.21.x), the one the committed code was made with.
if ! command -v protoc >/dev/null 2>&1; then
  echo "tools: installing protoc (Debian protobuf-compiler)" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q protobuf-compiler >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q protobuf-compiler >/dev/null; }
fi
export PATH="$bin:$PATH"
