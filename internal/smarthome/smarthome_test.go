package smarthome_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/smarthome"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// staticSkills resolves a skill id among skills: an id names its skill, no id
// the only one (the broker's rule is tokens.Services.Resolve).
func staticSkills(skills ...reciprocal.Skill) smarthome.SkillResolver {
	return func(id string) (reciprocal.Skill, error) {
		for _, sk := range skills {
			if sk.ID == id || (id == "" && len(skills) == 1) {
				return sk, nil
			}
		}
		if id == "" {
			return reciprocal.Skill{}, tokens.Errorf(tokens.EINVALID, "skill_id is required: several skills are configured")
		}
		return reciprocal.Skill{}, tokens.Errorf(tokens.EINVALID, "unknown skill_id %q", id)
	}
}

// TestService_AcceptGrant checks the entry point of the gRPC method: the
// Result's status, body and error.
func TestService_AcceptGrant(t *testing.T) {
	f := newFixture(t)
	skill := reciprocal.Skill{ID: "home", ClientIDs: []string{homeClient}, Region: homeRegion, Tokens: f.home}
	tests := []struct {
		name      string
		skill     reciprocal.Skill
		directive string
		status    int
		message   string
		code      tokens.Code // of Result.Err; "" for nil
	}{
		{name: "Success", skill: skill, directive: directive(f.jwts[userTok]), status: 200},
		{name: "TooLarge", skill: skill, directive: directive(f.jwts[userTok]) + strings.Repeat(" ", smarthome.MaxBody), status: 400, message: "larger than 64 KiB", code: tokens.EINVALID},
		{name: "Malformed", skill: skill, directive: `{"directive":`, status: 400, message: "not the JSON", code: tokens.EINVALID},
		{name: "BadToken", skill: skill, directive: directive(f.jwts[expiredTok]), status: 401, message: "expired", code: tokens.EUNAUTHENTICATED},
		{name: "ForeignClient", skill: skill, directive: directive(f.jwts[secondTok]), status: 400, message: "not an Alexa client", code: tokens.EINVALID},
		{name: "NoTokenService", skill: reciprocal.Skill{ID: "home", ClientIDs: []string{homeClient}}, directive: directive(f.jwts[userTok]), status: 500, message: "internal error", code: tokens.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.service.AcceptGrant(t.Context(), tt.skill, []byte(tt.directive))
			if res.Status != tt.status {
				t.Errorf("status = %d, want %d; body %s", res.Status, tt.status, res.Body)
			}
			f.assertBody(t, res.Body, tt.status, tt.message)
			if got := tokens.ErrorCode(res.Err); got != tt.code {
				t.Errorf("code of Err = %q (%v), want %q", got, res.Err, tt.code)
			}
			if res.RetryAfter != 0 {
				t.Errorf("RetryAfter = %v, want 0", res.RetryAfter)
			}
		})
	}
}

func TestErrorResult(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		err    error
		status int
	}{
		{tokens.Errorf(tokens.EINVALID, "skill_id %q names no skill", "garden"), 400},
		{fmt.Errorf("exchange: %w", tokens.ErrInvalidGrant), 400},
		{fmt.Errorf("client: %w", smarthome.ErrForeignClient), 400},
		{tokens.Errorf(tokens.EUNAUTHENTICATED, "token is expired"), 401},
		{tokens.Errorf(tokens.ERATELIMIT, "too many hand-overs"), 429},
		{tokens.Errorf(tokens.EUNAVAILABLE, "store is down"), 503},
		{tokens.Errorf(tokens.ENOTFOUND, "link not found"), 500},
		{fmt.Errorf("open %s: boom", code), 500},
	} {
		t.Run(tokens.ErrorMessage(tt.err), func(t *testing.T) {
			res := smarthome.ErrorResult(tt.err)
			if res.Status != tt.status || res.Err != tt.err {
				t.Errorf("ErrorResult = %d, %v; want %d, %v", res.Status, res.Err, tt.status, tt.err)
			}
			f.assertBody(t, res.Body, tt.status, "")
		})
	}
}

// TestSamples checks the directive and the answers against Amazon's samples:
// the sample directive is carried out, and the answers have the samples'
// shape.
func TestSamples(t *testing.T) {
	sample := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// shape returns the JSON of body with its messageId and message blanked.
	shape := func(body string) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		event := m["event"].(map[string]any)
		event["header"].(map[string]any)["messageId"] = ""
		if p := event["payload"].(map[string]any); p["message"] != nil {
			p["message"] = ""
		}
		return m
	}
	f := newFixture(t)
	d := strings.Replace(sample("accept-grant-directive.json"),
		"<the user's access token issued by the partner's authorization server>", f.jwts[userTok], 1)

	w := f.serve("", "skill_id=home", d)
	f.assertAnswer(t, w, http.StatusOK, "")
	if diff := cmp.Diff(shape(sample("accept-grant-response.json")), shape(w.Body.String())); diff != "" {
		t.Errorf("answer differs from the sample (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]exchange{{UserID: "user-1", Code: "ANUbUKCJqlBOpMhwYWxU", Region: homeRegion}}, f.home.exchanges()); diff != "" {
		t.Errorf("exchanges differ (-want +got):\n%s", diff)
	}

	f.home.err = tokens.ErrInvalidGrant
	w = f.serve("", "skill_id=home", d)
	f.assertAnswer(t, w, http.StatusBadRequest, "refused the authorization code")
	if diff := cmp.Diff(shape(sample("accept-grant-error.json")), shape(w.Body.String())); diff != "" {
		t.Errorf("error differs from the sample (-want +got):\n%s", diff)
	}
	if strings.Contains(w.Body.String(), "ANUbUKCJqlBOpMhwYWxU") {
		t.Errorf("error %s holds the code", w.Body)
	}
}
