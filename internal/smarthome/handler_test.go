package smarthome_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/smarthome"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The partner's authorization server as the tests' HS256 verifier knows it,
// the skills, and the code Alexa hands over.
const (
	issuer      = "https://auth.partner.test/"
	audience    = "broker"
	hsSecret    = "hs256-secret-of-the-partner-0123456789abcdef"
	code        = "ANsecretAuthorizationCode42"
	homeClient  = "alexa-home"
	homeClient2 = "alexa-home-2"
	babyClient  = "alexa-baby"
	homeRegion  = "EU"
	babyRegion  = "NA"
)

// The grantee tokens of the tests, by name: newJWTs signs them.
const (
	userTok      = "user"       // user-1, client alexa-home
	secondTok    = "second"     // user-3, client alexa-home-2
	babyTok      = "baby"       // user-2, client alexa-baby (the baby skill's)
	expiredTok   = "expired"    // user-1, expired two hours ago
	wrongSigTok  = "wrong-sig"  // user-1, signed with another secret
	issuerTok    = "issuer"     // user-1, from another issuer
	audienceTok  = "audience"   // user-1, for another audience
	noSubjectTok = "no-subject" // no sub
	garbageTok   = "garbage"    // not a JWT
)

// newJWTs returns the grantee tokens, by name, signed at now.
func newJWTs(tb testing.TB, now time.Time) map[string]string {
	tb.Helper()
	sign := func(secret string, claims jwt.MapClaims) string {
		tb.Helper()
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	claims := func(sub, client string, extra ...any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": issuer, "aud": audience, "client_id": client, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if sub != "" {
			c["sub"] = sub
		}
		for i := 0; i+1 < len(extra); i += 2 {
			c[extra[i].(string)] = extra[i+1]
		}
		return c
	}
	return map[string]string{
		userTok:      sign(hsSecret, claims("user-1", homeClient)),
		secondTok:    sign(hsSecret, claims("user-3", homeClient2)),
		babyTok:      sign(hsSecret, claims("user-2", babyClient)),
		expiredTok:   sign(hsSecret, claims("user-1", homeClient, "exp", now.Add(-2*time.Hour).Unix())),
		wrongSigTok:  sign("another-secret-of-the-right-length-0123456789", claims("user-1", homeClient)),
		issuerTok:    sign(hsSecret, claims("user-1", homeClient, "iss", "https://other.test/")),
		audienceTok:  sign(hsSecret, claims("user-1", homeClient, "aud", "someone-else")),
		noSubjectTok: sign(hsSecret, claims("", homeClient)),
		garbageTok:   "not-a-jwt",
	}
}

// recordingAuthn is an auth.Authenticator that records the tokens it is given
// and passes them to the real one.
type recordingAuthn struct {
	auth.Authenticator

	mu   sync.Mutex
	seen []string
}

func (a *recordingAuthn) Verify(ctx context.Context, raw string) (auth.Principal, error) {
	a.mu.Lock()
	a.seen = append(a.seen, raw)
	a.mu.Unlock()
	return a.Authenticator.Verify(ctx, raw)
}

// verified returns how many tokens Verify was given.
func (a *recordingAuthn) verified() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.seen)
}

// exchange is one call of fakeExchanger.Exchange.
type exchange struct {
	UserID string
	Code   string
	Region string
	// Left is the time left before the call's deadline when it was made.
	Left time.Duration
}

// fakeExchanger is a reciprocal.Exchanger that records its calls and answers
// err (nil: a new link). A slow one waits until its context ends and answers
// the context's error, as an HTTP client does.
type fakeExchanger struct {
	err  error
	slow bool

	mu    sync.Mutex
	calls []exchange
}

var _ reciprocal.Exchanger = (*fakeExchanger)(nil)

func (f *fakeExchanger) Exchange(ctx context.Context, userID string, c tokens.Secret, region string) (*tokens.Link, error) {
	call := exchange{UserID: userID, Code: c.Reveal(), Region: region}
	if dl, ok := ctx.Deadline(); ok {
		call.Left = time.Until(dl)
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	if f.slow {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return &tokens.Link{UserID: userID, State: tokens.StateLinked, Region: region}, nil
}

// exchanges returns the calls so far, without the time they had left.
func (f *fakeExchanger) exchanges() []exchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := append([]exchange(nil), f.calls...)
	for i := range calls {
		calls[i].Left = 0
	}
	return calls
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for the logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is the handler over a real HS256 verifier and fake exchangers, with
// two skills: home (alexa-home and alexa-home-2, EU) and baby (alexa-baby,
// NA).
type fixture struct {
	handler *smarthome.Handler
	service *smarthome.Service
	authn   *recordingAuthn
	home    *fakeExchanger
	baby    *fakeExchanger
	jwts    map[string]string
	logs    *syncBuffer
	// messageIDs are the messageIds of the answers so far.
	messageIDs map[string]bool
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{home: &fakeExchanger{}, baby: &fakeExchanger{}, logs: &syncBuffer{}, messageIDs: map[string]bool{}}
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Issuer: issuer, Audience: audience, HS256Secret: hsSecret, Logger: logger,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { v.Close() })
	f.authn = &recordingAuthn{Authenticator: v}
	f.jwts = newJWTs(tb, time.Now())
	f.service = smarthome.NewService(f.authn, logger)
	f.handler = smarthome.NewHandler(f.service, staticSkills(
		reciprocal.Skill{ID: "home", ClientIDs: []string{homeClient, homeClient2}, Region: homeRegion, Tokens: f.home},
		reciprocal.Skill{ID: "baby", ClientIDs: []string{babyClient}, Region: babyRegion, Tokens: f.baby},
	))
	tb.Cleanup(func() {
		for _, s := range f.secrets() {
			if strings.Contains(f.logs.String(), s) {
				tb.Errorf("a secret was logged: %q\n%s", s, f.logs.String())
			}
		}
	})
	return f
}

// secrets are what no answer and no log line may hold.
func (f *fixture) secrets() []string {
	s := []string{code, hsSecret}
	for name, jwt := range f.jwts {
		if name != garbageTok {
			s = append(s, jwt)
		}
	}
	return s
}

// fields are a directive's fields, as strings.
type fields struct {
	Namespace, Name, MessageID, PayloadVersion, GrantType, Code, GranteeType, Token string
}

// body returns the JSON of the directive of f, as Alexa sends it.
func (f fields) body() string {
	b, err := json.Marshal(map[string]any{"directive": map[string]any{
		"header": map[string]any{
			"namespace": f.Namespace, "name": f.Name, "messageId": f.MessageID, "payloadVersion": f.PayloadVersion,
		},
		"payload": map[string]any{
			"grant":   map[string]any{"type": f.GrantType, "code": f.Code},
			"grantee": map[string]any{"type": f.GranteeType, "token": f.Token},
		},
	}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// directive returns the JSON of a valid directive whose grantee token is
// token, changed by mods.
func directive(token string, mods ...func(*fields)) string {
	f := fields{
		Namespace: "Alexa.Authorization", Name: "AcceptGrant", MessageID: "5f8a426e-01e4-4cc9-8b79-65f8bd0fd8a4", PayloadVersion: "3",
		GrantType: "OAuth2.AuthorizationCode", Code: code, GranteeType: "BearerToken", Token: token,
	}
	for _, mod := range mods {
		mod(&f)
	}
	return f.body()
}

// serve sends body to the handler with method (POST when "") and query.
func (f *fixture) serve(method, query, body string) *httptest.ResponseRecorder {
	if method == "" {
		method = http.MethodPost
	}
	target := smarthome.Path
	if query != "" {
		target += "?" + query
	}
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

// assertAnswer checks what every answer has in common, and its status: an
// AcceptGrant.Response for 200, and otherwise an ErrorResponse whose message
// holds wantMessage. It returns the answer.
func (f *fixture) assertAnswer(tb testing.TB, w *httptest.ResponseRecorder, status int, wantMessage string) smarthome.Response {
	tb.Helper()
	if got := w.Code; got != status {
		tb.Errorf("status = %d, want %d; body %s", got, status, w.Body)
	}
	if got, want := w.Header().Get("Cache-Control"), "no-store"; got != want {
		tb.Errorf("Cache-Control = %q, want %q", got, want)
	}
	if got, want := w.Header().Get("Content-Type"), "application/json;charset=UTF-8"; got != want {
		tb.Errorf("Content-Type = %q, want %q", got, want)
	}
	return f.assertBody(tb, w.Body.Bytes(), status, wantMessage)
}

// assertBody checks an answer's body, as assertAnswer does.
func (f *fixture) assertBody(tb testing.TB, body []byte, status int, wantMessage string) smarthome.Response {
	tb.Helper()
	for _, s := range f.secrets() {
		if bytes.Contains(body, []byte(s)) {
			tb.Errorf("body %s holds the secret %q", body, s)
		}
	}
	var got smarthome.Response
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		tb.Fatalf("body %s is not an answer: %v", body, err)
	}
	id, err := uuid.Parse(got.Event.Header.MessageID)
	if err != nil || id.Version() != 4 || id.String() != got.Event.Header.MessageID {
		tb.Errorf("messageId %q is not a UUID v4 (%v)", got.Event.Header.MessageID, err)
	}
	if f.messageIDs[id.String()] {
		tb.Errorf("messageId %s was answered before", id)
	}
	f.messageIDs[id.String()] = true
	want := smarthome.Header{Namespace: "Alexa.Authorization", Name: "ErrorResponse", PayloadVersion: "3"}
	if status == http.StatusOK {
		want.Name = "AcceptGrant.Response"
		if !bytes.Contains(body, []byte(`"payload":{}`)) {
			tb.Errorf("body %s has no empty payload", body)
		}
	}
	if diff := cmp.Diff(want, got.Event.Header, cmpopts.IgnoreFields(smarthome.Header{}, "MessageID")); diff != "" {
		tb.Errorf("header differs (-want +got):\n%s", diff)
	}
	if status == http.StatusOK {
		return got
	}
	if got, want := got.Event.Payload.Type, "ACCEPT_GRANT_FAILED"; got != want {
		tb.Errorf("payload.type = %q, want %q", got, want)
	}
	msg := got.Event.Payload.Message
	if !strings.HasPrefix(msg, "Failed to handle the AcceptGrant directive: ") || !strings.Contains(msg, wantMessage) {
		tb.Errorf("payload.message = %q, want one that says %q", msg, wantMessage)
	}
	return got
}

func TestHandler(t *testing.T) {
	home := func(user string) []exchange { return []exchange{{UserID: user, Code: code, Region: homeRegion}} }
	tests := []struct {
		name    string
		method  string // "" for POST
		query   string
		token   string                // the grantee token's name in newJWTs; "" for none
		mod     func(*fields)         // changes the directive
		body    func(*fixture) string // the body, instead of the directive
		exchErr error
		status  int
		message string // what an ErrorResponse's message says
		// wantHome and wantBaby are the exchanges of each skill.
		wantHome, wantBaby []exchange
		// authenticated says whether the token was verified.
		authenticated bool
	}{
		{name: "Success", query: "skill_id=home", token: userTok, status: 200, wantHome: home("user-1"), authenticated: true},
		{name: "SecondClient", query: "skill_id=home", token: secondTok, status: 200, wantHome: home("user-3"), authenticated: true},
		{name: "SkillID", query: "skill_id=home", token: userTok, status: 200, wantHome: home("user-1"), authenticated: true},
		{
			name: "OtherSkill", query: "skill_id=baby", token: babyTok, status: 200, authenticated: true,
			wantBaby: []exchange{{UserID: "user-2", Code: code, Region: babyRegion}},
		},
		{name: "NoSkillIDOfTwo", token: userTok, status: 400, message: "skill_id is required"},
		{name: "UnknownSkill", query: "skill_id=garden", token: userTok, status: 400, message: `unknown skill_id "garden"`},
		{name: "RepeatedSkillID", query: "skill_id=home&skill_id=baby", token: userTok, status: 400, message: "skill_id is repeated"},
		{name: "LargestBody", query: "skill_id=home", token: userTok, body: padded(smarthome.MaxBody), status: 200, wantHome: home("user-1"), authenticated: true},
		{name: "BodyTooLarge", query: "skill_id=home", token: userTok, body: padded(smarthome.MaxBody + 1), status: 400, message: "larger than 64 KiB"},
		{name: "WrongMethod", method: http.MethodGet, query: "skill_id=home", status: 405, message: "use POST"},
		{name: "NotJSON", query: "skill_id=home", body: raw(`directive=` + code), status: 400, message: "not the JSON of an AcceptGrant directive"},
		{name: "JSONArray", query: "skill_id=home", body: raw(`[]`), status: 400, message: "not the JSON of an AcceptGrant directive"},
		{name: "TrailingData", query: "skill_id=home", token: userTok, body: trailing, status: 400, message: "not the JSON of an AcceptGrant directive"},
		{name: "CodeNotString", query: "skill_id=home", body: raw(`{"directive":{"payload":{"grant":{"code":42}}}}`), status: 400, message: "not the JSON"},
		{name: "Empty", query: "skill_id=home", body: raw(``), status: 400, message: "not the JSON"},
		{name: "NoDirective", query: "skill_id=home", body: raw(`{"event":{}}`), status: 400, message: "the body holds no directive"},
		{name: "NullDirective", query: "skill_id=home", body: raw(`{"directive":null}`), status: 400, message: "the body holds no directive"},
		{
			name: "WrongNamespace", query: "skill_id=home", token: userTok, mod: func(f *fields) { f.Namespace = "Alexa.Discovery" },
			status: 400, message: "directive.header.namespace must be Alexa.Authorization",
		},
		{
			name: "WrongName", query: "skill_id=home", token: userTok, mod: func(f *fields) { f.Name = "AcceptGrant.Response" },
			status: 400, message: "directive.header.name must be AcceptGrant",
		},
		{
			name: "WrongPayloadVersion", query: "skill_id=home", token: userTok, mod: func(f *fields) { f.PayloadVersion = "2" },
			status: 400, message: `directive.header.payloadVersion must be "3"`,
		},
		{
			name: "WrongGrantType", query: "skill_id=home", token: userTok, mod: func(f *fields) { f.GrantType = "OAuth2.RefreshToken" },
			status: 400, message: "directive.payload.grant.type must be OAuth2.AuthorizationCode",
		},
		{
			name: "NoCode", query: "skill_id=home", token: userTok, mod: func(f *fields) { f.Code = "" },
			status: 400, message: "directive.payload.grant.code is required",
		},
		{
			name: "WrongGranteeType", query: "skill_id=home", token: userTok, mod: func(f *fields) { f.GranteeType = "Cookie" },
			status: 400, message: "directive.payload.grantee.type must be BearerToken",
		},
		{
			name: "MalformedBeforeAuthentication", query: "skill_id=home", token: expiredTok, mod: func(f *fields) { f.Code = "" },
			status: 400, message: "directive.payload.grant.code is required",
		},
		{name: "NoToken", query: "skill_id=home", status: 401, message: "directive.payload.grantee.token is required"},
		{name: "ExpiredToken", query: "skill_id=home", token: expiredTok, status: 401, message: "expired", authenticated: true},
		{name: "WrongSignature", query: "skill_id=home", token: wrongSigTok, status: 401, authenticated: true},
		{name: "OtherIssuer", query: "skill_id=home", token: issuerTok, status: 401, authenticated: true},
		{name: "OtherAudience", query: "skill_id=home", token: audienceTok, status: 401, authenticated: true},
		{name: "NoSubject", query: "skill_id=home", token: noSubjectTok, status: 401, authenticated: true},
		{name: "NotAJWT", query: "skill_id=home", token: garbageTok, status: 401, authenticated: true},
		{
			name: "ForeignClient", query: "skill_id=home", token: babyTok, status: 400, authenticated: true,
			message: "the grantee token's client is not an Alexa client of this skill",
		},
		{
			name: "LWARefused", query: "skill_id=home", token: userTok, exchErr: fmt.Errorf("exchange code: %w", tokens.ErrInvalidGrant),
			status: 400, message: "Login with Amazon refused the authorization code", wantHome: home("user-1"), authenticated: true,
		},
		{
			name: "LWAUnreachable", query: "skill_id=home", token: userTok,
			exchErr: fmt.Errorf("exchange code: %w", tokens.Errorf(tokens.EUNAVAILABLE, "Login with Amazon answered 503")),
			status:  503, message: "Login with Amazon answered 503", wantHome: home("user-1"), authenticated: true,
		},
		{
			name: "InternalError", query: "skill_id=home", token: userTok, exchErr: fmt.Errorf("seal tokens: cipher: message authentication failed"),
			status: 500, message: "internal error", wantHome: home("user-1"), authenticated: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.home.err = tt.exchErr
			var body string
			switch {
			case tt.body != nil:
				body = tt.body(f)
			case tt.mod != nil:
				body = directive(f.jwts[tt.token], tt.mod)
			default:
				body = directive(f.jwts[tt.token])
			}
			w := f.serve(tt.method, tt.query, body)
			f.assertAnswer(t, w, tt.status, tt.message)
			if tt.status == http.StatusMethodNotAllowed {
				if got, want := w.Header().Get("Allow"), http.MethodPost; got != want {
					t.Errorf("Allow = %q, want %q", got, want)
				}
			}
			if diff := cmp.Diff(tt.wantHome, f.home.exchanges()); diff != "" {
				t.Errorf("exchanges of home differ (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantBaby, f.baby.exchanges()); diff != "" {
				t.Errorf("exchanges of baby differ (-want +got):\n%s", diff)
			}
			if got := f.authn.verified() > 0; got != tt.authenticated {
				t.Errorf("token verified: %v, want %v", got, tt.authenticated)
			}
		})
	}
}

// raw returns a body builder of s.
func raw(s string) func(*fixture) string { return func(*fixture) string { return s } }

// padded returns a body builder of a valid directive of the user's token,
// with an unknown field that makes it exactly n bytes long.
func padded(n int) func(*fixture) string {
	return func(f *fixture) string {
		d := directive(f.jwts[userTok])
		d = strings.TrimSuffix(d, "}") + `,"filler":"`
		return d + strings.Repeat("x", n-len(d)-2) + `"}`
	}
}

// trailing is a valid directive followed by another JSON value.
func trailing(f *fixture) string { return directive(f.jwts[userTok]) + `{}` }

// TestHandler_Deadline checks that a directive is answered within
// reciprocal.Deadline whatever LWA does, on the bubble's fake clock.
func TestHandler_Deadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.home.slow = true
		begin := time.Now()
		w := f.serve("", "skill_id=home", directive(f.jwts[userTok]))
		if got, want := time.Since(begin), reciprocal.Deadline; got != want {
			t.Errorf("answered after %v, want %v", got, want)
		}
		f.assertAnswer(t, w, 503, "Login with Amazon did not answer in time")
		f.home.mu.Lock()
		calls := f.home.calls
		f.home.mu.Unlock()
		if len(calls) != 1 || calls[0].Left != reciprocal.Deadline {
			t.Errorf("exchanges = %+v, want one with %v left", calls, reciprocal.Deadline)
		}
	})
}

// TestHandler_RateLimit checks that a directive beyond the user's allowance
// is answered 429 with Retry-After, and costs no exchange.
func TestHandler_RateLimit(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	f.service.Limiter = reciprocal.NewLimiter(reciprocal.Rate{Count: 1, Per: time.Minute}, reciprocal.Rate{}, func() time.Time { return now })
	f.assertAnswer(t, f.serve("", "skill_id=home", directive(f.jwts[userTok])), 200, "")
	w := f.serve("", "skill_id=home", directive(f.jwts[userTok]))
	f.assertAnswer(t, w, 429, "too many hand-overs of this user")
	if got, want := w.Header().Get("Retry-After"), "60"; got != want {
		t.Errorf("Retry-After = %q, want %q", got, want)
	}
	if got := len(f.home.exchanges()); got != 1 {
		t.Errorf("%d exchanges, want 1", got)
	}
	// Another user of the same client is not limited.
	f.assertAnswer(t, f.serve("", "skill_id=home", directive(f.jwts[secondTok])), 200, "")
}

// unavailableAuthn is an auth.Authenticator whose signing keys cannot be
// fetched.
type unavailableAuthn struct{}

func (unavailableAuthn) Verify(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, tokens.Errorf(tokens.EUNAVAILABLE, "the signing keys cannot be fetched")
}

func TestHandler_AuthenticatorUnavailable(t *testing.T) {
	f := newFixture(t)
	skills := staticSkills(reciprocal.Skill{ID: "home", ClientIDs: []string{homeClient}, Tokens: f.home})
	h := smarthome.NewHandler(smarthome.NewService(unavailableAuthn{}, nil), skills)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, smarthome.Path, strings.NewReader(directive(f.jwts[userTok]))))
	f.assertAnswer(t, w, 503, "the signing keys cannot be fetched")
	if got := f.home.exchanges(); len(got) != 0 {
		t.Errorf("exchanges = %v, want none", got)
	}
}
