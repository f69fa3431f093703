package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/health"
	"github.com/reciprocal-broker/broker/internal/server"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// scopesAuthn is a hand-written auth.Authenticator: a token names its scopes
// ("tokens", "profiles", "admin", "all"), and its holder is "user-1" of client
// "alexa"; any other token is refused.
type scopesAuthn struct{}

var _ auth.Authenticator = scopesAuthn{}

var tokenScopes = map[string][]string{
	"tokens":   {server.ScopeTokens},
	"profiles": {server.ScopeProfiles},
	"admin":    {server.ScopeAdmin},
	"all":      {server.ScopeTokens, server.ScopeProfiles, server.ScopeAdmin},
}

func (scopesAuthn) Verify(_ context.Context, raw string) (auth.Principal, error) {
	scopes, ok := tokenScopes[raw]
	if !ok {
		return auth.Principal{}, tokens.Errorf(tokens.EUNAUTHENTICATED, "token is expired")
	}
	return auth.Principal{Subject: "user-1", ClientID: "alexa", Scopes: scopes}, nil
}

// adminToken carries every scope.
const adminToken = "all"

// bearer adds adminToken to outgoing gRPC calls.
func bearer(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+adminToken)
}

// open starts a Server on free loopback ports and closes it when the test ends.
func open(tb testing.TB, opts server.Options) *server.Server {
	tb.Helper()
	opts.GRPCAddr, opts.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	if opts.Authenticator == nil {
		opts.Authenticator = scopesAuthn{}
	}
	s, err := server.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Open(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// dial connects a gRPC client to s.
func dial(tb testing.TB, s *server.Server) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// get sends an HTTP request to s and returns the status and body.
func do(tb testing.TB, s *server.Server, method, path, body string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest(method, "http://"+s.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServer_Health(t *testing.T) {
	s := open(t, server.Options{})
	health := healthpb.NewHealthClient(dial(t, s))
	for _, svc := range []string{
		"",
		"broker.v1.ReciprocalService",
		"broker.v1.PartnerTokenService",
		"broker.v1.ProfileReportService",
		"broker.v1.LinkService",
		"broker.v1.EventService",
	} {
		t.Run("gRPC/"+svc, func(t *testing.T) {
			resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := resp.GetStatus(), healthpb.HealthCheckResponse_SERVING; got != want {
				t.Fatalf("status = %v, want %v", got, want)
			}
		})
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run("HTTP"+path, func(t *testing.T) {
			if resp, body := do(t, s, "GET", path, ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d (%s), want 200", resp.StatusCode, body)
			}
		})
	}
}

func TestServer_NotReady(t *testing.T) {
	down := errors.New("store down")
	s := open(t, server.Options{Health: health.New(func(context.Context) error { return down })})
	if resp, _ := do(t, s, "GET", "/readyz", ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz status = %d, want 503", resp.StatusCode)
	}
	if resp, _ := do(t, s, "GET", "/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz status = %d, want 200 while the process runs", resp.StatusCode)
	}
	resp, err := healthpb.NewHealthClient(dial(t, s)).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.GetStatus(), healthpb.HealthCheckResponse_NOT_SERVING; got != want {
		t.Errorf("gRPC health = %v after a failed readiness check, want %v", got, want)
	}
}

func TestServer_Reflection(t *testing.T) {
	s := open(t, server.Options{})
	stream, err := reflectionpb.NewServerReflectionClient(dial(t, s)).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, svc := range resp.GetListServicesResponse().GetService() {
		listed[svc.GetName()] = true
	}
	for _, want := range []string{
		"broker.v1.ReciprocalService", "broker.v1.PartnerTokenService",
		"broker.v1.ProfileReportService", "broker.v1.LinkService", "broker.v1.EventService", "grpc.health.v1.Health",
	} {
		if !listed[want] {
			t.Errorf("reflection does not list %s; it lists %v", want, listed)
		}
	}
}

// TestServer_Unimplemented runs the same calls over gRPC and over HTTP: methods
// whose capability has not landed answer UNIMPLEMENTED and 501.
func TestServer_Unimplemented(t *testing.T) {
	s := open(t, server.Options{})
	conn := dial(t, s)
	tests := []struct {
		name               string
		grpc               func(context.Context) error
		method, path, body string
	}{
		{"GetPartnerToken", func(ctx context.Context) error {
			_, err := brokerv1.NewPartnerTokenServiceClient(conn).GetPartnerToken(ctx, &brokerv1.GetPartnerTokenRequest{UserId: "u"})
			return err
		}, "POST", "/v1/partner-token", `{"user_id":"u"}`},
		{"SubmitProfileReport", func(ctx context.Context) error {
			_, err := brokerv1.NewProfileReportServiceClient(conn).SubmitProfileReport(ctx, &brokerv1.SubmitProfileReportRequest{UserId: "u"})
			return err
		}, "POST", "/v1/profile-reports", `{"user_id":"u","profiles":[]}`},
		{"GetProfileReport", func(ctx context.Context) error {
			_, err := brokerv1.NewProfileReportServiceClient(conn).GetProfileReport(ctx, &brokerv1.GetProfileReportRequest{MessageId: "m"})
			return err
		}, "GET", "/v1/profile-reports/m", ""},
		{"GetLink", func(ctx context.Context) error {
			_, err := brokerv1.NewLinkServiceClient(conn).GetLink(ctx, &brokerv1.GetLinkRequest{UserId: "u"})
			return err
		}, "GET", "/v1/links/u", ""},
		{"DeleteLink", func(ctx context.Context) error {
			_, err := brokerv1.NewLinkServiceClient(conn).DeleteLink(ctx, &brokerv1.DeleteLinkRequest{UserId: "u"})
			return err
		}, "DELETE", "/v1/links/u", ""},
		{"GetStats", func(ctx context.Context) error {
			_, err := brokerv1.NewEventServiceClient(conn).GetStats(ctx, &brokerv1.GetStatsRequest{})
			return err
		}, "GET", "/v1/stats", ""},
		{"ListEvents", func(ctx context.Context) error {
			_, err := brokerv1.NewEventServiceClient(conn).ListEvents(ctx, &brokerv1.ListEventsRequest{})
			return err
		}, "GET", "/v1/events", ""},
		{"Authorize", func(ctx context.Context) error {
			_, err := brokerv1.NewReciprocalServiceClient(conn).Authorize(ctx, &brokerv1.AuthorizeRequest{})
			return err
		}, "POST", "/api/reciprocal/authorize", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/gRPC", func(t *testing.T) {
			if got, want := status.Code(tt.grpc(bearer(t.Context()))), codes.Unimplemented; got != want {
				t.Errorf("code = %v, want %v", got, want)
			}
		})
		t.Run(tt.name+"/HTTP", func(t *testing.T) {
			if resp, body := do(t, s, tt.method, tt.path, tt.body); resp.StatusCode != http.StatusNotImplemented {
				t.Errorf("status = %d (%s), want 501", resp.StatusCode, body)
			}
		})
	}
}

func TestServer_ErrorShape(t *testing.T) {
	s := open(t, server.Options{Services: server.Services{Links: failingLinks{}}})
	tests := []struct {
		user   string
		status int
		body   string
	}{
		{"missing", http.StatusNotFound, `{"code":5,"message":"link not found"}`},
		{"relink", http.StatusPreconditionFailed, `{"code":9,"message":"relink"}`},
		{"bug", http.StatusInternalServerError, `{"code":13,"message":"internal error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			resp, body := do(t, s, "GET", "/v1/links/"+tt.user, "")
			if resp.StatusCode != tt.status || strings.TrimSpace(body) != tt.body {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

// failingLinks answers GetLink with the error its user id names.
type failingLinks struct {
	brokerv1.UnimplementedLinkServiceServer
}

func (failingLinks) GetLink(_ context.Context, req *brokerv1.GetLinkRequest) (*brokerv1.Link, error) {
	switch req.GetUserId() {
	case "missing":
		return nil, tokens.ErrLinkNotFound
	case "relink":
		return nil, tokens.Errorf(tokens.ERELINK, "relink")
	}
	return nil, errors.New("secret internals")
}

func TestServer_RequestID(t *testing.T) {
	s := open(t, server.Options{Services: server.Services{PartnerTokens: &seeingTokens{}}})
	t.Run("HTTP/Generated", func(t *testing.T) {
		resp, _ := do(t, s, "GET", "/healthz", "")
		if resp.Header.Get("X-Request-Id") == "" {
			t.Error("no X-Request-Id header")
		}
	})
	t.Run("HTTP/Kept", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+s.HTTPAddr()+"/healthz", nil)
		req.Header.Set("X-Request-Id", "abc-123")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.Header.Get("X-Request-Id"), "abc-123"; got != want {
			t.Errorf("X-Request-Id = %q, want %q", got, want)
		}
	})
	// A gRPC call's id comes back only when the call fails, in its trailer.
	for _, tt := range []struct {
		name   string
		sent   string // the caller's x-request-id, "" for none
		token  bool   // whether the call has a token, and succeeds
		wantID string // the id the trailer must carry: "" for none, "*" for any
	}{
		{"gRPC/Failed", "", false, "*"},
		{"gRPC/FailedKept", "grpc-abc", false, "grpc-abc"},
		{"gRPC/Succeeded", "grpc-abc", true, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if tt.token {
				ctx = bearer(ctx)
			}
			if tt.sent != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", tt.sent)
			}
			var header, trailer metadata.MD
			_, err := brokerv1.NewPartnerTokenServiceClient(dial(t, s)).GetPartnerToken(ctx, &brokerv1.GetPartnerTokenRequest{UserId: "u"}, grpc.Header(&header), grpc.Trailer(&trailer))
			if (err == nil) != tt.token {
				t.Fatalf("GetPartnerToken error = %v", err)
			}
			if got := header.Get("x-request-id"); len(got) != 0 {
				t.Errorf("header x-request-id = %q, want none", got)
			}
			got := trailer.Get("x-request-id")
			switch {
			case tt.wantID == "" && len(got) != 0:
				t.Errorf("trailer x-request-id = %q, want none", got)
			case tt.wantID == "*" && (len(got) != 1 || got[0] == ""):
				t.Errorf("trailer x-request-id = %q, want one id", got)
			case tt.wantID != "" && tt.wantID != "*" && (len(got) != 1 || got[0] != tt.wantID):
				t.Errorf("trailer x-request-id = %q, want %q", got, tt.wantID)
			}
		})
	}
}

func TestServer_Metrics(t *testing.T) {
	s := open(t, server.Options{})
	do(t, s, "GET", "/healthz", "")
	_, _ = brokerv1.NewLinkServiceClient(dial(t, s)).GetLink(bearer(t.Context()), &brokerv1.GetLinkRequest{UserId: "u"})
	_, body := do(t, s, "GET", "/metrics", "")
	for _, want := range []string{
		`broker_http_requests_total{code="200",handler="healthz",method="get"} 1`,
		`broker_http_request_duration_seconds_bucket{handler="healthz"`,
		`grpc_server_handled_total{grpc_code="Unimplemented",grpc_method="GetLink"`,
		`grpc_server_handling_seconds_bucket{`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// slowTokens answers GetPartnerToken only after release is closed.
type slowTokens struct {
	brokerv1.UnimplementedPartnerTokenServiceServer
	started chan struct{}
	release chan struct{}
}

func (s *slowTokens) GetPartnerToken(ctx context.Context, _ *brokerv1.GetPartnerTokenRequest) (*brokerv1.GetPartnerTokenResponse, error) {
	s.started <- struct{}{}
	select {
	case <-s.release:
		return &brokerv1.GetPartnerTokenResponse{AccessToken: "drained", TokenType: "bearer"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestServer_Close checks graceful shutdown: in-flight calls over gRPC and HTTP
// finish, health turns NOT_SERVING first, and new calls are refused.
func TestServer_Close(t *testing.T) {
	slow := &slowTokens{started: make(chan struct{}, 2), release: make(chan struct{})}
	s := open(t, server.Options{Services: server.Services{PartnerTokens: slow}})
	conn := dial(t, s)
	healthConn := dial(t, s)
	health := healthpb.NewHealthClient(healthConn)
	if _, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var grpcErr, httpErr error
	var grpcToken, httpBody string
	wg.Add(2)
	go func() {
		defer wg.Done()
		resp, err := brokerv1.NewPartnerTokenServiceClient(conn).GetPartnerToken(bearer(context.Background()), &brokerv1.GetPartnerTokenRequest{UserId: "u"})
		grpcErr, grpcToken = err, resp.GetAccessToken()
	}()
	go func() {
		defer wg.Done()
		req, _ := http.NewRequest("POST", "http://"+s.HTTPAddr()+"/v1/partner-token", strings.NewReader(`{"user_id":"u"}`))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			httpErr = err
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		httpBody = string(b)
	}()
	for range 2 {
		select {
		case <-slow.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the slow calls did not start within 10s")
		}
	}

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()

	// Health goes NOT_SERVING while the calls are still in flight.
	waitFor(t, func() bool {
		resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err != nil || resp.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING
	})
	// New connections are refused.
	waitFor(t, func() bool {
		resp, err := http.Get("http://" + s.HTTPAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	select {
	case <-closed:
		t.Fatal("Close returned before the in-flight calls finished")
	default:
	}

	close(slow.release)
	wg.Wait()
	<-closed
	if grpcErr != nil || grpcToken != "drained" {
		t.Errorf("in-flight gRPC call: token %q, err %v; want it drained", grpcToken, grpcErr)
	}
	if httpErr != nil || !strings.Contains(httpBody, "drained") {
		t.Errorf("in-flight HTTP call: body %q, err %v; want it drained", httpBody, httpErr)
	}
	ctx, cancel := context.WithTimeout(bearer(t.Context()), 2*time.Second)
	defer cancel()
	if _, err := brokerv1.NewPartnerTokenServiceClient(conn).GetPartnerToken(ctx, &brokerv1.GetPartnerTokenRequest{UserId: "u"}); status.Code(err) != codes.Unavailable {
		t.Errorf("call after Close: %v, want UNAVAILABLE", err)
	}
}

// waitFor polls cond until it holds, failing the test after 5 seconds.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServer_Auth runs the policy of who may call what over gRPC and HTTP.
func TestServer_Auth(t *testing.T) {
	s := open(t, server.Options{Services: server.Services{Links: failingLinks{}}})
	links := brokerv1.NewLinkServiceClient(dial(t, s))
	tests := []struct {
		name   string
		token  string // "" sends none
		call   func(context.Context) error
		method string
		path   string
		code   codes.Code
		status int
	}{
		{"NoToken", "", func(ctx context.Context) error {
			_, err := links.GetLink(ctx, &brokerv1.GetLinkRequest{UserId: "missing"})
			return err
		}, "GET", "/v1/links/missing", codes.Unauthenticated, http.StatusUnauthorized},
		{"BadToken", "bad", func(ctx context.Context) error {
			_, err := links.GetLink(ctx, &brokerv1.GetLinkRequest{UserId: "missing"})
			return err
		}, "GET", "/v1/links/missing", codes.Unauthenticated, http.StatusUnauthorized},
		{"ReadWithTokensScope", "tokens", func(ctx context.Context) error {
			_, err := links.GetLink(ctx, &brokerv1.GetLinkRequest{UserId: "missing"})
			return err
		}, "GET", "/v1/links/missing", codes.NotFound, http.StatusNotFound},
		{"ReadWithAdminScope", "admin", func(ctx context.Context) error {
			_, err := links.GetLink(ctx, &brokerv1.GetLinkRequest{UserId: "missing"})
			return err
		}, "GET", "/v1/links/missing", codes.NotFound, http.StatusNotFound},
		{"ReadWithProfilesScope", "profiles", func(ctx context.Context) error {
			_, err := links.GetLink(ctx, &brokerv1.GetLinkRequest{UserId: "missing"})
			return err
		}, "GET", "/v1/links/missing", codes.PermissionDenied, http.StatusForbidden},
		{"DeleteWithTokensScope", "tokens", func(ctx context.Context) error {
			_, err := links.DeleteLink(ctx, &brokerv1.DeleteLinkRequest{UserId: "missing"})
			return err
		}, "DELETE", "/v1/links/missing", codes.PermissionDenied, http.StatusForbidden},
		{"ListWithTokensScope", "tokens", func(ctx context.Context) error {
			_, err := links.ListLinks(ctx, &brokerv1.ListLinksRequest{})
			return err
		}, "GET", "/v1/links", codes.PermissionDenied, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/gRPC", func(t *testing.T) {
			ctx := t.Context()
			if tt.token != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tt.token)
			}
			if got := status.Code(tt.call(ctx)); got != tt.code {
				t.Errorf("code = %v, want %v", got, tt.code)
			}
		})
		t.Run(tt.name+"/HTTP", func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+s.HTTPAddr()+tt.path, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
	t.Run("HealthIsPublic", func(t *testing.T) {
		if _, err := healthpb.NewHealthClient(dial(t, s)).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health without a token: %v", err)
		}
	})
}

// literalScopes is a hand-written auth.Authenticator whose tokens name one
// scope each, as the partner's server spells it.
type literalScopes struct{}

var _ auth.Authenticator = literalScopes{}

var literalTokens = map[string]string{
	"renamed-tokens": "Broker.Tokens", "renamed-admin": "api/broker.admin",
	"default-tokens": server.ScopeTokens, "default-admin": server.ScopeAdmin,
}

func (literalScopes) Verify(_ context.Context, raw string) (auth.Principal, error) {
	return auth.Principal{Subject: "companion", ClientID: "companion", Scopes: []string{literalTokens[raw]}}, nil
}

// TestServer_AuthScopeNames: with Options.Scopes, the partner's names grant
// the rights, over gRPC and HTTP, and the default names no longer do.
func TestServer_AuthScopeNames(t *testing.T) {
	s := open(t, server.Options{
		Services:      server.Services{Links: failingLinks{}},
		Authenticator: literalScopes{},
		Scopes:        server.Scopes{Tokens: "Broker.Tokens", Admin: "api/broker.admin"},
	})
	links := brokerv1.NewLinkServiceClient(dial(t, s))
	read := func(ctx context.Context) error {
		_, err := links.GetLink(ctx, &brokerv1.GetLinkRequest{UserId: "missing"})
		return err
	}
	del := func(ctx context.Context) error {
		_, err := links.DeleteLink(ctx, &brokerv1.DeleteLinkRequest{UserId: "missing"})
		return err
	}
	for _, tt := range []struct {
		name, token  string
		call         func(context.Context) error
		method, path string
		code         codes.Code
		status       int
	}{
		{"ReadWithRenamedTokens", "renamed-tokens", read, "GET", "/v1/links/missing", codes.NotFound, http.StatusNotFound},
		{"ReadWithRenamedAdmin", "renamed-admin", read, "GET", "/v1/links/missing", codes.NotFound, http.StatusNotFound},
		{"ReadWithDefaultName", "default-tokens", read, "GET", "/v1/links/missing", codes.PermissionDenied, http.StatusForbidden},
		// failingLinks has no DeleteLink: UNIMPLEMENTED means the call got past the check.
		{"DeleteWithRenamedAdmin", "renamed-admin", del, "DELETE", "/v1/links/missing", codes.Unimplemented, http.StatusNotImplemented},
		{"DeleteWithDefaultName", "default-admin", del, "DELETE", "/v1/links/missing", codes.PermissionDenied, http.StatusForbidden},
		{"DeleteWithRenamedTokens", "renamed-tokens", del, "DELETE", "/v1/links/missing", codes.PermissionDenied, http.StatusForbidden},
	} {
		t.Run(tt.name+"/gRPC", func(t *testing.T) {
			err := tt.call(metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tt.token))
			if got := status.Code(err); got != tt.code {
				t.Errorf("code = %v (%v), want %v", got, err, tt.code)
			}
			if tt.code == codes.PermissionDenied && !strings.Contains(status.Convert(err).Message(), "api/broker.admin") {
				t.Errorf("message %q does not name the scope as configured", status.Convert(err).Message())
			}
		})
		t.Run(tt.name+"/HTTP", func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://"+s.HTTPAddr()+tt.path, nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}
