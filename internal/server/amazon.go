package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reciprocal-broker/broker/internal/alexa"
	"github.com/reciprocal-broker/broker/internal/lwa"
)

// AmazonMetrics count the broker's requests to Amazon by API and outcome, with
// their latency: broker_amazon_requests_total{api,outcome} and the
// broker_amazon_request_duration_seconds{api} histogram. It is the Observer of
// the LWA client and of the Alexa API clients; safe for concurrent use.
type AmazonMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	series   map[[2]string]amazonSeries
}

var (
	_ lwa.Observer   = (*AmazonMetrics)(nil)
	_ alexa.Observer = (*AmazonMetrics)(nil)
)

// amazonSeries are the series of one API and outcome.
type amazonSeries struct {
	requests prometheus.Counter
	seconds  prometheus.Observer
}

// amazonAPIs and amazonOutcomes are the label values, whose series exist
// from the start at zero.
var (
	amazonAPIs     = []string{lwa.CallExchange, lwa.CallRefresh, alexa.CallHealth, alexa.CallEvents}
	amazonOutcomes = []string{lwa.OutcomeOK, lwa.OutcomeRejected, lwa.OutcomeThrottled, lwa.OutcomeError, lwa.OutcomeUnreachable}
)

// NewAmazonMetrics registers the metrics with reg, every API and outcome at
// zero. It returns reg's error when they cannot be registered.
func NewAmazonMetrics(reg prometheus.Registerer) (*AmazonMetrics, error) {
	m := &AmazonMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_amazon_requests_total",
			Help: "Requests to Amazon (LWA and the Alexa APIs) by API and outcome: ok, rejected, throttled, error, unreachable.",
		}, []string{"api", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "broker_amazon_request_duration_seconds",
			Help:    "Latency of requests to Amazon by API, whatever their outcome.",
			Buckets: prometheus.DefBuckets,
		}, []string{"api"}),
		series: make(map[[2]string]amazonSeries),
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, api := range amazonAPIs {
		for _, outcome := range amazonOutcomes {
			m.series[[2]string{api, outcome}] = amazonSeries{
				requests: m.requests.WithLabelValues(api, outcome),
				seconds:  m.seconds.WithLabelValues(api),
			}
		}
	}
	return m, nil
}

// ObserveAmazonCall counts a request to api that ended with outcome after d.
func (m *AmazonMetrics) ObserveAmazonCall(api, outcome string, d time.Duration) {
	s, ok := m.series[[2]string{api, outcome}]
	if !ok { // not one of the adapters' names: a safety net
		s = amazonSeries{requests: m.requests.WithLabelValues(api, outcome), seconds: m.seconds.WithLabelValues(api)}
	}
	s.requests.Inc()
	s.seconds.Observe(d.Seconds())
}
