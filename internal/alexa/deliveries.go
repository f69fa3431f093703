package alexa

import (
	"context"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Deliveries sends each delivery of the outbox to the API of its kind:
// profile reports to the Health profile API, Alexa events to the Event
// Gateway, both at the host of the link's region.
type Deliveries struct {
	// Health sends profile reports.
	Health *Client
	// Events sends Alexa events.
	Events *EventGateway
}

var _ reports.Sender = Deliveries{}

// Send sends r with accessToken, as Client.Send does for a profile report and
// EventGateway.Send for an Alexa event (r.Message), with their errors. It
// returns an EINVALID error for r nil or of an unknown kind.
func (d Deliveries) Send(ctx context.Context, region string, accessToken tokens.Secret, r *reports.Report) error {
	if r == nil {
		return tokens.Errorf(tokens.EINVALID, "no delivery to send")
	}
	switch r.DeliveryKind() {
	case reports.KindProfileReport:
		return d.Health.Send(ctx, region, accessToken, r)
	case reports.KindAlexaEvent:
		return d.Events.Send(ctx, region, accessToken, r.Message)
	}
	return tokens.Errorf(tokens.EINVALID, "delivery %q has an unknown kind %q", r.MessageID, string(r.Kind))
}
