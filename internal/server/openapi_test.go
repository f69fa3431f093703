package server_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/reciprocal-broker/broker/api/openapi"
	"github.com/reciprocal-broker/broker/internal/server"
)

func TestServer_OpenAPI(t *testing.T) {
	s := open(t, server.Options{})
	// No token: the document is public, like the probes.
	resp, err := http.Get("http://" + s.HTTPAddr() + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, openapi.JSON()) {
		t.Errorf("GET /openapi.json: %d %q, %d bytes; want 200 application/json and the document", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("GET /openapi.json: no X-Request-Id: the route is not behind the request log")
	}
}
