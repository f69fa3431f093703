package server

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// grpcMetrics are the gRPC server's metrics, by method and code:
// grpc_server_started_total, grpc_server_handled_total,
// grpc_server_msg_received_total, grpc_server_msg_sent_total and the
// grpc_server_handling_seconds histogram, with go-grpc-middleware's names,
// labels and meanings (so dashboards made for it keep working).
//
// It replaces that package's interceptor, which looked every series up by its
// label values and allocated a reporter on every call (about 5 % of the CPU
// of a partner-token call): here each method's series are looked up once, when
// its service is registered, and a call costs a map read and a few atomic
// adds.
type grpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	seconds                          *prometheus.HistogramVec
	methods                          map[string]*methodMetrics
}

var _ prometheus.Collector = (*grpcMetrics)(nil)

// methodMetrics are the series of one unary method.
type methodMetrics struct {
	started, received, sent prometheus.Counter
	handled                 [codes.Unauthenticated + 1]prometheus.Counter
	seconds                 prometheus.Observer
}

// newGRPCMetrics returns the metrics of a server with no services yet.
func newGRPCMetrics() *grpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	return &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels, "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: prometheus.DefBuckets,
		}, labels),
		methods: make(map[string]*methodMetrics),
	}
}

// initialize creates the series of every unary method of services, at zero,
// so that they are exported before the first call. It must be called before
// the first call.
func (m *grpcMetrics) initialize(services map[string]grpc.ServiceInfo) {
	for service, info := range services {
		for _, method := range info.Methods {
			if !method.IsClientStream && !method.IsServerStream {
				m.methods["/"+service+"/"+method.Name] = m.series(service, method.Name)
			}
		}
	}
}

// series returns the series of one unary method.
func (m *grpcMetrics) series(service, method string) *methodMetrics {
	labels := []string{"unary", service, method}
	mm := &methodMetrics{
		started:  m.started.WithLabelValues(labels...),
		received: m.received.WithLabelValues(labels...),
		sent:     m.sent.WithLabelValues(labels...),
		seconds:  m.seconds.WithLabelValues(labels...),
	}
	for code := range mm.handled {
		mm.handled[code] = m.handled.WithLabelValues(append(labels, codes.Code(code).String())...)
	}
	return mm
}

// Describe sends the descriptors of every metric.
func (m *grpcMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect sends every series.
func (m *grpcMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// collectors are the metric vectors of m.
func (m *grpcMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.started, m.handled, m.received, m.sent, m.seconds}
}

// method returns the series of the unary method fullMethod.
func (m *grpcMetrics) method(fullMethod string) *methodMetrics {
	if mm := m.methods[fullMethod]; mm != nil {
		return mm
	}
	// gRPC calls only the handlers of registered methods, all of which
	// initialize saw: this is a safety net.
	return m.series(splitMethod(fullMethod))
}

// begin counts a call of the method as started and its request as received.
func (mm *methodMetrics) begin() {
	mm.started.Inc()
	mm.received.Inc()
}

// end counts a call of the method as handled with code, and its response as
// sent when code is OK, and observes its duration d.
func (mm *methodMetrics) end(code codes.Code, d time.Duration) {
	if int(code) >= len(mm.handled) {
		code = codes.Unknown // not a gRPC code
	}
	mm.handled[code].Inc()
	if code == codes.OK {
		mm.sent.Inc()
	}
	mm.seconds.Observe(d.Seconds())
}

// splitMethod splits "/package.Service/Method" into its service and method.
func splitMethod(fullMethod string) (service, method string) {
	service, method, _ = strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return service, method
}

// httpMetrics are the HTTP server's metrics: broker_http_requests_total by
// route (handler), method and status code, and the
// broker_http_request_duration_seconds histogram by route and method, with
// the labels of promhttp's instrumented handlers (lower-case method names,
// "unknown" for unusual ones).
//
// It replaces promhttp's InstrumentHandlerCounter and
// InstrumentHandlerDuration, which wrapped every response writer twice and
// looked the series up by a fresh label map on every request; here the series
// of a route, method and code are looked up once and kept.
type httpMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec

	mu     sync.RWMutex
	series map[httpSeriesKey]httpSeries
}

var _ prometheus.Collector = (*httpMetrics)(nil)

// httpSeriesKey names the series of one route, method and status code.
type httpSeriesKey struct {
	route, method string
	code          int
}

// httpSeries are the series of one route, method and status code.
type httpSeries struct {
	requests prometheus.Counter
	seconds  prometheus.Observer
}

// newHTTPMetrics returns the HTTP server's metrics, with no series yet.
func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_http_requests_total", Help: "HTTP requests by handler, method and status code.",
		}, []string{"handler", "method", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "broker_http_request_duration_seconds", Help: "HTTP request latency by handler and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler", "method"}),
		series: make(map[httpSeriesKey]httpSeries),
	}
}

// Describe sends the descriptors of every metric.
func (m *httpMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.seconds.Describe(ch)
}

// Collect sends every series.
func (m *httpMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.seconds.Collect(ch)
}

// observe counts a request to route with method that was answered with code,
// and its duration d.
func (m *httpMetrics) observe(route, method string, code int, d time.Duration) {
	key := httpSeriesKey{route, httpMethodLabel(method), code}
	m.mu.RLock()
	s, ok := m.series[key]
	m.mu.RUnlock()
	if !ok {
		s = httpSeries{
			requests: m.requests.WithLabelValues(route, key.method, strconv.Itoa(code)),
			seconds:  m.seconds.WithLabelValues(route, key.method),
		}
		m.mu.Lock()
		m.series[key] = s
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.seconds.Observe(d.Seconds())
}

// httpMethodLabel is the method label of a request's method, as promhttp
// writes it: the lower-case name of a standard method (sent in upper or lower
// case), else "unknown", so that callers cannot make series at will.
func httpMethodLabel(method string) string {
	switch method {
	case "GET", "get":
		return "get"
	case "PUT", "put":
		return "put"
	case "HEAD", "head":
		return "head"
	case "POST", "post":
		return "post"
	case "DELETE", "delete":
		return "delete"
	case "CONNECT", "connect":
		return "connect"
	case "OPTIONS", "options":
		return "options"
	case "NOTIFY", "notify":
		return "notify"
	case "TRACE", "trace":
		return "trace"
	case "PATCH", "patch":
		return "patch"
	}
	return "unknown"
}
