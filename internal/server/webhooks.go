package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reciprocal-broker/broker/internal/events"
)

// WebhookMetrics counts webhook deliveries by outcome and shows the outbox's
// backlog; it is the events.Observer of a broker.
type WebhookMetrics struct {
	deliveries *prometheus.CounterVec
}

var _ events.Observer = (*WebhookMetrics)(nil)

// backlogTimeout bounds the store read of one scrape.
const backlogTimeout = 5 * time.Second

// NewWebhookMetrics registers broker_webhook_deliveries_total{outcome} and,
// read from backlog at each scrape, broker_webhook_backlog (PENDING webhooks)
// and broker_webhook_oldest_age_seconds (the age of the oldest, by now; 0 when
// none). It returns reg's error when they cannot be registered.
func NewWebhookMetrics(reg prometheus.Registerer, backlog func(context.Context) (int, time.Time, error), now func() time.Time) (*WebhookMetrics, error) {
	m := &WebhookMetrics{deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "broker_webhook_deliveries_total", Help: "Webhook attempts by outcome: delivered, retried, given_up.",
	}, []string{"outcome"})}
	if err := reg.Register(m.deliveries); err != nil {
		return nil, err
	}
	for _, o := range []string{"delivered", "retried", "given_up"} {
		m.deliveries.WithLabelValues(o)
	}
	if err := reg.Register(&backlogCollector{read: backlog, now: now}); err != nil {
		return nil, err
	}
	return m, nil
}

// Delivered counts a delivered webhook.
func (m *WebhookMetrics) Delivered() { m.deliveries.WithLabelValues("delivered").Inc() }

// Retried counts a failed attempt that will be retried.
func (m *WebhookMetrics) Retried() { m.deliveries.WithLabelValues("retried").Inc() }

// GivenUp counts a webhook given up at its deadline.
func (m *WebhookMetrics) GivenUp() { m.deliveries.WithLabelValues("given_up").Inc() }

var (
	backlogDesc = prometheus.NewDesc("broker_webhook_backlog", "Webhooks waiting to be delivered (PENDING).", nil, nil)
	oldestDesc  = prometheus.NewDesc("broker_webhook_oldest_age_seconds", "Age of the oldest PENDING webhook's event; 0 when none.", nil, nil)
)

// backlogCollector reads the webhook backlog at each scrape.
type backlogCollector struct {
	read func(context.Context) (int, time.Time, error)
	now  func() time.Time
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc; ch <- oldestDesc }

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	n, oldest, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(c.now().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
