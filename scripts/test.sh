#!/usr/bin/env bash
# Runs every check of the project: generated code up to date, gofmt, go vet,
# staticcheck, and all tests with the race detector. Installs what it needs.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source scripts/tools.sh

step() { printf '\n== %s\n' "$*"; }

step "generated code is what scripts/generate.sh makes"
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
scripts/generate.sh "$gen"
# The protoc version line is the compiler's, not ours to pin in the output.
if ! diff -r -I '^// 	protoc  ' -x '*.proto' -x '*.yaml' "$gen" api/proto; then
  echo "generated code is stale: run scripts/generate.sh and commit the result" >&2
  exit 1
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.bin/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

step "go test -race"
go test -race -count=1 -timeout 20m ./...
