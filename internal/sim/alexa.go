package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AlexaHealthProfilePath is the path of the Alexa Health profile API, on the
// simulator as on api.amazonalexa.com.
const AlexaHealthProfilePath = "/v1/health/profile"

// alexaMaxBody is the largest request body the simulator reads.
const alexaMaxBody = 256 << 10

// AlexaOptions configures an Alexa Health API simulator. LWA is required.
type AlexaOptions struct {
	// Addr is the address Start listens on. It must be a loopback address;
	// empty means "127.0.0.1:0", a free port.
	Addr string
	// LWA is the Login with Amazon simulator whose access tokens the API
	// accepts: a bearer token is valid when LWA.ValidAccessToken says so, and
	// it belongs to the user LWA.AccessTokenUser names. It is required.
	LWA *LWA
	// RetryAfterAsDate sends the Retry-After header of injected failures as an
	// HTTP date (Now plus the wait, rounded up to a whole second) instead of a
	// number of seconds; RFC 9110 §10.2.3 allows both.
	RetryAfterAsDate bool
	// Now is the simulator's clock; nil means time.Now. It stamps received
	// reports and dates Retry-After headers.
	Now func() time.Time
}

// AlexaStats counts the requests that one API of an Alexa simulator served:
// the Health profile API (Alexa.Stats) or the Event Gateway
// (EventGateway.Stats).
type AlexaStats struct {
	// Requests counts every request to the API's endpoint, failed, faulted
	// and malformed ones included.
	Requests int
	// Delivered counts reports or events accepted with 202.
	Delivered int
	// Unauthorized counts 401 answers: missing, invalid or expired tokens, and
	// those rejected by RejectTokenNext.
	Unauthorized int
	// Forbidden counts 403 answers to users revoked with RevokeUser (or
	// forbidden with EventGateway.ForbidUser).
	Forbidden int
	// Invalid counts answers refusing the request itself: 400, 405 and 413.
	Invalid int
	// Faulted counts the failures injected with FailNext and ThrottleNext.
	Faulted int
}

// ReceivedReport is one report the simulator accepted.
type ReceivedReport struct {
	// Region is the region whose path the report was posted to ("NA", "EU"
	// or "FE"; see Alexa.RegionURL), or "" for the unprefixed path.
	Region string
	// MessageID is the report's report.messageId.
	MessageID string
	// ProfileIDs lists the profileId of each profile, in the order sent.
	ProfileIDs []string
	// Body is the request body exactly as received, for tests that decode the
	// profiles themselves.
	Body []byte
	// At is when the report was accepted, by the simulator's clock.
	At time.Time
}

// Alexa simulates the Alexa API host: the Alexa Health profile API (POST
// /v1/health/profile) and, through Events, the Alexa Event Gateway (POST
// /v3/events). For the Health API it checks the bearer token against an LWA
// simulator, checks the report's shape as the API does, records accepted
// reports per user, and fails on demand (401, 403, 429 and 5xx with
// Retry-After, slow answers); a failure injected with FailNext is answered
// with code TOO_MANY_REQUESTS for 429, SERVICE_UNAVAILABLE for 503 and
// INTERNAL_SERVICE_EXCEPTION for any other status. The two APIs keep their
// own faults, records and counters.
//
// One simulator stands for the hosts of all three of Amazon's regions: every
// path is also served below a region prefix, /na, /eu or /fe (RegionURL), and
// what it receives there records that region, so that tests see where a
// client sent what. Alexa is an http.Handler; Start serves it on a loopback
// port. Its methods are safe for concurrent use.
type Alexa struct {
	alexaAPI[ReceivedReport] // the Health API's faults, reports and counters

	opts   AlexaOptions
	events *EventGateway
	server server
}

var _ http.Handler = (*Alexa)(nil)

// NewAlexa returns an Alexa Health API simulator configured by opts. It does not
// listen until Start is called; as an http.Handler it can also be mounted
// elsewhere. It panics when opts.LWA is nil, a mistake in the test itself.
func NewAlexa(opts AlexaOptions) *Alexa {
	if opts.LWA == nil {
		panic("sim: NewAlexa: AlexaOptions.LWA is required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Alexa{
		alexaAPI: newAlexaAPI[ReceivedReport](opts),
		opts:     opts,
		events:   newEventGateway(opts),
	}
}

// Events returns the simulator's Alexa Event Gateway, to inject its faults and
// read the events it accepted.
func (a *Alexa) Events() *EventGateway { return a.events }

// regionPrefixes maps the path prefix of each region the simulator stands
// for to the region's name.
var regionPrefixes = map[string]string{"/na": "NA", "/eu": "EU", "/fe": "FE"}

// RegionURL returns the base URL under which the simulator stands for the API
// host of region "NA", "EU" or "FE" (in any case), such as
// "http://127.0.0.1:41234/eu"; requests there are recorded with that region.
// It returns URL() for any other region, and "" before Start.
func (a *Alexa) RegionURL(region string) string {
	base := a.URL()
	if base == "" {
		return ""
	}
	for prefix, name := range regionPrefixes {
		if strings.EqualFold(region, name) {
			return base + prefix
		}
	}
	return base
}

// RegionURLs returns RegionURL of each of the three regions, keyed "NA", "EU"
// and "FE": the regional hosts a client is configured with. The map is new on
// every call.
func (a *Alexa) RegionURLs() map[string]string {
	urls := make(map[string]string, len(regionPrefixes))
	for _, name := range regionPrefixes {
		urls[name] = a.RegionURL(name)
	}
	return urls
}

// splitRegion takes a region prefix off path: "/eu/v3/events" is "EU" and
// "/v3/events"; a path without one is "" and itself.
func splitRegion(path string) (region, rest string) {
	if len(path) > 3 && path[3] == '/' {
		if name, ok := regionPrefixes[path[:3]]; ok {
			return name, path[3:]
		}
	}
	return "", path
}

// Start listens on the configured loopback address and serves the API in the
// background until Close is called or ctx is done; in-flight requests see their
// context cancelled then. It returns an error when the address is not a loopback
// address, cannot be listened on, or the simulator was already started.
func (a *Alexa) Start(ctx context.Context) error {
	return a.server.start(ctx, "alexa", a.opts.Addr, a)
}

// URL returns the simulator's base URL, such as "http://127.0.0.1:41234", or ""
// before Start. It is what the broker takes as its Alexa API URL.
func (a *Alexa) URL() string { return a.server.url() }

// Close stops the server started by Start: it cancels in-flight requests, waits
// for their handlers to return, and closes the listener. Calling Close more than
// once, or without Start, is harmless; it always returns nil.
func (a *Alexa) Close() error {
	a.server.close()
	return nil
}

// alexaAccessDenied is the code of the Health API's 403 answer.
const alexaAccessDenied = "ACCESS_DENIED"

// RevokeUser marks user as having disabled the skill or withdrawn its
// permission: the API then answers 403 to that user's requests, even with a
// valid access token, until RestoreUser. Access tokens themselves stay valid;
// LWA.RevokeUser revokes those.
func (a *Alexa) RevokeUser(user string) { a.forbid(user, alexaAccessDenied) }

// Received returns the reports accepted for user, in arrival order; nil when
// there are none. The result is a copy the caller may keep.
func (a *Alexa) Received(user string) []ReceivedReport {
	return a.receivedBy(user, func(r ReceivedReport) ReceivedReport {
		r.ProfileIDs = slices.Clone(r.ProfileIDs)
		r.Body = slices.Clone(r.Body)
		return r
	})
}

// ServeHTTP answers POST /v1/health/profile as the Alexa Health API does, POST
// /v3/events as the Alexa Event Gateway does (see EventGateway), both also
// below a region prefix (RegionURL), and 404 on any other path. The Health
// API's error answers are JSON {"code","message"}; they name the offending
// field but never repeat a token or a value sent.
func (a *Alexa) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	region, path := splitRegion(r.URL.Path)
	switch path {
	case AlexaHealthProfilePath:
		a.serveProfile(w, r, region)
	case AlexaEventsPath:
		a.events.serve(w, r, region)
	default:
		http.NotFound(w, r)
	}
}

// serveProfile answers a request to the profile API of region.
func (a *Alexa) serveProfile(w http.ResponseWriter, r *http.Request, region string) {
	if !a.admit(w, r, writeAlexaFault) {
		return
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.refuse(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "The method must be POST")
		return
	}
	user, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		a.refuse(w, http.StatusBadRequest, "INVALID_REQUEST", "Content-Type: must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, alexaMaxBody))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			a.refuse(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE", "body: larger than "+strconv.Itoa(alexaMaxBody)+" bytes")
			return
		}
		a.refuse(w, http.StatusBadRequest, "INVALID_REQUEST", "body: cannot be read")
		return
	}
	rep, msg := parseAlexaReport(body)
	if msg != "" {
		a.refuse(w, http.StatusBadRequest, "INVALID_REQUEST", msg)
		return
	}

	ids := make([]string, len(rep.Profiles))
	for i, p := range rep.Profiles {
		ids[i] = p.ProfileID
	}
	a.accept(user, ReceivedReport{
		Region:     region,
		MessageID:  rep.MessageID,
		ProfileIDs: ids,
		Body:       body,
		At:         a.now(),
	})
	w.WriteHeader(http.StatusAccepted)
}

// authenticate checks the bearer token and the user's permission. It writes the
// 401 or 403 answer and returns false when the request may not proceed.
func (a *Alexa) authenticate(w http.ResponseWriter, r *http.Request) (user string, ok bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		a.count(func(s *AlexaStats) { s.Unauthorized++ })
		writeAlexaUnauthorized(w, `Bearer`, "The access token is missing")
		return "", false
	}
	user, status, code := a.checkToken(token)
	switch status {
	case http.StatusUnauthorized:
		writeAlexaUnauthorized(w, `Bearer error="invalid_token"`, "The access token is invalid or expired")
		return "", false
	case http.StatusForbidden:
		alexaWriteJSON(w, http.StatusForbidden, code, "The skill is disabled for this user or its permission was withdrawn")
		return "", false
	}
	return user, true
}

// writeAlexaUnauthorized writes the Health API's 401 answer with challenge.
func writeAlexaUnauthorized(w http.ResponseWriter, challenge, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	alexaWriteJSON(w, http.StatusUnauthorized, "INVALID_ACCESS_TOKEN", msg)
}

// refuse writes an answer refusing the request itself and counts it.
func (a *Alexa) refuse(w http.ResponseWriter, status int, code, msg string) {
	a.count(func(s *AlexaStats) { s.Invalid++ })
	alexaWriteJSON(w, status, code, msg)
}

// writeAlexaFault writes the Health API's answer to a failure injected with
// status.
func writeAlexaFault(w http.ResponseWriter, status int) {
	code, msg := "INTERNAL_SERVICE_EXCEPTION", "The service encountered an internal error"
	switch status {
	case http.StatusTooManyRequests:
		code, msg = "TOO_MANY_REQUESTS", "Rate exceeded"
	case http.StatusServiceUnavailable:
		code, msg = "SERVICE_UNAVAILABLE", "The service is temporarily unavailable"
	}
	alexaWriteJSON(w, status, code, msg)
}

// alexaWriteJSON writes the Health API's error answer {"code","message"}.
func alexaWriteJSON(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}

// The request body, as samples/health-profile-report.json shows it.
type (
	alexaRequest struct {
		Report *alexaReport `json:"report"`
	}
	alexaReport struct {
		MessageID string         `json:"messageId"`
		Profiles  []alexaProfile `json:"profiles"`
	}
	alexaProfile struct {
		ProfileID    string            `json:"profileId"`
		Name         alexaName         `json:"name"`
		Capabilities []alexaCapability `json:"capabilities"`
	}
	alexaName struct {
		FirstName string   `json:"firstName"`
		LastName  string   `json:"lastName"`
		NickNames []string `json:"nickNames"`
	}
	alexaCapability struct {
		Name                string   `json:"name"`
		Type                string   `json:"type"`
		Version             string   `json:"version"`
		SupportedOperations []string `json:"supportedOperations"`
	}
)

// parseAlexaReport decodes and checks a request body. On refusal it returns a
// message that starts with the offending field, such as
// "report.profiles[0].name.nickNames: at least one nickname is required"; the
// message names fields but never repeats a value.
func parseAlexaReport(body []byte) (*alexaReport, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req alexaRequest
	if err := dec.Decode(&req); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return nil, typeErr.Field + ": wrong JSON type"
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// The decoder names the field only, without its path.
			return nil, "body: " + strings.TrimPrefix(err.Error(), "json: ")
		}
		return nil, "body: not a JSON object"
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "body: data after the JSON object"
	}
	rep := req.Report
	switch {
	case rep == nil:
		return nil, "report: required"
	case rep.MessageID == "":
		return nil, "report.messageId: required"
	case len(rep.Profiles) == 0:
		return nil, "report.profiles: at least one profile is required"
	}
	seen := make(map[string]bool)
	for i, p := range rep.Profiles {
		at := fmt.Sprintf("report.profiles[%d]", i)
		switch {
		case p.ProfileID == "":
			return nil, at + ".profileId: required"
		case seen[p.ProfileID]:
			return nil, at + ".profileId: repeated"
		case p.Name.FirstName == "":
			return nil, at + ".name.firstName: required"
		case len(p.Name.NickNames) == 0:
			return nil, at + ".name.nickNames: at least one nickname is required"
		case len(p.Capabilities) == 0:
			return nil, at + ".capabilities: at least one capability is required"
		}
		seen[p.ProfileID] = true
		for j, n := range p.Name.NickNames {
			if strings.TrimSpace(n) == "" {
				return nil, fmt.Sprintf("%s.name.nickNames[%d]: empty", at, j)
			}
		}
		for j, c := range p.Capabilities {
			cat := fmt.Sprintf("%s.capabilities[%d]", at, j)
			switch {
			case !strings.HasPrefix(c.Name, "Alexa.Health.") || len(c.Name) == len("Alexa.Health."):
				return nil, cat + `.name: must be an Alexa.Health interface`
			case c.Type != "AlexaInterface":
				return nil, cat + `.type: must be "AlexaInterface"`
			case c.Version == "":
				return nil, cat + ".version: required"
			case !slices.Contains(c.SupportedOperations, "Get"):
				return nil, cat + `.supportedOperations: must include "Get"`
			}
		}
	}
	return rep, ""
}
