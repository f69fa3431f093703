#!/usr/bin/env bash
# Installs what the build and the tests need beyond Go itself, pinned: the Go
# tools of tools/go.mod into .bin/, protoc from Debian when it is missing.
#
# Run, `scripts/tools.sh [TOOL...]` builds the named tools (every one when none
# is named: protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway
# protoc-gen-openapiv2 staticcheck grpcurl). Sourced by the other scripts, it builds nothing itself: it defines
# build_tools TOOL... and need_protoc for them to ask for only what a step
# needs, and puts .bin on PATH. Safe to run again (Go's build cache makes it quick).
set -euo pipefail
tools_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_bin="$tools_root/.bin"

# The packages of the tools, versions pinned by the tool directives in tools/go.mod.
declare -A tool_packages=(
  [protoc-gen-go]=google.golang.org/protobuf/cmd/protoc-gen-go
  [protoc-gen-go-grpc]=google.golang.org/grpc/cmd/protoc-gen-go-grpc
  [protoc-gen-grpc-gateway]=github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway
  [protoc-gen-openapiv2]=github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2
  [staticcheck]=honnef.co/go/tools/cmd/staticcheck
  [grpcurl]=github.com/fullstorydev/grpcurl/cmd/grpcurl
)

# build_tools builds the named tools into .bin/ with one go build, so that Go
# compiles the packages they share once, in parallel. grpcurl is the slow one
# (it pulls in Envoy's API): only the README's gRPC examples need it.
build_tools() {
  local name pkgs=()
  for name in "$@"; do
    [ -n "${tool_packages[$name]:-}" ] || { echo "tools: unknown tool $name" >&2; return 2; }
    pkgs+=("${tool_packages[$name]}")
  done
  mkdir -p "$tools_bin"
  go -C "$tools_root/tools" build -o "$tools_bin/" "${pkgs[@]}"
}

# need_protoc installs Debian's protobuf-compiler (3.21.x), the one the
# committed code was made with, when protoc is missing.
need_protoc() {
  command -v protoc >/dev/null 2>&1 && return 0
  echo "tools: installing protoc (Debian protobuf-compiler)" >&2
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q protobuf-compiler >/dev/null 2>&1 ||
    { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q protobuf-compiler >/dev/null; }
}

export PATH="$tools_bin:$PATH"

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ $# -eq 0 ]; then
    set -- protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2 staticcheck grpcurl
  fi
  build_tools "$@"
  need_protoc
fi
