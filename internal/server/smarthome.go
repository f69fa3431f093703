package server

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/smarthome"
)

// NewSmartHomeService returns the gRPC face of AcceptGrant: s carries the
// directives out for the skill that skills resolves, as the HTTP route does.
func NewSmartHomeService(s *smarthome.Service, skills smarthome.SkillResolver) brokerv1.SmartHomeServiceServer {
	return &smartHomeService{s: s, skills: skills}
}

// smartHomeService takes AcceptGrant directives over gRPC.
type smartHomeService struct {
	brokerv1.UnimplementedSmartHomeServiceServer
	s      *smarthome.Service
	skills smarthome.SkillResolver
}

// AcceptGrant carries the directive out and returns Alexa's answer, an
// AcceptGrant.Response or an ErrorResponse, with status OK: the answer is
// the message for the skill to return to Alexa either way. It returns an
// error only when the answer cannot be made (EINTERNAL).
func (h *smartHomeService) AcceptGrant(ctx context.Context, req *brokerv1.AcceptGrantRequest) (*brokerv1.AcceptGrantResponse, error) {
	var res smarthome.Result
	if skill, err := h.skills(req.GetSkillId()); err != nil {
		res = smarthome.ErrorResult(err)
	} else {
		directive, err := protojson.Marshal(&brokerv1.AcceptGrantRequest{Directive: req.GetDirective()})
		if err != nil {
			return nil, fmt.Errorf("marshal directive: %w", err)
		}
		res = h.s.AcceptGrant(ctx, skill, directive)
	}
	var answer struct {
		Event json.RawMessage `json:"event"`
	}
	if err := json.Unmarshal(res.Body, &answer); err != nil {
		return nil, fmt.Errorf("AcceptGrant answer: %w", err)
	}
	event := &structpb.Struct{}
	if err := protojson.Unmarshal(answer.Event, event); err != nil {
		return nil, fmt.Errorf("AcceptGrant answer: %w", err)
	}
	return &brokerv1.AcceptGrantResponse{Event: event}, nil
}
