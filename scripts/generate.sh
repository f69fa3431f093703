#!/usr/bin/env bash
# Regenerates what api/ holds that is made, with protoc and the plugins pinned
# in tools/go.mod: the Go code of api/proto (protoc-gen-go, protoc-gen-go-grpc,
# protoc-gen-grpc-gateway; readiness.proto's gRPC-only service without the
# gateway), and the OpenAPI 2.0 document of the HTTP API,
# api/openapi/broker.swagger.json: protoc-gen-openapiv2's document of the
# gateway, from the same HTTP rules (broker_http.yaml) with the proto's comments
# as descriptions, merged with the hand-written api/openapi/patch.yaml (the
# routes that are not gateway-mapped, the bearer token, the error body) by
# api/openapi/mergepatch. The generated files are committed; scripts/test.sh
# fails when they are not what this script makes.
#
# Usage: scripts/generate.sh [OUTPUT_DIR]: writes OUTPUT_DIR/proto/... and
# OUTPUT_DIR/openapi/broker.swagger.json (OUTPUT_DIR is api/ by default).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/tools.sh"
build_tools protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2
need_protoc
out=${1:-$root/api}
mkdir -p "$out/proto" "$out/openapi"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$root/api/proto"
protoc -I . \
  --go_out="$out/proto" --go_opt=paths=source_relative \
  --go-grpc_out="$out/proto" --go-grpc_opt=paths=source_relative \
  --grpc-gateway_out="$out/proto" --grpc-gateway_opt=paths=source_relative \
  --grpc-gateway_opt=grpc_api_configuration=broker/v1/broker_http.yaml \
  --grpc-gateway_opt=generate_unbound_methods=false \
  --openapiv2_out="$tmp" \
  --openapiv2_opt=grpc_api_configuration=broker/v1/broker_http.yaml \
  --openapiv2_opt=generate_unbound_methods=false \
  --openapiv2_opt=json_names_for_fields=false \
  --openapiv2_opt=openapi_naming_strategy=simple \
  broker/v1/broker.proto
# The gRPC-only services: no HTTP rules, so no gateway and no OpenAPI.
protoc -I . \
  --go_out="$out/proto" --go_opt=paths=source_relative \
  --go-grpc_out="$out/proto" --go-grpc_opt=paths=source_relative \
  broker/v1/readiness.proto

cd "$root"
go run ./api/openapi/mergepatch "$tmp/broker/v1/broker.swagger.json" api/openapi/patch.yaml >"$tmp/merged.json"
mv "$tmp/merged.json" "$out/openapi/broker.swagger.json"
