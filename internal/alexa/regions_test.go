package alexa_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/alexa"
)

func TestRegionsFor(t *testing.T) {
	const (
		sim   = "http://127.0.0.1:9302"
		proxy = "https://proxy.example/alexa"
	)
	for _, tc := range []struct {
		name     string
		base     string
		region   string // what a link remembers
		endpoint string // where its reports go
	}{
		{"AmazonNoRegion", alexa.DefaultBaseURL, "", "https://api.amazonalexa.com/v1/health/profile"},
		{"AmazonNA", alexa.DefaultBaseURL, alexa.RegionNA, "https://api.amazonalexa.com/v1/health/profile"},
		{"AmazonEU", alexa.DefaultBaseURL, alexa.RegionEU, "https://api.eu.amazonalexa.com/v1/health/profile"},
		{"AmazonFE", alexa.DefaultBaseURL, alexa.RegionFE, "https://api.fe.amazonalexa.com/v1/health/profile"},
		{"AmazonLowerCase", alexa.DefaultBaseURL, "eu", "https://api.eu.amazonalexa.com/v1/health/profile"},
		{"AmazonUnknownRegion", alexa.DefaultBaseURL, "MARS", "https://api.amazonalexa.com/v1/health/profile"},
		{"SimulatorNoRegion", sim, "", sim + "/v1/health/profile"},
		{"SimulatorNA", sim, alexa.RegionNA, sim + "/v1/health/profile"},
		{"SimulatorEU", sim, alexa.RegionEU, sim + "/v1/health/profile"},
		{"SimulatorFE", sim, alexa.RegionFE, sim + "/v1/health/profile"},
		{"ProxyEU", proxy, alexa.RegionEU, proxy + "/v1/health/profile"},
		{"AmazonNotWrittenSoEU", alexa.DefaultBaseURL + "/", alexa.RegionEU, "https://api.amazonalexa.com/v1/health/profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := alexa.New(alexa.Options{BaseURL: tc.base, Regions: alexa.RegionsFor(tc.base)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := c.Endpoint(tc.region); got != tc.endpoint {
				t.Errorf("Endpoint(%q) = %q, want %q", tc.region, got, tc.endpoint)
			}
		})
	}
	t.Run("SameRegionsEverywhere", func(t *testing.T) {
		amazon := slices.Sorted(maps.Keys(alexa.RegionsFor(alexa.DefaultBaseURL)))
		other := slices.Sorted(maps.Keys(alexa.RegionsFor(sim)))
		if diff := cmp.Diff(amazon, other); diff != "" {
			t.Errorf("regions differ between Amazon and another API (-Amazon +other):\n%s", diff)
		}
	})
	t.Run("Fresh", func(t *testing.T) {
		alexa.RegionsFor(sim)[alexa.RegionEU] = "changed"
		alexa.RegionsFor(alexa.DefaultBaseURL)[alexa.RegionEU] = "changed"
		if got := alexa.RegionsFor(sim)[alexa.RegionEU]; got != sim {
			t.Errorf("RegionsFor(sim)[EU] = %q after a caller changed an earlier map", got)
		}
		if got := alexa.RegionsFor(alexa.DefaultBaseURL)[alexa.RegionEU]; got != "https://api.eu.amazonalexa.com" {
			t.Errorf("RegionsFor(Amazon)[EU] = %q after a caller changed an earlier map", got)
		}
	})
}
