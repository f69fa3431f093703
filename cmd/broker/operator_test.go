package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/sim"
)

// cliRun is how a test runs an operator command: the environment besides
// BROKER_GRPC_ADDR, and the terminal's input.
type cliRun struct {
	env         map[string]string
	stdin       string
	interactive bool
}

// runCLI runs an operator command, args following "broker", against h's
// broker, over gRPC without TLS unless args say otherwise, and returns the
// exit code and the outputs.
func (h *harness) runCLI(r cliRun, args ...string) (int, string, string) {
	h.tb.Helper()
	env := map[string]string{"BROKER_GRPC_ADDR": h.main.Server.GRPCAddr()}
	for k, v := range r.env {
		env[k] = v
	}
	// --plaintext right after the command's words, so that later flags win.
	switch {
	case len(args) > 1 && args[0] == "links":
		args = append([]string{args[0], args[1], "--plaintext"}, args[2:]...)
	case len(args) > 0 && args[0] != "links":
		args = append([]string{args[0], "--plaintext"}, args[1:]...)
	}
	var stdout, stderr bytes.Buffer
	cio := cliIO{getenv: func(k string) string { return env[k] }, stdin: strings.NewReader(r.stdin), stdout: &stdout, stderr: &stderr, interactive: r.interactive}
	code := operatorCommandRun(h.tb.Context(), args, cio)
	out, errOut := stdout.String(), stderr.String()
	if strings.Contains(out+errOut, "eyJ") {
		h.tb.Errorf("broker %s printed a JWT:\n%s%s", strings.Join(args, " "), out, errOut)
	}
	return code, out, errOut
}

// admin runs an operator command with a token of the admin scope and fails
// the test unless it succeeds; it returns stdout.
func (h *harness) admin(args ...string) string {
	h.tb.Helper()
	code, out, errOut := h.runCLI(cliRun{env: map[string]string{"BROKER_TOKEN": h.clientToken("broker:admin")}}, args...)
	if code != 0 {
		h.tb.Fatalf("broker %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// tableRows splits a table into its header's columns and its rows' cells,
// cells being separated by two spaces or more.
func tableRows(tb testing.TB, out string) (header []string, rows [][]string) {
	tb.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	sep := regexp.MustCompile(`  +`)
	header = sep.Split(strings.TrimSpace(lines[0]), -1)
	for _, l := range lines[1:] {
		rows = append(rows, sep.Split(strings.TrimSpace(l), -1))
	}
	return header, rows
}

// jsonLines reads out's JSON lines into messages made by newMsg, checking
// that every field is present under its proto name.
func jsonLines[M proto.Message](tb testing.TB, out string, newMsg func() M) []M {
	tb.Helper()
	var msgs []M
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		m := newMsg()
		if err := protojson.Unmarshal([]byte(line), m); err != nil {
			tb.Fatalf("not a JSON line of %T: %v\n%s", m, err, line)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// users returns the user ids of links.
func users(links []*brokerv1.Link) []string {
	var ids []string
	for _, l := range links {
		ids = append(ids, l.GetUserId())
	}
	return ids
}

func TestCLI_Links(t *testing.T) {
	h := newHarness(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		h.link(u)
	}

	t.Run("ListTable", func(t *testing.T) {
		h := h.in(t)
		header, rows := tableRows(t, h.admin("links", "list"))
		if got, want := strings.Join(header, "|"), "USER|SKILL|STATE|REGION|LINKED|TOKEN EXPIRES|LAST REFRESHED"; got != want {
			t.Errorf("header = %s, want %s", got, want)
		}
		if len(rows) != 3 {
			t.Fatalf("rows = %q, want 3", rows)
		}
		for i, u := range []string{"alice", "bob", "carol"} {
			if got := rows[i]; got[0] != u || got[1] != "default" || got[2] != "LINKED" || got[3] != "-" {
				t.Errorf("row %d = %q, want %s default LINKED -", i, got, u)
			}
			if _, err := time.Parse(time.RFC3339, rows[i][4]); err != nil {
				t.Errorf("row %d: LINKED %q: %v", i, rows[i][4], err)
			}
		}
	})
	t.Run("ListJSON", func(t *testing.T) {
		h := h.in(t)
		out := h.admin("links", "list", "--json")
		links := jsonLines(t, out, func() *brokerv1.Link { return &brokerv1.Link{} })
		if got, want := strings.Join(users(links), ","), "alice,bob,carol"; got != want {
			t.Errorf("users = %s, want %s", got, want)
		}
		first := strings.SplitN(out, "\n", 2)[0]
		for _, want := range []string{`"user_id":"alice"`, `"state":"LINKED"`, `"region":""`, `"skill_id":"default"`, `"access_token_expires_at":"`} {
			if !strings.Contains(first, want) {
				t.Errorf("first line %s lacks %s", first, want)
			}
		}
	})
	t.Run("Pages", func(t *testing.T) {
		h := h.in(t)
		code, out, errOut := h.runCLI(cliRun{env: map[string]string{"BROKER_TOKEN": h.clientToken("broker:admin")}}, "links", "list", "--page-size", "2")
		if _, rows := tableRows(t, out); code != 0 || len(rows) != 2 {
			t.Fatalf("--page-size 2: exit %d, rows %q, want 0 and 2", code, rows)
		}
		m := regexp.MustCompile(`--page-token (\S+), or --all`).FindStringSubmatch(errOut)
		if m == nil {
			t.Fatalf("stderr = %q, want the next page's token", errOut)
		}
		if _, rows := tableRows(t, h.admin("links", "list", "--page-size", "2", "--page-token", m[1])); len(rows) != 1 || rows[0][0] != "carol" {
			t.Errorf("the second page = %q, want carol", rows)
		}
		code, out, errOut = h.runCLI(cliRun{env: map[string]string{"BROKER_TOKEN": h.clientToken("broker:admin")}}, "links", "list", "--all", "--page-size", "1", "--json")
		if links := jsonLines(t, out, func() *brokerv1.Link { return &brokerv1.Link{} }); code != 0 || strings.Join(users(links), ",") != "alice,bob,carol" || errOut != "" {
			t.Errorf("--all --page-size 1: exit %d, users %q, stderr %q; want 0, every user, nothing", code, users(links), errOut)
		}
	})
	t.Run("Get", func(t *testing.T) {
		h := h.in(t)
		if _, rows := tableRows(t, h.admin("links", "get", "bob")); len(rows) != 1 || rows[0][0] != "bob" || rows[0][2] != "LINKED" {
			t.Errorf("links get bob = %q, want bob's link", rows)
		}
		// Flags before and after the user id.
		out := h.admin("links", "get", "--json", "alice", "--skill-id", "default")
		var l brokerv1.Link
		if err := protojson.Unmarshal([]byte(out), &l); err != nil || l.GetUserId() != "alice" || strings.Count(out, "\n") != 1 {
			t.Errorf("links get --json alice = %q (%v), want alice's link on one line", out, err)
		}
	})
	t.Run("Refresh", func(t *testing.T) {
		h := h.in(t)
		h.clock.Advance(10 * time.Minute)
		out := h.admin("links", "refresh", "alice", "--json")
		var l brokerv1.Link
		if err := protojson.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("links refresh --json: %v\n%s", err, out)
		}
		if got, want := l.GetLastRefreshedAt().AsTime(), h.clock.Now().Truncate(time.Second); got.Before(want) {
			t.Errorf("last_refreshed_at = %v, want %v or later", got, want)
		}
		_, rows := tableRows(t, h.admin("events", "--user", "alice"))
		if len(rows) < 2 || rows[0][1] != "link.refreshed" || rows[0][4] != "companion-backend" || !strings.Contains(rows[0][5], "trigger=operator") {
			t.Errorf("alice's events = %q, want link.refreshed by companion-backend, trigger=operator, first", rows)
		}
		if _, rows := tableRows(t, h.admin("links", "refresh", "alice")); len(rows) != 1 || rows[0][0] != "alice" {
			t.Errorf("links refresh alice = %q, want alice's link", rows)
		}
	})
	t.Run("RelinkRequired", func(t *testing.T) {
		h := h.in(t)
		h.link("dave")
		h.sims.LWA.RevokeUser("dave")
		code, _, errOut := h.runCLI(cliRun{env: map[string]string{"BROKER_TOKEN": h.clientToken("broker:admin")}}, "links", "refresh", "dave")
		if code != 1 || !strings.HasPrefix(errOut, "broker links refresh: FailedPrecondition: ") {
			t.Errorf("refresh of a revoked link: exit %d, stderr %q; want 1 FailedPrecondition", code, errOut)
		}
		for _, state := range []string{"RELINK_REQUIRED", "relink_required"} {
			if _, rows := tableRows(t, h.admin("links", "list", "--state", state)); len(rows) != 1 || rows[0][0] != "dave" || rows[0][2] != "RELINK_REQUIRED" {
				t.Errorf("links list --state %s = %q, want dave", state, rows)
			}
		}
		if _, rows := tableRows(t, h.admin("links", "list", "--state", "LINKED")); len(rows) != 3 {
			t.Errorf("links list --state LINKED = %q, want the other 3", rows)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		h := h.in(t)
		h.link("erin")
		out := h.admin("links", "delete", "erin", "--yes", "--reason", "user_request")
		if want := "Deleted the link of user \"erin\" and its stored tokens.\n"; out != want {
			t.Errorf("links delete: %q, want %q", out, want)
		}
		code, _, errOut := h.runCLI(cliRun{env: map[string]string{"BROKER_TOKEN": h.clientToken("broker:admin")}}, "links", "get", "erin")
		if code != 1 || !strings.HasPrefix(errOut, "broker links get: NotFound: ") {
			t.Errorf("links get of a deleted link: exit %d, stderr %q; want 1 NotFound", code, errOut)
		}
		events := jsonLines(t, h.admin("events", "--user", "erin", "--json"), func() *brokerv1.Event { return &brokerv1.Event{} })
		if len(events) != 2 || events[0].GetType() != "link.deleted" || events[0].GetActor() != "companion-backend" ||
			events[0].GetData().GetFields()["reason"].GetStringValue() != "user_request" || events[1].GetType() != "link.linked" {
			t.Errorf("erin's events = %v, want link.deleted (user_request, by companion-backend), link.linked", events)
		}
		h.link("erin")
		if out := h.admin("links", "delete", "erin", "--yes", "--json", "--skill-id", "default"); out != "{}\n" {
			t.Errorf("links delete --json: %q, want {}", out)
		}
	})
	t.Run("DeleteAsks", func(t *testing.T) {
		h := h.in(t)
		h.link("frank")
		env := map[string]string{"BROKER_TOKEN": h.clientToken("broker:admin")}
		code, _, errOut := h.runCLI(cliRun{env: env, stdin: "n\n", interactive: true}, "links", "delete", "frank")
		if code != 1 || !strings.Contains(errOut, `Delete the link of user "frank" and its stored tokens? [y/N] `) || !strings.Contains(errOut, "not deleted") {
			t.Errorf("answered n: exit %d, stderr %q; want the question, 1, not deleted", code, errOut)
		}
		h.admin("links", "get", "frank")
		code, _, errOut = h.runCLI(cliRun{env: env, stdin: "", interactive: false}, "links", "delete", "frank")
		if code != 2 || !strings.Contains(errOut, "--yes is required when stdin is not a terminal") {
			t.Errorf("no terminal, no --yes: exit %d, stderr %q; want 2 naming --yes", code, errOut)
		}
		code, out, errOut := h.runCLI(cliRun{env: env, stdin: "y\n", interactive: true}, "links", "delete", "frank")
		if code != 0 || !strings.HasPrefix(out, "Deleted") {
			t.Errorf("answered y: exit %d, stdout %q, stderr %q; want deleted", code, out, errOut)
		}
	})
}

func TestCLI_EventsAndStats(t *testing.T) {
	h := newHarness(t)
	h.link("alice")
	h.link("bob")
	h.admin("links", "delete", "bob", "--yes")
	// The three events' webhooks go out in the background; the stats below
	// count the outbox, so they are read once it is empty.
	waitFor(t, 10*time.Second, "three webhooks delivered", func() bool { return len(h.sims.Webhooks.Received()) >= 3 })
	waitFor(t, 10*time.Second, "an empty webhook outbox", func() bool {
		var s brokerv1.Stats
		return protojson.Unmarshal([]byte(h.admin("stats", "--json")), &s) == nil && s.GetWebhooks()["PENDING"] == 0
	})

	t.Run("EventsTable", func(t *testing.T) {
		h := h.in(t)
		header, rows := tableRows(t, h.admin("events"))
		if got, want := strings.Join(header, "|"), "OCCURRED|TYPE|USER|SKILL|ACTOR|DATA|ID"; got != want {
			t.Errorf("header = %s, want %s", got, want)
		}
		var got []string
		for _, r := range rows {
			got = append(got, r[1]+" "+r[2])
		}
		if want := "link.deleted bob,link.linked bob,link.linked alice"; strings.Join(got, ",") != want {
			t.Errorf("events = %q, want %s", got, want)
		}
		if r := rows[0]; r[4] != "companion-backend" || r[5] != "reason=operator" || !strings.HasPrefix(r[6], "evt_") {
			t.Errorf("the link.deleted row = %q, want companion-backend, reason=operator, an evt_ id", r)
		}
		if r := rows[2]; r[4] != "alexa" || r[5] != `region="" relinked=false` {
			t.Errorf("the link.linked row = %q, want alexa, region=\"\" relinked=false", r)
		}
	})
	t.Run("EventsJSON", func(t *testing.T) {
		h := h.in(t)
		events := jsonLines(t, h.admin("events", "--type", "link.linked", "--json"), func() *brokerv1.Event { return &brokerv1.Event{} })
		if len(events) != 2 || events[0].GetUserId() != "bob" || events[1].GetUserId() != "alice" {
			t.Errorf("link.linked events = %v, want bob's then alice's", events)
		}
		events = jsonLines(t, h.admin("events", "--user", "alice", "--skill-id", "default", "--json"), func() *brokerv1.Event { return &brokerv1.Event{} })
		if len(events) != 1 || events[0].GetType() != "link.linked" {
			t.Errorf("alice's events = %v, want link.linked", events)
		}
	})
	t.Run("StatsTable", func(t *testing.T) {
		h := h.in(t)
		header, rows := tableRows(t, h.admin("stats"))
		var got []string
		for _, r := range rows {
			got = append(got, strings.Join(r, " "))
		}
		want := []string{"links LINKED 1", "links RELINK_REQUIRED 0", "deliveries PENDING 0", "deliveries DELIVERED 0",
			"deliveries FAILED 0", "deliveries SUPERSEDED 0", "webhooks PENDING 0"}
		if strings.Join(header, " ") != "KIND STATE COUNT" || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("stats = %q %q, want KIND STATE COUNT, %q", header, got, want)
		}
	})
	t.Run("StatsJSON", func(t *testing.T) {
		h := h.in(t)
		out := h.admin("stats", "--json")
		var s brokerv1.Stats
		if err := protojson.Unmarshal([]byte(out), &s); err != nil || s.GetLinks()["LINKED"] != 1 {
			t.Errorf("stats --json = %s (%v), want 1 LINKED", out, err)
		}
		var doc map[string]map[string]int
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc) != 3 || len(doc["deliveries"]) != 4 {
			t.Errorf("stats --json = %s (%v), want links, deliveries and webhooks with every state", out, err)
		}
	})
}

func TestCLI_Errors(t *testing.T) {
	h := newHarness(t)
	h.link("alice")
	admin := h.clientToken("broker:admin")
	withToken := map[string]string{"BROKER_TOKEN": admin}
	for _, tt := range []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		stderr   string
		notFound string // a text stderr must not hold
	}{
		{"NoToken", nil, []string{"links", "list"}, 2, "broker links list: a bearer token is required: --token or BROKER_TOKEN, or --client-id", ""},
		{"BearerPrefix", nil, []string{"stats", "--token", "Bearer " + admin}, 2, `--token: the bare JWT, without "Bearer "`, admin},
		{"TokenAndClient", nil, []string{"stats", "--token", admin, "--client-id", "x"}, 2, "--token and --client-id: give one", admin},
		{"NoSecret", map[string]string{"BROKER_CLIENT_ID": "ops"}, []string{"stats"}, 2, "--client-secret or BROKER_CLIENT_SECRET is required with --client-id", ""},
		{"NoIssuer", map[string]string{"BROKER_CLIENT_ID": "ops", "BROKER_CLIENT_SECRET": "s"}, []string{"stats"}, 2, "--issuer or BROKER_JWT_ISSUER is required with --client-id", ""},
		{"UnknownUser", withToken, []string{"links", "get", "nobody"}, 1, "broker links get: NotFound: ", ""},
		{"UnknownSkill", withToken, []string{"links", "get", "alice", "--skill-id", "nope"}, 1, "broker links get: InvalidArgument: ", ""},
		{"UnknownEventType", withToken, []string{"events", "--type", "link.nope"}, 1, "broker events: InvalidArgument: ", ""},
		{"NotAdmin", map[string]string{"BROKER_TOKEN": h.clientToken("broker:tokens")}, []string{"links", "list"}, 1, "broker links list: PermissionDenied: ", ""},
		{"TLSToPlaintext", withToken, []string{"stats", "--plaintext=false", "--timeout", "5s"}, 1, "(the broker serves gRPC without TLS: --plaintext)", ""},
		{"NoBroker", withToken, []string{"stats", "--grpc-addr", "127.0.0.1:1", "--timeout", "5s"}, 1, "broker stats: Unavailable: ", ""},
		{"BadAddr", withToken, []string{"stats", "--grpc-addr", "nohost"}, 2, `--grpc-addr "nohost": want HOST:PORT`, ""},
		{"NoUser", withToken, []string{"links", "get"}, 2, "the user id is required: broker links get USER", ""},
		{"TwoUsers", withToken, []string{"links", "get", "a", "b"}, 2, `unexpected argument "b"`, ""},
		{"ArgumentOfList", withToken, []string{"links", "list", "a"}, 2, `unexpected argument "a"`, ""},
		{"BadState", withToken, []string{"links", "list", "--state", "GONE"}, 2, `--state "GONE": want LINKED or RELINK_REQUIRED`, ""},
		{"NegativePageSize", withToken, []string{"events", "--page-size", "-1"}, 2, "--page-size -1: want 0 or more", ""},
		{"TypeAndUser", withToken, []string{"events", "--user", "a", "--type", "link.linked"}, 2, "--type lists every user's events: leave out --user", ""},
		{"SkillWithoutUser", withToken, []string{"events", "--skill-id", "default"}, 2, "--skill-id is for a user's events: give --user", ""},
		{"UnknownFlag", withToken, []string{"stats", "--nope"}, 2, "flag provided but not defined: -nope", ""},
		{"UnknownSubcommand", withToken, []string{"links", "nope"}, 2, `broker links: unknown command "nope"`, ""},
		{"NoSubcommand", withToken, []string{"links"}, 2, "links list", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			code, out, errOut := h.runCLI(cliRun{env: tt.env}, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("broker %s: exit %d, stderr %q; want %d and %q", strings.Join(tt.args, " "), code, errOut, tt.code, tt.stderr)
			}
			if out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if tt.notFound != "" && strings.Contains(errOut, tt.notFound) {
				t.Errorf("stderr holds the token: %q", errOut)
			}
		})
	}
	t.Run("BrokersMessage", func(t *testing.T) {
		h := h.in(t)
		var want string
		if status, body := h.call("GET", "/v1/links/nobody", admin, ""); status == http.StatusNotFound {
			var e struct{ Message string }
			_ = json.Unmarshal([]byte(body), &e)
			want = e.Message
		}
		_, _, errOut := h.runCLI(cliRun{env: withToken}, "links", "get", "nobody")
		if want == "" || errOut != "broker links get: NotFound: "+want+"\n" {
			t.Errorf("stderr = %q, want NotFound and the broker's message %q", errOut, want)
		}
	})
	t.Run("Help", func(t *testing.T) {
		h := h.in(t)
		code, out, _ := h.runCLI(cliRun{}, "links", "delete", "--help")
		if code != 0 || !strings.Contains(out, "Usage: broker links delete USER [flags]") || !strings.Contains(out, "-yes") || !strings.Contains(out, "BROKER_CLIENT_SECRET") {
			t.Errorf("links delete --help: exit %d\n%s", code, out)
		}
	})
}

func TestCLI_ClientCredentials(t *testing.T) {
	h := newHarness(t)
	h.link("alice")
	h.link("bob")
	const secret = "operator-secret-value"
	h.sims.Auth.RegisterClient("operator-cli", secret, []string{"broker:admin", "broker:tokens"})
	env := map[string]string{"BROKER_CLIENT_ID": "operator-cli", "BROKER_CLIENT_SECRET": secret, "BROKER_JWT_ISSUER": h.sims.Auth.Issuer()}
	noSecret := func(t *testing.T, outs ...string) {
		t.Helper()
		for _, o := range outs {
			if strings.Contains(o, secret) {
				t.Errorf("the client secret was printed: %q", o)
			}
		}
	}

	t.Run("Environment", func(t *testing.T) {
		h := h.in(t)
		before := h.sims.Auth.TokenRequests()
		code, out, errOut := h.runCLI(cliRun{env: env}, "links", "list", "--json")
		if links := jsonLines(t, out, func() *brokerv1.Link { return &brokerv1.Link{} }); code != 0 || len(links) != 2 {
			t.Errorf("links list: exit %d, %d links, stderr %q; want 0 and 2", code, len(links), errOut)
		}
		if got := h.sims.Auth.TokenRequests() - before; got != 1 {
			t.Errorf("token requests = %d, want 1", got)
		}
		noSecret(t, out, errOut)
	})
	t.Run("FlagsWinOverEnvironment", func(t *testing.T) {
		h := h.in(t)
		// A token without the admin scope in the environment, the client on
		// the command line: the flags are used, and the delete is the client's.
		env := map[string]string{"BROKER_TOKEN": h.clientToken("broker:tokens")}
		code, out, errOut := h.runCLI(cliRun{env: env}, "links", "delete", "bob", "--yes",
			"--client-id", "operator-cli", "--client-secret", secret, "--issuer", h.sims.Auth.Issuer(), "--scope", "broker:admin")
		if code != 0 {
			t.Fatalf("links delete: exit %d, stderr %q", code, errOut)
		}
		noSecret(t, out, errOut)
		events := jsonLines(t, h.admin("events", "--user", "bob", "--json"), func() *brokerv1.Event { return &brokerv1.Event{} })
		if len(events) == 0 || events[0].GetType() != "link.deleted" || events[0].GetActor() != "operator-cli" {
			t.Errorf("bob's events = %v, want link.deleted by operator-cli first", events)
		}
	})
	for _, tt := range []struct {
		name   string
		env    map[string]string
		args   []string
		stderr string
	}{
		{"WrongSecret", map[string]string{"BROKER_CLIENT_SECRET": "wrong-secret"}, nil, "invalid_client"},
		{"ScopeNotGranted", nil, []string{"--scope", "broker:events"}, "invalid_scope"},
		{"NotAdmin", nil, []string{"--scope", "broker:tokens"}, "broker stats: PermissionDenied: "},
		{"NoDiscovery", map[string]string{"BROKER_JWT_ISSUER": h.base}, nil, "no token endpoint found for --issuer " + h.base},
		{"PlainHTTPIssuer", map[string]string{"BROKER_JWT_ISSUER": "http://auth.example"}, nil, `--issuer "http://auth.example": want https://HOST[/PATH] (http only on a loopback host)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tt.env {
				e[k] = v
			}
			code, out, errOut := h.runCLI(cliRun{env: e}, append([]string{"stats"}, tt.args...)...)
			if code != 1 || !strings.Contains(errOut, tt.stderr) || out != "" {
				t.Errorf("stats: exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, tt.stderr)
			}
			noSecret(t, out, errOut)
			if strings.Contains(errOut, "wrong-secret") {
				t.Errorf("stderr holds the secret: %q", errOut)
			}
		})
	}
}

func TestCLI_DiscoverTokenEndpoint(t *testing.T) {
	// metadata serves the documents of docs by path, with issuer and
	// token_endpoint made from the server's own URL.
	metadata := func(t *testing.T, docs map[string]func(base string) map[string]string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			doc, ok := docs[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			_ = json.NewEncoder(w).Encode(doc("http://" + r.Host))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	doc := func(issuerPath string) func(base string) map[string]string {
		return func(base string) map[string]string {
			return map[string]string{"issuer": base + issuerPath, "token_endpoint": base + "/token"}
		}
	}

	t.Run("OpenIDConfiguration", func(t *testing.T) {
		auth, err := sim.NewAuthServer(sim.AuthServerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := auth.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { auth.Close() })
		got, err := discoverTokenEndpoint(t.Context(), http.DefaultClient, auth.Issuer())
		if want := auth.URL() + sim.TokenPath; err != nil || got != want {
			t.Errorf("discoverTokenEndpoint = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("RFC8414WithPath", func(t *testing.T) {
		base := metadata(t, map[string]func(string) map[string]string{"/.well-known/oauth-authorization-server/tenant": doc("/tenant")})
		got, err := discoverTokenEndpoint(t.Context(), http.DefaultClient, base+"/tenant/")
		if want := base + "/token"; err != nil || got != want {
			t.Errorf("discoverTokenEndpoint = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("OpenIDConfigurationWithPath", func(t *testing.T) {
		base := metadata(t, map[string]func(string) map[string]string{"/realms/x/.well-known/openid-configuration": doc("/realms/x")})
		got, err := discoverTokenEndpoint(t.Context(), http.DefaultClient, base+"/realms/x")
		if want := base + "/token"; err != nil || got != want {
			t.Errorf("discoverTokenEndpoint = %q, %v; want %q", got, err, want)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			docs map[string]func(string) map[string]string
			want string
		}{
			{"OtherIssuer", map[string]func(string) map[string]string{"/.well-known/openid-configuration": doc("/other")}, `issuer "http://127.0.0.1`},
			{"NoTokenEndpoint", map[string]func(string) map[string]string{"/.well-known/openid-configuration": func(base string) map[string]string {
				return map[string]string{"issuer": base}
			}}, "no token_endpoint"},
			{"PlainHTTPTokenEndpoint", map[string]func(string) map[string]string{"/.well-known/openid-configuration": func(base string) map[string]string {
				return map[string]string{"issuer": base, "token_endpoint": "http://auth.example/token"}
			}}, `token_endpoint "http://auth.example/token": want https`},
			{"None", nil, "404 Not Found"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				base := metadata(t, tt.docs)
				if got, err := discoverTokenEndpoint(t.Context(), http.DefaultClient, base); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("discoverTokenEndpoint = %q, %v; want an error with %q", got, err, tt.want)
				}
			})
		}
	})
}
