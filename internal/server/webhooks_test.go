package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reciprocal-broker/broker/internal/server"
)

func TestWebhookMetrics(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	t.Run("Counts", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m, err := server.NewWebhookMetrics(reg, func(context.Context) (int, time.Time, error) {
			return 3, now.Add(-90 * time.Second), nil
		}, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		m.Delivered()
		m.Delivered()
		m.Retried()
		m.GivenUp()
		want := `
# HELP broker_webhook_backlog Webhooks waiting to be delivered (PENDING).
# TYPE broker_webhook_backlog gauge
broker_webhook_backlog 3
# HELP broker_webhook_deliveries_total Webhook attempts by outcome: delivered, retried, given_up.
# TYPE broker_webhook_deliveries_total counter
broker_webhook_deliveries_total{outcome="delivered"} 2
broker_webhook_deliveries_total{outcome="given_up"} 1
broker_webhook_deliveries_total{outcome="retried"} 1
# HELP broker_webhook_oldest_age_seconds Age of the oldest PENDING webhook's event; 0 when none.
# TYPE broker_webhook_oldest_age_seconds gauge
broker_webhook_oldest_age_seconds 90
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := server.NewWebhookMetrics(reg, func(context.Context) (int, time.Time, error) { return 0, time.Time{}, nil }, time.Now); err != nil {
			t.Fatal(err)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP broker_webhook_oldest_age_seconds Age of the oldest PENDING webhook's event; 0 when none.
# TYPE broker_webhook_oldest_age_seconds gauge
broker_webhook_oldest_age_seconds 0
`), "broker_webhook_oldest_age_seconds"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("StoreDown", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		if _, err := server.NewWebhookMetrics(reg, func(context.Context) (int, time.Time, error) { return 0, time.Time{}, errors.New("down") }, time.Now); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Gather(); err == nil {
			t.Fatal("a backlog that cannot be read gathered without error")
		}
	})
}
