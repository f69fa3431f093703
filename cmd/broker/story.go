package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// printer writes the story for a person to read.
type printer struct{ w io.Writer }

func (p *printer) line(format string, args ...any) { fmt.Fprintf(p.w, format+"\n", args...) }

// story plays both skills' linking once against the running broker: the
// baby-activity skill's reciprocal hand-over and profile report, then the
// smart-home skill's AcceptGrant and a thermostat's ChangeReport.
type story struct {
	p      *printer
	sims   *sim.Set
	tok    devTokens
	base   string
	client *http.Client

	// linked holds the skills whose link the story made; relink those whose
	// link it saw become RELINK_REQUIRED. webhooks waits for their events.
	linked, relink map[string]bool
}

// errStopped is returned by play when a skill's story stopped short; each
// reason was printed as it happened.
var errStopped = errors.New("a skill's story stopped")

// play plays the baby skill's story, then the home skill's, whatever became
// of the first; it prints why each one that stopped short stopped, and then
// returns errStopped.
func (s *story) play(ctx context.Context) error {
	s.linked, s.relink = map[string]bool{}, map[string]bool{}
	var stopped bool
	for _, part := range []struct {
		name string
		play func(context.Context) error
	}{{"baby-activity", s.playBaby}, {"smart-home", s.playHome}} {
		if err := part.play(ctx); err != nil {
			s.p.line("✗ the %s story stopped: %v", part.name, err)
			stopped = true
		}
		s.p.line("")
	}
	if stopped {
		return errStopped
	}
	return nil
}

// playBaby plays mutual linking by Alexa's reciprocal hand-over in the baby
// skill, then delivers a profile report to the Alexa Health API.
func (s *story) playBaby(ctx context.Context) error {
	p := s.p
	p.line("Skill %q (baby activity): one mutual linking, as it happens:", babySkill)

	code, err := s.sims.IssueCodeForSkill(demoUser, babySkill)
	if err != nil {
		return err
	}
	exchanges := s.sims.LWA.Stats().ExchangesOK
	p.line("1. Alexa: %s linked the skill; Alexa hands the broker an LWA authorization code issued to the skill's LWA client", demoUser)
	form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {code}, "client_id": {babyAlexa}}
	status, body, err := s.do(ctx, "POST", "/api/reciprocal/authorize", "application/x-www-form-urlencoded", s.tok.user, form.Encode())
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("reciprocal authorize answered %d %s %v", status, body, err)
	}
	p.line("   POST /api/reciprocal/authorize  (client_id %s, the user's JWT as bearer) → %d %s", babyAlexa, status, body)

	link, err := s.link(ctx, babySkill)
	if err != nil {
		return err
	}
	s.linked[babySkill] = true
	p.line("2. Broker: exchanged the code with LWA (exchanges %d → %d) and sealed the tokens at rest", exchanges, s.sims.LWA.Stats().ExchangesOK)
	p.line("   link %s in region %s, access token expires at %s (in %s)", link.State, link.Region, link.ExpiresAt, untilRFC3339(link.ExpiresAt))

	refreshes := s.sims.LWA.Stats().RefreshesOK
	var pt struct {
		TokenType string `json:"token_type"`
		ExpiresAt string `json:"expires_at"`
		ExpiresIn int    `json:"expires_in"`
	}
	status, body, err = s.do(ctx, "POST", "/v1/partner-token", "application/json", s.tok.tokens, `{"user_id":"`+demoUser+`","skill_id":"`+babySkill+`"}`)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("partner token answered %d %s %v", status, body, err)
	}
	_ = json.Unmarshal([]byte(body), &pt)
	p.line("3. Companion backend: POST /v1/partner-token → %d, a %s token valid until %s (%ds)", status, pt.TokenType, pt.ExpiresAt, pt.ExpiresIn)
	if now := s.sims.LWA.Stats().RefreshesOK; now != refreshes {
		p.line("4. Broker: the stored token had less than the 5m refresh-ahead left, so it refreshed first:")
		p.line("   LWA refreshes %d → %d; the rotated refresh token was stored before the answer", refreshes, now)
	} else {
		p.line("4. Broker: the stored token stays valid beyond the 5m refresh-ahead, so it was handed out without")
		p.line("   calling LWA (refreshes %d → %d); one closer to expiry is refreshed first, its rotated refresh token stored", refreshes, now)
	}

	status, body, err = s.do(ctx, "POST", "/v1/profile-reports", "application/json", s.tok.profiles, jennyReport)
	var sub submitted
	if err != nil || status != http.StatusAccepted || json.Unmarshal([]byte(body), &sub) != nil {
		return fmt.Errorf("profile report answered %d %s %v", status, body, err)
	}
	p.line("5. Companion backend: POST /v1/profile-reports (baby \"Jenny\") → %d %s, message %s", status, sub.State, sub.MessageID)

	d, err := s.await(ctx, "/v1/profile-reports/"+sub.MessageID, s.tok.profiles)
	if err != nil {
		return fmt.Errorf("report %s: %w", sub.MessageID, err)
	}
	if d.State == "FAILED" {
		p.line("6. Broker: report %s FAILED after %d attempt(s): %s", sub.MessageID, d.Attempts, d.LastError)
		return s.failed(ctx, babySkill, fmt.Errorf("report %s FAILED: %s", sub.MessageID, d.LastError))
	}
	p.line("6. Broker: report %s DELIVERED after %d attempt(s)", sub.MessageID, d.Attempts)
	for _, got := range s.sims.Alexa.Received(demoUser) {
		if got.MessageID == sub.MessageID {
			p.line("   the simulated Alexa Health API received messageId %s with profiles %v in region %s", got.MessageID, got.ProfileIDs, got.Region)
		}
	}
	return nil
}

// playHome plays the smart-home skill's linking: Alexa's AcceptGrant directive
// reaches the skill's Lambda (skillLambda), which forwards it to the broker;
// then the partner's device cloud submits a thermostat's ChangeReport, which
// the broker delivers to the Event Gateway of the link's region.
func (s *story) playHome(ctx context.Context) error {
	p := s.p
	p.line("Skill %q (smart home): AcceptGrant, then a thermostat's ChangeReport:", homeSkill)

	code, err := s.sims.IssueCodeForSkill(demoUser, homeSkill)
	if err != nil {
		return err
	}
	exchanges := s.sims.LWA.Stats().ExchangesOK
	directiveID := uuid.NewString()
	p.line("1. Alexa: %s enabled the skill and linked it; Alexa sends the skill's Lambda an Alexa.Authorization AcceptGrant", demoUser)
	p.line("   directive (messageId %s): the grant is an LWA code issued to the skill's LWA client, the grantee", directiveID)
	p.line("   %s's access token from the partner's authorization server (client %s)", demoUser, homeAlexa)
	answer, err := skillLambda(ctx, s.client, s.base, homeSkill, acceptGrantDirective(directiveID, code, s.tok.homeUser))
	if err != nil {
		return err
	}
	p.line("2. Skill Lambda: forwarded the directive as received, POST /v1/smart-home/accept-grant?skill_id=%s", homeSkill)
	p.line("   (no Authorization header: the grantee token authenticates it), and returns the broker's answer to Alexa unchanged:")
	p.line("   %s", answer)
	var reply struct {
		Event struct {
			Header struct {
				Name string `json:"name"`
			} `json:"header"`
			Payload struct {
				Message string `json:"message"`
			} `json:"payload"`
		} `json:"event"`
	}
	if err := json.Unmarshal(answer, &reply); err != nil || reply.Event.Header.Name != "AcceptGrant.Response" {
		return fmt.Errorf("the broker did not accept the grant: %s", reply.Event.Payload.Message)
	}

	link, err := s.link(ctx, homeSkill)
	if err != nil {
		return err
	}
	s.linked[homeSkill] = true
	p.line("3. Broker: exchanged the code with LWA under the skill's own LWA client (exchanges %d → %d) and sealed the tokens",
		exchanges, s.sims.LWA.Stats().ExchangesOK)
	p.line("   link %s in region %s", link.State, link.Region)

	eventID := uuid.NewString()
	status, body, err := s.do(ctx, "POST", "/v1/alexa-events", "application/json", s.tok.events, thermostatChangeReport(eventID, time.Now()))
	var sub submitted
	if err != nil || status != http.StatusAccepted || json.Unmarshal([]byte(body), &sub) != nil {
		return fmt.Errorf("the Alexa event answered %d %s %v", status, body, err)
	}
	p.line("4. Partner's device cloud: the living-room thermostat was set to 21.5 °C; POST /v1/alexa-events (scope broker:events):")
	p.line("   an Alexa.ChangeReport for endpoint %s, without scope → %d %s, message %s", thermostatEndpoint, status, sub.State, sub.MessageID)

	d, err := s.await(ctx, "/v1/alexa-events/"+sub.MessageID, s.tok.events)
	if err != nil {
		return fmt.Errorf("event %s: %w", sub.MessageID, err)
	}
	if d.State == "FAILED" {
		p.line("5. Broker: event %s FAILED after %d attempt(s): %s", sub.MessageID, d.Attempts, d.LastError)
		return s.failed(ctx, homeSkill, fmt.Errorf("event %s FAILED: %s", sub.MessageID, d.LastError))
	}
	p.line("5. Broker: event %s DELIVERED after %d attempt(s), to the Event Gateway of the link's region", sub.MessageID, d.Attempts)
	home, _ := s.sims.Skill(homeSkill)
	for _, got := range s.sims.Alexa.Events().Received(demoUser) {
		if got.MessageID != sub.MessageID {
			continue
		}
		user, _ := s.sims.LWA.AccessTokenUser(got.Token)
		client, _ := s.sims.LWA.AccessTokenClient(got.Token)
		whose := "an LWA access token of another user or skill"
		if user == demoUser && client == home.LWAClientID {
			whose = demoUser + "'s LWA access token of the skill"
		}
		p.line("   the simulated Alexa Event Gateway received %s.%s messageId %s for endpoint %s in region %s,",
			got.Namespace, got.Name, got.MessageID, got.EndpointID, got.Region)
		p.line("   with %s in endpoint.scope (not shown; Authorization: Bearer too: %t)", whose, got.BearerHeader)
	}
	return nil
}

// failed prints the state of the user's link in skillID after a delivery
// ended FAILED, notes a link that needs re-linking, and returns err.
func (s *story) failed(ctx context.Context, skillID string, err error) error {
	link, lerr := s.link(ctx, skillID)
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	if link.State == "RELINK_REQUIRED" {
		s.relink[skillID] = true
		s.p.line("   link of %s in %s: RELINK_REQUIRED: Amazon refused the skill's access, so the user must link it again", demoUser, skillID)
	} else {
		s.p.line("   link of %s in %s: %s", demoUser, skillID, link.State)
	}
	return err
}

// storyLink is the part of GET /v1/links/{user_id} the story shows.
type storyLink struct {
	State     string `json:"state"`
	Region    string `json:"region"`
	ExpiresAt string `json:"access_token_expires_at"`
}

// link reads the demo user's link in skillID.
func (s *story) link(ctx context.Context, skillID string) (storyLink, error) {
	var l storyLink
	err := s.getJSON(ctx, "/v1/links/"+demoUser+"?skill_id="+url.QueryEscape(skillID), s.tok.tokens, &l)
	return l, err
}

// submitted is the answer to a submitted report or Alexa event.
type submitted struct {
	MessageID string `json:"message_id"`
	State     string `json:"state"`
}

// delivery is where a submitted report or Alexa event stands.
type delivery struct {
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error"`
}

// await polls GET path until the delivery it names is DELIVERED or FAILED, or
// ctx ends.
func (s *story) await(ctx context.Context, path, token string) (delivery, error) {
	for {
		var d delivery
		if err := s.getJSON(ctx, path, token, &d); err != nil {
			return d, err
		}
		if d.State == "DELIVERED" || d.State == "FAILED" {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return d, fmt.Errorf("still %s after %s (last error: %s)", d.State, storyTimeout, d.LastError)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// webhooks prints what the companion backend's webhook receiver got, once it
// has link.linked of every skill the story linked, and link.relink_required of
// every link it saw needing re-linking, or ctx ends.
func (s *story) webhooks(ctx context.Context) {
	has := func() bool {
		got := map[string]bool{}
		for _, e := range s.sims.Webhooks.Delivered() {
			got[e.Type+" "+e.SkillID] = true
		}
		for skill := range s.linked {
			if !got["link.linked "+skill] {
				return false
			}
		}
		for skill := range s.relink {
			if !got["link.relink_required "+skill] {
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
		p.line("   %s for %s %s in skill %s (webhook-id %s, %s, answered %d)", r.Event.Type, r.Event.UserID, data, r.Event.SkillID, r.ID, verified, r.Status)
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

// jennyReport is the sandbox's profile report for the baby skill, a whole
// profile set as the Alexa Health API takes it.
const jennyReport = `{"user_id":"demo-parent","skill_id":"baby","profiles":[{"profileId":"baby-7f3c",` +
	`"name":{"firstName":"Jennifer","lastName":"Doe","nickNames":["Baby","Jenny"]},"capabilities":[` +
	`{"name":"Alexa.Health.DiaperChange","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get"]},` +
	`{"name":"Alexa.Health.Sleep","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get","Start","Stop","Cancel","Resume","Pause"]}]}]}`

// thermostatEndpoint is the endpoint id of the sandbox's thermostat.
const thermostatEndpoint = "thermostat-livingroom"

// acceptGrantDirective returns Alexa's Alexa.Authorization AcceptGrant
// directive, as Alexa sends it to a smart-home skill's endpoint: the LWA code
// as the grant, the user's access token from the partner's authorization
// server as the grantee.
func acceptGrantDirective(messageID, code, grantee string) []byte {
	b, _ := json.Marshal(map[string]any{"directive": map[string]any{
		"header": map[string]string{
			"namespace": "Alexa.Authorization", "name": "AcceptGrant", "messageId": messageID, "payloadVersion": "3",
		},
		"payload": map[string]any{
			"grant":   map[string]string{"type": "OAuth2.AuthorizationCode", "code": code},
			"grantee": map[string]string{"type": "BearerToken", "token": grantee},
		},
	}})
	return b
}

// thermostatChangeReport returns the body of POST /v1/alexa-events for the
// demo user's thermostat in the home skill: an Alexa ChangeReport with the
// given messageId, its target setpoint set to 21.5 °C by hand at the time at,
// without scope (the broker adds the user's token).
func thermostatChangeReport(messageID string, at time.Time) string {
	sample := at.UTC().Format("2006-01-02T15:04:05.00Z")
	return `{"user_id":"` + demoUser + `","skill_id":"` + homeSkill + `","event":{` +
		`"header":{"namespace":"Alexa","name":"ChangeReport","messageId":"` + messageID + `","payloadVersion":"3"},` +
		`"endpoint":{"endpointId":"` + thermostatEndpoint + `"},` +
		`"payload":{"change":{"cause":{"type":"PHYSICAL_INTERACTION"},"properties":[{"namespace":"Alexa.ThermostatController",` +
		`"name":"targetSetpoint","value":{"value":21.5,"scale":"CELSIUS"},"timeOfSample":"` + sample + `","uncertaintyInMilliseconds":500}]}}},` +
		`"context":{"properties":[{"namespace":"Alexa.EndpointHealth","name":"connectivity","value":{"value":"OK"},` +
		`"timeOfSample":"` + sample + `","uncertaintyInMilliseconds":0}]}}`
}
