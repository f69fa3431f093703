package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"
)

// Waiter bounds the rate of some work: Wait blocks until one more unit of it
// may go, and returns an error when ctx ends first. The *rate.Limiter of
// golang.org/x/time/rate implements it.
type Waiter interface {
	Wait(ctx context.Context) error
}

// DefaultResealRate is how many links a second the broker seals again under a
// new sealing key by default (BROKER_RESEAL_RATE): slow enough to leave the
// store to its other work, fast enough to move a million links in a day.
const DefaultResealRate = 20

// Resealer walks every link of a Store, counts the links by the key their
// tokens need (KeyRing.KeyOf), and seals again under the ring's sealing key the
// links sealed under any other key the ring holds, one at a time as Limit
// allows. It writes with compare-and-set on the link's version and changes
// nothing but the sealed tokens, so a link written meanwhile (a refresh, which
// seals with the sealing key anyway, a re-link, a delete) is left as it is
// now. Links sealed under a key the ring does not hold are counted, never
// written.
//
// Set its fields before the first Pass or Run; a Resealer is then safe for
// concurrent use.
type Resealer struct {
	store Store
	ring  KeyRing

	// Limit is waited on before each link is sealed again, so that the
	// re-sealing of many links does not crowd out the store's other work. nil
	// seals nothing again: the Resealer only counts.
	Limit Waiter
	// Logger receives a warning for each pass that could not seal links again,
	// naming the key ids and never a token. It defaults to discarding.
	Logger *slog.Logger

	mu     sync.Mutex
	counts map[string]int // of the last complete pass; nil before the first
}

// NewResealer returns a Resealer of the links of store under ring, which only
// counts until its Limit is set.
func NewResealer(store Store, ring KeyRing) *Resealer {
	return &Resealer{store: store, ring: ring, Logger: slog.New(slog.DiscardHandler)}
}

// Run makes a Pass at once and then every interval until ctx ends. A pass that
// fails is logged and tried again at the next interval.
func (r *Resealer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Warn("counting sealed links failed", "err", err.Error())
		}
		t.Reset(interval)
	}
}

// Pass walks every link once: it seals again the links that need it (when
// Limit is set) and returns how many links each key id holds at the end of the
// walk, which Counts returns from then on. Every key of the ring is in the
// result, with 0 when no link needs it.
//
// It returns the Store's errors of ListLinks (EUNAVAILABLE, EINTERNAL) and
// Limit's (ctx ended); then the counts of the previous pass stay.
// Failures to seal one link again are not errors of the pass: the link is
// counted under its key, and the failures are logged once per pass.
func (r *Resealer) Pass(ctx context.Context) (map[string]int, error) {
	sealing, held := r.ring.SealingKeyID(), r.ring.KeyIDs()
	counts := make(map[string]int, len(held))
	for _, id := range held {
		counts[id] = 0
	}
	var missing *KeyMissingError
	failed := map[string]int{} // by key id
	var lastErr error
	cursor := ""
	for {
		page, err := r.store.ListLinks(ctx, cursor, MaxPageSize)
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		for _, l := range page.Links {
			id := r.ring.KeyOf(l.Tokens)
			if id != sealing && r.Limit != nil {
				stop, err := r.reseal(ctx, l)
				switch {
				case stop != nil:
					return nil, stop
				case err == nil:
					id = sealing
				case errors.Is(err, ErrVersionConflict) || errors.Is(err, ErrLinkNotFound) || errors.As(err, &missing):
					// Written or deleted meanwhile, or under a key the ring
					// lacks: counted as read, and looked at again at the next
					// pass.
				default:
					failed[id]++
					lastErr = err
				}
			}
			counts[id]++
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(failed) > 0 {
		r.Logger.Warn("could not seal links again under the sealing key",
			"sealing_key_id", sealing, "failed_by_key_id", failed, "err", lastErr.Error())
	}
	r.mu.Lock()
	r.counts = counts
	r.mu.Unlock()
	return maps.Clone(counts), nil
}

// Counts returns how many links each key id held at the end of the last
// complete pass, and false before the first.
func (r *Resealer) Counts() (map[string]int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.counts), r.counts != nil
}

// reseal opens l's tokens, waits for Limit, and writes them sealed under the
// sealing key when l's version is still the stored one. stop is Limit's error,
// which ends the pass. err is the sealer's (a *KeyMissingError when the ring
// lacks l's key: then reseal does not wait) or the Store's: ErrVersionConflict
// when the link was written meanwhile.
func (r *Resealer) reseal(ctx context.Context, l *Link) (stop, err error) {
	b, err := r.ring.Open(SealSubject(l.SkillID, l.UserID), l.Tokens)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	if err := r.Limit.Wait(ctx); err != nil {
		return err, nil
	}
	sealed, err := r.ring.Seal(SealSubject(l.SkillID, l.UserID), b)
	if err != nil {
		return nil, err
	}
	next := *l
	next.Tokens = sealed
	return nil, r.store.PutLink(ctx, &next)
}
