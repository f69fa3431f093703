package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
)

// dynamoSettings starts dynalite with a fresh table and returns the settings
// of a broker on it, in an AWS environment of made-up credentials.
func dynamoSettings(tb testing.TB) map[string]string {
	tb.Helper()
	endpoint := dynamotest.Start(tb)
	table := dynamotest.NewTable(tb, endpoint)
	fakeAWSEnv(tb)
	return map[string]string{
		"BROKER_STORE":                 "dynamodb:" + table,
		"BROKER_DYNAMODB_ENDPOINT":     endpoint,
		"BROKER_DYNAMODB_CREATE_TABLE": "true",
	}
}

// another boots one more broker on h's configuration, simulators and clock,
// as another instance behind the load balancer would be: the store must be
// one that instances share (DynamoDB). It stops when the test ends.
func (h *harness) another() *harness {
	h.tb.Helper()
	c := *h
	c.start()
	return &c
}

// TestDynamo_AlexaEvents_ThreeInstances: three brokers share one table. Three
// users' Alexa events, ten each, are submitted through the instances in turn
// while all three deliver: the Event Gateway receives each event exactly
// once, and each user's in the order they were accepted.
func TestDynamo_AlexaEvents_ThreeInstances(t *testing.T) {
	first := newHarnessWith(t, sim.SetOptions{Skills: twoSkills}, dynamoSettings(t))
	instances := []*harness{first, first.another(), first.another()}
	events := first.sims.Auth.ClientToken("skill-backend", []string{"broker:events"}, time.Hour)
	gateway := first.sims.Alexa.Events()
	// Slow answers keep a delivery in flight while other instances poll.
	gateway.SetDelay(5 * time.Millisecond)
	users := []string{"user-a", "user-b", "user-c"}
	const perUser = 10
	for _, u := range users {
		first.linkSkill(u, "home")
	}

	want := map[string][]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, u := range users {
		wg.Go(func() {
			for i := range perUser {
				id := fmt.Sprintf("%s-%02d", u, i)
				event := changeReport(id, "thermostat")
				if i%3 == 2 {
					event = addOrUpdateReport(id)
				}
				// Each user's events go through each instance in turn; a
				// submission returns once the event is stored.
				status, body := instances[i%3].call("POST", "/v1/alexa-events", events, alexaEventBody(u, "home", event, changeContext))
				if status != http.StatusAccepted {
					t.Errorf("submit %s through instance %d: %d %s", id, i%3, status, body)
					return
				}
				mu.Lock()
				want[u] = append(want[u], id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, u := range users {
		for i, id := range want[u] {
			first.waitAlexaEventState(events, id, "DELIVERED")
			if v := instances[(i+1)%3].alexaEvent(events, id); v.State != "DELIVERED" || v.SkillID != "home" || v.UserID != u {
				t.Errorf("%s read through another instance: %+v", id, v)
			}
		}
	}
	for _, u := range users {
		if got := first.received(u); !slices.Equal(got, want[u]) {
			t.Errorf("%s: the gateway received %v, want each event once in the order accepted, %v", u, got, want[u])
		}
	}
	if s := gateway.Stats(); s.Delivered != len(users)*perUser {
		t.Errorf("the gateway accepted %d events, want %d", s.Delivered, len(users)*perUser)
	}
}

// TestSkills_DefaultKept: a broker of one skill links a user; restarted with
// a skills file whose skill "default" has the same LWA and Alexa clients,
// beside another skill, it keeps the link where it was: the same partner
// token, with or without skill_id, refreshed later with the stored refresh
// token, on each store.
func TestSkills_DefaultKept(t *testing.T) {
	skills := []sim.Skill{
		{ID: "default", AlexaClientID: sim.DefaultAlexaClientID, LWAClientID: sim.DefaultLWAClientID},
		{ID: "home", Region: "EU"},
	}
	for name, settings := range map[string]func(testing.TB) map[string]string{
		"bolt":     func(testing.TB) map[string]string { return nil },
		"dynamodb": dynamoSettings,
	} {
		t.Run(name, func(t *testing.T) {
			store := settings(t)
			h := newSimHarness(t, sim.SetOptions{Skills: skills})
			env := h.sims.BrokerEnv()
			maps.Copy(env, store)
			h.configure(env)
			h.start()
			h.link("parent") // the single skill's layout, through the default view
			before := h.partnerToken("parent", "")

			env = h.skillsEnv()
			maps.Copy(env, store)
			h.configure(env)
			h.restart()

			refreshes := h.sims.LWA.Stats().Refreshes
			for _, skillID := range []string{"", "default"} {
				if got := h.partnerToken("parent", skillID); got != before {
					t.Errorf("partner token with skill_id %q after the restart: another token than before", skillID)
				}
			}
			if status, l, body := h.getLink("parent", ""); status != http.StatusOK || l.SkillID != "default" || l.State != "LINKED" {
				t.Errorf("GET the link without skill_id: %d %s, want it LINKED in default", status, body)
			}
			if status, _, _ := h.getLink("parent", "home"); status != http.StatusNotFound {
				t.Errorf("GET a home link: %d, want 404", status)
			}
			h.linkSkill("parent", "home")
			h.clock.Advance(56 * time.Minute) // the default link's token needs a refresh
			if got := h.partnerToken("parent", "default"); got == before || !h.sims.LWA.ValidAccessToken(got) {
				t.Error("the default link's token was not refreshed with its stored refresh token")
			}
			if got := h.sims.LWA.Stats().Refreshes - refreshes; got < 1 {
				t.Errorf("LWA refreshes = %d, want at least the default link's", got)
			}
			if client, _ := h.sims.LWA.AccessTokenClient(h.partnerToken("parent", "home")); client != h.skill("home").LWAClientID {
				t.Errorf("the home token is of LWA client %q, want the home skill's", client)
			}
		})
	}
}
