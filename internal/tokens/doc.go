// Package tokens is the broker's domain: a user's link to Login with Amazon, the
// sealed tokens it holds, the store that keeps links, and the service that exchanges
// authorization codes and hands out fresh access tokens.
//
// The package imports only the standard library and golang.org/x/sync, whose
// singleflight lets concurrent callers share one exchange or refresh of a user.
// Adapters satisfy the small interfaces declared here: Store and its optional
// Leaser (the bbolt and DynamoDB stores), Sealer (internal/seal) and Exchanger
// (the LWA client). Their doc comments are the specification: each method says
// which error codes it returns and when, and the conformance suite in
// internal/store/storetest holds every store to it.
//
// One concept per file, each in the same order (the type, its Validate, the
// interface, then pages and filters): state.go, link.go, sealer.go,
// exchanger.go, store.go, leaser.go and error.go, secret.go for the domain's
// types and ports; service.go, exchange.go, codehash.go, plaintext.go,
// refresh.go, lease.go, relink.go, usage.go, background.go and drain.go (Close:
// waiting for the refreshes and exchanges in flight) for the Service;
// keyring.go (the KeyRing port of a Sealer of several keys), reseal.go (the
// Resealer, which counts links by key and seals them again under the first)
// and keycheck.go (the start-up check of the keys against stored links).
// A link's life is recorded as events stored with each change: event.go (the
// Event and its types), eventstore.go (the EventStore port of the audit
// trail), notify.go (which events the webhook is sent), observer.go (the
// EventObserver of metrics), cause.go (triggers, reasons and Deletion: who and
// why), linklist.go (listing links by state) and eventsweep.go (retention).
package tokens
