// Package sim simulates the parties around the broker that tests, `broker
// sandbox` and `broker simulate` cannot reach:
//
//   - LWA: Login with Amazon's token endpoint (code exchange and refresh, with
//     refresh-token rotation and revocation), for several clients (one per
//     skill), each code and refresh token bound to its client;
//   - Alexa: the Alexa API host, for all three regions: the Alexa Health
//     profile API and the Alexa Event Gateway (Alexa.Events), both accepting
//     LWA's access tokens;
//   - AuthServer: the partner's authorization server, which publishes a JWKS
//     and mints the JWT access tokens that Alexa and the companion backend
//     present to the broker, and signs operators in to the broker's console
//     (authorization code with PKCE, for public clients);
//   - Webhooks: the partner's companion backend receiving the broker's signed
//     webhooks, which it verifies and records;
//   - KMS: the two operations of AWS KMS that envelope encryption uses,
//     GenerateDataKey and Decrypt, over the protocol the AWS SDK speaks.
//
// Each simulator is a real HTTP server on a loopback address (an http.Handler
// too) that behaves like the service it stands for, faults included
// (invalid_grant, 401, 403, 429 with Retry-After, 5xx, slow answers), so that
// the broker's real clients are exercised end to end. Faults switches them on
// by name (FaultNames), and Clock is a settable clock for their Now options.
//
// Set starts LWA, the Alexa Health API, the authorization server, KMS when
// asked, and an admin route for faults and fresh codes, all at once: on free
// ports for tests and the sandbox, on fixed ones for `broker simulate`. It
// gives the settings that point a broker at them (BrokerEnv for one skill;
// SkillsEnv, which writes a skills file, for the skills of SetOptions.Skills)
// and stops them with one Close.
package sim
