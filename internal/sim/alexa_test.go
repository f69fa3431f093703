package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// alexaSample is samples/health-profile-report.json, shortened to two
// capabilities.
const alexaSample = `{
  "report": {
    "messageId": "0b2e6a2e-55c4-4a0d-9d7e-6f4a1d3c9e21",
    "profiles": [
      {
        "profileId": "baby-7f3c",
        "name": {"firstName": "Jennifer", "lastName": "Doe", "nickNames": ["Baby", "Jenny"]},
        "capabilities": [
          {"name": "Alexa.Health.DiaperChange", "type": "AlexaInterface", "version": "1", "supportedOperations": ["Add", "Delete", "Get"]},
          {"name": "Alexa.Health.Sleep", "type": "AlexaInterface", "version": "1", "supportedOperations": ["Add", "Delete", "Get", "Start", "Stop"]}
        ]
      }
    ]
  }
}`

// alexaEnv is an Alexa simulator with the LWA simulator that mints its tokens.
type alexaEnv struct {
	alexa *sim.Alexa
	lwa   *sim.LWA
	clock *sim.Clock
}

// startAlexa starts an LWA and an Alexa simulator on loopback ports, sharing a
// settable clock; both are closed when the test ends. mod, when not nil,
// adjusts the Alexa options.
func startAlexa(tb testing.TB, mod func(*sim.AlexaOptions)) alexaEnv {
	tb.Helper()
	clk := sim.NewClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	l := sim.NewLWA(sim.LWAOptions{Now: clk.Now})
	if err := l.Start(context.Background()); err != nil {
		tb.Fatalf("LWA Start: %v", err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	opts := sim.AlexaOptions{LWA: l, Now: clk.Now}
	if mod != nil {
		mod(&opts)
	}
	a := sim.NewAlexa(opts)
	if err := a.Start(context.Background()); err != nil {
		tb.Fatalf("Alexa Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := a.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return alexaEnv{alexa: a, lwa: l, clock: clk}
}

// token returns a valid access token of user, exchanged at the LWA simulator's
// token endpoint as the broker would.
func (e alexaEnv) token(tb testing.TB, user string) string {
	tb.Helper()
	resp, err := http.PostForm(e.lwa.TokenURL(), url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {e.lwa.IssueCodeFor(user)},
		"client_id":     {e.lwa.ClientID()},
		"client_secret": {e.lwa.ClientSecret()},
	})
	if err != nil {
		tb.Fatalf("exchange: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		tb.Fatalf("exchange: status %d, err %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// send sends one request with body, with Content-Type contentType and
// Authorization: Bearer bearer when they are not empty, and returns the answer
// and its body, read and closed. It does not stop the test, so goroutines may
// call it.
func send(ctx context.Context, method, target, contentType, bearer, body string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, raw, nil
}

// alexaAnswer is a decoded answer of the profile endpoint.
type alexaAnswer struct {
	Status int
	Header http.Header
	Body   map[string]string // the JSON error, or nil for an empty body
}

// post sends body to the profile endpoint with method and content type, and
// with the bearer token when it is not empty.
func (e alexaEnv) post(tb testing.TB, method, contentType, token, body string) alexaAnswer {
	tb.Helper()
	a, err := alexaDo(tb.Context(), e.alexa.URL()+sim.AlexaHealthProfilePath, method, contentType, token, body)
	if err != nil {
		tb.Fatal(err)
	}
	return a
}

// alexaDo sends one request and decodes the answer. It does not stop the test,
// so goroutines may call it.
func alexaDo(ctx context.Context, target, method, contentType, token, body string) (alexaAnswer, error) {
	resp, raw, err := send(ctx, method, target, contentType, token, body)
	if err != nil {
		return alexaAnswer{}, err
	}
	a := alexaAnswer{Status: resp.StatusCode, Header: resp.Header}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.Body); err != nil {
			return a, errors.New("answer is not a JSON object: " + string(raw))
		}
	}
	return a, nil
}

// assertAlexaError fails unless a has status and a JSON error whose message
// contains want.
func assertAlexaError(tb testing.TB, a alexaAnswer, status int, want string) {
	tb.Helper()
	if a.Status != status {
		tb.Fatalf("status = %d, want %d (body %v)", a.Status, status, a.Body)
	}
	if a.Body["code"] == "" || !strings.Contains(a.Body["message"], want) {
		tb.Errorf("body = %v, want a code and a message containing %q", a.Body, want)
	}
}

// sampleWith returns alexaSample changed by mod, which edits its decoded form.
func sampleWith(tb testing.TB, mod func(report map[string]any)) string {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(alexaSample), &m); err != nil {
		tb.Fatal(err)
	}
	mod(m["report"].(map[string]any))
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// profile0 returns the first profile of a decoded report.
func profile0(report map[string]any) map[string]any {
	return report["profiles"].([]any)[0].(map[string]any)
}

// capability0 returns the first capability of the first profile.
func capability0(report map[string]any) map[string]any {
	return profile0(report)["capabilities"].([]any)[0].(map[string]any)
}

func TestAlexa_Deliver(t *testing.T) {
	t.Run("Accepted", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "user-1")
		a := e.post(t, http.MethodPost, "application/json; charset=utf-8", tok, alexaSample)
		if got, want := a.Status, http.StatusAccepted; got != want {
			t.Fatalf("status = %d, want %d (%v)", got, want, a.Body)
		}
		got := e.alexa.Received("user-1")
		if len(got) != 1 {
			t.Fatalf("Received = %d reports, want 1", len(got))
		}
		if got, want := got[0].MessageID, "0b2e6a2e-55c4-4a0d-9d7e-6f4a1d3c9e21"; got != want {
			t.Errorf("MessageID = %q, want %q", got, want)
		}
		if got, want := got[0].ProfileIDs, []string{"baby-7f3c"}; !slices.Equal(got, want) {
			t.Errorf("ProfileIDs = %q, want %q", got, want)
		}
		if got, want := string(got[0].Body), alexaSample; got != want {
			t.Errorf("Body = %s, want the request body", got)
		}
		if got, want := got[0].At, e.clock.Now(); !got.Equal(want) {
			t.Errorf("At = %v, want %v", got, want)
		}
		if got := e.alexa.Received("someone-else"); got != nil {
			t.Errorf("Received(other user) = %v, want nil", got)
		}
		if got, want := e.alexa.Stats(), (sim.AlexaStats{Requests: 1, Delivered: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("ArrivalOrderPerUser", func(t *testing.T) {
		e := startAlexa(t, nil)
		tokA, tokB := e.token(t, "a"), e.token(t, "b")
		for i, id := range []string{"m1", "m2", "m3"} {
			body := sampleWith(t, func(r map[string]any) { r["messageId"] = id })
			tok := tokA
			if i == 1 {
				tok = tokB
			}
			if a := e.post(t, http.MethodPost, "application/json", tok, body); a.Status != http.StatusAccepted {
				t.Fatalf("%s: status %d %v", id, a.Status, a.Body)
			}
		}
		var ids []string
		for _, r := range e.alexa.Received("a") {
			ids = append(ids, r.MessageID)
		}
		if want := []string{"m1", "m3"}; !slices.Equal(ids, want) {
			t.Errorf("Received(a) = %q, want %q", ids, want)
		}
		if got := e.alexa.Received("b"); len(got) != 1 || got[0].MessageID != "m2" {
			t.Errorf("Received(b) = %+v, want m2 only", got)
		}
	})
	t.Run("ReceivedIsACopy", func(t *testing.T) {
		e := startAlexa(t, nil)
		e.post(t, http.MethodPost, "application/json", e.token(t, "u"), alexaSample)
		got := e.alexa.Received("u")
		got[0].ProfileIDs[0] = "changed"
		got[0].Body[0] = 'X'
		again := e.alexa.Received("u")
		if again[0].ProfileIDs[0] != "baby-7f3c" || again[0].Body[0] != '{' {
			t.Errorf("Received shares memory with the simulator: %+v", again[0])
		}
	})
}

func TestAlexa_Authorization(t *testing.T) {
	tests := []struct {
		name    string
		token   func(tb testing.TB, e alexaEnv) string
		prepare func(e alexaEnv)
		status  int
		message string
	}{
		{
			name:    "Missing",
			token:   func(testing.TB, alexaEnv) string { return "" },
			status:  http.StatusUnauthorized,
			message: "missing",
		},
		{
			name:    "Unknown",
			token:   func(testing.TB, alexaEnv) string { return "Atza|not-issued" },
			status:  http.StatusUnauthorized,
			message: "invalid or expired",
		},
		{
			name:    "Expired",
			token:   func(tb testing.TB, e alexaEnv) string { return e.token(tb, "u") },
			prepare: func(e alexaEnv) { e.clock.Advance(sim.DefaultLWAAccessTokenLifetime) },
			status:  http.StatusUnauthorized,
			message: "invalid or expired",
		},
		{
			name:    "RevokedAtLWA",
			token:   func(tb testing.TB, e alexaEnv) string { return e.token(tb, "u") },
			prepare: func(e alexaEnv) { e.lwa.RevokeUser("u") },
			status:  http.StatusUnauthorized,
			message: "invalid or expired",
		},
		{
			name:    "RejectTokenNext",
			token:   func(tb testing.TB, e alexaEnv) string { return e.token(tb, "u") },
			prepare: func(e alexaEnv) { e.alexa.RejectTokenNext(1) },
			status:  http.StatusUnauthorized,
			message: "invalid or expired",
		},
		{
			name:    "SkillDisabled",
			token:   func(tb testing.TB, e alexaEnv) string { return e.token(tb, "u") },
			prepare: func(e alexaEnv) { e.alexa.RevokeUser("u") },
			status:  http.StatusForbidden,
			message: "disabled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAlexa(t, nil)
			tok := tt.token(t, e)
			if tt.prepare != nil {
				tt.prepare(e)
			}
			a := e.post(t, http.MethodPost, "application/json", tok, alexaSample)
			assertAlexaError(t, a, tt.status, tt.message)
			if tok != "" && strings.Contains(a.Body["message"], tok) {
				t.Errorf("answer repeats the token: %v", a.Body)
			}
			if tt.status == http.StatusUnauthorized && !strings.HasPrefix(a.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", a.Header.Get("WWW-Authenticate"))
			}
			if got := e.alexa.Stats().Delivered; got != 0 {
				t.Errorf("Delivered = %d, want 0", got)
			}
		})
	}
	t.Run("RejectTokenNextPasses", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.RejectTokenNext(2)
		for range 2 {
			assertAlexaError(t, e.post(t, http.MethodPost, "application/json", tok, alexaSample), http.StatusUnauthorized, "invalid")
		}
		if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("third request: %d %v", a.Status, a.Body)
		}
		if got, want := e.alexa.Stats(), (sim.AlexaStats{Requests: 3, Delivered: 1, Unauthorized: 2}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("RestoreUser", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.RevokeUser("u")
		assertAlexaError(t, e.post(t, http.MethodPost, "application/json", tok, alexaSample), http.StatusForbidden, "disabled")
		e.alexa.RestoreUser("u")
		if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("after RestoreUser: %d %v", a.Status, a.Body)
		}
		if got, want := e.alexa.Stats(), (sim.AlexaStats{Requests: 2, Delivered: 1, Forbidden: 1}); got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("OtherUsersUnaffected", func(t *testing.T) {
		e := startAlexa(t, nil)
		e.alexa.RevokeUser("u")
		if a := e.post(t, http.MethodPost, "application/json", e.token(t, "v"), alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("other user: %d %v", a.Status, a.Body)
		}
	})
}

func TestAlexa_InvalidRequest(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        func(tb testing.TB) string
		field       string
	}{
		{name: "ContentTypeForm", contentType: "application/x-www-form-urlencoded", field: "Content-Type"},
		{name: "ContentTypeMissing", contentType: "", field: "Content-Type"},
		{name: "MalformedJSON", body: func(testing.TB) string { return `{"report":` }, field: "body"},
		{name: "NotAnObject", body: func(testing.TB) string { return `[1,2]` }, field: "body"},
		{name: "TrailingData", body: func(testing.TB) string { return alexaSample + `{}` }, field: "body"},
		{name: "UnknownField", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { r["message_id"] = "x" })
		}, field: `unknown field "message_id"`},
		{name: "NoReport", body: func(testing.TB) string { return `{}` }, field: "report"},
		{name: "NoMessageID", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { delete(r, "messageId") })
		}, field: "report.messageId"},
		{name: "NoProfiles", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { r["profiles"] = []any{} })
		}, field: "report.profiles"},
		{name: "ProfilesWrongType", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { r["profiles"] = "baby" })
		}, field: "report.profiles"},
		{name: "NoProfileID", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { delete(profile0(r), "profileId") })
		}, field: "report.profiles[0].profileId"},
		{name: "RepeatedProfileID", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { r["profiles"] = append(r["profiles"].([]any), profile0(r)) })
		}, field: "report.profiles[1].profileId"},
		{name: "NoFirstName", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { delete(profile0(r)["name"].(map[string]any), "firstName") })
		}, field: "report.profiles[0].name.firstName"},
		{name: "NoNickNames", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { profile0(r)["name"].(map[string]any)["nickNames"] = []any{} })
		}, field: "report.profiles[0].name.nickNames"},
		{name: "EmptyNickName", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { profile0(r)["name"].(map[string]any)["nickNames"] = []any{"Baby", " "} })
		}, field: "report.profiles[0].name.nickNames[1]"},
		{name: "NoCapabilities", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { delete(profile0(r), "capabilities") })
		}, field: "report.profiles[0].capabilities"},
		{name: "CapabilityNotHealth", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { capability0(r)["name"] = "Alexa.Smarthome.Power" })
		}, field: "report.profiles[0].capabilities[0].name"},
		{name: "CapabilityType", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { capability0(r)["type"] = "Interface" })
		}, field: "report.profiles[0].capabilities[0].type"},
		{name: "CapabilityVersion", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { delete(capability0(r), "version") })
		}, field: "report.profiles[0].capabilities[0].version"},
		{name: "CapabilityWithoutGet", body: func(tb testing.TB) string {
			return sampleWith(tb, func(r map[string]any) { capability0(r)["supportedOperations"] = []any{"Add", "Delete"} })
		}, field: "report.profiles[0].capabilities[0].supportedOperations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAlexa(t, nil)
			ct, body := "application/json", alexaSample
			if tt.body != nil {
				body = tt.body(t)
			} else {
				ct = tt.contentType
			}
			a := e.post(t, http.MethodPost, ct, e.token(t, "u"), body)
			assertAlexaError(t, a, http.StatusBadRequest, tt.field)
			if got := e.alexa.Received("u"); got != nil {
				t.Errorf("Received = %+v, want nothing", got)
			}
			if got, want := e.alexa.Stats(), (sim.AlexaStats{Requests: 1, Invalid: 1}); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("AuthorizationFirst", func(t *testing.T) {
		e := startAlexa(t, nil)
		assertAlexaError(t, e.post(t, http.MethodPost, "text/plain", "", "nonsense"), http.StatusUnauthorized, "missing")
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		e := startAlexa(t, nil)
		a := e.post(t, http.MethodGet, "", e.token(t, "u"), "")
		assertAlexaError(t, a, http.StatusMethodNotAllowed, "POST")
		if got, want := a.Header.Get("Allow"), http.MethodPost; got != want {
			t.Errorf("Allow = %q, want %q", got, want)
		}
	})
	t.Run("TooLarge", func(t *testing.T) {
		e := startAlexa(t, nil)
		big := sampleWith(t, func(r map[string]any) { r["messageId"] = strings.Repeat("x", 300<<10) })
		assertAlexaError(t, e.post(t, http.MethodPost, "application/json", e.token(t, "u"), big), http.StatusRequestEntityTooLarge, "body")
	})
	t.Run("OtherPath", func(t *testing.T) {
		e := startAlexa(t, nil)
		a, err := alexaDo(t.Context(), e.alexa.URL()+"/v1/health/other", http.MethodPost, "application/json", e.token(t, "u"), alexaSample)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != http.StatusNotFound {
			t.Errorf("status = %d, want 404", a.Status)
		}
	})
}

func TestAlexa_Faults(t *testing.T) {
	tests := []struct {
		name       string
		inject     func(a *sim.Alexa)
		asDate     bool
		status     int
		code       string
		retryAfter string
	}{
		{
			name:   "ServerError",
			inject: func(a *sim.Alexa) { a.FailNext(1, http.StatusInternalServerError, 0) },
			status: http.StatusInternalServerError, code: "INTERNAL_SERVICE_EXCEPTION",
		},
		{
			name:   "Unavailable",
			inject: func(a *sim.Alexa) { a.FailNext(1, http.StatusServiceUnavailable, 1500*time.Millisecond) },
			status: http.StatusServiceUnavailable, code: "SERVICE_UNAVAILABLE", retryAfter: "2",
		},
		{
			name:   "Throttled",
			inject: func(a *sim.Alexa) { a.ThrottleNext(1, 30*time.Second) },
			status: http.StatusTooManyRequests, code: "TOO_MANY_REQUESTS", retryAfter: "30",
		},
		{
			name:   "ThrottledWithDate",
			inject: func(a *sim.Alexa) { a.ThrottleNext(1, 90*time.Second) },
			asDate: true,
			status: http.StatusTooManyRequests, code: "TOO_MANY_REQUESTS", retryAfter: "Sun, 01 Jun 2025 12:01:30 GMT",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startAlexa(t, func(o *sim.AlexaOptions) { o.RetryAfterAsDate = tt.asDate })
			tok := e.token(t, "u")
			tt.inject(e.alexa)
			a := e.post(t, http.MethodPost, "application/json", tok, alexaSample)
			if a.Status != tt.status || a.Body["code"] != tt.code {
				t.Fatalf("answer = %d %v, want %d %s", a.Status, a.Body, tt.status, tt.code)
			}
			if got := a.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
			if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
				t.Fatalf("after the fault: %d %v", a.Status, a.Body)
			}
			if got, want := e.alexa.Stats(), (sim.AlexaStats{Requests: 2, Delivered: 1, Faulted: 1}); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
		})
	}
	t.Run("FaultsQueueAndComeFirst", func(t *testing.T) {
		e := startAlexa(t, nil)
		e.alexa.FailNext(1, http.StatusInternalServerError, 0)
		e.alexa.ThrottleNext(1, 0)
		for _, want := range []int{http.StatusInternalServerError, http.StatusTooManyRequests, http.StatusUnauthorized} {
			if a := e.post(t, http.MethodPost, "application/json", "", alexaSample); a.Status != want {
				t.Errorf("status = %d, want %d", a.Status, want)
			}
		}
	})
	t.Run("ClearFaults", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.FailNext(3, http.StatusInternalServerError, 0)
		e.alexa.RejectTokenNext(3)
		e.alexa.SetDelay(time.Hour)
		e.alexa.ClearFaults()
		if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("after ClearFaults: %d %v", a.Status, a.Body)
		}
	})
	t.Run("DelayEndsWithClient", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.SetDelay(time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := alexaDo(ctx, e.alexa.URL()+sim.AlexaHealthProfilePath, http.MethodPost, "application/json", tok, alexaSample)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want a deadline error", err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Errorf("request took %v", elapsed)
		}
		e.alexa.SetDelay(0)
		if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("after the delay: %d %v", a.Status, a.Body)
		}
		if got := e.alexa.Received("u"); len(got) != 1 {
			t.Errorf("Received = %d reports, want only the one answered", len(got))
		}
	})
	t.Run("DelayedAnswer", func(t *testing.T) {
		e := startAlexa(t, nil)
		tok := e.token(t, "u")
		e.alexa.SetDelay(50 * time.Millisecond)
		start := time.Now()
		if a := e.post(t, http.MethodPost, "application/json", tok, alexaSample); a.Status != http.StatusAccepted {
			t.Fatalf("status %d %v", a.Status, a.Body)
		}
		if elapsed := time.Since(start); elapsed < 50*time.Millisecond {
			t.Errorf("answer came after %v, want at least 50ms", elapsed)
		}
	})
}

func TestAlexa_Lifecycle(t *testing.T) {
	t.Run("RequiresLWA", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("NewAlexa without LWA did not panic")
			}
		}()
		sim.NewAlexa(sim.AlexaOptions{})
	})
	t.Run("RejectsNonLoopbackAddress", func(t *testing.T) {
		l := sim.NewLWA(sim.LWAOptions{})
		for _, addr := range []string{":0", "0.0.0.0:0", "example.com:80", "nonsense"} {
			a := sim.NewAlexa(sim.AlexaOptions{Addr: addr, LWA: l})
			if err := a.Start(t.Context()); err == nil {
				_ = a.Close()
				t.Errorf("Start(%q) = nil, want an error", addr)
			}
		}
	})
	t.Run("StartTwice", func(t *testing.T) {
		e := startAlexa(t, nil)
		if err := e.alexa.Start(t.Context()); err == nil {
			t.Error("second Start = nil, want an error")
		}
	})
	t.Run("CloseIsIdempotent", func(t *testing.T) {
		a := sim.NewAlexa(sim.AlexaOptions{LWA: sim.NewLWA(sim.LWAOptions{})})
		if err := a.Close(); err != nil {
			t.Errorf("Close before Start: %v", err)
		}
		if got := a.URL(); got != "" {
			t.Errorf("URL before Start = %q, want empty", got)
		}
		if err := a.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(a.URL(), "http://127.0.0.1:") {
			t.Errorf("URL = %q, want http://127.0.0.1:…", a.URL())
		}
		for range 2 {
			if err := a.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if _, err := http.Post(a.URL()+sim.AlexaHealthProfilePath, "application/json", nil); err == nil {
			t.Error("server still answers after Close")
		}
	})
}

func TestAlexa_Concurrent(t *testing.T) {
	e := startAlexa(t, nil)
	const workers = 12
	target := e.alexa.URL() + sim.AlexaHealthProfilePath
	tokens := make([]string, workers)
	for i := range tokens {
		tokens[i] = e.token(t, "user-"+string(rune('a'+i)))
	}
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for range 3 {
				a, err := alexaDo(t.Context(), target, http.MethodPost, "application/json", tokens[i], alexaSample)
				if err != nil || a.Status != http.StatusAccepted {
					t.Errorf("post: %v %d %v", err, a.Status, a.Body)
					return
				}
			}
		})
	}
	// Fault settings and reads race with the requests on purpose.
	wg.Go(func() {
		for range 20 {
			e.alexa.SetDelay(time.Millisecond)
			_ = e.alexa.Stats()
			_ = e.alexa.Received("user-a")
			e.alexa.RevokeUser("nobody")
			e.alexa.SetDelay(0)
		}
	})
	wg.Wait()
	if got, want := e.alexa.Stats(), (sim.AlexaStats{Requests: workers * 3, Delivered: workers * 3}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
	for i := range workers {
		if got := len(e.alexa.Received("user-" + string(rune('a'+i)))); got != 3 {
			t.Errorf("user %d: %d reports, want 3", i, got)
		}
	}
}
