package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/server"
)

// seeingTokens is a hand-written PartnerTokenService that remembers what the
// last call saw: its request id and caller. User "panic" makes it panic.
type seeingTokens struct {
	brokerv1.UnimplementedPartnerTokenServiceServer
	calls atomic.Int64

	mu        sync.Mutex
	requestID string
	caller    auth.Principal
}

var _ brokerv1.PartnerTokenServiceServer = (*seeingTokens)(nil)

func (s *seeingTokens) GetPartnerToken(ctx context.Context, req *brokerv1.GetPartnerTokenRequest) (*brokerv1.GetPartnerTokenResponse, error) {
	s.calls.Add(1)
	if req.GetUserId() == "panic" {
		panic("the service broke")
	}
	p, _ := auth.FromContext(ctx)
	s.mu.Lock()
	s.requestID, s.caller = server.RequestID(ctx), p
	s.mu.Unlock()
	return &brokerv1.GetPartnerTokenResponse{AccessToken: "token-of-" + req.GetUserId(), TokenType: "bearer"}, nil
}

// seen returns the request id and caller of the last call.
func (s *seeingTokens) seen() (string, auth.Principal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requestID, s.caller
}

// logBuffer keeps the log lines written to it; it is safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the decoded log lines whose request_id is id.
func (b *logBuffer) lines(tb testing.TB, id string) []map[string]any {
	tb.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var found []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if m["request_id"] == id {
			found = append(found, m)
		}
	}
	return found
}

// postToken asks s's gateway for user's partner token with token as bearer
// and requestID as X-Request-Id ("" sends none of either).
func postToken(tb testing.TB, s *server.Server, token, requestID, body string) (*http.Response, string) {
	tb.Helper()
	req, err := http.NewRequest("POST", "http://"+s.HTTPAddr()+"/v1/partner-token", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.String()
}

// TestServer_Gateway checks that a call through the HTTP gateway, which
// reaches the services in process, passes what a gRPC call passes: the
// request id, authentication, recovery, the error table, metrics and one log
// line, and the gateway's body limit.
func TestServer_Gateway(t *testing.T) {
	svc := &seeingTokens{}
	logs := &logBuffer{}
	s := open(t, server.Options{
		Services: server.Services{PartnerTokens: svc},
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
	})
	tokensClient := brokerv1.NewPartnerTokenServiceClient(dial(t, s))

	t.Run("RequestID", func(t *testing.T) {
		for _, sent := range []string{"gateway-1", ""} {
			resp, body := postToken(t, s, "tokens", sent, `{"user_id":"u"}`)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			got := resp.Header.Get("X-Request-Id")
			if sent != "" && got != sent {
				t.Errorf("X-Request-Id = %q, want the caller's %q", got, sent)
			}
			if id, _ := svc.seen(); id != got {
				t.Errorf("the service saw request id %q, the caller got %q", id, got)
			}
		}
	})
	t.Run("Auth", func(t *testing.T) {
		if resp, body := postToken(t, s, "tokens", "", `{"user_id":"u"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
		if _, p := svc.seen(); p.Subject != "user-1" {
			t.Errorf("the service saw caller %+v, want the bearer token's", p)
		}
		before := svc.calls.Load()
		for _, tt := range []struct {
			name, token string
			status      int
		}{
			{"NoToken", "", http.StatusUnauthorized},
			{"BadToken", "bad", http.StatusUnauthorized},
			{"WrongScope", "profiles", http.StatusForbidden},
		} {
			if resp, body := postToken(t, s, tt.token, "", `{"user_id":"u"}`); resp.StatusCode != tt.status {
				t.Errorf("%s: status %d %s, want %d", tt.name, resp.StatusCode, body, tt.status)
			}
		}
		if got := svc.calls.Load() - before; got != 0 {
			t.Errorf("the service was called %d times by refused callers", got)
		}
	})
	t.Run("Panic", func(t *testing.T) {
		resp, body := postToken(t, s, "tokens", "", `{"user_id":"panic"}`)
		if want := `{"code":13,"message":"internal error"}`; resp.StatusCode != http.StatusInternalServerError || strings.TrimSpace(body) != want {
			t.Errorf("got %d %s, want 500 %s", resp.StatusCode, body, want)
		}
		_, err := tokensClient.GetPartnerToken(bearer(t.Context()), &brokerv1.GetPartnerTokenRequest{UserId: "panic"})
		if status.Code(err) != codes.Internal {
			t.Errorf("over gRPC: %v, want INTERNAL", err)
		}
	})
	t.Run("BodyLimit", func(t *testing.T) {
		before := svc.calls.Load()
		big := `{"user_id":"` + strings.Repeat("u", 1<<20) + `"}`
		if resp, body := postToken(t, s, "tokens", "", big); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a body over 1 MiB: status %d %.80s, want 400", resp.StatusCode, body)
		}
		if svc.calls.Load() != before {
			t.Error("the service was called with a body over the limit")
		}
	})
	t.Run("OneLogLine", func(t *testing.T) {
		postToken(t, s, "tokens", "http-line", `{"user_id":"u"}`)
		ctx := metadata.AppendToOutgoingContext(bearer(t.Context()), "x-request-id", "grpc-line")
		if _, err := tokensClient.GetPartnerToken(ctx, &brokerv1.GetPartnerTokenRequest{UserId: "u"}); err != nil {
			t.Fatal(err)
		}
		for id, msg := range map[string]string{"http-line": "http request", "grpc-line": "grpc call"} {
			lines := logs.lines(t, id)
			if len(lines) != 1 || lines[0]["msg"] != msg {
				t.Errorf("log lines of request %s: %v, want one %q line", id, lines, msg)
			}
		}
	})
	t.Run("RefusalReason", func(t *testing.T) {
		postToken(t, s, "profiles", "http-refused", `{"user_id":"u"}`)
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "grpc-refused")
		if _, err := tokensClient.GetPartnerToken(ctx, &brokerv1.GetPartnerTokenRequest{UserId: "u"}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("without a token: %v, want UNAUTHENTICATED", err)
		}
		for id, reason := range map[string]string{"http-refused": "token lacks scope broker:tokens", "grpc-refused": "a bearer token is required"} {
			if lines := logs.lines(t, id); len(lines) != 1 || lines[0]["reason"] != reason {
				t.Errorf("log lines of request %s: %v, want one with reason %q", id, lines, reason)
			}
		}
	})
	t.Run("ProbesAtDebug", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "grpc-probe")
		if _, err := healthpb.NewHealthClient(dial(t, s)).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + s.HTTPAddr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if lines := logs.lines(t, "grpc-probe"); len(lines) != 0 {
			t.Errorf("a health check was logged at info: %v", lines)
		}
		if lines := logs.lines(t, resp.Header.Get("X-Request-Id")); len(lines) != 0 {
			t.Errorf("/readyz was logged at info: %v", lines)
		}
	})
}

// TestServer_GatewayMetrics checks that calls through the gateway are counted
// in the gRPC metrics as gRPC calls are, and in the HTTP metrics under the
// route's OpenAPI path template, never a path with ids: an unknown path is
// counted under "gateway".
func TestServer_GatewayMetrics(t *testing.T) {
	s := open(t, server.Options{Services: server.Services{PartnerTokens: &seeingTokens{}}})
	postToken(t, s, "tokens", "", `{"user_id":"u"}`)
	postToken(t, s, "bad", "", `{"user_id":"u"}`)
	if _, err := brokerv1.NewPartnerTokenServiceClient(dial(t, s)).GetPartnerToken(bearer(t.Context()), &brokerv1.GetPartnerTokenRequest{UserId: "u"}); err != nil {
		t.Fatal(err)
	}
	do(t, s, "GET", "/v1/links/someone", "")
	do(t, s, "POST", "/v1/links/someone:refresh", "")
	do(t, s, "GET", "/v1/nowhere/someone", "")
	_, body := do(t, s, "GET", "/metrics", "")
	if strings.Contains(body, "someone") {
		t.Errorf("/metrics holds an id of a path:\n%s", body)
	}
	for _, want := range []string{
		`broker_http_requests_total{code="501",handler="/v1/links/{user_id}",method="get"} 1`,
		`broker_http_requests_total{code="501",handler="/v1/links/{user_id}:refresh",method="post"} 1`,
		`broker_http_requests_total{code="404",handler="gateway",method="get"} 1`,
		`grpc_server_started_total{grpc_method="GetPartnerToken",grpc_service="broker.v1.PartnerTokenService",grpc_type="unary"} 3`,
		`grpc_server_handled_total{grpc_code="OK",grpc_method="GetPartnerToken",grpc_service="broker.v1.PartnerTokenService",grpc_type="unary"} 2`,
		`grpc_server_handled_total{grpc_code="Unauthenticated",grpc_method="GetPartnerToken",grpc_service="broker.v1.PartnerTokenService",grpc_type="unary"} 1`,
		`grpc_server_handled_total{grpc_code="NotFound",grpc_method="GetLink",grpc_service="broker.v1.LinkService",grpc_type="unary"} 0`,
		`grpc_server_msg_sent_total{grpc_method="GetPartnerToken",grpc_service="broker.v1.PartnerTokenService",grpc_type="unary"} 2`,
		`grpc_server_handling_seconds_count{grpc_method="GetPartnerToken",grpc_service="broker.v1.PartnerTokenService",grpc_type="unary"} 3`,
		`broker_http_requests_total{code="200",handler="/v1/partner-token",method="post"} 1`,
		`broker_http_requests_total{code="401",handler="/v1/partner-token",method="post"} 1`,
		`broker_http_request_duration_seconds_count{handler="/v1/partner-token",method="post"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s in\n%s", want, grepLines(body, "broker_http_requests_total"))
		}
	}
}

// TestServer_GatewayHeaders checks that the gateway exposes no gRPC response
// metadata as HTTP headers, failed calls' included, while gRPC callers get it.
func TestServer_GatewayHeaders(t *testing.T) {
	s := open(t, server.Options{Services: server.Services{PartnerTokens: &seeingTokens{}}})
	for _, token := range []string{"tokens", ""} {
		resp, _ := postToken(t, s, token, "", `{"user_id":"u"}`)
		for name := range resp.Header {
			if strings.HasPrefix(strings.ToLower(name), "grpc-") {
				t.Errorf("HTTP response header %s exposes gRPC metadata", name)
			}
		}
		if got := resp.Header.Values("X-Request-Id"); len(got) != 1 {
			t.Errorf("HTTP response (status %d) X-Request-Id = %q, want one", resp.StatusCode, got)
		}
	}
	var trailer metadata.MD
	if _, err := brokerv1.NewPartnerTokenServiceClient(dial(t, s)).GetPartnerToken(t.Context(), &brokerv1.GetPartnerTokenRequest{UserId: "u"}, grpc.Trailer(&trailer)); err == nil {
		t.Fatal("GetPartnerToken without a token succeeded")
	}
	if len(trailer.Get("x-request-id")) != 1 {
		t.Errorf("gRPC trailer %v of a failed call has no x-request-id", trailer)
	}
}

// grepLines returns the lines of text that hold s.
func grepLines(text, s string) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		if strings.Contains(line, s) {
			b.WriteString(line)
		}
	}
	return b.String()
}
