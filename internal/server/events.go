package server

import (
	"cmp"
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/structpb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// WebhookBacklog is what GetStats needs of the webhook outbox
// (events.Store): how many webhooks wait, without reading every event.
type WebhookBacklog interface {
	// WebhookBacklog returns how many webhooks are PENDING and when the oldest
	// of them occurred; see events.Store.
	WebhookBacklog(ctx context.Context) (pending int, oldest time.Time, err error)
}

// EventSources are what EventService reads, all of them usually the broker's
// one store. A nil field answers UNIMPLEMENTED for the rpcs that need it.
type EventSources struct {
	// Events is the audit trail, for ListLinkEvents and ListEvents.
	Events tokens.EventStore
	// Links counts links by state, for GetStats.
	Links tokens.LinkCounter
	// SkillLinks count each skill's links, by skill id, for GetStats of one
	// skill; nil answers such calls UNIMPLEMENTED.
	SkillLinks map[string]tokens.LinkCounter
	// Pending lists the deliveries waiting to be sent, for
	// ListPendingDeliveries.
	Pending PendingDeliveries
	// Reports counts profile reports by state, for GetStats.
	Reports reports.Counter
	// Webhooks counts the webhooks waiting, for GetStats.
	Webhooks WebhookBacklog
	// Skills resolves the skill_id of ListLinkEvents; nil lists every
	// skill's events.
	Skills *tokens.Services
}

// PendingDeliveries is what ListPendingDeliveries needs of the outbox: its
// pending deliveries, all of them (reports.PendingLister) or a lane's
// (reports.Store.LanePendingReports).
type PendingDeliveries interface {
	reports.PendingLister
	// LanePendingReports returns the pending deliveries of lane; see
	// reports.Store.
	LanePendingReports(ctx context.Context, lane string) ([]*reports.Report, error)
}

// NewEventService returns the audit trail's service over src.
func NewEventService(src EventSources) brokerv1.EventServiceServer {
	return &eventService{src: src}
}

// eventService answers for events and stats.
type eventService struct {
	brokerv1.UnimplementedEventServiceServer
	src EventSources
}

// errNoEvents answers the rpcs of a broker whose store keeps no events.
var errNoEvents = tokens.Errorf(tokens.EUNIMPLEMENTED, "the store keeps no events")

// ListLinkEvents returns a page of a user's events in the skill that
// skill_id names (tokens.Services.Resolve's rule: it may be left out when one
// skill is configured, or for the default skill). The audit trail keeps a
// user's events of every skill together, so it reads the trail's pages until
// the page is full, each no larger than what is missing, at most
// linkEventReads of them: a page holds fewer events than page_size, and
// still has a next one, only when the user's other skills' events outnumber
// them that far. It returns an EINVALID error for an empty user_id, an
// unknown or missing skill_id, or a negative page_size, and the errors of
// tokens.EventStore.ListEvents.
func (s *eventService) ListLinkEvents(ctx context.Context, req *brokerv1.ListLinkEventsRequest) (*brokerv1.ListEventsResponse, error) {
	if req.GetUserId() == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "user_id is required")
	}
	filter := tokens.EventFilter{UserID: req.GetUserId()}
	if s.src.Skills == nil {
		return s.list(ctx, filter, req.GetPageToken(), req.GetPageSize())
	}
	svc, err := s.src.Skills.Resolve(req.GetSkillId())
	if err != nil {
		return nil, err
	}
	if req.GetPageSize() < 0 {
		return nil, tokens.Errorf(tokens.EINVALID, "page_size must not be negative")
	}
	want := tokens.PageSize(int(req.GetPageSize()))
	resp := &brokerv1.ListEventsResponse{NextPageToken: req.GetPageToken()}
	for range linkEventReads {
		page, err := s.list(ctx, filter, resp.NextPageToken, int32(want-len(resp.Events)))
		if err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			if e.GetSkillId() == svc.SkillID {
				resp.Events = append(resp.Events, e)
			}
		}
		resp.NextPageToken = page.NextPageToken
		if resp.NextPageToken == "" || len(resp.Events) == want {
			break
		}
	}
	return resp, nil
}

// linkEventReads is how many pages of the audit trail ListLinkEvents reads at
// most for one page of a skill's events.
const linkEventReads = 8

// ListEvents returns a page of every user's events, optionally of one type.
// It returns an EINVALID error for an unknown type or a negative page_size,
// and the errors of tokens.EventStore.ListEvents.
func (s *eventService) ListEvents(ctx context.Context, req *brokerv1.ListEventsRequest) (*brokerv1.ListEventsResponse, error) {
	filter := tokens.EventFilter{Type: tokens.EventType(req.GetType())}
	if filter.Type != "" {
		if err := filter.Type.Validate(); err != nil {
			return nil, err
		}
	}
	return s.list(ctx, filter, req.GetPageToken(), req.GetPageSize())
}

// list reads one page of events that match filter.
func (s *eventService) list(ctx context.Context, filter tokens.EventFilter, cursor string, size int32) (*brokerv1.ListEventsResponse, error) {
	if size < 0 {
		return nil, tokens.Errorf(tokens.EINVALID, "page_size must not be negative")
	}
	if s.src.Events == nil {
		return nil, errNoEvents
	}
	page, err := s.src.Events.ListEvents(ctx, filter, cursor, tokens.PageSize(int(size)))
	if err != nil {
		return nil, err
	}
	resp := &brokerv1.ListEventsResponse{NextPageToken: page.Next, Events: make([]*brokerv1.Event, 0, len(page.Events))}
	for i := range page.Events {
		m, err := EventMessage(&page.Events[i])
		if err != nil {
			return nil, err
		}
		resp.Events = append(resp.Events, m)
	}
	return resp, nil
}

// GetStats counts links (of every skill, or of the skill_id of SkillLinks),
// reports and waiting webhooks, each state present. It returns an EINVALID
// error for a skill_id that SkillLinks lacks, an EUNIMPLEMENTED error when a
// source is missing, and the sources' errors.
func (s *eventService) GetStats(ctx context.Context, req *brokerv1.GetStatsRequest) (*brokerv1.Stats, error) {
	if s.src.Links == nil || s.src.Reports == nil || s.src.Webhooks == nil {
		return nil, tokens.Errorf(tokens.EUNIMPLEMENTED, "the store keeps no counts")
	}
	var links tokens.LinkCounter = s.src.Links
	if id := req.GetSkillId(); id != "" {
		if s.src.SkillLinks == nil {
			return nil, tokens.Errorf(tokens.EUNIMPLEMENTED, "the store keeps no counts by skill")
		}
		if links = s.src.SkillLinks[id]; links == nil {
			return nil, tokens.Errorf(tokens.EINVALID, "unknown skill_id %q", id)
		}
	}
	linkCounts, err := links.CountLinks(ctx)
	if err != nil {
		return nil, err
	}
	deliveries, err := s.src.Reports.CountReports(ctx)
	if err != nil {
		return nil, err
	}
	pending, _, err := s.src.Webhooks.WebhookBacklog(ctx)
	if err != nil {
		return nil, err
	}
	stats := &brokerv1.Stats{
		Links:      map[string]int32{},
		Deliveries: map[string]int32{},
		Webhooks:   map[string]int32{"PENDING": int32(pending)},
	}
	for _, st := range []tokens.State{tokens.StateLinked, tokens.StateRelinkRequired} {
		stats.Links[st.String()] = int32(linkCounts[st])
	}
	for _, st := range []reports.State{reports.StatePending, reports.StateDelivered, reports.StateFailed, reports.StateSuperseded} {
		stats.Deliveries[st.String()] = int32(deliveries[st])
	}
	return stats, nil
}

// ListPendingDeliveries returns a page of the deliveries waiting to be sent,
// or every one of a user's link. It returns an EINVALID error for an unknown
// kind or a negative page_size, with a user_id those of tokens.CheckUserID
// and tokens.Services.Resolve, an EUNIMPLEMENTED error when the store cannot
// list them, and the errors of the source's methods.
func (s *eventService) ListPendingDeliveries(ctx context.Context, req *brokerv1.ListPendingDeliveriesRequest) (*brokerv1.ListPendingDeliveriesResponse, error) {
	kind := reports.Kind(req.GetKind())
	if err := kind.Validate(); err != nil {
		return nil, err
	}
	if req.GetPageSize() < 0 {
		return nil, tokens.Errorf(tokens.EINVALID, "page_size must not be negative")
	}
	if s.src.Pending == nil {
		return nil, tokens.Errorf(tokens.EUNIMPLEMENTED, "the store cannot list its pending deliveries")
	}
	skill := req.GetSkillId()
	var (
		found []*reports.Report
		next  string
	)
	if user := req.GetUserId(); user != "" {
		if err := tokens.CheckUserID(user); err != nil {
			return nil, err
		}
		if s.src.Skills != nil {
			svc, err := s.src.Skills.Resolve(skill)
			if err != nil {
				return nil, err
			}
			skill = svc.SkillID
		}
		for _, k := range []reports.Kind{reports.KindProfileReport, reports.KindAlexaEvent} {
			if kind != "" && kind != k {
				continue
			}
			lane, err := s.src.Pending.LanePendingReports(ctx, reports.Lane(k, skill, user))
			if err != nil {
				return nil, err
			}
			found = append(found, lane...)
		}
	} else {
		page, err := s.src.Pending.PendingReports(ctx, req.GetPageToken(), int(req.GetPageSize()))
		if err != nil {
			return nil, err
		}
		found, next = page.Reports, page.Next
	}
	resp := &brokerv1.ListPendingDeliveriesResponse{NextPageToken: next, Deliveries: make([]*brokerv1.PendingDelivery, 0, len(found))}
	for _, r := range found {
		d := pendingDelivery(r)
		if (kind != "" && d.GetKind() != string(kind)) || (skill != "" && d.GetSkillId() != skill) {
			continue
		}
		resp.Deliveries = append(resp.Deliveries, d)
	}
	return resp, nil
}

// pendingDelivery returns r as ListPendingDeliveries shows it: without its
// content, the default kind and skill named.
func pendingDelivery(r *reports.Report) *brokerv1.PendingDelivery {
	return &brokerv1.PendingDelivery{
		MessageId:     r.MessageID,
		Kind:          string(cmp.Or(r.Kind, reports.KindProfileReport)),
		UserId:        r.UserID,
		SkillId:       cmp.Or(r.SkillID, tokens.DefaultSkillID),
		State:         reportState(r.State),
		Attempts:      int32(r.Attempts),
		LastError:     r.LastError,
		SubmittedAt:   timestamp(r.SubmittedAt),
		NextAttemptAt: timestamp(r.NextAttemptAt),
	}
}

// EventMessage returns e as the API shows it (and webhooks send it): data as
// JSON values. It returns an EINTERNAL error when data holds a value JSON
// cannot hold.
func EventMessage(e *tokens.Event) (*brokerv1.Event, error) {
	data, err := structpb.NewStruct(e.Data)
	if err != nil {
		return nil, tokens.Errorf(tokens.EINTERNAL, "event %s has data that is not JSON: %v", e.ID, err)
	}
	return &brokerv1.Event{
		Id:         e.ID,
		Type:       string(e.Type),
		OccurredAt: timestamp(e.OccurredAt),
		UserId:     e.UserID,
		SkillId:    cmp.Or(e.SkillID, tokens.DefaultSkillID), // events stored before skills have none
		Actor:      e.Actor,
		Data:       data,
	}, nil
}

// EventMetrics counts the events stored, by type; it is the
// tokens.EventObserver of a broker.
type EventMetrics struct {
	events *prometheus.CounterVec
}

var _ tokens.EventObserver = (*EventMetrics)(nil)

// NewEventMetrics registers broker_events_total{type,skill} with reg, every
// type of the skills at 0. It
// returns reg's error when it cannot be registered, as when reg holds it
// already.
func NewEventMetrics(reg prometheus.Registerer, skills ...string) (*EventMetrics, error) {
	m := &EventMetrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "broker_events_total", Help: "Events stored (the audit trail), by type and skill.",
	}, []string{"type", "skill"})}
	if err := reg.Register(m.events); err != nil {
		return nil, err
	}
	for _, skill := range skills {
		for _, t := range tokens.EventTypes {
			m.events.WithLabelValues(string(t), skill)
		}
	}
	return m, nil
}

// EventStored counts one event of type t in skillID.
func (m *EventMetrics) EventStored(t tokens.EventType, skillID string) {
	m.events.WithLabelValues(string(t), skillID).Inc()
}
