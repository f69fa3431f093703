#!/usr/bin/env bash
# Regenerates the Go code of api/proto with pinned plugins (tools/go.mod) and
# protoc. The generated files are committed; scripts/test.sh fails when they are
# not what this script makes. Usage: scripts/generate.sh [OUTPUT_DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/tools.sh"
build_tools protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway
need_protoc
out=${1:-$root/api/proto}
cd "$root/api/proto"
protoc -I . \
  --go_out="$out" --go_opt=paths=source_relative \
  --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
  --grpc-gateway_out="$out" --grpc-gateway_opt=paths=source_relative \
  --grpc-gateway_opt=grpc_api_configuration=broker/v1/broker_http.yaml \
  --grpc-gateway_opt=generate_unbound_methods=false \
  broker/v1/broker.proto
