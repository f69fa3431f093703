#!/usr/bin/env bash
# Installs what the build and the tests need beyond Go itself, pinned: the Go
# tools of tools/go.mod into .bin/, protoc and chromium (for the console's
# browser tests) from Debian when they are missing.
#
# Run, `scripts/tools.sh [TOOL...]` builds the named tools (every one when none
# is named: protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway
# protoc-gen-openapiv2 staticcheck grpcurl), and installs protoc and chromium
# when missing. Sourced by the other scripts, it builds nothing itself: it
# defines build_tools TOOL..., need_protoc and need_chromium for them to ask
# for only what a step needs, and puts .bin on PATH. Safe to run again (Go's build cache makes it quick).
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

# apt_install installs Debian packages, updating the package lists first when
# the install fails without; it waits up to 10 minutes for another apt or dpkg
# that holds the lock.
apt_install() {
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local apt=($sudo apt-get -o DPkg::Lock::Timeout=600 -y -q)
  "${apt[@]}" install "$@" >/dev/null 2>&1 ||
    { "${apt[@]}" update >/dev/null && "${apt[@]}" install "$@" >/dev/null; }
}

# need_protoc installs Debian's protobuf-compiler (3.21.x), the one the
# committed code was made with, when protoc is missing.
need_protoc() {
  command -v protoc >/dev/null 2>&1 && return 0
  echo "tools: installing protoc (Debian protobuf-compiler)" >&2
  apt_install protobuf-compiler
}

# need_chromium installs Debian's chromium, which the operator console's
# browser tests drive headless (cmd/broker, TestConsole), when no Chromium is
# on PATH ($CHROMIUM names another one to the tests).
need_chromium() {
  local name
  for name in "${CHROMIUM:-}" chromium chromium-browser google-chrome google-chrome-stable; do
    [ -n "$name" ] && command -v "$name" >/dev/null 2>&1 && return 0
  done
  echo "tools: installing chromium (Debian), for the console's browser tests" >&2
  apt_install chromium
}

export PATH="$tools_bin:$PATH"

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ $# -eq 0 ]; then
    set -- protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2 staticcheck grpcurl
  fi
  build_tools "$@"
  need_protoc
  need_chromium
fi
