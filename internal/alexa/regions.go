package alexa

// Amazon's Alexa API regions: a link remembers one of them (or none, for
// BaseURL), and its reports and events go to that region's host.
const (
	RegionNA = "NA" // North America
	RegionEU = "EU" // Europe and India
	RegionFE = "FE" // the Far East
)

// DefaultRegions returns the Alexa API hosts of Amazon's three regions, keyed
// RegionNA, RegionEU and RegionFE. The map is new on every call; the caller may
// change it.
func DefaultRegions() map[string]string {
	return map[string]string{
		RegionNA: "https://api.amazonalexa.com",
		RegionEU: "https://api.eu.amazonalexa.com",
		RegionFE: "https://api.fe.amazonalexa.com",
	}
}

// RegionsFor returns the Regions of a client whose BaseURL is base: Amazon's
// regional hosts (DefaultRegions) when base is DefaultBaseURL, written exactly
// so, and base for every region otherwise, so that a broker pointed at another
// API (a simulator, a proxy) sends every report and event there, whatever
// region a link remembers. The map is new on every call; the caller may change it.
func RegionsFor(base string) map[string]string {
	if base == DefaultBaseURL {
		return DefaultRegions()
	}
	return map[string]string{RegionNA: base, RegionEU: base, RegionFE: base}
}
