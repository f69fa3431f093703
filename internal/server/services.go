package server

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The gRPC services below only translate between the API's messages and the
// domain; errors go back unchanged, and callError maps their codes. The
// caller has passed authenticator's check before any of them is called.

// NewReciprocalService returns the gRPC face of Alexa's hand-over, limited by
// limiter (nil limits nothing) as the form endpoint is. Its errors go through
// the broker's error table, not the form endpoint's RFC 6749 one.
func NewReciprocalService(s *reciprocal.Service, limiter *reciprocal.Limiter) brokerv1.ReciprocalServiceServer {
	return &reciprocalService{s: s, limiter: limiter}
}

// reciprocalService is the gRPC face of Alexa's hand-over.
type reciprocalService struct {
	brokerv1.UnimplementedReciprocalServiceServer
	s       *reciprocal.Service
	limiter *reciprocal.Limiter
}

// Authorize hands the code over for the user that the caller's token names,
// within reciprocal.Deadline, which the interceptor started before it
// verified the token (deadlines). It returns an ERATELIMIT error
// (RESOURCE_EXHAUSTED, with the seconds to wait in the retry-after header)
// when the user or the client asked too often, and the errors of
// reciprocal.Service.Authorize.
func (r *reciprocalService) Authorize(ctx context.Context, req *brokerv1.AuthorizeRequest) (*brokerv1.AuthorizeResponse, error) {
	p, _ := auth.FromContext(ctx)
	if wait, err := r.limiter.Allow(p); err != nil {
		_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", strconv.Itoa(int(wait/time.Second))))
		return nil, err
	}
	err := r.s.Authorize(ctx, p, reciprocal.Request{
		GrantType: req.GetGrantType(), Code: tokens.Secret(req.GetCode()), ClientID: req.GetClientId(),
	})
	if err != nil {
		return nil, err
	}
	return &brokerv1.AuthorizeResponse{}, nil
}

// NewPartnerTokenService returns the service that hands out access tokens of
// the skills of ss; now is the clock that expires_in is counted from.
func NewPartnerTokenService(ss *tokens.Services, now func() time.Time) brokerv1.PartnerTokenServiceServer {
	return &partnerTokenService{ss: ss, now: now}
}

// partnerTokenService hands the companion backend users' access tokens.
type partnerTokenService struct {
	brokerv1.UnimplementedPartnerTokenServiceServer
	ss  *tokens.Services
	now func() time.Time
}

// GetPartnerToken returns the user's access token. It returns the errors of
// userSkill, and those of tokens.Service.Token.
func (p *partnerTokenService) GetPartnerToken(ctx context.Context, req *brokerv1.GetPartnerTokenRequest) (*brokerv1.GetPartnerTokenResponse, error) {
	s, err := userSkill(p.ss, req.GetSkillId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	t, err := s.Token(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	// The response and its timestamp in one allocation rather than two.
	r := new(struct {
		resp      brokerv1.GetPartnerTokenResponse
		expiresAt timestamppb.Timestamp
	})
	r.expiresAt.Seconds, r.expiresAt.Nanos = t.ExpiresAt.Unix(), int32(t.ExpiresAt.Nanosecond()) // as timestamppb.New
	r.resp.AccessToken = t.AccessToken.Reveal()
	r.resp.TokenType = "bearer"
	r.resp.ExpiresAt = &r.expiresAt
	r.resp.ExpiresIn = int32(t.ExpiresAt.Sub(p.now()) / time.Second)
	return &r.resp, nil
}

// NewLinkService returns the service operators use to manage the links of
// the skills of ss.
func NewLinkService(ss *tokens.Services) brokerv1.LinkServiceServer {
	return &linkService{ss: ss}
}

// linkService lets operators see and manage links.
type linkService struct {
	brokerv1.UnimplementedLinkServiceServer
	ss *tokens.Services
}

// userSkill returns the token service of a call about userID in skillID. It
// returns an EINVALID error naming user_id when userID is empty or cannot be
// a user id, and the errors of tokens.Services.Resolve.
func userSkill(ss *tokens.Services, skillID, userID string) (*tokens.Service, error) {
	if userID == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "user_id is required")
	}
	if err := tokens.CheckUserID(userID); err != nil {
		return nil, err
	}
	return ss.Resolve(skillID)
}

// GetLink returns the user's link. It returns the errors of userSkill, and
// those of tokens.Service.Link.
func (l *linkService) GetLink(ctx context.Context, req *brokerv1.GetLinkRequest) (*brokerv1.Link, error) {
	s, err := userSkill(l.ss, req.GetSkillId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	link, err := s.Link(ctx, req.GetUserId())
	if err != nil {
		return nil, err
	}
	return linkMessage(link), nil
}

// ListLinks returns one page of the links of a skill, optionally of one
// state and of one user id prefix. It returns an EINVALID error for a negative page_size or an unknown
// state, the errors of tokens.Services.Resolve, and those of
// tokens.Service.Links.
func (l *linkService) ListLinks(ctx context.Context, req *brokerv1.ListLinksRequest) (*brokerv1.ListLinksResponse, error) {
	if req.GetPageSize() < 0 {
		return nil, tokens.Errorf(tokens.EINVALID, "page_size must not be negative")
	}
	s, err := l.ss.Resolve(req.GetSkillId())
	if err != nil {
		return nil, err
	}
	filter := tokens.LinkFilter{UserIDPrefix: req.GetUserIdPrefix()}
	switch req.GetState() {
	case brokerv1.LinkState_LINK_STATE_UNSPECIFIED:
	case brokerv1.LinkState_LINKED:
		filter.State = tokens.StateLinked
	case brokerv1.LinkState_RELINK_REQUIRED:
		filter.State = tokens.StateRelinkRequired
	default:
		return nil, tokens.Errorf(tokens.EINVALID, "state %d is not a link state", req.GetState())
	}
	page, err := s.Links(ctx, filter, req.GetPageToken(), tokens.PageSize(int(req.GetPageSize())))
	if err != nil {
		return nil, err
	}
	resp := &brokerv1.ListLinksResponse{NextPageToken: page.Next}
	for _, link := range page.Links {
		resp.Links = append(resp.Links, linkMessage(link))
	}
	return resp, nil
}

// DeleteLink removes the user's link, recording the calling client and the
// request's reason in its event. It returns the errors of userSkill, and those
// of tokens.Service.Delete.
func (l *linkService) DeleteLink(ctx context.Context, req *brokerv1.DeleteLinkRequest) (*brokerv1.DeleteLinkResponse, error) {
	s, err := userSkill(l.ss, req.GetSkillId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	by := tokens.Deletion{Actor: actor(ctx), Reason: req.GetReason()}
	if err := s.Delete(ctx, req.GetUserId(), by); err != nil {
		return nil, err
	}
	return &brokerv1.DeleteLinkResponse{}, nil
}

// RefreshLink refreshes the user's tokens now, for the calling client. It
// returns the errors of userSkill, and those of
// tokens.Service.RefreshByOperator.
func (l *linkService) RefreshLink(ctx context.Context, req *brokerv1.RefreshLinkRequest) (*brokerv1.Link, error) {
	s, err := userSkill(l.ss, req.GetSkillId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	link, err := s.RefreshByOperator(ctx, req.GetUserId(), actor(ctx))
	if err != nil {
		return nil, err
	}
	return linkMessage(link), nil
}

// actor names the caller as the actor of the events its call causes: the
// token's client, or its subject should a token name no client.
func actor(ctx context.Context) string {
	p, _ := auth.FromContext(ctx)
	if p.ClientID != "" {
		return p.ClientID
	}
	return p.Subject
}

// linkMessage is what may be shown of a link: no token, sealed or not.
func linkMessage(l *tokens.Link) *brokerv1.Link {
	state := brokerv1.LinkState_LINKED
	if l.State == tokens.StateRelinkRequired {
		state = brokerv1.LinkState_RELINK_REQUIRED
	}
	return &brokerv1.Link{
		UserId:               l.UserID,
		SkillId:              l.SkillID,
		State:                state,
		Region:               l.Region,
		LinkedAt:             timestamp(l.LinkedAt),
		AccessTokenExpiresAt: timestamp(l.AccessTokenExpiresAt),
		LastRefreshedAt:      timestamp(l.LastRefreshedAt),
	}
}

// timestamp returns t as a protobuf timestamp, nil (absent) for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
