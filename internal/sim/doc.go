// Package sim simulates the parties around the broker that tests and the sandbox
// cannot reach: Login with Amazon's token endpoint, the Alexa Health profile API,
// and the partner's own authorization server. Each simulator is a real HTTP server
// on 127.0.0.1 that behaves like the service it stands for, faults included
// (invalid_grant, 429 with Retry-After, 5xx, slow answers), so the broker's real
// HTTP clients are exercised end to end.
package sim
