package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// FuzzParseBearer checks ParseBearer on any header value: it accepts exactly
// one token68 after the Bearer scheme, and what it returns parses back to
// itself. Its seeds are in testdata/fuzz/FuzzParseBearer.
func FuzzParseBearer(f *testing.F) {
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := auth.ParseBearer(header)
		if !ok {
			if token != "" {
				t.Fatalf("ParseBearer(%q) = %q, false; want no token when refused", header, token)
			}
			return
		}
		if token == "" || strings.Trim(token, "=") == "" {
			t.Fatalf("ParseBearer(%q) accepted an empty token %q", header, token)
		}
		for _, c := range strings.TrimRight(token, "=") {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/", c) {
				t.Fatalf("ParseBearer(%q) = %q, which holds %q, not a token68 character", header, token, c)
			}
		}
		if !strings.HasSuffix(strings.TrimSpace(header), token) {
			t.Fatalf("ParseBearer(%q) = %q, which does not end the header", header, token)
		}
		if again, ok := auth.ParseBearer("Bearer " + token); !ok || again != token {
			t.Fatalf("ParseBearer(Bearer %q) = %q, %v; want the token back", token, again, ok)
		}
	})
}

// FuzzVerify checks the reading of claims on any header and payload, signed
// with the right HS256 secret so that they get past the signature, under each
// profile (profile modulo their number). A refusal is EUNAUTHENTICATED and
// quotes no part of the token; an acceptance means the payload is a JSON
// object without two names that differ only in case, the header has no crit,
// sub and exp are there with the right JSON types, and the principal holds
// what the profile's claims say. Its seeds are in testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	names := auth.ProfileNames()
	verifiers := make([]*auth.Verifier, len(names))
	for i, name := range names {
		cfg := auth.Config{Issuer: testIssuer, HS256Secret: testSecret, Now: func() time.Time { return testNow },
			Profile: name, CacheTTL: -1, Logger: quiet}
		if p, _ := auth.LookupProfile(name); p.NoAudience {
			cfg.Clients = []string{"alexa-client", "companion"}
		} else {
			cfg.Audience = testAudience
		}
		v, err := auth.NewVerifier(context.Background(), cfg)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { _ = v.Close() })
		verifiers[i] = v
	}
	secret := []byte(testSecret.Reveal())
	f.Fuzz(func(t *testing.T, profile uint8, header, payload []byte) {
		name := names[int(profile)%len(names)]
		raw := signRaw(string(header), string(payload), secret)
		p, err := verifiers[int(profile)%len(names)].Verify(context.Background(), raw)
		if err != nil {
			if code := tokens.ErrorCode(err); code != tokens.EUNAUTHENTICATED {
				t.Fatalf("Verify: %v, want EUNAUTHENTICATED", err)
			}
			parts := strings.Split(raw, ".")
			for _, part := range parts[1:] {
				if len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Fatalf("error %q quotes the token", err)
				}
			}
			return
		}
		checkAccepted(t, name, header, payload, p)
	})
}

// checkAccepted fails the test unless header and payload, which a verifier of
// profile accepted as p, are what the broker should accept.
func checkAccepted(t *testing.T, profile string, header, payload []byte, p auth.Principal) {
	t.Helper()
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatalf("accepted a header that is not a JSON object: %v", err)
	}
	if _, ok := h["crit"]; ok {
		t.Fatal("accepted a header with crit")
	}
	names := objectNames(t, payload)
	for i, a := range names {
		for _, b := range names[i+1:] {
			if strings.EqualFold(a, b) {
				t.Fatalf("accepted claims %q and %q, which differ only in case", a, b)
			}
		}
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatalf("accepted a payload that is not a JSON object: %v", err)
	}
	if sub, _ := c["sub"].(string); sub == "" || sub != p.Subject {
		t.Fatalf("Subject = %q, but sub is %#v", p.Subject, c["sub"])
	}
	if _, ok := c["exp"].(float64); !ok {
		t.Fatalf("accepted exp %#v, which is not a number", c["exp"])
	}
	prof, _ := auth.LookupProfile(profile)
	client := ""
	for _, claim := range prof.ClientClaims {
		if s, _ := c[claim].(string); s != "" {
			client = s
			break
		}
	}
	if client == "" || client != p.ClientID {
		t.Fatalf("ClientID = %q, but the profile's client claims say %q", p.ClientID, client)
	}
	for _, s := range p.Scopes {
		if s == "" {
			t.Fatalf("Scopes %q hold an empty scope", p.Scopes)
		}
	}
}

// objectNames returns the member names of the JSON object b, duplicates
// included, in order.
func objectNames(t *testing.T, b []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("accepted a payload that is not a JSON object: %q", b)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	return names
}
