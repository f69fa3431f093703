package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/sim"
)

// consoleRow is a row of the console's links table, as the tests read it.
type consoleRow struct {
	User  string `json:"user"`
	Skill string `json:"skill"`
	State string `json:"state"`
	Class string `json:"class"`
}

// rowsJS reads the rows of the console's links table.
const rowsJS = `[...document.querySelectorAll('#links tbody tr')].map((r) => ({
	user: r.dataset.user, skill: r.dataset.skill, state: r.children[2].textContent, class: r.className}))`

// rowCount is a JavaScript condition: the links table has n rows.
func rowCount(n int) string {
	return `document.querySelectorAll('#links tbody tr').length === ` + strconv.Itoa(n)
}

// js quotes s as a JavaScript string.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// consoleHarness is a broker like the sandbox's, with its console on: two
// skills, baby and home, and links, deliveries and faults to show.
//
//   - demo-parent is linked in both skills; its profile report in baby,
//     report-stuck, waits PENDING after the Health API answered 500; its
//     Alexa event in home, event-refused, FAILED (the Event Gateway answered
//     400);
//   - grandma is linked in baby and RELINK_REQUIRED (LWA refused a refresh);
//   - to-delete is linked in baby.
//
// It returns the harness and the console's URL.
func consoleHarness(t *testing.T) (*harness, string) {
	t.Helper()
	h := newHarnessWith(t, sim.SetOptions{Skills: sandboxSkills, User: "grandma"}, map[string]string{"BROKER_CONSOLE_CLIENT_ID": consoleClient})
	consoleURL, err := registerConsole(h.sims.Auth, h.main.Server.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	h.linkSkill(demoUser, babySkill)
	h.linkSkill(demoUser, homeSkill)
	h.linkSkill("grandma", babySkill)
	h.linkSkill("to-delete", babySkill)

	admin := h.clientToken("broker:admin")
	if _, err := h.sims.Faults.Apply("lwa:invalid_grant", 0); err != nil {
		t.Fatal(err)
	}
	if status, body := h.call("POST", "/v1/links/grandma:refresh?skill_id=baby", admin, ""); status != http.StatusPreconditionFailed {
		t.Fatalf("refresh of grandma under invalid_grant: %d %s, want 412", status, body)
	}

	profiles := h.clientToken("broker:profiles")
	if _, err := h.sims.Faults.Apply("alexa:5xx", 1); err != nil {
		t.Fatal(err)
	}
	h.submit(profiles, strings.Replace(jenny(demoUser, "report-stuck"), `{"user_id"`, `{"skill_id":"baby","user_id"`, 1))
	// The harness's clock stands still: after its first failed attempt, the
	// report waits for a retry that never comes due.
	h.waitAttempts(profiles, "report-stuck", 1)

	events := h.clientToken("broker:events")
	if _, err := h.sims.Faults.Apply("alexa-events:400", 1); err != nil {
		t.Fatal(err)
	}
	h.submitAlexaEvent(events, "event-refused", alexaEventBody(demoUser, homeSkill, changeReport("event-refused", "thermostat-1"), ""))
	h.waitAlexaEventState(events, "event-refused", "FAILED")
	return h, consoleURL
}

// signIn signs in at the console through the simulated authorization
// server's login page, ticking off the scopes in untick, and waits for the
// console to answer.
func (b *browser) signIn(consoleURL string, untick ...string) {
	b.tb.Helper()
	b.do(chromedp.Navigate(consoleURL), chromedp.WaitVisible(chromedp.ID("signin")))
	b.screenshot("sign-in")
	b.do(chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("sign-in")))
	for _, scope := range untick {
		b.do(chromedp.Click(chromedp.CSS(`input[data-scope=` + js(scope) + `]`)))
	}
	b.screenshot("login-page")
	b.do(chromedp.Click(chromedp.ID("sign-in")))
	b.waitFor("the console after signing in", `location.pathname === '/console/' && !location.search && `+
		`!!document.body.dataset.view && document.body.dataset.view !== 'signin'`)
}

// setValues sets the value of the form fields with the ids of values, as an
// operator choosing them would.
func (b *browser) setValues(values map[string]string) {
	b.tb.Helper()
	for id, v := range values {
		if got := eval[string](b, `(() => { const f = document.getElementById(`+js(id)+`); f.value = `+js(v)+`; return f.value; })()`); got != v {
			b.tb.Fatalf("browser: field %s took %q, not %q", id, got, v)
		}
	}
}

// rerender runs steps, which show another view or the same one anew, and
// waits until the console has shown it.
func (b *browser) rerender(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	before := eval[string](b, `document.body.dataset.rendered || '0'`)
	b.do(steps...)
	b.waitFor(what, `Number(document.body.dataset.rendered || 0) > `+before)
}

// goTo shows the console's view at hash, as a link to it would, and waits
// until the console has shown it.
func (b *browser) goTo(hash string) {
	b.tb.Helper()
	b.rerender("the view "+hash, chromedp.Evaluate[chromedp.Void](`location.hash = `+js(hash)))
}

// TestConsole drives the operator console in headless Chromium against a
// broker like the sandbox's: sign in through the simulated authorization
// server, see the links of both skills, filter them, open one, refresh it and
// see its timeline grow, delete one after confirming, see the deliveries
// pending and failed, a user id with markup shown as text, and the message
// of a sign-in without the admin scope.
func TestConsole(t *testing.T) {
	b := newBrowser(t)
	h, consoleURL := consoleHarness(t)

	t.Run("SignIn", func(t *testing.T) {
		b := b.in(t)
		b.signIn(consoleURL)
		b.do(chromedp.WaitVisible(chromedp.ID("links-by-state")))
		if got := b.text("#subject"); !strings.Contains(got, sim.LoginUser) {
			t.Errorf("signed in as %q, want %s", got, sim.LoginUser)
		}
		cards := eval[map[string]string](b, `Object.fromEntries([...document.querySelectorAll('.card dd')].map((d) =>
			[d.closest('.card').id + '.' + d.dataset.key, d.textContent]))`)
		for k, want := range map[string]string{
			"links-by-state.LINKED": "3", "links-by-state.RELINK_REQUIRED": "1",
			"links-by-skill.baby": "3", "links-by-skill.home": "1",
			"deliveries.PENDING": "1", "deliveries.FAILED": "1", "deliveries.DELIVERED": "0",
			"last-hour.invalid_grant": "1",
		} {
			if cards[k] != want {
				t.Errorf("overview %s = %q, want %s (all: %v)", k, cards[k], want, cards)
			}
		}
		b.screenshot("overview")
		// The token stays in the tab: no cookie, and never on the page.
		if cookies := eval[string](b, `document.cookie`); cookies != "" {
			t.Errorf("document.cookie = %q, want none", cookies)
		}
		if eval[bool](b, `document.body.innerText.includes(JSON.parse(sessionStorage.getItem('broker-console.token')).access_token)`) {
			t.Error("the page shows the access token")
		}
	})

	t.Run("Links", func(t *testing.T) {
		b := b.in(t)
		b.rerender("the links page", chromedp.Click(chromedp.CSS(`nav a[data-view="links"]`)))
		b.waitFor("the links of both skills", rowCount(4))
		want := []consoleRow{
			{demoUser, babySkill, "LINKED", ""},
			{"grandma", babySkill, "⚠ RELINK_REQUIRED", "relink"},
			{"to-delete", babySkill, "LINKED", ""},
			{demoUser, homeSkill, "LINKED", ""},
		}
		if diff := cmp.Diff(want, eval[[]consoleRow](b, rowsJS)); diff != "" {
			t.Errorf("links (-want +got):\n%s", diff)
		}
		b.screenshot("links")
	})

	t.Run("Filters", func(t *testing.T) {
		b := b.in(t)
		for _, tc := range []struct {
			name, skill, state, prefix string
			want                       []string
		}{
			{"Skill", homeSkill, "", "", []string{demoUser + " in home"}},
			{"State", "", "RELINK_REQUIRED", "", []string{"grandma in baby"}},
			{"Prefix", "", "", "to-", []string{"to-delete in baby"}},
			{"All", babySkill, "LINKED", "d", []string{demoUser + " in baby"}},
			{"None", "", "", "nobody", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := b.in(t)
				b.setValues(map[string]string{"filter-skill": tc.skill, "filter-state": tc.state, "filter-prefix": tc.prefix})
				b.rerender("the filtered links", chromedp.Click(chromedp.ID("apply")))
				var got []string
				for _, r := range eval[[]consoleRow](b, rowsJS) {
					got = append(got, r.User+" in "+r.Skill)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("links (-want +got):\n%s", diff)
				}
			})
		}
		b.screenshot("filtered")
	})

	t.Run("UserIDAsText", func(t *testing.T) {
		b := b.in(t)
		const markup = `<script>window.pwned=1</script><img src=x onerror="window.pwned=2">`
		h.in(t).linkSkill(markup, babySkill)
		b.goTo("#/links?prefix=" + url.QueryEscape("<"))
		b.waitFor("the link of the user with markup", rowCount(1))
		if got := eval[string](b, `document.querySelector('#links tbody tr td a').textContent`); got != markup {
			t.Errorf("user id shown as %q, want the text %q", got, markup)
		}
		b.rerender("the link's page", chromedp.Click(chromedp.CSS(`#links tbody tr td a`)))
		if got := b.text("#link-user"); got != markup {
			t.Errorf("link page names %q, want the text %q", got, markup)
		}
		if n := eval[int](b, `document.querySelectorAll('#view script, #view img').length + (window.pwned === undefined ? 0 : 100)`); n != 0 {
			t.Errorf("the user id became markup (%d elements or script runs)", n)
		}
		b.screenshot("user-id")
	})

	t.Run("Link", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/links?skill=baby")
		b.rerender("the link of demo-parent", chromedp.Click(chromedp.CSS(`#links tr[data-user="demo-parent"] a`)))
		b.waitFor("the timeline", `!!document.querySelector('#timeline li')`)
		before := eval[int](b, `document.querySelectorAll('#timeline li').length`)
		if got := b.text(`#pending tr[data-message="report-stuck"]`); !strings.Contains(got, "500") {
			t.Errorf("pending delivery shown as %q, want its last error (500)", got)
		}
		b.screenshot("before-refresh")
		b.do(chromedp.Click(chromedp.ID("refresh")))
		b.waitFor("the timeline to grow by the refresh", `!!document.getElementById('notice') && `+
			`document.querySelectorAll('#timeline li').length === `+strconv.Itoa(before+1)+` && `+
			`document.querySelector('#timeline li').dataset.type === 'link.refreshed'`)
		if got := b.text("#timeline li"); !strings.Contains(got, "trigger: operator") || !strings.Contains(got, consoleClient) {
			t.Errorf("newest event %q, want a refresh by the operator's client %s", got, consoleClient)
		}
		b.screenshot("after-refresh")
	})

	t.Run("Delete", func(t *testing.T) {
		b := b.in(t)
		b.goTo("#/link?skill=baby&user=to-delete")
		if got := b.text("#link-user"); got != "to-delete" {
			t.Fatalf("link page of %q, want to-delete", got)
		}

		// Cancelled: nothing happens.
		b.do(chromedp.Click(chromedp.ID("delete")), chromedp.WaitVisible(chromedp.ID("confirm")))
		if got := b.text("#confirm-user"); got != "to-delete" {
			t.Errorf("the confirmation names %q, want to-delete", got)
		}
		b.screenshot("confirm")
		b.do(chromedp.Click(chromedp.ID("confirm-no")), chromedp.WaitNotVisible(chromedp.ID("confirm")))
		if status, _, body := h.in(t).getLink("to-delete", babySkill); status != http.StatusOK {
			t.Fatalf("after cancelling: %d %s, want the link kept", status, body)
		}

		// Confirmed: the link is gone.
		b.do(chromedp.Click(chromedp.ID("delete")), chromedp.WaitVisible(chromedp.ID("confirm")),
			chromedp.Click(chromedp.ID("confirm-yes")))
		b.waitFor("the links page saying the link is deleted", `location.hash.startsWith('#/links') && !!document.getElementById('notice')`)
		if got := b.text("#notice"); !strings.Contains(got, "Deleted the link of to-delete") {
			t.Errorf("notice %q", got)
		}
		if eval[bool](b, `!!document.querySelector('#links tr[data-user="to-delete"]')`) {
			t.Error("to-delete is still listed")
		}
		if status, _, body := h.in(t).getLink("to-delete", babySkill); status != http.StatusNotFound {
			t.Errorf("after deleting: %d %s, want 404", status, body)
		}
		events := h.in(t).linkEvents("to-delete", babySkill)
		if len(events) == 0 || events[0].Type != "link.deleted" || events[0].Actor != consoleClient {
			t.Errorf("events of to-delete = %+v, want link.deleted by %s first", events, consoleClient)
		}
		b.screenshot("deleted")
	})

	t.Run("Deliveries", func(t *testing.T) {
		b := b.in(t)
		b.rerender("the deliveries page", chromedp.Click(chromedp.CSS(`nav a[data-view="deliveries"]`)))
		b.waitFor("the deliveries", `!!document.querySelector('#deliveries-pending tr[data-message="report-stuck"]') && `+
			`!!document.querySelector('#deliveries-failed tr[data-message="event-refused"]')`)
		if got := b.text(`#deliveries-pending tr[data-message="report-stuck"]`); !strings.Contains(got, "profile_report") || !strings.Contains(got, "500") {
			t.Errorf("pending report shown as %q, want its kind and last error", got)
		}
		if got := b.text(`#deliveries-failed tr[data-message="event-refused"]`); !strings.Contains(got, "alexa_event") || !strings.Contains(got, "400") {
			t.Errorf("failed event shown as %q, want its kind and last error", got)
		}
		b.screenshot("deliveries")
		b.setValues(map[string]string{"filter-kind": "alexa_event"})
		b.rerender("the Alexa events only", chromedp.Click(chromedp.ID("apply")))
		if !eval[bool](b, `location.hash === '#/deliveries?kind=alexa_event' && !!document.getElementById('deliveries-pending-empty') && `+
			`!!document.querySelector('#deliveries-failed tr[data-message="event-refused"]')`) {
			t.Error("with kind alexa_event, want no pending delivery and the failed event")
		}
	})

	t.Run("NoAdmin", func(t *testing.T) {
		b := b.in(t)
		b.do(chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin")))
		b.signIn(consoleURL, "broker:admin")
		b.do(chromedp.WaitVisible(chromedp.ID("forbidden")))
		if got := b.text("#forbidden"); !strings.Contains(got, "lacks the scope broker:admin") {
			t.Errorf("message %q does not name the missing scope", got)
		}
		if eval[bool](b, `!!document.querySelector('.card, #links, #timeline')`) {
			t.Error("the console shows data without broker:admin")
		}
		b.screenshot("no-admin")
	})
}

// TestConsole_Off: without BROKER_CONSOLE_CLIENT_ID there is no console.
func TestConsole_Off(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/console/", "/console/console.js", "/console/config.json"} {
		req, err := http.NewRequest("GET", h.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if status, body, _ := h.do(req); status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, status, body)
		}
	}
}
