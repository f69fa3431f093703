package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// printer writes the story for a person to read.
type printer struct{ w io.Writer }

func (p *printer) line(format string, args ...any) { fmt.Fprintf(p.w, format+"\n", args...) }

// story plays mutual linking once against the running broker.
type story struct {
	p      *printer
	sims   *sim.Set
	tok    devTokens
	base   string
	client *http.Client
}

func (s *story) play(ctx context.Context) error {
	p := s.p
	p.line("The story of one mutual linking, as it happens:")

	s.sims.LWA.SetAccessTokenLifetime(shortLived) // the code's token will be short-lived
	code := s.sims.LWA.IssueCodeFor(demoUser)
	p.line("1. Alexa: %s linked the skill; Alexa hands the broker an LWA authorization code", demoUser)
	form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {code}, "client_id": {demoAlexa}}
	status, body, err := s.do(ctx, "POST", "/api/reciprocal/authorize", "application/x-www-form-urlencoded", s.tok.user, form.Encode())
	s.sims.LWA.SetAccessTokenLifetime(0)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("reciprocal authorize answered %d %s %v", status, body, err)
	}
	p.line("   POST /api/reciprocal/authorize  (user's JWT as bearer) → %d %s", status, body)

	var link struct {
		State     string `json:"state"`
		ExpiresAt string `json:"access_token_expires_at"`
	}
	if err := s.getJSON(ctx, "/v1/links/"+demoUser, s.tok.tokens, &link); err != nil {
		return err
	}
	p.line("2. Broker: exchanged the code with LWA (%d exchange) and sealed the tokens at rest", s.sims.LWA.Stats().ExchangesOK)
	p.line("   link %s, access token expires at %s (in %s: short-lived)", link.State, link.ExpiresAt, untilRFC3339(link.ExpiresAt))

	refreshes := s.sims.LWA.Stats().RefreshesOK
	var pt struct {
		TokenType string `json:"token_type"`
		ExpiresAt string `json:"expires_at"`
		ExpiresIn int    `json:"expires_in"`
	}
	status, body, err = s.do(ctx, "POST", "/v1/partner-token", "application/json", s.tok.tokens, `{"user_id":"`+demoUser+`"}`)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("partner token answered %d %s %v", status, body, err)
	}
	_ = json.Unmarshal([]byte(body), &pt)
	p.line("3. Companion backend: POST /v1/partner-token → %d, a %s token valid until %s (%ds)", status, pt.TokenType, pt.ExpiresAt, pt.ExpiresIn)
	p.line("4. Broker: the stored token had less than the 5m refresh-ahead left, so it refreshed first:")
	p.line("   LWA refreshes %d → %d; the rotated refresh token was stored before the answer", refreshes, s.sims.LWA.Stats().RefreshesOK)

	status, body, err = s.do(ctx, "POST", "/v1/profile-reports", "application/json", s.tok.profiles, jennyReport)
	var sub struct {
		MessageID string `json:"message_id"`
		State     string `json:"state"`
	}
	if err != nil || status != http.StatusAccepted || json.Unmarshal([]byte(body), &sub) != nil {
		return fmt.Errorf("profile report answered %d %s %v", status, body, err)
	}
	p.line("5. Companion backend: POST /v1/profile-reports (baby \"Jenny\") → %d %s, message %s", status, sub.State, sub.MessageID)

	for {
		var r struct {
			State     string `json:"state"`
			Attempts  int    `json:"attempts"`
			LastError string `json:"last_error"`
		}
		if err := s.getJSON(ctx, "/v1/profile-reports/"+sub.MessageID, s.tok.profiles, &r); err != nil {
			return err
		}
		if r.State == "DELIVERED" {
			p.line("6. Broker: report %s DELIVERED after %d attempt(s)", sub.MessageID, r.Attempts)
			for _, got := range s.sims.Alexa.Received(demoUser) {
				if got.MessageID == sub.MessageID {
					p.line("   the simulated Alexa Health API received messageId %s with profiles %v", got.MessageID, got.ProfileIDs)
				}
			}
			return nil
		}
		if r.State == "FAILED" {
			return fmt.Errorf("report FAILED: %s", r.LastError)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("report still %s after %s (last error: %s)", r.State, storyTimeout, r.LastError)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// webhooks prints what the companion backend's webhook receiver got, once it
// has link.linked (and, after a failure, link.relink_required) or ctx ends.
func (s *story) webhooks(ctx context.Context, failed bool) {
	want := []string{"link.linked"}
	if failed {
		want = append(want, "link.relink_required")
	}
	has := func() bool {
		got := map[string]bool{}
		for _, e := range s.sims.Webhooks.Delivered() {
			got[e.Type] = true
		}
		for _, w := range want {
			if !got[w] {
				return false
			}
		}
		return true
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for !has() && wait.Err() == nil {
		select {
		case <-wait.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	p := s.p
	p.line("Webhooks: the companion backend was told, signed (Standard Webhooks):")
	for _, r := range s.sims.Webhooks.Received() {
		verified := "signature verified"
		if !r.Verified {
			verified = "signature NOT verified"
		}
		data, _ := json.Marshal(r.Event.Data)
		p.line("   %s for %s %s (webhook-id %s, %s, answered %d)", r.Event.Type, r.Event.UserID, data, r.ID, verified, r.Status)
	}
	if len(s.sims.Webhooks.Received()) == 0 {
		p.line("   nothing yet")
	}
}

func (s *story) do(ctx context.Context, method, path, contentType, token, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func (s *story) getJSON(ctx context.Context, path, token string, v any) error {
	status, body, err := s.do(ctx, "GET", path, "", token, "")
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("GET %s answered %d %s %v", path, status, body, err)
	}
	return json.Unmarshal([]byte(body), v)
}

func untilRFC3339(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return "?"
	}
	return time.Until(t).Round(time.Second).String()
}

// jennyReport is the sandbox's profile report, a whole profile set as the Alexa Health API takes it.
const jennyReport = `{"user_id":"demo-parent","profiles":[{"profileId":"baby-7f3c",` +
	`"name":{"firstName":"Jennifer","lastName":"Doe","nickNames":["Baby","Jenny"]},"capabilities":[` +
	`{"name":"Alexa.Health.DiaperChange","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get"]},` +
	`{"name":"Alexa.Health.Sleep","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get","Start","Stop","Cancel","Resume","Pause"]}]}]}`
