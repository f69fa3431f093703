package bolt_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/store/bolt"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestStore_ClaimSweeper(t *testing.T) {
	// Batches of 7 claims: the suite's sweeps cross batch boundaries.
	bolt.SetSweepBatch(t, 7)
	storetest.RunClaimSweeper(t, func(t *testing.T) storetest.SweepingStore {
		return openTemp(t)
	})
}

// TestStore_DeleteExpiredClaims_Corrupt: a corrupt claim stays and is reported
// as EINTERNAL; the expired claims beside it are removed all the same.
func TestStore_DeleteExpiredClaims_Corrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	s := mustOpen(t, path)
	past := time.Now().Add(-time.Hour)
	for _, code := range []string{"code-a", "code-c"} {
		if _, err := s.ClaimCode(t.Context(), code, "alice", past); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	writeRaw(t, path, "codes", "code-b", `{"format":1,"user_id":"bob","expires":"yesterday"}`)

	s = mustOpen(t, path)
	n, err := s.DeleteExpiredClaims(t.Context(), time.Now())
	if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
		t.Errorf("DeleteExpiredClaims over a corrupt claim: error = %v (code %q), want code %q", err, got, want)
	}
	if n != 2 {
		t.Errorf("DeleteExpiredClaims removed %d claims, want the 2 that decode", n)
	}
	if _, err := s.ClaimCode(t.Context(), "code-b", "carol", time.Now().Add(time.Hour)); tokens.ErrorCode(err) != tokens.EINTERNAL {
		t.Errorf("ClaimCode of the corrupt claim: error = %v, want it still there (EINTERNAL)", err)
	}
}
