package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name, doc, patch, want, err string
	}{
		{"member replaced, added, merged", `{"a":1,"b":{"c":2,"d":3},"e":[1,2]}`, "a: x\nb: {c: 4}\nf: true\n",
			`{"a":"x","b":{"c":4,"d":3},"e":[1,2],"f":true}`, ""},
		{"array replaced whole", `{"e":[1,2]}`, "e: [3]\n", `{"e":[3]}`, ""},
		{"null removes", `{"a":1,"b":{"c":2,"d":3}}`, "b: {c: null}\n", `{"a":1,"b":{"d":3}}`, ""},
		{"unquoted number keys are strings", `{"r":{"200":{"x":1}}}`, "r:\n  200: null\n  202: {y: 2}\n", `{"r":{"202":{"y":2}}}`, ""},
		{"object replaces a scalar", `{"a":1}`, "a: {b: 2}\n", `{"a":{"b":2}}`, ""},
		{"numbers kept as written", `{"n":1.50,"m":12345678901234567890}`, "o: 1\n", `{"m":12345678901234567890,"n":1.50,"o":1}`, ""},
		{"no HTML escaping", `{"a":"<b>&"}`, "c: '<d>'\n", `{"a":"<b>&","c":"<d>"}`, ""},
		{"removing what is not there fails", `{"a":{"b":1}}`, "a: {c: null}\n", "", "/a/c: removed, but the document has no such member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			doc, patch := filepath.Join(dir, "doc.json"), filepath.Join(dir, "patch.yaml")
			if err := os.WriteFile(doc, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(patch, []byte(tt.patch), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err := run(&out, doc, patch)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			for _, line := range strings.Split(out.String(), "\n") {
				compact.WriteString(strings.TrimSpace(line))
			}
			got := strings.ReplaceAll(compact.String(), `": `, `":`)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
