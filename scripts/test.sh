#!/usr/bin/env bash
# Runs every check of the project: generated code up to date, gofmt, go vet,
# staticcheck, and all tests with the race detector (the DynamoDB ones against
# dynalite, installed here with npm ci from package-lock.json, in the
# background while Go builds and vets; the operator console's in headless
# Chromium, Debian's chromium, installed here when missing, meanwhile too).
# The CloudFormation templates are checked by the Go tests of
# infra/cloudformation (goformation); cfn-lint is run on them in addition
# where it is installed, and is not required.
# Installs what it needs: Go, Node and Debian's packages are enough.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source scripts/tools.sh

step() { printf '\n== %s\n' "$*"; }

step "no build output in the repository"
# A tracked file may not be an executable binary (ELF, Mach-O, PE) nor larger
# than 2 MB; package-lock.json is the one large file allowed.
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  size=$(wc -c <"$f")
  if [ "$f" != package-lock.json ] && [ "$size" -gt 2097152 ]; then
    echo "tracked file larger than 2 MB: $f ($size bytes)" >&2; bad=1
  fi
  case $(head -c 4 "$f" | od -An -tx1 | tr -d ' \n') in
    7f454c46 | feedface | feedfacf | cefaedfe | cffaedfe | cafebabe | 4d5a*)
      echo "tracked file is an executable binary: $f" >&2; bad=1 ;;
  esac
done < <(git ls-files -z 2>/dev/null)
if [ "$bad" -ne 0 ]; then
  echo "remove build output from git (git rm --cached FILE); .gitignore lists its kinds" >&2
  exit 1
fi

# npm ci runs while Go builds: it needs the network and the disk, Go the CPU.
npm_log=$(mktemp)
trap 'rm -f "$npm_log"' EXIT
npm_pid=""
if command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error >"$npm_log" 2>&1 &
  npm_pid=$!
fi

# Chromium, for the console's browser tests, installs meanwhile too.
chromium_log=$(mktemp)
trap 'rm -f "$npm_log" "$chromium_log"' EXIT
need_chromium >"$chromium_log" 2>&1 &
chromium_pid=$!

step "build the tools of the checks (protoc plugins, staticcheck)"
build_tools protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2 staticcheck
need_protoc

step "generated code is what scripts/generate.sh makes"
gen=$(mktemp -d)
trap 'rm -rf "$gen" "$npm_log" "$chromium_log"' EXIT
scripts/generate.sh "$gen"
# The protoc version line is the compiler's, not ours to pin in the output.
if ! diff -r -I '^// 	protoc  ' -x '*.proto' -x '*.yaml' "$gen/proto" api/proto ||
  ! diff "$gen/openapi/broker.swagger.json" api/openapi/broker.swagger.json; then
  echo "generated code is stale: run scripts/generate.sh and commit the result" >&2
  exit 1
fi

step "cfn-lint infra/cloudformation (where installed)"
# The Go tests of infra/cloudformation parse the templates with goformation,
# which knows every resource type and property. cfn-lint, a Python tool, knows
# more (CloudFormation's own schemas and rules); where it is installed, its
# errors fail the run and its warnings are shown.
if command -v cfn-lint >/dev/null 2>&1; then
  echo "cfn-lint found: running it in addition"
  cfn-lint --non-zero-exit-code error -- infra/cloudformation/*.yaml
else
  echo "cfn-lint not installed: the Go checks of infra/cloudformation cover the templates"
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

step "npm ci (dynalite, the local DynamoDB-API server of the store tests)"
if [ -n "$npm_pid" ]; then
  npm_status=0
  wait "$npm_pid" || npm_status=$?
  cat "$npm_log"
  if [ "$npm_status" -ne 0 ]; then
    echo "npm ci failed (exit $npm_status)" >&2
    exit 1
  fi
elif [ "${CI:-}" = "true" ]; then
  echo "npm is missing: install Node.js and npm to run the DynamoDB store tests" >&2
  exit 1
else
  echo "npm is missing: the DynamoDB store tests will be skipped"
fi

step "chromium (the operator console's browser tests)"
chromium_status=0
wait "$chromium_pid" || chromium_status=$?
cat "$chromium_log"
if [ "$chromium_status" -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "installing chromium failed (exit $chromium_status): the console's browser tests need it" >&2
    exit 1
  fi
  echo "chromium could not be installed: the console's browser tests will be skipped"
fi

step "go test -race"
# infra/cloudformation runs without the race detector: its tests start no
# goroutine, and with it goformation (a package per AWS service, every resource
# type) would be compiled a second time, minutes on a cold cache; go vet has
# already compiled it without.
go test -count=1 ./infra/cloudformation
go test -race -count=1 -timeout 20m $(go list ./... | grep -v '/infra/cloudformation$')
