package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// signRaw returns a token of the JSON header and payload exactly as written,
// signed with HS256 and secret: duplicate names and odd types survive, as
// they would not through a map.
func signRaw(header, payload string, secret []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// hs256Header is the plain header of an HS256 token.
const hs256Header = `{"alg":"HS256","typ":"JWT"}`

// payloadWith returns a valid user token's payload with extra members
// appended, as JSON text.
func payloadWith(extra string) string {
	return fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":%d,"iat":%d%s}`,
		testIssuer, testAudience, testNow.Add(time.Hour).Unix(), testNow.Unix(), extra)
}

// TestVerifier_HostileClaims covers the security review's findings: claims are
// read by their exact names, two spellings of one claim are refused, dates
// must be JSON numbers, and a crit header is refused.
func TestVerifier_HostileClaims(t *testing.T) {
	v := newVerifier(t, auth.Config{HS256Secret: testSecret, Now: func() time.Time { return testNow }, CacheTTL: -1})
	secret := []byte(testSecret.Reveal())
	exp := testNow.Add(time.Hour).Unix()
	for _, tc := range []struct {
		name, header, payload string
		reason                string   // part of the refusal; "" for success
		scopes                []string // on success
	}{
		{name: "Plain", payload: payloadWith(`,"scope":"broker:tokens"`), scopes: []string{"broker:tokens"}},
		{name: "ScopeAndSCOPE", payload: payloadWith(`,"scope":"broker:tokens","SCOPE":"broker:admin"`), reason: "differ only in case"},
		{name: "SCOPEAndScope", payload: payloadWith(`,"SCOPE":"broker:admin","scope":"broker:tokens"`), reason: "differ only in case"},
		{name: "SubAndSub", payload: payloadWith(`,"Sub":"admin"`), reason: "differ only in case"},
		{name: "LongS", payload: payloadWith(`,"ſub":"admin"`), reason: "differ only in case"},        // U+017F folds to s
		{name: "KelvinSign", payload: payloadWith(`,"k":"1","K":"2"`), reason: "differ only in case"}, // U+212A folds to k
		{name: "ExactDuplicate", payload: payloadWith(`,"sub":"admin"`), reason: "given twice"},
		{name: "EscapedDuplicate", payload: payloadWith(`,"s\u0075b":"admin"`), reason: "given twice"},
		{name: "OnlySCOPE", payload: payloadWith(`,"SCOPE":"broker:admin"`), scopes: nil},
		{name: "OnlyClientIDInCaps", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","CLIENT_ID":"alexa-client","exp":%d}`, testIssuer, testAudience, exp),
			reason: "no client claim (client_id)"},
		{name: "OnlyIssInCaps", payload: fmt.Sprintf(`{"ISS":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":%d}`, testIssuer, testAudience, exp),
			reason: "no issuer"},
		{name: "OnlyExpInCaps", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","EXP":%d}`, testIssuer, testAudience, exp),
			reason: "no expiry"},
		{name: "ExpString", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":"%d"}`, testIssuer, testAudience, exp),
			reason: "exp is not a number"},
		{name: "ExpNull", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":null}`, testIssuer, testAudience),
			reason: "exp is not a number"},
		{name: "ExpHuge", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":1e300}`, testIssuer, testAudience),
			reason: "exp is out of range"},
		{name: "ExpNegative", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":-5}`, testIssuer, testAudience),
			reason: "exp is out of range"},
		{name: "ExpFraction", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":%d.5}`, testIssuer, testAudience, exp)},
		{name: "NbfString", payload: payloadWith(fmt.Sprintf(`,"nbf":"%d"`, testNow.Unix())), reason: "nbf is not a number"},
		{name: "IatString", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":%d,"iat":"%d"}`, testIssuer, testAudience, exp, testNow.Unix()),
			reason: "iat is not a number"},
		{name: "IssNumber", payload: fmt.Sprintf(`{"iss":7,"aud":%q,"sub":"user-1","client_id":"alexa-client","exp":%d}`, testAudience, exp), reason: "iss is not a string"},
		{name: "SubList", payload: fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":["user-1"],"client_id":"alexa-client","exp":%d}`, testIssuer, testAudience, exp), reason: "sub is not a string"},
		{name: "AudNumber", payload: fmt.Sprintf(`{"iss":%q,"aud":1,"sub":"user-1","client_id":"alexa-client","exp":%d}`, testIssuer, exp), reason: "aud is neither"},
		{name: "AudListOfNumbers", payload: fmt.Sprintf(`{"iss":%q,"aud":[1],"sub":"user-1","client_id":"alexa-client","exp":%d}`, testIssuer, exp), reason: "aud is neither"},
		{name: "PayloadArray", payload: `[1,2]`, reason: "not a JSON object"},
		{name: "PayloadNull", payload: `null`, reason: "not a JSON object"},
		{name: "CritExtension", header: `{"alg":"HS256","typ":"JWT","b64":false,"crit":["b64"]}`, payload: payloadWith(""), reason: "crit"},
		{name: "CritEmpty", header: `{"alg":"HS256","crit":[]}`, payload: payloadWith(""), reason: "crit"},
		{name: "CritOfRegistered", header: `{"alg":"HS256","crit":["exp"]}`, payload: payloadWith(""), reason: "crit"},
		{name: "UnknownHeaderNotCritical", header: `{"alg":"HS256","x-vendor":1}`, payload: payloadWith(""), scopes: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := tc.header
			if header == "" {
				header = hs256Header
			}
			raw := signRaw(header, tc.payload, secret)
			p, err := v.Verify(context.Background(), raw)
			if tc.reason != "" {
				checkError(t, err, tokens.EUNAUTHENTICATED, tc.reason, raw)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != "user-1" || p.ClientID != "alexa-client" {
				t.Errorf("principal = %+v, want user-1 of alexa-client", p)
			}
			if !slices.Equal(p.Scopes, tc.scopes) {
				t.Errorf("Scopes = %q, want %q", p.Scopes, tc.scopes)
			}
		})
	}
}
