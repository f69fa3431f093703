package smarthome_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/smarthome"
	"github.com/reciprocal-broker/broker/internal/store/bolt"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// LWA's tokens in fakeLWA's grants: no answer may hold them.
const (
	lwaAccess  = "Atza|smart-home-access-token"
	lwaRefresh = "Atzr|smart-home-refresh-token"
)

// fakeLWA is a tokens.Exchanger that grants every code once and refuses it
// after, as LWA does, and counts the codes it was asked to exchange.
type fakeLWA struct {
	mu    sync.Mutex
	codes []string
}

var _ tokens.Exchanger = (*fakeLWA)(nil)

func (l *fakeLWA) Exchange(_ context.Context, c tokens.Secret) (tokens.Grant, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, used := range l.codes {
		if used == c.Reveal() {
			return tokens.Grant{}, tokens.ErrInvalidGrant
		}
	}
	l.codes = append(l.codes, c.Reveal())
	return tokens.Grant{AccessToken: lwaAccess, RefreshToken: lwaRefresh, Expiry: time.Now().Add(time.Hour)}, nil
}

func (l *fakeLWA) Refresh(context.Context, tokens.Secret) (tokens.Grant, error) {
	return tokens.Grant{}, tokens.Errorf(tokens.EINTERNAL, "fake LWA: no refresh in these tests")
}

// exchanged returns how many codes LWA was asked to exchange.
func (l *fakeLWA) exchanged() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.codes)
}

// TestHandler_RepeatedDirective checks, with the real token service over a
// bbolt store, that Alexa's repeat of a directive answers success without a
// second exchange, and that the code cannot be used for another user.
func TestHandler_RepeatedDirective(t *testing.T) {
	store, err := bolt.Open(filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	lwa := &fakeLWA{}
	svc := tokens.NewService(store, sealer, lwa)
	t.Cleanup(func() {
		if err := svc.Close(context.Background()); err != nil {
			t.Errorf("close token service: %v", err)
		}
	})

	f := newFixture(t)
	h := smarthome.NewHandler(f.service, staticSkills(
		reciprocal.Skill{ID: "home", ClientIDs: []string{homeClient, homeClient2}, Region: homeRegion, Tokens: svc},
	))
	serve := func(body string) (int, string) {
		r := httptest.NewRequest(http.MethodPost, smarthome.Path, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		f.assertAnswer(t, w, w.Code, "")
		for _, s := range []string{lwaAccess, lwaRefresh} {
			if strings.Contains(w.Body.String(), s) {
				t.Errorf("body %s holds LWA's token %q", w.Body, s)
			}
		}
		return w.Code, w.Body.String()
	}

	d := directive(f.jwts[userTok])
	for i := range 2 {
		if status, body := serve(d); status != http.StatusOK {
			t.Fatalf("directive %d: status %d, body %s", i+1, status, body)
		}
	}
	if got := lwa.exchanged(); got != 1 {
		t.Errorf("LWA exchanged %d codes, want 1", got)
	}
	l, err := svc.Link(t.Context(), "user-1")
	if err != nil {
		t.Fatal(err)
	}
	if l.State != tokens.StateLinked || l.Region != homeRegion {
		t.Errorf("link is %s in %q, want %s in %q", l.State, l.Region, tokens.StateLinked, homeRegion)
	}

	// The same code for another user of the skill is refused, without LWA.
	if status, body := serve(directive(f.jwts[secondTok])); status != http.StatusBadRequest || !strings.Contains(body, "refused the authorization code") {
		t.Errorf("the code for another user: status %d, body %s; want 400, refused", status, body)
	}
	if got := lwa.exchanged(); got != 1 {
		t.Errorf("LWA exchanged %d codes, want 1", got)
	}
}
