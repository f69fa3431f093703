package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/reciprocal-broker/broker/api/openapi"
	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// maxBody bounds every request's body (the form and smart-home endpoints take
// less, see reciprocal.MaxBody and smarthome.MaxBody).
const maxBody = 1 << 20

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
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newGatewayJSON()),
		runtime.WithErrorHandler(gatewayError),
		runtime.WithUnescapingMode(runtime.UnescapingModeAllExceptReserved),
		// Only the Authorization header, which the gateway always forwards,
		// becomes gRPC metadata: the services read nothing else (the request
		// id travels in the context), and every forwarded header costs each
		// call a copy.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
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

// registerGateway mounts the HTTP mapping of every service on the in-process
// connection, whose calls pass the gRPC server's interceptors.
func (s *Server) registerGateway() error {
	ctx := context.Background() // the handlers keep no context
	for _, err := range []error{
		brokerv1.RegisterPartnerTokenServiceHandlerClient(ctx, s.gateway, brokerv1.NewPartnerTokenServiceClient(s.inproc)),
		brokerv1.RegisterProfileReportServiceHandlerClient(ctx, s.gateway, brokerv1.NewProfileReportServiceClient(s.inproc)),
		brokerv1.RegisterLinkServiceHandlerClient(ctx, s.gateway, brokerv1.NewLinkServiceClient(s.inproc)),
		brokerv1.RegisterEventServiceHandlerClient(ctx, s.gateway, brokerv1.NewEventServiceClient(s.inproc)),
		brokerv1.RegisterAlexaEventServiceHandlerClient(ctx, s.gateway, brokerv1.NewAlexaEventServiceClient(s.inproc)),
	} {
		if err != nil {
			return fmt.Errorf("register gateway: %w", err)
		}
	}
	return nil
}

// httpHandler routes the HTTP surface: probes, metrics, Alexa's form endpoint,
// and the gateway for everything else, all behind the request log and metrics.
func (s *Server) httpHandler() (http.Handler, error) {
	metrics := newHTTPMetrics()
	if err := s.registry.Register(metrics); err != nil {
		return nil, fmt.Errorf("register HTTP metrics: %w", err)
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
	if err := s.registerGateway(); err != nil {
		return nil, err
	}
	routes, err := apiRoutes(openapi.JSON())
	if err != nil {
		return nil, err
	}
	gateway := allowMethods(routes, utf8Only(s.gateway))

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", route("healthz", http.HandlerFunc(s.health.Livez)))
	mux.Handle("GET /readyz", route("readyz", http.HandlerFunc(s.health.Readyz)))
	mux.Handle("GET /metrics", route("metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})))
	mux.Handle("GET /openapi.json", route("openapi", openapi.Handler()))
	mux.Handle("/api/reciprocal/authorize", route("reciprocal", reciprocal))
	mux.Handle("/v1/smart-home/accept-grant", route("smart_home", smartHome))
	if s.opts.Console != nil {
		mux.Handle("/console/", route("console", s.opts.Console))
	}
	mux.Handle("/", route("gateway", gateway))
	return s.logRequests(mux, metrics), nil
}

// utf8Only refuses a gateway request whose path or query is not UTF-8 once
// percent-decoded (like /v1/links/%FF) with INVALID_ARGUMENT, 400: the API's
// ids and fields are proto strings, which hold only UTF-8, so no id the broker
// accepts can be named so.
func utf8Only(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		valid := utf8.ValidString(r.URL.Path)
		if r.URL.RawQuery != "" {
			for name, values := range r.URL.Query() {
				valid = valid && utf8.ValidString(name)
				for _, v := range values {
					valid = valid && utf8.ValidString(v)
				}
			}
		}
		if !valid {
			gatewayError(r.Context(), nil, nil, w, r, tokens.Errorf(tokens.EINVALID, "the path or query is not UTF-8 once percent-decoded"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// route names the route of h for the request metrics (their handler label);
// the gateway's routes are named more precisely by allowMethods, by their
// OpenAPI path template.
func route(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*statusRecorder); ok {
			rec.route = name
		}
		h.ServeHTTP(w, r)
	})
}

// logRequests gives every HTTP request an id (the caller's X-Request-Id when it
// is sane), returns it in the X-Request-Id header, logs one line per request
// and counts it in metrics under its route. The id is in the request's
// context, where the gRPC interceptors of a gateway call find it. A body is
// read to maxBody at most.
func (s *Server) logRequests(next http.Handler, metrics *httpMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, id := withRequestID(r.Context(), r.Header.Get("X-Request-Id"))
		// From here on every line logged with ctx carries id (LogHandler).
		// The copy WithContext makes takes the body limit too, rather than
		// another copy of the request (http.MaxBytesHandler).
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		end := time.Now()
		if rec.route != "" { // else the mux answered: 405, or a redirect
			metrics.observe(rec.route, r.Method, rec.status, end.Sub(start))
		}
		level := slog.LevelInfo
		switch {
		case rec.status >= 500:
			level = slog.LevelError
		case rec.route == "healthz" || rec.route == "readyz":
			level = slog.LevelDebug // probes, every few seconds
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int64("duration_us", end.Sub(start).Microseconds()),
		}
		if reason := infoOf(ctx).reason; reason != "" {
			attrs = append(attrs, slog.String("reason", reason))
		}
		logLine(ctx, s.logger, end, level, "http request", attrs...)
	})
}

// statusRecorder remembers the status code a handler wrote, and the route
// that answered.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	route       string
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
