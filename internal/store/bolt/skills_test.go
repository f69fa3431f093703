package bolt_test

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/bolt"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestStore_Skills(t *testing.T) {
	storetest.RunSkills(t, func(t *testing.T) func(string) tokens.Store {
		root := openTemp(t)
		return func(skillID string) tokens.Store { return root.ForSkill(skillID) }
	})
}

// TestStore_SkillView runs the conformance suites of a skill's links against
// the view of a skill other than the default one, whose buckets are nested.
func TestStore_SkillView(t *testing.T) {
	home := func(t *testing.T) *bolt.Store { return openTemp(t).ForSkill("home") }
	t.Run("Links", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) tokens.Store { return home(t) })
	})
	t.Run("Leases", func(t *testing.T) {
		storetest.RunLeases(t, func(t *testing.T) tokens.Leaser { return home(t) })
	})
	t.Run("Counts", func(t *testing.T) {
		storetest.RunLinkCounts(t, func(t *testing.T) storetest.LinkCountStore { return home(t) })
	})
	t.Run("ClaimSweeper", func(t *testing.T) {
		bolt.SetSweepBatch(t, 7)
		storetest.RunClaimSweeper(t, func(t *testing.T) storetest.SweepingStore { return home(t) })
	})
}

func TestStore_ForSkill(t *testing.T) {
	t.Run("DefaultIsRoot", func(t *testing.T) {
		root := openTemp(t)
		for _, id := range []string{"", tokens.DefaultSkillID} {
			if got := root.ForSkill(id).SkillID(); got != tokens.DefaultSkillID {
				t.Errorf("ForSkill(%q).SkillID() = %q, want %q", id, got, tokens.DefaultSkillID)
			}
		}
		l := storetest.NewLink("user-1")
		storetest.MustPut(t, root, l)
		got := storetest.MustGet(t, root.ForSkill(tokens.DefaultSkillID), "user-1")
		if got.SkillID != tokens.DefaultSkillID || got.Version != l.Version {
			t.Errorf("default view's link = skill %q version %d, want skill %q version %d", got.SkillID, got.Version, tokens.DefaultSkillID, l.Version)
		}
		// A view of a view is the view of the skill asked for.
		storetest.MustPut(t, root.ForSkill("home").ForSkill("baby"), storetest.NewLink("user-2"))
		storetest.MustGet(t, root.ForSkill("baby"), "user-2")
	})

	t.Run("Skills", func(t *testing.T) {
		root := openTemp(t)
		assertSkills(t, root, tokens.DefaultSkillID)
		if _, err := root.ForSkill("zeta").GetLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Fatalf("GetLink in an unwritten skill: error = %v, want ErrLinkNotFound", err)
		}
		assertSkills(t, root, tokens.DefaultSkillID) // reads make no buckets
		storetest.MustPut(t, root.ForSkill("zeta"), storetest.NewLink("user-1"))
		if _, err := root.ForSkill("baby").ClaimCode(t.Context(), "hash-1", "user-1", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := root.ForSkill("home").AcquireLease(t.Context(), "user-1", "me", time.Now(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		assertSkills(t, root.ForSkill("home"), tokens.DefaultSkillID, "baby", "home", "zeta")
		if err := root.ForSkill("zeta").DeleteLink(t.Context(), "user-1"); err != nil {
			t.Fatal(err)
		}
		assertSkills(t, root, tokens.DefaultSkillID, "baby", "home", "zeta") // written once, listed since
	})

	t.Run("SkillIDTooLong", func(t *testing.T) {
		v := openTemp(t).ForSkill(strings.Repeat("s", bbolt.MaxKeySize+1))
		if err := v.PutLink(t.Context(), storetest.NewLink("user-1")); tokens.ErrorCode(err) != tokens.EINVALID {
			t.Errorf("PutLink in a skill with a too long id: error = %v, want EINVALID", err)
		}
		if _, err := v.GetLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("GetLink in a skill with a too long id: error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("SweepsEverySkill", func(t *testing.T) {
		root := openTemp(t)
		past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		for _, skill := range []string{tokens.DefaultSkillID, "home", "baby"} {
			for code, expires := range map[string]time.Time{"old": past, "new": future} {
				if _, err := root.ForSkill(skill).ClaimCode(t.Context(), code, "user-1", expires); err != nil {
					t.Fatal(err)
				}
			}
		}
		n, err := root.ForSkill("home").DeleteExpiredClaims(t.Context(), time.Now())
		if err != nil || n != 3 {
			t.Fatalf("DeleteExpiredClaims from one view = %d, %v; want 3 (one per skill), nil", n, err)
		}
		for _, skill := range []string{tokens.DefaultSkillID, "home", "baby"} {
			v := root.ForSkill(skill)
			if owner, err := v.ClaimCode(t.Context(), "old", "user-2", future); err != nil || owner != "user-2" {
				t.Errorf("ClaimCode(%s, swept code) = %q, %v; want user-2, nil", skill, owner, err)
			}
			if owner, err := v.ClaimCode(t.Context(), "new", "user-2", future); err != nil || owner != "user-1" {
				t.Errorf("ClaimCode(%s, standing code) = %q, %v; want user-1, nil", skill, owner, err)
			}
		}
	})

	t.Run("SharedOutboxAndEvents", func(t *testing.T) {
		root := openTemp(t)
		home, baby := root.ForSkill("home"), root.ForSkill("baby")
		e := storetest.NewAlexaEvent("e1", "home", "user-1", time.Now())
		if _, _, err := home.CreateReport(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		if got, err := baby.GetReport(t.Context(), "e1"); err != nil || got.SkillID != "home" {
			t.Errorf("GetReport in another view = %+v, %v; want the report of skill home", got, err)
		}
		lane := e.Lane()
		if _, held, err := home.ClaimDelivery(t.Context(), lane, "owner-a", time.Now(), time.Now().Add(time.Minute)); err != nil || !held {
			t.Fatalf("ClaimDelivery = %v, %v; want held", held, err)
		}
		if _, held, err := baby.ClaimDelivery(t.Context(), lane, "owner-b", time.Now(), time.Now().Add(time.Minute)); err != nil || held {
			t.Errorf("ClaimDelivery of a claimed lane in another view = %v, %v; want not held: claims are the file's", held, err)
		}

		ev := tokens.NewEvent(tokens.EventLinked, "user-1", tokens.ActorBroker, time.Now(), nil)
		ev.SkillID = "home"
		if err := home.PutLink(t.Context(), storetest.NewLink("user-1"), ev); err != nil {
			t.Fatal(err)
		}
		got := storetest.MustListEvents(t, baby, tokens.EventFilter{})
		if len(got) != 1 || got[0].ID != ev.ID || got[0].SkillID != "home" {
			t.Errorf("ListEvents in another view = %+v, want the event of skill home", got)
		}
	})

	t.Run("Close", func(t *testing.T) {
		root, err := bolt.Open(filepath.Join(t.TempDir(), "broker.db"))
		if err != nil {
			t.Fatal(err)
		}
		home := root.ForSkill("home")
		for _, v := range []*bolt.Store{home, root.ForSkill(tokens.DefaultSkillID)} {
			if err := v.Close(); err != nil {
				t.Errorf("Close of a view error = %v, want nil", err)
			}
		}
		storetest.MustPut(t, home, storetest.NewLink("user-1")) // the file is still open
		if err := root.Close(); err != nil {
			t.Fatalf("Close error = %v", err)
		}
		if _, err := home.GetLink(t.Context(), "user-1"); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("GetLink in a view of a closed store: error = %v, want EUNAVAILABLE", err)
		}
		if err := home.Close(); err != nil {
			t.Errorf("Close of a view of a closed store error = %v, want nil", err)
		}
	})
}

// TestOpen_PreSkillsFile opens a file as the broker wrote it before skills and
// lanes existed, its records written here byte for byte as that code did: the
// default skill's view, and the Store that Open returns, read every link,
// claim, lease, pending report and delivered mark in it, and keep writing the
// default skill's links where they were.
func TestOpen_PreSkillsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.db")
	linkedAt := time.Date(2026, 10, 1, 8, 0, 0, 5, time.UTC)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	writeOld(t, path, map[string]map[string]string{
		"links": {
			"user-1": oldLinkRecord("user-1", "LINKED", "EU", "code-hash", "key-1", "sealed bytes", linkedAt, 7),
			"user-2": oldLinkRecord("user-2", "RELINK_REQUIRED", "", "", "key-1", "more sealed bytes", linkedAt, 8),
		},
		"codes":  {"hash-1": `{"format":1,"user_id":"user-1","expires":"` + future + `"}`},
		"leases": {"user-1": `{"format":1,"owner":"old-instance","until":"` + future + `"}`},
		"reports": {
			"m1": `{"format":1,"message_id":"m1","user_id":"user-1","profiles":[],"seq":1,"state":"DELIVERED","attempts":1,` +
				`"submitted_at":"2026-11-24T12:00:00Z","delivered_at":"2026-11-24T12:00:01Z","finished_at":"2026-11-24T12:00:01Z","version":4}`,
			"m2": `{"format":1,"message_id":"m2","user_id":"user-1","profiles":[],"seq":2,"state":"PENDING","attempts":0,` +
				`"submitted_at":"2026-11-24T12:00:00Z","next_attempt_at":"2026-11-24T12:00:00Z","version":2}`,
			"m3": `{"format":1,"message_id":"m3","user_id":"user-1","profiles":[],"seq":3,"state":"PENDING","attempts":0,` +
				`"submitted_at":"2026-11-24T12:00:00Z","next_attempt_at":"2026-11-24T12:00:00Z","version":3}`,
		},
		"pending": {
			string(oldPendingKey("user-1", 2)): "m2",
			string(oldPendingKey("user-1", 3)): "m3",
		},
		"deliveries": {"user-1": `{"format":1,"delivered":1}`},
	})

	root := mustOpen(t, path)
	assertSkills(t, root, tokens.DefaultSkillID)
	for name, s := range map[string]*bolt.Store{"root": root, "default view": root.ForSkill(tokens.DefaultSkillID)} {
		t.Run(name, func(t *testing.T) {
			got := storetest.MustGet(t, s, "user-1")
			want := &tokens.Link{
				UserID: "user-1", SkillID: tokens.DefaultSkillID, State: tokens.StateLinked, Region: "EU", LinkedAt: linkedAt,
				CodeHash: "code-hash", Tokens: tokens.Sealed{KeyID: "key-1", Ciphertext: []byte("sealed bytes")}, Version: 7,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("link of user-1 (-want +got):\n%s", diff)
			}
			page, err := s.ListLinks(t.Context(), "", 0)
			if err != nil || len(page.Links) != 2 {
				t.Fatalf("ListLinks = %+v, %v; want the 2 links", page.Links, err)
			}
			counts, err := s.CountLinks(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[tokens.State]int{tokens.StateLinked: 1, tokens.StateRelinkRequired: 1}, counts); diff != "" {
				t.Errorf("CountLinks (-want +got):\n%s", diff)
			}
			if owner, err := s.ClaimCode(t.Context(), "hash-1", "user-9", time.Now().Add(time.Hour)); err != nil || owner != "user-1" {
				t.Errorf("ClaimCode(hash-1) = %q, %v; want the old claim of user-1", owner, err)
			}
			if held, err := s.AcquireLease(t.Context(), "user-1", "new-instance", time.Now(), time.Now().Add(time.Minute)); err != nil || held {
				t.Errorf("AcquireLease(user-1) = %v, %v; want the old lease to stand", held, err)
			}

			pending, err := s.LanePendingReports(t.Context(), "user-1")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"m2", "m3"}, reportIDs(pending)); diff != "" {
				t.Errorf("LanePendingReports(user-1) (-want +got):\n%s", diff)
			}
			for _, r := range pending {
				if r.Lane() != "user-1" || r.SkillID != "" || r.Kind != "" || r.Message != nil {
					t.Errorf("old report %s: lane %q, skill %q, kind %q, message %q; want the user's lane, and none", r.MessageID, r.Lane(), r.SkillID, r.Kind, r.Message)
				}
			}
			due, err := s.DueReports(t.Context(), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), 0)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"m3"}, reportIDs(due)); diff != "" {
				t.Errorf("DueReports (-want +got):\n%s", diff)
			}
			mark, held, err := s.ClaimDelivery(t.Context(), "user-1", "deliverer-"+name, time.Now(), time.Now().Add(time.Minute))
			if err != nil || !held || mark != 1 {
				t.Errorf("ClaimDelivery(user-1) = mark %d, %v, %v; want the old mark 1, held", mark, held, err)
			}
			if err := s.ReleaseDelivery(t.Context(), "user-1", "deliverer-"+name); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := root.ForSkill("home").GetLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Errorf("GetLink(home, user-1) error = %v, want ErrLinkNotFound: the old links are the default skill's", err)
	}

	// A write through the default view lands where the old code kept the
	// link, with a version above the old ones.
	l := storetest.MustGet(t, root.ForSkill(tokens.DefaultSkillID), "user-2")
	l.State = tokens.StateLinked
	storetest.MustPut(t, root.ForSkill(tokens.DefaultSkillID), l)
	if l.Version <= 8 {
		t.Errorf("Version after a write = %d, want above the old versions", l.Version)
	}
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte("links")).Get([]byte("user-2")); v == nil || v[0] != 2 {
			t.Errorf("links/user-2 after the write = %q, want a link record (format 2) in the top-level bucket", v)
		}
		return tx.Bucket([]byte("skills")).ForEachBucket(func(k []byte) error {
			t.Errorf("skills/%s exists: the default skill has no bucket of its own", k)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeOld makes the bbolt file at path holding records (bucket → key →
// value), past the store.
func writeOld(tb testing.TB, path string, records map[string]map[string]string) {
	tb.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		for bucket, kv := range records {
			b, err := tx.CreateBucket([]byte(bucket))
			if err != nil {
				return err
			}
			for k, v := range kv {
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		// The sequences the old records' versions came from.
		if err := tx.Bucket([]byte("links")).SetSequence(8); err != nil {
			return err
		}
		return tx.Bucket([]byte("reports")).SetSequence(4)
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// oldLinkRecord encodes a link record of format 2 as the code before skills
// wrote it: the format byte; user id, state, region, code hash, key id and
// sealed tokens as uvarint-length-prefixed bytes; linked_at, then
// last_refreshed_at and access_token_expires_at (zero here), each as a
// presence byte and varint Unix nanoseconds; the version as a varint.
func oldLinkRecord(user, state, region, codeHash, keyID, sealed string, linkedAt time.Time, version int64) string {
	b := []byte{2}
	for _, f := range []string{user, state, region, codeHash, keyID, sealed} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.AppendVarint(append(b, 1), linkedAt.UnixNano())
	b = append(b, 0, 0)
	return string(binary.AppendVarint(b, version))
}

// oldPendingKey is the key of a pending report as the code before lanes wrote
// it: the user id, a zero byte and the sequence big-endian.
func oldPendingKey(user string, seq int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(user), 0), uint64(seq))
}

// assertSkills checks that s lists the skills want.
func assertSkills(tb testing.TB, s *bolt.Store, want ...string) {
	tb.Helper()
	got, err := s.Skills(tb.Context())
	if err != nil {
		tb.Fatalf("Skills error = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("Skills (-want +got):\n%s", diff)
	}
}

// reportIDs returns the message ids of rs, in order.
func reportIDs(rs []*reports.Report) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.MessageID)
	}
	return out
}
