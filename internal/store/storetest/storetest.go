// Package storetest is the specification of tokens.Store and tokens.Leaser made
// executable: one conformance suite that every adapter (the embedded bbolt store,
// DynamoDB, the domain's hand-written fake) runs from its own tests, so that all
// stores behave alike and the domain can rely on exactly what the ports' doc
// comments say. Run checks a Store, RunLeases a Leaser, RunReports a
// reports.Store, RunClaimSweeper a store that removes its expired code claims
// (tokens.ClaimSweeper); RunEvents and RunReportEvents the audit trail
// (tokens.EventStore and the events stored with changes), RunWebhooks the
// webhook outbox (events.Store), RunLinkCounts and RunReportCounts the counts
// by state (tokens.LinkCounter, reports.Counter), RunPendingReports the
// listing of pending reports (reports.PendingLister).
//
// Beyond the doc comments of tokens.Store, the suite pins down:
//
//   - Times round-trip to the nanosecond as instants (compared with time.Equal; the
//     location need not be kept), zero times stay zero, and every time between 1970
//     and 2200 is kept exactly.
//   - Sealed bytes and key ids round-trip byte for byte.
//   - The empty-argument rules are the domain's: a store refuses what
//     Link.Validate, tokens.ValidateClaim and tokens.ValidateLease refuse, with
//     their EINVALID errors, and records nothing.
//   - A context that has ended is an EUNAVAILABLE error from every method.
//
// The suite needs no database of its own and no time to pass: expired code claims are
// made with expiry times in the past.
package storetest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Run runs the conformance suite against the stores that open returns. open is
// called once per subtest and must return a new, empty store that is ready for use;
// it registers whatever cleanup the store needs with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Helper()
	t.Run("GetLink", func(t *testing.T) { testGetLink(t, open) })
	t.Run("PutLink", func(t *testing.T) { testPutLink(t, open) })
	t.Run("DeleteLink", func(t *testing.T) { testDeleteLink(t, open) })
	t.Run("ListLinks", func(t *testing.T) { testListLinks(t, open) })
	t.Run("ClaimCode", func(t *testing.T) { testClaimCode(t, open) })
	t.Run("Ping", func(t *testing.T) { testPing(t, open) })
	t.Run("ContextEnded", func(t *testing.T) { testContextEnded(t, open) })
}

// testGetLink checks that a link is read back as stored, as a copy, and that a
// missing link is ErrLinkNotFound.
func testGetLink(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("EmptyUserID", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		if _, err := s.GetLink(t.Context(), ""); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("GetLink(\"\") error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		l, err := s.GetLink(t.Context(), "nobody")
		if !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("GetLink(missing) error = %v, want ErrLinkNotFound", err)
		}
		if got, want := tokens.ErrorCode(err), tokens.ENOTFOUND; got != want {
			t.Errorf("ErrorCode = %q, want %q", got, want)
		}
		if l != nil {
			t.Errorf("GetLink(missing) link = %+v, want nil", l)
		}
	})

	t.Run("ReturnsCopy", func(t *testing.T) {
		s := open(t)
		want := NewLink("user-1")
		MustPut(t, s, want)

		got := MustGet(t, s, "user-1")
		got.Region = "FE"
		got.CodeHash = "changed"
		got.State = tokens.StateRelinkRequired
		got.LinkedAt = got.LinkedAt.Add(time.Hour)
		got.Tokens.KeyID = "changed"
		for i := range got.Tokens.Ciphertext {
			got.Tokens.Ciphertext[i] ^= 0xff
		}

		assertLink(t, MustGet(t, s, "user-1"), want)
	})

	t.Run("SeparateUsers", func(t *testing.T) {
		s := open(t)
		a, b := NewLink("user-a"), NewLink("user-b")
		b.Region = "FE"
		b.Tokens.Ciphertext = []byte("other sealed bytes")
		MustPut(t, s, a)
		MustPut(t, s, b)
		assertLink(t, MustGet(t, s, "user-a"), a)
		assertLink(t, MustGet(t, s, "user-b"), b)
	})
}

// testDeleteLink checks that a deleted link is gone for good: not found, not
// updatable, and created anew only from version 0.
func testDeleteLink(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("EmptyUserID", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		if err := s.DeleteLink(t.Context(), ""); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("DeleteLink(\"\") error = %v, want ErrLinkNotFound", err)
		}
		MustGet(t, s, "user-1")
	})

	t.Run("ThenGet", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		other := NewLink("user-2")
		MustPut(t, s, other)

		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteLink error = %v", err)
		}
		assertNotFound(t, s, "user-1")
		assertLink(t, MustGet(t, s, "user-2"), other)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		err := s.DeleteLink(t.Context(), "nobody")
		if !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("DeleteLink(missing) error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("Twice", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("first DeleteLink error = %v", err)
		}
		if err := s.DeleteLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("second DeleteLink error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("ThenUpdate", func(t *testing.T) {
		s := open(t)
		link := NewLink("user-1")
		MustPut(t, s, link)
		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteLink error = %v", err)
		}
		link.Region = "FE"
		assertConflict(t, s.PutLink(t.Context(), link))
		assertNotFound(t, s, "user-1")
	})

	t.Run("ThenCreate", func(t *testing.T) {
		s := open(t)
		MustPut(t, s, NewLink("user-1"))
		if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatalf("DeleteLink error = %v", err)
		}
		again := NewLink("user-1")
		again.Region = "FE"
		MustPut(t, s, again)
		assertLink(t, MustGet(t, s, "user-1"), again)
	})
}

func testPing(t *testing.T, open func(t *testing.T) tokens.Store) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping error = %v", err)
		}
	})
}

// testContextEnded checks that every method answers a context that has ended
// with an EUNAVAILABLE error, and changes nothing.
func testContextEnded(t *testing.T, open func(t *testing.T) tokens.Store) {
	s := open(t)
	MustPut(t, s, NewLink("user-1"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"GetLink", func() error { _, err := s.GetLink(ctx, "user-1"); return err }},
		{"PutLink", func() error { return s.PutLink(ctx, NewLink("user-2")) }},
		{"DeleteLink", func() error { return s.DeleteLink(ctx, "user-1") }},
		{"ListLinks", func() error { _, err := s.ListLinks(ctx, "", 10); return err }},
		{"ClaimCode", func() error { _, err := s.ClaimCode(ctx, "code-1", "alice", time.Now().Add(time.Hour)); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, want := tokens.ErrorCode(c.call()), tokens.EUNAVAILABLE; got != want {
				t.Errorf("%s(ended context) error code = %q, want %q", c.name, got, want)
			}
		})
	}
	MustGet(t, s, "user-1")
	assertNotFound(t, s, "user-2")
	if owner, err := s.ClaimCode(t.Context(), "code-1", "bob", time.Now().Add(time.Hour)); err != nil || owner != "bob" {
		t.Errorf("ClaimCode(code-1, bob) = %q, %v; want bob, nil: the ended claim must record nothing", owner, err)
	}
}

// NewLink returns a valid link for userID, not stored yet, with every field set:
// times in a non-UTC zone with nanoseconds, a key id and sealed bytes that include
// zero and high bytes.
func NewLink(userID string) *tokens.Link {
	ist := time.FixedZone("IST", 5*3600+30*60)
	return &tokens.Link{
		UserID:               userID,
		State:                tokens.StateLinked,
		Region:               "EU",
		LinkedAt:             time.Date(2025, 3, 14, 15, 9, 26, 535897932, ist),
		LastRefreshedAt:      time.Date(2025, 3, 14, 16, 0, 0, 123456789, time.UTC),
		AccessTokenExpiresAt: time.Date(2025, 3, 14, 17, 0, 0, 1, time.UTC),
		CodeHash:             "sha256:6b86b273ff34fce19d6b804eff5a3f57",
		Tokens: tokens.Sealed{
			KeyID:      "key-1",
			Ciphertext: []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 'a', 0x00},
		},
	}
}

// MustPut stores link with PutLink and fails the test on error.
func MustPut(tb testing.TB, s tokens.Store, link *tokens.Link) {
	tb.Helper()
	if err := s.PutLink(tb.Context(), link); err != nil {
		tb.Fatalf("PutLink(%q, version %d) error = %v", link.UserID, link.Version, err)
	}
}

// MustGet returns the link of userID and fails the test on error.
func MustGet(tb testing.TB, s tokens.Store, userID string) *tokens.Link {
	tb.Helper()
	l, err := s.GetLink(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("GetLink(%q) error = %v", userID, err)
	}
	if l == nil {
		tb.Fatalf("GetLink(%q) returned nil and no error", userID)
	}
	return l
}

// assertLink checks that got is want as stored: a want without a SkillID is
// of the store's skill, which got must name.
func assertLink(t *testing.T, got, want *tokens.Link) {
	t.Helper()
	if got != nil && want.SkillID == "" {
		if got.SkillID == "" {
			t.Errorf("link %q has no SkillID: a store names its skill in every link it returns", want.UserID)
		}
		w := *want
		w.SkillID = got.SkillID
		want = &w
	}
	// cmp uses time.Time's Equal method: instants are compared, not locations.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("link %q (-want +got):\n%s", want.UserID, diff)
	}
}

func assertNotFound(t *testing.T, s tokens.Store, userID string) {
	t.Helper()
	if _, err := s.GetLink(t.Context(), userID); !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Errorf("GetLink(%q) error = %v, want ErrLinkNotFound", userID, err)
	}
}

// assertRule fails the test when err, a store's answer, is not the domain
// rule's answer want: the store must apply the rule, not one of its own.
func assertRule(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		t.Fatalf("assertRule: the domain rule accepts the arguments")
	}
	if got, want := tokens.ErrorMessage(err), tokens.ErrorMessage(want); got != want {
		t.Errorf("error message = %q, want the domain rule's %q", got, want)
	}
}

func assertConflict(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, tokens.ErrVersionConflict) {
		t.Fatalf("PutLink error = %v, want ErrVersionConflict", err)
	}
	if got, want := tokens.ErrorCode(err), tokens.ECONFLICT; got != want {
		t.Errorf("ErrorCode = %q, want %q", got, want)
	}
}

func clone(l *tokens.Link) *tokens.Link {
	c := *l
	c.Tokens.Ciphertext = append([]byte(nil), l.Tokens.Ciphertext...)
	return &c
}

func sortedKeys(m map[string]*tokens.Link) []string {
	return slices.Sorted(maps.Keys(m))
}
