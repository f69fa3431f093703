package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"sync"
	"testing"
	"time"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/lwa"
	"github.com/reciprocal-broker/broker/internal/seal"
	"github.com/reciprocal-broker/broker/internal/sim"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// TestDynamo_ThreeInstances: three token services, each with its own store
// client, process-local refresh and caches, share one table. 300 concurrent
// partner-token requests on an expired link, spread across them, cause exactly
// one LWA refresh; every caller gets the new token; and the stored refresh token
// is the last one LWA issued.
func TestDynamo_ThreeInstances(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	ctx := t.Context()
	clk := sim.NewClock(time.Now())
	lwaSim := sim.NewLWA(sim.LWAOptions{Now: clk.Now})
	if err := lwaSim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lwaSim.Close() })
	key, err := seal.ParseKey(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}

	var instances []*tokens.Service
	for range 3 {
		store, err := dynamo.New(ctx, dynamo.Options{Table: table, Client: dynamotest.Client(endpoint), CreateTable: true})
		if err != nil {
			t.Fatal(err)
		}
		client, err := lwa.New(lwa.Options{TokenURL: lwaSim.TokenURL(), ClientID: lwaSim.ClientID(),
			ClientSecret: tokens.Secret(lwaSim.ClientSecret()), Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		svc := tokens.NewService(store, sealer, client)
		svc.Now = clk.Now
		instances = append(instances, svc)
	}
	if _, err := instances[0].Exchange(ctx, "shared", tokens.Secret(lwaSim.IssueCodeFor("shared")), ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour) // the access token has expired
	lwaSim.SetDelay(100 * time.Millisecond)
	before := lwaSim.Stats().Refreshes

	const callers = 300
	got := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			tok, err := instances[i%3].Token(ctx, "shared")
			got[i], errs[i] = tok.AccessToken.Reveal(), err
		}()
	}
	wg.Wait()
	lwaSim.SetDelay(0)
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d (instance %d): %v", i, i%3, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("caller %d got another token than caller 0", i)
		}
	}
	if !lwaSim.ValidAccessToken(got[0]) {
		t.Error("the shared token is not valid at LWA")
	}
	if n := lwaSim.Stats().Refreshes - before; n != 1 {
		t.Errorf("LWA refreshes = %d across three instances, want exactly 1", n)
	}
	// LWA accepts only the newest refresh token of a grant: a refresh with the
	// stored one works only if it is the last one LWA issued.
	if _, err := instances[2].Refresh(ctx, "shared"); err != nil {
		t.Errorf("refresh with the stored refresh token: %v (want it to be the newest)", err)
	}
}

// TestDynamo_Broker boots the whole broker on BROKER_STORE=dynamodb:TABLE and
// runs the story: hand-over, partner token with a refresh, report delivered.
func TestDynamo_Broker(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	h := newHarnessWith(t, map[string]string{
		"BROKER_STORE":                 "dynamodb:" + table,
		"BROKER_DYNAMODB_ENDPOINT":     endpoint,
		"BROKER_DYNAMODB_CREATE_TABLE": "true",
	})
	if status, body := h.call("GET", "/readyz", "", ""); status != http.StatusOK {
		t.Fatalf("/readyz = %d %s", status, body)
	}
	h.link("parent")
	h.clock.Advance(56 * time.Minute)
	if tok, status := transports["gRPC"](t, h, h.clientToken("broker:tokens"), "parent"); status != 200 || !h.lwa.ValidAccessToken(tok) {
		t.Fatalf("partner token: status %d", status)
	}
	profiles := h.clientToken("broker:profiles")
	id := h.submit(profiles, jenny("parent", ""))
	h.waitState(profiles, id, "DELIVERED")
	resp, err := brokerv1.NewLinkServiceClient(h.conn).ListLinks(withBearer(t.Context(), h.clientToken("broker:admin")), &brokerv1.ListLinksRequest{})
	if err != nil || len(resp.GetLinks()) != 1 {
		t.Errorf("ListLinks = %v, %v; want the one link", resp, err)
	}
}
