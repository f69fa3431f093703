// Command mergepatch applies a JSON merge patch (RFC 7386), written in YAML,
// to a JSON document and prints the result: scripts/generate.sh makes the
// broker's OpenAPI document with it, from protoc-gen-openapiv2's document of
// the gateway and api/openapi/patch.yaml, the hand-written part.
//
// Usage: go run ./api/openapi/mergepatch DOCUMENT.json PATCH.yaml > OUT.json
//
// A patch object merges into the document's object at the same place, member
// by member; any other patch value replaces what is there; null removes the
// member. Unlike RFC 7386, a null for a member the document lacks is an
// error, so that a patch written against an older document fails loudly
// rather than doing nothing. The output is indented JSON with sorted keys,
// the same bytes for the same inputs.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mergepatch DOCUMENT.json PATCH.yaml > OUT.json")
		os.Exit(2)
	}
	if err := run(os.Stdout, os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "mergepatch: %v\n", err)
		os.Exit(1)
	}
}

// run writes the document at docPath with the patch at patchPath applied to w.
func run(w io.Writer, docPath, patchPath string) error {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	raw, err = os.ReadFile(patchPath)
	if err != nil {
		return err
	}
	var patch any
	if err := yaml.Unmarshal(raw, &patch); err != nil {
		return fmt.Errorf("%s: %w", patchPath, err)
	}
	patch, err = jsonValue(patch)
	if err != nil {
		return fmt.Errorf("%s: %w", patchPath, err)
	}
	merged, err := merge(doc, patch, "")
	if err != nil {
		return fmt.Errorf("%s: %w", patchPath, err)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(merged)
}

// merge returns target with patch merged in; path is where they are, for
// errors.
func merge(target, patch any, path string) (any, error) {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch, nil
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		at := path + "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(k)
		if v == nil {
			if _, ok := t[k]; !ok {
				return nil, fmt.Errorf("%s: removed, but the document has no such member", at)
			}
			delete(t, k)
			continue
		}
		m, err := merge(t[k], v, at)
		if err != nil {
			return nil, err
		}
		t[k] = m
	}
	return t, nil
}

// jsonValue turns a decoded YAML value into one encoding/json writes as the
// same JSON: mapping keys become strings (an unquoted 200 as "200").
func jsonValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			j, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			v[k] = j
		}
		return v, nil
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			j, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = j
		}
		return m, nil
	case []any:
		for i, e := range v {
			j, err := jsonValue(e)
			if err != nil {
				return nil, err
			}
			v[i] = j
		}
		return v, nil
	case nil, string, bool, int, int64, uint64, float64:
		return v, nil
	default:
		return nil, fmt.Errorf("value %v of type %T has no JSON form", v, v)
	}
}
