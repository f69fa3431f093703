// Package events tells the partner's companion backend what happened to its
// users' links: the webhook outbox's port and rules, and the deliverer that
// POSTs each event signed as the Standard Webhooks specification says, one
// event of a user at a time and in order, with retries until a deadline.
//
// The events themselves (tokens.Event) are recorded by the domain with the
// change they describe, and stored with it; this package only sends them.
package events
