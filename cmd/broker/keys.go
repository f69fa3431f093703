package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// keyCountInterval is how often the broker walks every link to count them by
// key and seal again those under an older key: once an hour keeps the count
// cheap on DynamoDB (one paged Query of the links, never one per scrape).
const keyCountInterval = time.Hour

// keyCheckSample is how many links the broker opens at start-up to find keys
// it lacks or that do not open them.
const keyCheckSample = 100

// keyCheckTimeout bounds that start-up check.
const keyCheckTimeout = 10 * time.Second

// newSealer builds the key ring of BROKER_ENCRYPTION_KEY's list: a seal.Key for
// each base64 key, a seal.Envelope on AWS KMS for each kms:KEY_ID, whose data
// key is asked for now, so that a KMS key the broker cannot use stops it at
// start-up. The first key seals.
func newSealer(ctx context.Context, c config.Config) (*seal.Ring, error) {
	var (
		keys   []seal.RingKey
		client *kms.Client
	)
	for i, s := range c.EncryptionKeys() {
		if keyID, ok := strings.CutPrefix(s, "kms:"); ok {
			if client == nil {
				var err error
				if client, err = seal.NewKMSClient(ctx, seal.KMSOptions{Endpoint: c.KMSEndpoint}); err != nil {
					return nil, fmt.Errorf("BROKER_ENCRYPTION_KEY: %w", err)
				}
			}
			kctx, cancel := context.WithTimeout(ctx, seal.EnvelopeStartTimeout)
			e, err := seal.NewEnvelope(kctx, client, keyID)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("BROKER_ENCRYPTION_KEY: key %d: seal: KMS key %s: %w", i+1, keyID, err)
			}
			keys = append(keys, e)
			continue
		}
		k, err := seal.ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("BROKER_ENCRYPTION_KEY: key %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("BROKER_ENCRYPTION_KEY: no key")
	}
	ring, err := seal.NewRing(keys[0], keys[1:]...)
	if err != nil {
		return nil, fmt.Errorf("BROKER_ENCRYPTION_KEY: %w", err)
	}
	return ring, nil
}

// checkKeys opens a sample of the stored links and warns, naming each key id,
// when some need a key the broker lacks or whose key does not open them: a
// wrong BROKER_ENCRYPTION_KEY shows in the log at start-up, not only at each
// user's next call. The broker starts either way.
func checkKeys(ctx context.Context, logger *slog.Logger, store tokens.Store, ring tokens.KeyRing) {
	ctx, cancel := context.WithTimeout(ctx, keyCheckTimeout)
	defer cancel()
	read, problems, err := tokens.CheckKeys(ctx, store, ring, keyCheckSample)
	if err != nil {
		logger.Warn("could not check the sealing keys against stored links", "err", err.Error())
		return
	}
	for _, p := range problems {
		msg := keyMissingLog
		if p.Held {
			msg = keyFailsLog
		}
		logger.Warn(msg, "key_id", p.KeyID, "links", p.Links, "sampled", read, "err", tokens.ErrorMessage(p.Err))
	}
}

// The warnings of checkKeys: a key the configuration lacks, and a configured
// key that does not open the links that name it.
const (
	keyMissingLog = "stored links need a sealing key that BROKER_ENCRYPTION_KEY does not hold: they answer 500 until it is added to the list"
	keyFailsLog   = "stored links do not open under their sealing key"
)

// newResealer returns the background re-sealer of store's links under ring's
// first key, at BROKER_RESEAL_RATE links a second (0: it only counts).
func newResealer(c config.Config, logger *slog.Logger, store tokens.Store, ring tokens.KeyRing) *tokens.Resealer {
	r := tokens.NewResealer(store, ring)
	r.Logger = logger
	if c.ResealRate > 0 {
		r.Limit = rate.NewLimiter(rate.Limit(c.ResealRate), 1)
	}
	return r
}

// sealedLinks is the collector of broker_sealed_links{key_id}: the links each
// key id held at the end of the re-sealers' last passes, over every skill. It
// reports nothing before every re-sealer's first pass ended.
type sealedLinks struct {
	resealers []*tokens.Resealer
	desc      *prometheus.Desc
}

var _ prometheus.Collector = (*sealedLinks)(nil)

// newSealedLinks returns the collector of the counts of rs, summed.
func newSealedLinks(rs ...*tokens.Resealer) *sealedLinks {
	return &sealedLinks{resealers: rs, desc: prometheus.NewDesc("broker_sealed_links",
		"Stored links by the id of the key that seals their tokens, as of the last count (hourly and at start-up).",
		[]string{"key_id"}, nil)}
}

// Describe sends the one metric's description.
func (s *sealedLinks) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect sends the last counts, one gauge per key id.
func (s *sealedLinks) Collect(ch chan<- prometheus.Metric) {
	sum := map[string]int{}
	for _, r := range s.resealers {
		counts, ok := r.Counts()
		if !ok {
			return
		}
		for id, n := range counts {
			sum[id] += n
		}
	}
	for id, n := range sum {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, float64(n), id)
	}
}

// keysCommand runs `broker keys status`: it reads the store with the broker's
// settings (on bbolt while no broker holds the file, on DynamoDB any time) and
// prints how many links each key id holds and what the configuration makes of
// that key, so that an operator knows when an old key can go.
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprint(stderr, "usage: broker keys status [flags]\n\nThe flags and environment are those of broker serve (broker --help).\n")
		return 2
	}
	m := NewMain()
	if err := m.ParseFlags(args[1:], getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "broker: %v\n", err)
		return 2
	}
	defer m.Close()
	if err := m.keysStatus(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "broker: keys status: %v\n", err)
		return 1
	}
	return 0
}

// keysStatus counts the links of every skill in m's store (configured or
// not) by key id and prints the table.
func (m *Main) keysStatus(ctx context.Context, w io.Writer) error {
	c := m.Config
	if c.StoreKind == "bolt" {
		if _, err := os.Stat(c.StoreTarget); err != nil {
			return fmt.Errorf("BROKER_STORE: no database at %s", c.StoreTarget)
		}
	}
	store, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	ring, err := newSealer(ctx, c)
	if err != nil {
		return err
	}
	walked, err := skillsToWalk(ctx, store, c)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, id := range walked {
		view, err := skillView(store, id)
		if err != nil {
			return err
		}
		n, err := tokens.NewResealer(view, ring).Pass(ctx)
		if err != nil {
			return fmt.Errorf("skill %s: %w", id, err)
		}
		for id, k := range n {
			counts[id] += k
		}
	}
	writeKeyStatus(w, ring, counts)
	return nil
}

// writeKeyStatus prints one line per key id: the configured keys in order,
// then the ids links need that are not configured.
func writeKeyStatus(w io.Writer, ring tokens.KeyRing, counts map[string]int) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY ID\tLINKS\tSTATUS")
	held, total := ring.KeyIDs(), 0
	for i, id := range held {
		status := "configured: opens; its links are sealed again under the first key"
		if i == 0 {
			status = "configured, first: seals and opens"
		} else if counts[id] == 0 {
			status = "configured: opens; no link needs it, it can be removed"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", id, counts[id], status)
		total += counts[id]
	}
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		if slices.Contains(held, id) {
			continue
		}
		status := "MISSING: these links answer 500 until the key is configured again"
		if id == seal.LegacyKMSKeyID {
			status = "earlier KMS record format: opened by the first kms: key; sealed again under the first key"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", id, counts[id], status)
		total += counts[id]
	}
	fmt.Fprintf(tw, "total\t%d\t\n", total)
	tw.Flush()
}
