package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// logLines returns the broker's JSON log lines so far that satisfy keep.
func logLines(tb testing.TB, logs string, keep func(map[string]any) bool) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			continue
		}
		if keep(line) {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestObservability_Metrics runs a hand-over and a token fetch and checks
// the metrics of the calls to Amazon, the links, the outbox and the routes,
// and the lines the requests and probes logged.
func TestObservability_Metrics(t *testing.T) {
	h := newHarness(t)
	h.link("parent")
	if status, body := h.call("POST", "/v1/partner-token", h.clientToken("broker:tokens"), `{"user_id":"parent"}`); status != 200 {
		t.Fatalf("partner token: %d %s", status, body)
	}
	if status, _ := h.call("POST", "/v1/partner-token", "", `{"user_id":"parent"}`); status != 401 {
		t.Fatalf("partner token without a token: %d, want 401", status)
	}
	if status, _ := h.call("POST", "/v1/partner-token", h.clientToken("broker:profiles"), `{"user_id":"parent"}`); status != 403 {
		t.Fatalf("partner token without the scope: %d, want 403", status)
	}
	if status, _ := h.call("GET", "/healthz", "", ""); status != 200 {
		t.Fatalf("/healthz: %d", status)
	}

	t.Run("Metrics", func(t *testing.T) {
		status, body := h.call("GET", "/metrics", "", "")
		if status != 200 {
			t.Fatalf("/metrics: %d", status)
		}
		for _, want := range []string{
			`broker_amazon_requests_total{api="lwa_exchange",outcome="ok"} 1`,
			`broker_amazon_requests_total{api="lwa_refresh",outcome="throttled"} 0`,
			`broker_amazon_requests_total{api="alexa_health",outcome="unreachable"} 0`,
			`broker_amazon_request_duration_seconds_count{api="lwa_exchange"} 1`,
			`broker_links{skill="default",state="linked"} 1`,
			`broker_links{skill="default",state="relink_required"} 0`,
			`broker_deliveries_pending{kind="profile_report"} 0`,
			`broker_deliveries_pending{kind="alexa_event"} 0`,
			`broker_delivery_oldest_age_seconds 0`,
			`broker_http_requests_total{code="200",handler="/v1/partner-token",method="post"} 1`,
			`broker_http_requests_total{code="401",handler="/v1/partner-token",method="post"} 1`,
			`broker_http_requests_total{code="200",handler="reciprocal",method="post"} 1`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
	t.Run("RefusalReasons", func(t *testing.T) {
		for status, reason := range map[float64]string{401: "a bearer token is required", 403: "token lacks scope broker:tokens"} {
			lines := logLines(t, h.logs.String(), func(l map[string]any) bool { return l["msg"] == "http request" && l["status"] == status })
			if len(lines) != 1 || lines[0]["reason"] != reason || lines[0]["request_id"] == "" {
				t.Errorf("lines of the %v: %v, want one with reason %q and a request_id", status, lines, reason)
			}
		}
		if strings.Contains(h.logs.String(), h.clientToken("broker:profiles")[:40]) {
			t.Error("a token was logged")
		}
	})
	t.Run("ProbesAtDebug", func(t *testing.T) {
		lines := logLines(t, h.logs.String(), func(l map[string]any) bool { return l["path"] == "/healthz" })
		if len(lines) != 1 || lines[0]["level"] != "DEBUG" {
			t.Errorf("lines of /healthz: %v, want one at DEBUG", lines)
		}
	})
}

// otlpReceiver is an OTLP/HTTP trace receiver: it keeps the trace ids of the
// spans posted to /v1/traces.
type otlpReceiver struct {
	mu     sync.Mutex
	traces map[string]int // trace id (hex) → spans
}

// ServeHTTP accepts one export request.
func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	body, err := io.ReadAll(req.Body)
	var export collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &export)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range export.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.traces[hex.EncodeToString(s.GetTraceId())]++
			}
		}
	}
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(b)
}

// spans returns how many spans of trace arrived.
func (r *otlpReceiver) spans(trace string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.traces[trace]
}

// TestObservability_Tracing turns tracing on with OTEL_EXPORTER_OTLP_ENDPOINT
// and checks that a hand-over with a traceparent is exported in that trace,
// that the trace goes on to LWA, and that the request's lines carry the
// trace and request ids.
func TestObservability_Tracing(t *testing.T) {
	receiver := &otlpReceiver{traces: map[string]int{}}
	collector := httptest.NewServer(receiver)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	h := newSimHarness(t, sim.SetOptions{})
	// LWA is reached through a proxy that records the traceparent it is sent.
	lwaURL, err := url.Parse(h.sims.LWA.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu           sync.Mutex
		traceparents []string
	)
	forward := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: lwaURL.Scheme, Host: lwaURL.Host})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparents = append(traceparents, r.Header.Get("Traceparent"))
		mu.Unlock()
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	env := h.sims.BrokerEnv()
	env["BROKER_LWA_TOKEN_URL"] = proxy.URL + lwaURL.Path
	h.configure(env)
	h.start()

	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	form := url.Values{"grant_type": {"reciprocal_authorization_code"}, "code": {h.sims.LWA.IssueCodeFor("parent")}, "client_id": {alexaClient}}
	req, err := http.NewRequest("POST", h.base+"/api/reciprocal/authorize", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+h.userToken("parent"))
	req.Header.Set("Traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
	req.Header.Set("X-Request-Id", "handover-1")
	if status, body, _ := h.do(req); status != 200 {
		t.Fatalf("hand-over: %d %s", status, body)
	}

	t.Run("PropagatedToLWA", func(t *testing.T) {
		mu.Lock()
		defer mu.Unlock()
		if len(traceparents) != 1 || !strings.HasPrefix(traceparents[0], "00-"+trace+"-") {
			t.Errorf("LWA was sent traceparents %q, want one of trace %s", traceparents, trace)
		}
	})
	t.Run("LogLines", func(t *testing.T) {
		lines := logLines(t, h.logs.String(), func(l map[string]any) bool { return l["request_id"] == "handover-1" })
		if len(lines) == 0 {
			t.Fatal("no line carries the request id")
		}
		for _, l := range lines {
			if l["trace_id"] != trace || l["span_id"] == nil {
				t.Errorf("line %v lacks trace_id %s or a span_id", l, trace)
			}
		}
	})
	t.Run("Exported", func(t *testing.T) {
		if err := h.main.Close(); err != nil { // exports the spans still buffered
			t.Fatal(err)
		}
		// The server's span and LWA's client span at least.
		if n := receiver.spans(trace); n < 2 {
			t.Errorf("the collector received %d spans of trace %s, want 2 or more", n, trace)
		}
	})
}
