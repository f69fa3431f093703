package server

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// NewAlexaEventService returns the service that accepts Alexa events of the
// users of the skills of ss, for s to deliver.
func NewAlexaEventService(s *reports.Service, ss *tokens.Services) brokerv1.AlexaEventServiceServer {
	return &alexaEventService{s: s, ss: ss}
}

// alexaEventService accepts Alexa events and answers for their delivery.
type alexaEventService struct {
	brokerv1.UnimplementedAlexaEventServiceServer
	s  *reports.Service
	ss *tokens.Services
}

// SubmitAlexaEvent stores the event for delivery. It returns an EINVALID error
// when event is missing, the errors of userSkill, and those of
// reports.Service.SubmitAlexaEvent.
func (a *alexaEventService) SubmitAlexaEvent(ctx context.Context, req *brokerv1.SubmitAlexaEventRequest) (*brokerv1.SubmitAlexaEventResponse, error) {
	skill, err := userSkill(a.ss, req.GetSkillId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	if req.GetEvent() == nil {
		return nil, tokens.Errorf(tokens.EINVALID, "event is required")
	}
	message, err := alexaMessage(req)
	if err != nil {
		return nil, err
	}
	r, err := a.s.SubmitAlexaEvent(ctx, skill.SkillID, req.GetUserId(), message)
	if err != nil {
		return nil, err
	}
	return &brokerv1.SubmitAlexaEventResponse{MessageId: r.MessageID, State: reportState(r.State)}, nil
}

// alexaMessage returns the message to send to the Event Gateway:
// {"event":…,"context":…}, the context left out when the request has none.
func alexaMessage(req *brokerv1.SubmitAlexaEventRequest) ([]byte, error) {
	var m struct {
		Event   json.RawMessage `json:"event"`
		Context json.RawMessage `json:"context,omitempty"`
	}
	var err error
	if m.Event, err = protojson.Marshal(req.GetEvent()); err != nil {
		return nil, tokens.Errorf(tokens.EINVALID, "event: %v", err)
	}
	if req.GetContext() != nil {
		if m.Context, err = protojson.Marshal(req.GetContext()); err != nil {
			return nil, tokens.Errorf(tokens.EINVALID, "context: %v", err)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal Alexa event: %w", err)
	}
	return b, nil
}

// GetAlexaEvent returns an Alexa event's delivery record. It returns an
// EINVALID error for an empty message_id, ErrReportNotFound for a message id
// of a profile report, and the errors of reports.Service.Report.
func (a *alexaEventService) GetAlexaEvent(ctx context.Context, req *brokerv1.GetAlexaEventRequest) (*brokerv1.AlexaEvent, error) {
	if req.GetMessageId() == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "message_id is required")
	}
	r, err := a.s.Report(ctx, req.GetMessageId())
	if err != nil {
		return nil, err
	}
	if r.Kind != reports.KindAlexaEvent {
		return nil, fmt.Errorf("message %q is not an Alexa event: %w", r.MessageID, reports.ErrReportNotFound)
	}
	return &brokerv1.AlexaEvent{
		MessageId:   r.MessageID,
		UserId:      r.UserID,
		SkillId:     skillOf(r),
		State:       reportState(r.State),
		Attempts:    int32(r.Attempts),
		LastError:   r.LastError,
		DeliveredAt: timestamp(r.DeliveredAt),
	}, nil
}
