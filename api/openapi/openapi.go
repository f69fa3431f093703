// Package openapi holds the OpenAPI 2.0 document of the broker's HTTP API,
// broker.swagger.json, and serves it. scripts/generate.sh makes the document:
// protoc-gen-openapiv2's description of the gateway, from broker_http.yaml's
// routes with broker.proto's comments as descriptions, merged with patch.yaml,
// which describes by hand the routes the gateway does not map (Alexa's form
// endpoint, a smart-home skill's AcceptGrant, the probes, /metrics and the
// document itself).
package openapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed broker.swagger.json
var document []byte

// etag names this build's document, for conditional requests.
var etag = func() string {
	sum := sha256.Sum256(document)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// JSON returns the document, OpenAPI 2.0 (Swagger) JSON; the slice is the
// caller's to change.
func JSON() []byte { return bytes.Clone(document) }

// Handler serves the document as application/json, with an ETag so that a
// client may ask again with If-None-Match. It answers any method the route it
// is mounted on lets through (GET, HEAD).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(document))
	})
}
