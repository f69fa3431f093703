package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// Names the sandbox plays with.
const (
	demoUser     = "demo-parent"
	demoAlexa    = "alexa-skill-client"
	demoBackend  = "companion-backend"
	shortLived   = 4 * time.Minute
	storyTimeout = 30 * time.Second
)

// devTokens are JWTs of the simulated authorization server, valid for an hour.
type devTokens struct{ user, tokens, profiles, admin string }

func newDevTokens(authz *sim.AuthServer) devTokens {
	return devTokens{
		user:     authz.UserToken(demoUser, demoAlexa, time.Hour),
		tokens:   authz.ClientToken(demoBackend, []string{"broker:tokens"}, time.Hour),
		profiles: authz.ClientToken(demoBackend, []string{"broker:profiles"}, time.Hour),
		admin:    authz.ClientToken("operator", []string{"broker:admin"}, time.Hour),
	}
}

// sandbox runs the real broker on the embedded store, wired to the simulators,
// plays the mutual-linking story once, then serves until ctx ends.
func sandbox(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, faults := newSimFlagSet("broker sandbox", "before the story", stderr)
	data := fs.String("data", "", "folder for the embedded store and the sandbox's key (default: a fresh temporary folder, removed at exit)")
	grpcAddr := fs.String("grpc-addr", "127.0.0.1:9090", "broker gRPC listen address")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "broker HTTP listen address")
	adminAddr := fs.String("admin-addr", "127.0.0.1:8089", "simulators' admin route (faults, fresh codes)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "broker sandbox: %v\n", err); return 1 }

	dir, temporary := *data, *data == ""
	if temporary {
		var err error
		if dir, err = os.MkdirTemp("", "broker-sandbox-"); err != nil {
			return fail(err)
		}
		defer os.RemoveAll(dir)
	}
	key, err := sandboxKey(dir)
	if err != nil {
		return fail(err)
	}
	sims, err := sim.StartSet(ctx, sim.SetOptions{AdminAddr: *adminAddr, User: demoUser, AlexaClientID: demoAlexa})
	if err != nil {
		return fail(err)
	}
	defer sims.Close()
	p := &printer{w: stdout}
	if err := applyFaults(p, sims, *faults); err != nil {
		return fail(err)
	}

	env := sims.BrokerEnv()
	env["BROKER_GRPC_ADDR"], env["BROKER_HTTP_ADDR"] = *grpcAddr, *httpAddr
	env["BROKER_STORE"] = "bolt:" + filepath.Join(dir, "broker.db")
	env["BROKER_ENCRYPTION_KEY"] = key
	c, err := config.Parse(nil, func(k string) string { return env[k] })
	if err != nil {
		return fail(err)
	}
	logPath := filepath.Join(dir, "broker.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	m := NewMain()
	m.Config, m.Stdout = c, logFile
	m.ReportMinBackoff = time.Second
	m.ReportPollInterval = 200 * time.Millisecond
	if err := m.Run(ctx); err != nil {
		m.Close()
		return fail(err)
	}
	defer m.Close()

	where := dir + " (removed at exit)"
	if !temporary {
		where = dir
	}
	p.line("Reciprocal token broker — sandbox")
	p.line("  data       %s", where)
	p.line("  broker     gRPC %s · HTTP http://%s · logs %s", m.Server.GRPCAddr(), m.Server.HTTPAddr(), logPath)
	p.line("  simulated  LWA %s · Alexa Health API %s", sims.LWA.TokenURL(), sims.Alexa.URL())
	p.line("             partner authorization server %s (JWKS %s)", sims.Auth.Issuer(), sims.Auth.JWKSURL())
	p.line("")

	tok := newDevTokens(sims.Auth)
	st := &story{p: p, sims: sims, tok: tok, base: "http://" + m.Server.HTTPAddr(), client: &http.Client{Timeout: 10 * time.Second}}
	storyCtx, cancel := context.WithTimeout(ctx, storyTimeout)
	err = st.play(storyCtx)
	cancel()
	if err != nil {
		p.line("✗ the story stopped: %v", err)
		p.line("  (the broker keeps serving; its log is %s)", logPath)
	}
	p.line("")
	printTryIt(p, m.Server.GRPCAddr(), "http://"+m.Server.HTTPAddr(), sims.AdminURL(), tok)
	p.line("")
	p.line("Serving. Ctrl-C stops the broker and the simulators.")
	<-ctx.Done()
	p.line("stopping")
	return 0
}

// sandboxKey returns the sealing key kept in dir, making one on first use, so
// that a sandbox started again on the same --data opens its stored tokens.
func sandboxKey(dir string) (string, error) {
	path := filepath.Join(dir, "sandbox.key")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	key := base64.StdEncoding.EncodeToString(randomBytes(32))
	return key, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

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

// jennyReport is the sandbox's profile report, as in the contract's sample.
const jennyReport = `{"user_id":"demo-parent","profiles":[{"profileId":"baby-7f3c",` +
	`"name":{"firstName":"Jennifer","lastName":"Doe","nickNames":["Baby","Jenny"]},"capabilities":[` +
	`{"name":"Alexa.Health.DiaperChange","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get"]},` +
	`{"name":"Alexa.Health.Sleep","type":"AlexaInterface","version":"1","supportedOperations":["Add","Delete","Get","Start","Stop","Cancel","Resume","Pause"]}]}]}`

// printTryIt prints copy-paste commands for every route of the contract.
func printTryIt(p *printer, grpcAddr, base, admin string, tok devTokens) {
	p.line("Try it yourself. Development tokens (valid for an hour):")
	p.line("  export ALEXA_USER_JWT='%s'", tok.user)
	p.line("  export TOKENS_JWT='%s'", tok.tokens)
	p.line("  export PROFILES_JWT='%s'", tok.profiles)
	p.line("  export ADMIN_JWT='%s'", tok.admin)
	p.line("  export BROKER=%s SIM_ADMIN=%s", base, admin)
	p.line("")
	p.line("HTTP (curl):")
	p.line(`  curl -s -X POST "$BROKER/api/reciprocal/authorize" -H "Authorization: Bearer $ALEXA_USER_JWT" -d grant_type=reciprocal_authorization_code -d client_id=%s -d code="$(curl -s -X POST "$SIM_ADMIN/codes?user=%s")"`, demoAlexa, demoUser)
	p.line(`  curl -s -X POST "$BROKER/v1/partner-token" -H "Authorization: Bearer $TOKENS_JWT" -d '{"user_id":"%s"}'`, demoUser)
	p.line(`  curl -s -X POST "$BROKER/v1/profile-reports" -H "Authorization: Bearer $PROFILES_JWT" -d '%s'`, jennyReport)
	p.line(`  curl -s "$BROKER/v1/profile-reports/MESSAGE_ID" -H "Authorization: Bearer $PROFILES_JWT"`)
	p.line(`  curl -s "$BROKER/v1/links/%s" -H "Authorization: Bearer $TOKENS_JWT"`, demoUser)
	p.line(`  curl -s "$BROKER/v1/links?page_size=10" -H "Authorization: Bearer $ADMIN_JWT"`)
	p.line(`  curl -s -X POST "$BROKER/v1/links/%s:refresh" -H "Authorization: Bearer $ADMIN_JWT"`, demoUser)
	p.line(`  curl -s -X DELETE "$BROKER/v1/links/%s" -H "Authorization: Bearer $ADMIN_JWT"`, demoUser)
	p.line(`  curl -s "$BROKER/healthz"; curl -s "$BROKER/readyz"; curl -s "$BROKER/metrics" | grep broker_`)
	p.line("")
	p.line("gRPC (grpcurl; scripts/tools.sh builds it into .bin/):")
	p.line(`  grpcurl -plaintext %s list`, grpcAddr)
	p.line(`  grpcurl -plaintext %s grpc.health.v1.Health/Check`, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $TOKENS_JWT" -d '{"user_id":"%s"}' %s broker.v1.PartnerTokenService/GetPartnerToken`, demoUser, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $ADMIN_JWT" -d '{"page_size":10}' %s broker.v1.LinkService/ListLinks`, grpcAddr)
	p.line(`  grpcurl -plaintext -H "authorization: Bearer $ADMIN_JWT" -d '{"user_id":"%s"}' %s broker.v1.LinkService/RefreshLink`, demoUser, grpcAddr)
	p.line("")
	p.line("Failure handling (the simulators' admin route; or start with --fault):")
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/alexa/429"      # then submit a report: retried after Retry-After`)
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/lwa/5xx?count=2" # then refresh: LWA retried within the deadline`)
	p.line(`  curl -s -X POST "$SIM_ADMIN/faults/lwa/invalid_grant" # then refresh: 412, the link needs re-linking`)
	p.line(`  curl -s -X DELETE "$SIM_ADMIN/faults"`)
	p.line("  known faults: %s", sim.FaultNames)
}
