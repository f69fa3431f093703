package server

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// DefaultGaugeTTL is how long StoreGauges keep what they read from the store:
// scrapes within it are answered from memory, so that several Prometheus
// servers scraping every few seconds do not each read the store.
const DefaultGaugeTTL = 15 * time.Second

// maxPendingScan bounds how many PENDING deliveries one reading pages
// through; past it the counts are of the first maxPendingScan.
const maxPendingScan = 10000

// GaugeSources are what StoreGauges read. A nil field leaves its gauges out.
type GaugeSources struct {
	// Links count each skill's links by state, by skill id (the store's
	// counters, not a scan).
	Links map[string]tokens.LinkCounter
	// Pending lists the PENDING deliveries of the outbox.
	Pending reports.PendingLister
	// Now is the clock of the oldest delivery's age; nil means time.Now.
	Now func() time.Time
	// TTL is how long a reading is kept; zero means DefaultGaugeTTL.
	TTL time.Duration
}

// StoreGauges are gauges read from the store when scraped, at most once per
// TTL: broker_links{skill,state}, broker_deliveries_pending{kind} and
// broker_delivery_oldest_age_seconds. It is a prometheus.Collector, safe
// for concurrent use.
type StoreGauges struct {
	src GaugeSources

	mu     sync.Mutex
	read   time.Time // when cached was read; zero before the first reading
	cached []prometheus.Metric
	oldest time.Time // the oldest PENDING delivery's submission; zero when none
}

var _ prometheus.Collector = (*StoreGauges)(nil)

var (
	linksDesc         = prometheus.NewDesc("broker_links", "Links by skill and state (linked, relink_required), from the store's counters.", []string{"skill", "state"}, nil)
	pendingDesc       = prometheus.NewDesc("broker_deliveries_pending", "Deliveries to Alexa waiting in the outbox (PENDING) by kind: profile_report, alexa_event.", []string{"kind"}, nil)
	oldestPendingDesc = prometheus.NewDesc("broker_delivery_oldest_age_seconds", "Age of the oldest PENDING delivery to Alexa, since it was submitted; 0 when none.", nil, nil)
)

// NewStoreGauges registers the gauges of src with reg. It returns reg's error
// when they cannot be registered.
func NewStoreGauges(reg prometheus.Registerer, src GaugeSources) (*StoreGauges, error) {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.TTL <= 0 {
		src.TTL = DefaultGaugeTTL
	}
	g := &StoreGauges{src: src}
	if err := reg.Register(g); err != nil {
		return nil, err
	}
	return g, nil
}

// Describe sends the gauges' descriptors.
func (g *StoreGauges) Describe(ch chan<- *prometheus.Desc) {
	if g.src.Links != nil {
		ch <- linksDesc
	}
	if g.src.Pending != nil {
		ch <- pendingDesc
		ch <- oldestPendingDesc
	}
}

// Collect sends the gauges, read from the store when the last reading is
// older than the TTL. A failed read is reported as an invalid metric, and
// not kept.
func (g *StoreGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock() // concurrent scrapes wait for one reading
	if g.read.IsZero() || g.src.Now().Sub(g.read) >= g.src.TTL {
		ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
		metrics, oldest, ok := g.collect(ctx)
		cancel()
		if !ok {
			for _, m := range metrics {
				ch <- m
			}
			return
		}
		g.cached, g.oldest, g.read = metrics, oldest, g.src.Now()
	}
	for _, m := range g.cached {
		ch <- m
	}
	if g.src.Pending != nil { // the age grows between readings
		age := 0.0
		if !g.oldest.IsZero() {
			age = max(g.src.Now().Sub(g.oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(oldestPendingDesc, prometheus.GaugeValue, age)
	}
}

// collect reads the store: the gauges but the age, and when the oldest
// PENDING delivery was submitted. ok is false when a read failed, and metrics
// then hold the invalid metrics that say so.
func (g *StoreGauges) collect(ctx context.Context) (metrics []prometheus.Metric, oldest time.Time, ok bool) {
	ok = true
	for skill, c := range g.src.Links {
		counts, err := c.CountLinks(ctx)
		if err != nil {
			metrics, ok = append(metrics, prometheus.NewInvalidMetric(linksDesc, err)), false
			continue
		}
		for _, st := range []tokens.State{tokens.StateLinked, tokens.StateRelinkRequired} {
			metrics = append(metrics, prometheus.MustNewConstMetric(linksDesc, prometheus.GaugeValue, float64(counts[st]), skill, strings.ToLower(st.String())))
		}
	}
	if g.src.Pending == nil {
		return metrics, oldest, ok
	}
	byKind := map[reports.Kind]int{reports.KindProfileReport: 0, reports.KindAlexaEvent: 0}
	cursor, seen := "", 0
	for seen < maxPendingScan {
		page, err := g.src.Pending.PendingReports(ctx, cursor, 0)
		if err != nil {
			return append(metrics, prometheus.NewInvalidMetric(pendingDesc, err)), oldest, false
		}
		for _, r := range page.Reports {
			kind := r.Kind
			if kind == "" {
				kind = reports.KindProfileReport
			}
			byKind[kind]++
			if !r.SubmittedAt.IsZero() && (oldest.IsZero() || r.SubmittedAt.Before(oldest)) {
				oldest = r.SubmittedAt
			}
		}
		seen += len(page.Reports)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	for kind, n := range byKind {
		metrics = append(metrics, prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), string(kind)))
	}
	return metrics, oldest, ok
}
