package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/reciprocal-broker/broker/api/openapi"
	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// maxGatewayBody bounds JSON request bodies on the gateway.
const maxGatewayBody = 1 << 20

// gatewayMux is the grpc-gateway mux, set up so that JSON has the API's
// documented shapes: proto field names, bare enum names, every field present,
// unknown fields refused, 202 Accepted for a submitted profile report or
// Alexa event.
//
// An id in a path ({user_id}, {message_id}) is one percent-encoded path
// segment, decoded once: every id the broker accepts is addressable, also one
// with '/', '%', ':', spaces or any other character, since the mux splits the
// path at its raw '/' only (UnescapingModeAllExceptReserved) and decodes each
// single-segment variable whole. The ids "." and ".." are sent as %2E and
// %2E%2E, as a bare dot segment is path syntax that clients and
// http.ServeMux remove.
func gatewayMux() *runtime.ServeMux {
	jsonpb := &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonpb),
		runtime.WithErrorHandler(gatewayError),
		runtime.WithUnescapingMode(runtime.UnescapingModeAllExceptReserved),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if textproto.CanonicalMIMEHeaderKey(key) == "X-Request-Id" {
				return requestIDHeader, true
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		// The HTTP middleware already answers with X-Request-Id; no other gRPC
		// metadata is exposed.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithForwardResponseOption(func(_ context.Context, w http.ResponseWriter, m proto.Message) error {
			switch m.(type) {
			case *brokerv1.SubmitProfileReportResponse, *brokerv1.SubmitAlexaEventResponse:
				w.WriteHeader(http.StatusAccepted)
			}
			return nil
		}),
	)
}

// gatewayError writes the gateway's JSON status, {"code":N,"message":"…"},
// with the HTTP status from the one error table. A 401 carries the bearer
// challenge of RFC 6750 §3: bare when the request sent no bearer token,
// error="invalid_token" when it sent one that was refused.
func gatewayError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	s := GRPCStatus(err)
	if s.Code() == codes.Unauthenticated {
		challenge := "Bearer"
		if r != nil {
			if _, sent := auth.ParseBearer(r.Header.Get("Authorization")); sent {
				challenge = `Bearer error="invalid_token"`
			}
		}
		w.Header().Set("WWW-Authenticate", challenge)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(HTTPStatus(err))
	_ = json.NewEncoder(w).Encode(struct {
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}{int32(s.Code()), s.Message()})
}

// registerGateway mounts the HTTP mapping of every service on the in-memory
// connection to the gRPC server.
func (s *Server) registerGateway(ctx context.Context) error {
	for _, register := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		brokerv1.RegisterPartnerTokenServiceHandler,
		brokerv1.RegisterProfileReportServiceHandler,
		brokerv1.RegisterLinkServiceHandler,
		brokerv1.RegisterEventServiceHandler,
		brokerv1.RegisterAlexaEventServiceHandler,
	} {
		if err := register(ctx, s.gateway, s.gwConn); err != nil {
			return fmt.Errorf("register gateway: %w", err)
		}
	}
	return nil
}

// httpHandler routes the HTTP surface: probes, metrics, Alexa's form endpoint,
// and the gateway for everything else, all behind the request log and metrics.
func (s *Server) httpHandler() (http.Handler, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "broker_http_requests_total", Help: "HTTP requests by handler, method and status code.",
	}, []string{"handler", "method", "code"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "broker_http_request_duration_seconds", Help: "HTTP request latency by handler and method.",
		Buckets: prometheus.DefBuckets,
	}, []string{"handler", "method"})
	for _, c := range []prometheus.Collector{requests, latency} {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("register HTTP metrics: %w", err)
		}
	}
	instrument := func(name string, h http.Handler) http.Handler {
		labels := prometheus.Labels{"handler": name}
		return promhttp.InstrumentHandlerDuration(latency.MustCurryWith(labels),
			promhttp.InstrumentHandlerCounter(requests.MustCurryWith(labels), h))
	}

	// Without a reciprocal handler the form endpoint still answers in its own
	// RFC 6749 shape (see internal/reciprocal's error table), not the gateway's.
	reciprocal := s.opts.Reciprocal
	if reciprocal == nil {
		reciprocal = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotImplemented)
			_, _ = w.Write([]byte(`{"error":"temporarily_unavailable","error_description":"not implemented yet"}`))
		})
	}
	smartHome := s.opts.SmartHome
	if smartHome == nil {
		smartHome = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "not implemented", http.StatusNotImplemented)
		})
	}
	s.gateway = gatewayMux()
	routes, err := apiRoutes(openapi.JSON())
	if err != nil {
		return nil, err
	}
	gateway := allowMethods(routes, http.MaxBytesHandler(utf8Only(s.gateway), maxGatewayBody))

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", instrument("healthz", http.HandlerFunc(s.health.Livez)))
	mux.Handle("GET /readyz", instrument("readyz", http.HandlerFunc(s.health.Readyz)))
	mux.Handle("GET /metrics", instrument("metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})))
	mux.Handle("GET /openapi.json", instrument("openapi", openapi.Handler()))
	mux.Handle("/api/reciprocal/authorize", instrument("reciprocal", reciprocal))
	mux.Handle("/v1/smart-home/accept-grant", instrument("smart_home", smartHome))
	if s.opts.Console != nil {
		mux.Handle("/console/", instrument("console", s.opts.Console))
	}
	mux.Handle("/", instrument("gateway", gateway))
	return s.logRequests(mux), nil
}

// utf8Only refuses a gateway request whose path or query is not UTF-8 once
// percent-decoded (like /v1/links/%FF) with INVALID_ARGUMENT, 400: the API's
// ids and fields are proto strings, which hold only UTF-8, so no id the broker
// accepts can be named so, and the request would otherwise fail as the gRPC
// hop marshals it.
func utf8Only(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		valid := utf8.ValidString(r.URL.Path)
		for name, values := range r.URL.Query() {
			valid = valid && utf8.ValidString(name)
			for _, v := range values {
				valid = valid && utf8.ValidString(v)
			}
		}
		if !valid {
			gatewayError(r.Context(), nil, nil, w, r, tokens.Errorf(tokens.EINVALID, "the path or query is not UTF-8 once percent-decoded"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests gives every HTTP request an id (the caller's X-Request-Id when it
// is sane), returns it in the X-Request-Id header, and logs one line per request.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, id := withRequestID(r.Context(), r.Header.Get("X-Request-Id"))
		r = r.WithContext(ctx)
		r.Header.Set("X-Request-Id", id)
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		}
		s.logger.LogAttrs(ctx, level, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("duration_us", time.Since(start).Microseconds()),
			slog.String("request_id", id),
		)
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

// WriteHeader remembers the first status code written and passes it on.
func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Write passes b on; a body written without a status code is 200 OK.
func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
