#!/usr/bin/env bash
# Runs every check of the project: generated code up to date, cfn-lint on
# infra/cloudformation (required, not installed), gofmt, go vet, staticcheck,
# and all tests with the race detector (the DynamoDB ones against dynalite,
# installed here with npm ci from package-lock.json). Installs what it needs.
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

step "generated code is what scripts/generate.sh makes"
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
scripts/generate.sh "$gen"
# The protoc version line is the compiler's, not ours to pin in the output.
if ! diff -r -I '^// 	protoc  ' -x '*.proto' -x '*.yaml' "$gen" api/proto; then
  echo "generated code is stale: run scripts/generate.sh and commit the result" >&2
  exit 1
fi

step "cfn-lint infra/cloudformation"
# The CloudFormation templates are checked against CloudFormation's resource
# schemas; warnings are shown, errors fail the run. cfn-lint is a Python tool
# (pip install cfn-lint); it is not installed here, only required.
if ! command -v cfn-lint >/dev/null 2>&1; then
  echo "cfn-lint is missing: install it (pip install cfn-lint) to check infra/cloudformation" >&2
  exit 1
fi
cfn-lint --non-zero-exit-code error -- infra/cloudformation/*.yaml

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
if command -v npm >/dev/null 2>&1; then
  npm ci --no-audit --no-fund --loglevel=error
elif [ "${CI:-}" = "true" ]; then
  echo "npm is missing: install Node.js and npm to run the DynamoDB store tests" >&2
  exit 1
else
  echo "npm is missing: the DynamoDB store tests will be skipped"
fi

step "go test -race"
go test -race -count=1 -timeout 20m ./...
