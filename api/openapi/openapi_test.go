package openapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/reciprocal-broker/broker/api/openapi"
)

func TestJSON(t *testing.T) {
	doc := openapi.JSON()
	var head struct {
		Swagger string                     `json:"swagger"`
		Paths   map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &head); err != nil {
		t.Fatal(err)
	}
	if head.Swagger != "2.0" || head.Paths["/v1/partner-token"] == nil || head.Paths["/api/reciprocal/authorize"] == nil {
		t.Errorf("the document is not the broker's OpenAPI 2.0 document: swagger %q, %d paths", head.Swagger, len(head.Paths))
	}
	doc[0] = 'x'
	if openapi.JSON()[0] == 'x' {
		t.Error("JSON returned the package's own slice")
	}
}

func TestHandler(t *testing.T) {
	h := openapi.Handler()
	get := func(method, ifNoneMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/openapi.json", nil)
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	w := get("GET", "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" || !bytes.Equal(w.Body.Bytes(), openapi.JSON()) {
		t.Fatalf("GET: %d %q, %d bytes; want 200 application/json and the document", w.Code, w.Header().Get("Content-Type"), w.Body.Len())
	}
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("GET: no ETag")
	}
	tests := []struct {
		name, method, ifNoneMatch string
		status, bodyLen           int
	}{
		{"HEAD", "HEAD", "", http.StatusOK, 0},
		{"same ETag", "GET", etag, http.StatusNotModified, 0},
		{"other ETag", "GET", `"other"`, http.StatusOK, len(openapi.JSON())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := get(tt.method, tt.ifNoneMatch)
			if w.Code != tt.status || w.Body.Len() != tt.bodyLen {
				t.Errorf("%d with %d bytes, want %d with %d", w.Code, w.Body.Len(), tt.status, tt.bodyLen)
			}
		})
	}
}
