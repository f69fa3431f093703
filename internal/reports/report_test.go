package reports_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// sampleReport is a whole Alexa Health profile report as the API documents it:
// one baby's profile with four capabilities.
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

// sample returns a valid sample report as the Alexa Health API takes it, for user u1.
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

func TestParseState(t *testing.T) {
	for _, st := range []reports.State{reports.StatePending, reports.StateDelivered, reports.StateFailed, reports.StateSuperseded} {
		if got, err := reports.ParseState(st.String()); err != nil || got != st {
			t.Errorf("ParseState(%q) = %v, %v; want %v", st.String(), got, err, st)
		}
	}
	for _, name := range []string{"UNKNOWN", "", "pending", "1"} {
		if got, err := reports.ParseState(name); tokens.ErrorCode(err) != tokens.EINVALID {
			t.Errorf("ParseState(%q) = %v, %v; want an %s error", name, got, err, tokens.EINVALID)
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
		{"BlankNickName", func(r *reports.Report) { r.Profiles[0].Name.NickNames[1] = " \t " }, "profiles[0].name.nickNames[1]"},
		{"NickNameWithSpaces", func(r *reports.Report) { r.Profiles[0].Name.NickNames[1] = " Little Jen " }, ""},
		{"BlankFirstName", func(r *reports.Report) { r.Profiles[0].Name.FirstName = "  " }, "profiles[0].name.firstName"},
		{"BlankProfileID", func(r *reports.Report) { r.Profiles[0].ProfileID = "\u00a0\n" }, "profiles[0].profileId"},
		{"BlankVersion", func(r *reports.Report) { r.Profiles[0].Capabilities[0].Version = " " }, "profiles[0].capabilities[0].version"},
		{"LargestBody", func(r *reports.Report) { padBody(t, r, reports.MaxBodyBytes) }, ""},
		{"BodyTooLarge", func(r *reports.Report) { padBody(t, r, reports.MaxBodyBytes+1) }, "profiles"},
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

// padBody lengthens r's last nickname of its first profile so that the body
// the Alexa API gets for r is size bytes long.
func padBody(tb testing.TB, r *reports.Report, size int) {
	tb.Helper()
	nicks := r.Profiles[0].Name.NickNames
	nicks[len(nicks)-1] += strings.Repeat("y", size-bodySize(tb, r))
	if got := bodySize(tb, r); got != size {
		tb.Fatalf("padded body is %d bytes, want %d", got, size)
	}
}

// bodySize returns the size of {"report":{"messageId","profiles"}}, the body
// the Alexa Health API takes, for r.
func bodySize(tb testing.TB, r *reports.Report) int {
	tb.Helper()
	var wire struct {
		Report struct {
			MessageID string            `json:"messageId"`
			Profiles  []reports.Profile `json:"profiles"`
		} `json:"report"`
	}
	wire.Report.MessageID, wire.Report.Profiles = r.MessageID, r.Profiles
	b, err := json.Marshal(wire)
	if err != nil {
		tb.Fatal(err)
	}
	return len(b)
}

// profiles returns n valid profiles with distinct ids.
func profiles(n int) []reports.Profile {
	ps := make([]reports.Profile, n)
	for i := range ps {
		ps[i] = profile(fmt.Sprint("baby-", i))
	}
	return ps
}
