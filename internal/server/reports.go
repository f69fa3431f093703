package server

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// NewProfileReportService returns the service that accepts profile reports
// of the users of the skills of ss.
func NewProfileReportService(s *reports.Service, ss *tokens.Services) brokerv1.ProfileReportServiceServer {
	return &profileReportService{s: s, ss: ss}
}

// profileReportService accepts profile reports and answers for their delivery.
type profileReportService struct {
	brokerv1.UnimplementedProfileReportServiceServer
	s  *reports.Service
	ss *tokens.Services
}

// SubmitProfileReport stores the report for delivery; errors are those of
// userSkill and of reports.Service.Submit.
func (p *profileReportService) SubmitProfileReport(ctx context.Context, req *brokerv1.SubmitProfileReportRequest) (*brokerv1.SubmitProfileReportResponse, error) {
	skill, err := userSkill(p.ss, req.GetSkillId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	profiles := make([]reports.Profile, len(req.GetProfiles()))
	for i, pr := range req.GetProfiles() {
		profiles[i] = reports.Profile{
			ProfileID: pr.GetProfileId(),
			Name: reports.Name{
				FirstName: pr.GetName().GetFirstName(),
				LastName:  pr.GetName().GetLastName(),
				NickNames: pr.GetName().GetNickNames(),
			},
		}
		for _, c := range pr.GetCapabilities() {
			profiles[i].Capabilities = append(profiles[i].Capabilities, reports.Capability{
				Name: c.GetName(), Type: c.GetType(), Version: c.GetVersion(), SupportedOperations: c.GetSupportedOperations(),
			})
		}
	}
	r, err := p.s.Submit(ctx, skill.SkillID, req.GetUserId(), req.GetMessageId(), profiles)
	if err != nil {
		return nil, err
	}
	return &brokerv1.SubmitProfileReportResponse{MessageId: r.MessageID, State: reportState(r.State)}, nil
}

// GetProfileReport returns a report's delivery record. It returns an EINVALID
// error for an empty message_id, and the errors of reports.Service.Report.
func (p *profileReportService) GetProfileReport(ctx context.Context, req *brokerv1.GetProfileReportRequest) (*brokerv1.ProfileReport, error) {
	if req.GetMessageId() == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "message_id is required")
	}
	r, err := p.s.Report(ctx, req.GetMessageId())
	if err != nil {
		return nil, err
	}
	if r.DeliveryKind() != reports.KindProfileReport {
		return nil, fmt.Errorf("message %q is not a profile report: %w", r.MessageID, reports.ErrReportNotFound)
	}
	return &brokerv1.ProfileReport{
		MessageId:   r.MessageID,
		UserId:      r.UserID,
		SkillId:     skillOf(r),
		State:       reportState(r.State),
		Attempts:    int32(r.Attempts),
		LastError:   r.LastError,
		DeliveredAt: timestamp(r.DeliveredAt),
	}, nil
}

// skillOf returns the skill of r, DefaultSkillID for a report stored before
// skills existed.
func skillOf(r *reports.Report) string {
	if r.SkillID == "" {
		return tokens.DefaultSkillID
	}
	return r.SkillID
}

// reportState returns the API's name of s, REPORT_STATE_UNSPECIFIED for a state
// it does not know.
func reportState(s reports.State) brokerv1.ReportState {
	switch s {
	case reports.StatePending:
		return brokerv1.ReportState_PENDING
	case reports.StateDelivered:
		return brokerv1.ReportState_DELIVERED
	case reports.StateFailed:
		return brokerv1.ReportState_FAILED
	case reports.StateSuperseded:
		return brokerv1.ReportState_SUPERSEDED
	}
	return brokerv1.ReportState_REPORT_STATE_UNSPECIFIED
}

// ReportMetrics counts what happens to deliveries, profile reports and Alexa
// events alike, by kind; it is the reports.Observer of a broker.
type ReportMetrics struct {
	events  *prometheus.CounterVec
	latency *prometheus.HistogramVec
}

var _ reports.Observer = (*ReportMetrics)(nil)

// NewReportMetrics registers the delivery metrics with reg. It returns reg's
// error when they cannot be registered, as when reg holds them already.
func NewReportMetrics(reg prometheus.Registerer) (*ReportMetrics, error) {
	m := &ReportMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "broker_reports_total", Help: "Deliveries to Alexa by kind (profile_report, alexa_event) and event: accepted, delivered, failed, retried, superseded.",
		}, []string{"kind", "event"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "broker_report_delivery_seconds", Help: "Time from acceptance to delivery, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.events, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, k := range []reports.Kind{reports.KindProfileReport, reports.KindAlexaEvent} {
		for _, e := range []string{"accepted", "delivered", "failed", "retried", "superseded"} {
			if e == "superseded" && !k.Supersedes() {
				continue
			}
			m.events.WithLabelValues(string(k), e)
		}
	}
	return m, nil
}

// Accepted counts a stored delivery.
func (m *ReportMetrics) Accepted(k reports.Kind) {
	m.events.WithLabelValues(string(k), "accepted").Inc()
}

// Delivered counts a delivered one and its latency.
func (m *ReportMetrics) Delivered(k reports.Kind, d time.Duration) {
	m.events.WithLabelValues(string(k), "delivered").Inc()
	m.latency.WithLabelValues(string(k)).Observe(d.Seconds())
}

// Failed counts a delivery that failed for good.
func (m *ReportMetrics) Failed(k reports.Kind) { m.events.WithLabelValues(string(k), "failed").Inc() }

// Retried counts an attempt that will be retried.
func (m *ReportMetrics) Retried(k reports.Kind) { m.events.WithLabelValues(string(k), "retried").Inc() }

// Superseded counts a report made moot by a newer one.
func (m *ReportMetrics) Superseded(k reports.Kind) {
	m.events.WithLabelValues(string(k), "superseded").Inc()
}
