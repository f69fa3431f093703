package reports_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// sampleReport is /work/shared/samples/health-profile-report.json, the Alexa
// Health profile report of the contract.
const sampleReport = `{
  "report": {
    "messageId": "0b2e6a2e-55c4-4a0d-9d7e-6f4a1d3c9e21",
    "profiles": [
      {
        "profileId": "baby-7f3c",
        "name": {
          "firstName": "Jennifer",
          "lastName": "Doe",
          "nickNames": ["Baby", "Jenny"]
        },
        "capabilities": [
          {
            "name": "Alexa.Health.DiaperChange",
            "type": "AlexaInterface",
            "version": "1",
            "supportedOperations": ["Add", "Delete", "Get"]
          },
          {
            "name": "Alexa.Health.InfantFeeding",
            "type": "AlexaInterface",
            "version": "1",
            "supportedOperations": ["Add", "Delete", "Get", "Start", "Switch", "Pause", "Resume", "Cancel", "Stop"]
          },
          {
            "name": "Alexa.Health.Sleep",
            "type": "AlexaInterface",
            "version": "1",
            "supportedOperations": ["Add", "Delete", "Get", "Start", "Stop", "Cancel", "Resume", "Pause"]
          },
          {
            "name": "Alexa.Health.Weight",
            "type": "AlexaInterface",
            "version": "1",
            "supportedOperations": ["Add", "Delete", "Get"]
          }
        ]
      }
    ]
  }
}`

// sample returns the contract's sample report, for user u1.
func sample(tb testing.TB) *reports.Report {
	tb.Helper()
	var wire struct {
		Report struct {
			MessageID string            `json:"messageId"`
			Profiles  []reports.Profile `json:"profiles"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(sampleReport), &wire); err != nil {
		tb.Fatalf("sample report: %v", err)
	}
	return &reports.Report{MessageID: wire.Report.MessageID, UserID: "u1", Profiles: wire.Report.Profiles}
}

// profile returns a small valid profile with id.
func profile(id string) reports.Profile {
	return reports.Profile{
		ProfileID: id,
		Name:      reports.Name{FirstName: "Sam", NickNames: []string{"Sammy"}},
		Capabilities: []reports.Capability{{
			Name: "Alexa.Health.Weight", Type: "AlexaInterface", Version: "1",
			SupportedOperations: []string{"Add", "Get"},
		}},
	}
}

func TestMemReports(t *testing.T) {
	storetest.RunReports(t, func(t *testing.T) reports.Store { return newMemReports() })
}

func TestState_String(t *testing.T) {
	for st, want := range map[reports.State]string{
		reports.StatePending: "PENDING", reports.StateDelivered: "DELIVERED",
		reports.StateFailed: "FAILED", reports.StateSuperseded: "SUPERSEDED", 0: "UNKNOWN",
	} {
		if got := st.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", st, got, want)
		}
		if got, want := st.Final(), st != reports.StatePending && st != 0; got != want {
			t.Errorf("%v.Final() = %v, want %v", st, got, want)
		}
	}
}

func TestReport_Validate(t *testing.T) {
	t.Run("Sample", func(t *testing.T) {
		r := sample(t)
		if err := r.Validate(); err != nil {
			t.Fatalf("Validate(sample) = %v, want nil", err)
		}
	})

	tests := []struct {
		name   string
		change func(r *reports.Report)
		field  string // "" for a valid report
	}{
		{"NoUser", func(r *reports.Report) { r.UserID = "" }, "user_id"},
		{"NoMessageID", func(r *reports.Report) { r.MessageID = "" }, ""},
		{"LongestMessageID", func(r *reports.Report) { r.MessageID = strings.Repeat("m", reports.MaxMessageIDLen) }, ""},
		{"MessageIDTooLong", func(r *reports.Report) { r.MessageID = strings.Repeat("m", reports.MaxMessageIDLen+1) }, "message_id"},
		{"NoProfiles", func(r *reports.Report) { r.Profiles = nil }, "profiles"},
		{"MostProfiles", func(r *reports.Report) { r.Profiles = profiles(reports.MaxProfiles) }, ""},
		{"TooManyProfiles", func(r *reports.Report) { r.Profiles = profiles(reports.MaxProfiles + 1) }, "profiles"},
		{"NoProfileID", func(r *reports.Report) { r.Profiles[0].ProfileID = "" }, "profiles[0].profileId"},
		{"LongestProfileID", func(r *reports.Report) { r.Profiles[0].ProfileID = strings.Repeat("p", 256) }, ""},
		{"ProfileIDTooLong", func(r *reports.Report) { r.Profiles[0].ProfileID = strings.Repeat("p", 257) }, "profiles[0].profileId"},
		{"ProfileIDRepeated", func(r *reports.Report) {
			r.Profiles = append(r.Profiles, profile(r.Profiles[0].ProfileID))
		}, "profiles[1].profileId"},
		{"NoFirstName", func(r *reports.Report) { r.Profiles[0].Name.FirstName = "" }, "profiles[0].name.firstName"},
		{"NoLastName", func(r *reports.Report) { r.Profiles[0].Name.LastName = "" }, ""},
		{"NoNickNames", func(r *reports.Report) { r.Profiles[0].Name.NickNames = nil }, "profiles[0].name.nickNames"},
		{"EmptyNickName", func(r *reports.Report) { r.Profiles[0].Name.NickNames[1] = "" }, "profiles[0].name.nickNames[1]"},
		{"NoCapabilities", func(r *reports.Report) { r.Profiles[0].Capabilities = nil }, "profiles[0].capabilities"},
		{"UnknownInterface", func(r *reports.Report) {
			r.Profiles[0].Capabilities[2].Name = "Alexa.Health.Mood"
		}, "profiles[0].capabilities[2].name"},
		{"RepeatedInterface", func(r *reports.Report) {
			r.Profiles[0].Capabilities[1].Name = r.Profiles[0].Capabilities[0].Name
		}, "profiles[0].capabilities[1].name"},
		{"WrongType", func(r *reports.Report) { r.Profiles[0].Capabilities[0].Type = "Interface" }, "profiles[0].capabilities[0].type"},
		{"NoVersion", func(r *reports.Report) { r.Profiles[0].Capabilities[3].Version = "" }, "profiles[0].capabilities[3].version"},
		{"NoGetInSecondProfile", func(r *reports.Report) {
			p := profile("baby-2")
			p.Capabilities[0].SupportedOperations = []string{"Add", "Delete"}
			r.Profiles = append(r.Profiles, p)
		}, "profiles[1].capabilities[0].supportedOperations"},
		{"UnknownOperation", func(r *reports.Report) {
			r.Profiles[0].Capabilities[1].SupportedOperations = []string{"Get", "Add", "Burp"}
		}, "profiles[0].capabilities[1].supportedOperations[2]"},
		{"BreastPumping", func(r *reports.Report) {
			r.Profiles[0].Capabilities = append(r.Profiles[0].Capabilities, reports.Capability{
				Name: "Alexa.Health.BreastPumping", Type: "AlexaInterface", Version: "1", SupportedOperations: []string{"Get"},
			})
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample(t)
			tt.change(r)
			err := r.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
				t.Fatalf("Validate() = %v, code %q; want %q", err, got, want)
			}
			if msg := tokens.ErrorMessage(err); !strings.HasPrefix(msg, tt.field+": ") {
				t.Errorf("Validate() message = %q, want it to name %q", msg, tt.field)
			}
		})
	}
}

// profiles returns n valid profiles with distinct ids.
func profiles(n int) []reports.Profile {
	ps := make([]reports.Profile, n)
	for i := range ps {
		ps[i] = profile(fmt.Sprint("baby-", i))
	}
	return ps
}

// submitHarness is a Service over the fakes, with a fixed clock.
type submitHarness struct {
	svc    *reports.Service
	store  *memReports
	tokens *fakeTokens
	obs    *fakeObserver
	now    time.Time
}

func newSubmitHarness(tb testing.TB) *submitHarness {
	tb.Helper()
	h := &submitHarness{
		store: newMemReports(), tokens: newFakeTokens(), obs: &fakeObserver{},
		now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
	}
	h.tokens.link("u1", "EU")
	h.tokens.link("u2", "")
	h.svc = reports.NewService(h.store, h.tokens)
	h.svc.Now = func() time.Time { return h.now }
	h.svc.Observer = h.obs
	return h
}

func TestService_Submit(t *testing.T) {
	ps := sample(t).Profiles

	t.Run("NewMessageID", func(t *testing.T) {
		h := newSubmitHarness(t)
		r, err := h.svc.Submit(t.Context(), "u1", "", ps)
		if err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		if _, err := uuid.Parse(r.MessageID); err != nil {
			t.Errorf("MessageID %q is not a UUID: %v", r.MessageID, err)
		}
		if got, want := r.State, reports.StatePending; got != want {
			t.Errorf("State = %v, want %v", got, want)
		}
		if !r.SubmittedAt.Equal(h.now) || !r.NextAttemptAt.Equal(h.now) {
			t.Errorf("SubmittedAt %v, NextAttemptAt %v; want both %v", r.SubmittedAt, r.NextAttemptAt, h.now)
		}
		stored, err := h.svc.Report(t.Context(), r.MessageID)
		if err != nil {
			t.Fatalf("Report() error = %v", err)
		}
		if diff := cmp.Diff(r, stored); diff != "" {
			t.Errorf("stored report differs (-submitted +stored):\n%s", diff)
		}
		other, err := h.svc.Submit(t.Context(), "u1", "", ps)
		if err != nil {
			t.Fatalf("second Submit() error = %v", err)
		}
		if other.MessageID == r.MessageID {
			t.Errorf("two submissions without a message id both got %q", r.MessageID)
		}
		if got, want := h.obs.get().Accepted, 2; got != want {
			t.Errorf("Accepted() calls = %d, want %d", got, want)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		h := newSubmitHarness(t)
		first, err := h.svc.Submit(t.Context(), "u1", "m-1", ps)
		if err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		h.now = h.now.Add(time.Minute)
		again, err := h.svc.Submit(t.Context(), "u1", "m-1", []reports.Profile{profile("other")})
		if err != nil {
			t.Fatalf("Submit() again error = %v", err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Errorf("second Submit returned another report (-first +second):\n%s", diff)
		}
		if got, want := h.store.creates.Load(), int64(1); got != want {
			t.Errorf("reports created = %d, want %d", got, want)
		}
		if got, want := h.obs.get().Accepted, 1; got != want {
			t.Errorf("Accepted() calls = %d, want %d", got, want)
		}
	})

	t.Run("SameIDOtherUser", func(t *testing.T) {
		h := newSubmitHarness(t)
		if _, err := h.svc.Submit(t.Context(), "u1", "m-1", ps); err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		r, err := h.svc.Submit(t.Context(), "u2", "m-1", ps)
		if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
			t.Fatalf("Submit(other user) = %v, %v; want an %s error", r, err, want)
		}
		if msg := tokens.ErrorMessage(err); !strings.HasPrefix(msg, "message_id") {
			t.Errorf("message %q does not name message_id", msg)
		}
		stored, err := h.svc.Report(t.Context(), "m-1")
		if err != nil || stored.UserID != "u1" {
			t.Errorf("stored report = %+v, %v; want u1's", stored, err)
		}
	})

	t.Run("NotLinked", func(t *testing.T) {
		h := newSubmitHarness(t)
		_, err := h.svc.Submit(t.Context(), "nobody", "m-1", ps)
		if !errors.Is(err, tokens.ErrLinkNotFound) || tokens.ErrorCode(err) != tokens.ENOTFOUND {
			t.Fatalf("Submit(unlinked) error = %v, want ErrLinkNotFound", err)
		}
		if n := h.store.len(); n != 0 {
			t.Errorf("store holds %d reports, want 0", n)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		h := newSubmitHarness(t)
		bad := []reports.Profile{profile("baby-1"), profile("baby-2")}
		bad[1].Name.NickNames = nil
		_, err := h.svc.Submit(t.Context(), "u1", "m-1", bad)
		if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
			t.Fatalf("Submit(invalid) error = %v, want an %s error", err, want)
		}
		if got, want := tokens.ErrorMessage(err), "profiles[1].name.nickNames"; !strings.HasPrefix(got, want) {
			t.Errorf("message %q does not name %q", got, want)
		}
		if n := h.store.len(); n != 0 {
			t.Errorf("store holds %d reports, want 0", n)
		}
		if got := h.obs.get().Accepted; got != 0 {
			t.Errorf("Accepted() calls = %d, want 0", got)
		}
	})

	t.Run("StoreUnavailable", func(t *testing.T) {
		h := newSubmitHarness(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := h.svc.Submit(ctx, "u1", "m-1", ps)
		if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
			t.Fatalf("Submit() error = %v, want an %s error", err, want)
		}
	})

	t.Run("ProfilesCopied", func(t *testing.T) {
		h := newSubmitHarness(t)
		mine := []reports.Profile{profile("baby-1")}
		if _, err := h.svc.Submit(t.Context(), "u1", "m-1", mine); err != nil {
			t.Fatalf("Submit() error = %v", err)
		}
		mine[0] = profile("changed")
		stored, err := h.svc.Report(t.Context(), "m-1")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := stored.Profiles[0].ProfileID, "baby-1"; got != want {
			t.Errorf("stored profile id = %q, want %q", got, want)
		}
	})
}

func TestService_Report(t *testing.T) {
	h := newSubmitHarness(t)
	if _, err := h.svc.Report(t.Context(), "nope"); !errors.Is(err, reports.ErrReportNotFound) {
		t.Errorf("Report(missing) error = %v, want ErrReportNotFound", err)
	}
}
