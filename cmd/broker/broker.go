package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/reciprocal-broker/broker/internal/alexa"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/console"
	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/health"
	"github.com/reciprocal-broker/broker/internal/lwa"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/server"
	"github.com/reciprocal-broker/broker/internal/smarthome"
	"github.com/reciprocal-broker/broker/internal/store/bolt"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/tokens"
	"github.com/reciprocal-broker/broker/internal/tracing"
)

// tracingShutdownTimeout bounds the export of the last spans at Close.
const tracingShutdownTimeout = 5 * time.Second

// Main is the broker program: its configuration and the parts it wires
// together. Tests boot the real program through it on port 0 in a temp dir.
type Main struct {
	// Config is the validated configuration, set by ParseFlags (or by tests).
	Config config.Config
	// Stdout receives the logs.
	Stdout io.Writer
	// Logger is built by Run from Config and Stdout.
	Logger *slog.Logger
	// Server is the running gRPC server and HTTP gateway, set by Run.
	Server *server.Server
	// Now is the clock of token expiry and refresh; nil means time.Now. Tests
	// share a settable one with the LWA simulator to move time without sleeping.
	Now func() time.Time
	// ReportPollInterval and ReportMinBackoff tune profile-report delivery:
	// how often the outbox is looked at, and the shortest wait before a retry
	// (0: the reports package's defaults). Tests shorten them.
	ReportPollInterval time.Duration
	ReportMinBackoff   time.Duration
	// BackgroundRefreshInterval is how often background refresh looks for
	// links about to need a refresh (0: backgroundRefreshInterval). Tests
	// shorten it.
	BackgroundRefreshInterval time.Duration
	// WebhookPollInterval and WebhookMinBackoff tune webhook delivery likewise
	// (0: the events package's defaults).
	WebhookPollInterval time.Duration
	WebhookMinBackoff   time.Duration
	// AlexaRegions maps each Alexa region ("NA", "EU", "FE") to the API base
	// URL its reports and events go to; nil means alexa.RegionsFor of
	// Config.AlexaAPIURL. The sandbox points each region at the simulator's
	// prefix for it, so that the simulator records which region it served.
	AlexaRegions map[string]string

	closers []func() error
	// closing is when Close began: the drain time runs from then.
	closing time.Time
	// background runs the background loops: refresh, resealers, deliverers
	// and sweeps. Close stops them first, so that none starts new work, but
	// waits for the work they have in flight (a webhook or report being sent,
	// at most its send time) only once the server and the token services have
	// drained, alongside them rather than before.
	background sync.WaitGroup
}

// NewMain returns a Main that logs to stdout.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Logger: slog.New(slog.DiscardHandler)}
}

// ParseFlags reads and validates the configuration.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	c, err := config.Parse(args, getenv)
	if err != nil {
		return err
	}
	m.Config = c
	return nil
}

// Run starts the broker and returns once it is serving; Close stops it.
func (m *Main) Run(ctx context.Context) error {
	c := m.Config
	out := m.Stdout
	if f, ok := out.(*os.File); ok && !term.IsTerminal(int(f.Fd())) {
		// Closed last (closers run in reverse), after every other part's
		// last line.
		lw := newLogWriter(f, logFlushInterval)
		m.closers = append(m.closers, lw.Close)
		out = lw
	}
	m.Logger = newLogger(out, c.LogLevel)
	if m.Now == nil {
		m.Now = time.Now
	}
	build := readVersion()
	tracer, err := tracing.New(ctx, os.Getenv, "reciprocal-broker", build.Version)
	if err != nil {
		return err
	}
	// Closed after the server and the background loops: their last spans
	// are exported.
	m.closers = append(m.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
		defer cancel()
		return tracer.Shutdown(ctx)
	})
	// The clients of Amazon's APIs send the traceparent of the request they
	// serve (nil, their own defaults, when tracing is off).
	var amazonClient *http.Client
	if tracer.Enabled() {
		amazonClient = &http.Client{
			Timeout:       lwa.DefaultHTTPTimeout,
			Transport:     tracer.Transport(nil),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}

	root, err := m.openStore(ctx)
	if err != nil {
		return err
	}
	store := root
	sealer, err := newSealer(ctx, c)
	if err != nil {
		return err
	}
	// Keys are checked, links re-sealed and counted in every skill with
	// links, also one no longer configured; tokens are served for the
	// configured skills.
	walked, err := skillsToWalk(ctx, root, c)
	if err != nil {
		return err
	}
	views := make(map[string]tokens.Store, len(walked))
	var resealers []*tokens.Resealer
	for _, id := range walked {
		view, err := skillView(root, id)
		if err != nil {
			return err
		}
		views[id] = view
		checkKeys(ctx, m.Logger.With("component", "keys", "skill_id", id), view, sealer)
		resealers = append(resealers, newResealer(c, m.Logger.With("component", "keys", "skill_id", id), view, sealer))
	}
	verifier, err := auth.NewVerifier(ctx, auth.Config{
		Issuer: c.JWTIssuer, Audience: c.JWTAudience,
		JWKSURL: c.JWTJWKSURL, PublicKeyFile: c.JWTPublicKeyFile, HS256Secret: c.JWTHS256Secret,
		Profile: c.JWTProfile, ClientClaim: c.JWTClientClaim, ScopeClaims: c.JWTScopeClaims, Clients: c.JWTClients,
		JWKSRefreshInterval: c.JWTJWKSRefresh,
		Logger:              m.Logger.With("component", "auth"),
	})
	if err != nil {
		return fmt.Errorf("bearer token verifier: %w", err)
	}
	m.closers = append(m.closers, verifier.Close)

	registry := server.NewRegistry()
	skillIDs := make([]string, len(c.Skills))
	for i, sk := range c.Skills {
		skillIDs[i] = sk.ID
	}
	eventMetrics, err := server.NewEventMetrics(registry, skillIDs...)
	if err != nil {
		return err
	}

	webhooks, err := m.newWebhooks(store)
	if err != nil {
		return err
	}
	if webhooks != nil {
		webhooks.Client.Transport = tracer.Transport(webhooks.Client.Transport)
	}
	var observer tokens.EventObserver = eventMetrics
	if webhooks != nil {
		observer = wakeWebhooks{eventMetrics, webhooks}
	}
	amazon, err := server.NewAmazonMetrics(registry)
	if err != nil {
		return err
	}
	var (
		handovers []reciprocal.Skill
		all       []*tokens.Service
	)
	for _, sk := range c.Skills {
		exchanger, err := lwa.New(lwa.Options{
			TokenURL: c.LWATokenURL, ClientID: sk.LWAClientID, ClientSecret: sk.LWAClientSecret,
			Logger: m.Logger.With("component", "lwa", "skill_id", sk.ID), Now: m.Now,
			Observer: amazon, HTTPClient: amazonClient,
		})
		if err != nil {
			return fmt.Errorf("BROKER_LWA_TOKEN_URL: %w", err)
		}
		svc := tokens.NewService(views[sk.ID], sealer, exchanger)
		svc.SkillID = sk.ID
		svc.EventObserver = observer
		svc.RefreshAhead = c.RefreshAhead
		svc.Now = m.Now
		svc.Logger = m.Logger.With("component", "tokens", "skill_id", sk.ID)
		if webhooks != nil {
			svc.Notify = tokens.NewNotifySet(c.WebhookEvents)
		}
		all = append(all, svc)
		handovers = append(handovers, reciprocal.Skill{ID: sk.ID, ClientIDs: sk.AlexaClientIDs, Region: sk.Region, Tokens: svc})
	}
	services, err := tokens.NewServices(all...)
	if err != nil {
		return err
	}
	// After the server has drained and before the store closes: refreshes and
	// exchanges in flight store LWA's answers within the drain time; then the
	// background loops, told to stop first, finish their work in flight.
	m.closers = append(m.closers, func() error {
		err := m.drain(services)
		m.background.Wait()
		return err
	})
	handover := reciprocal.NewService(handovers...)
	limiter := reciprocal.NewLimiter(reciprocal.Rate(c.AuthorizeRateUser), reciprocal.Rate(c.AuthorizeRateClient), m.Now)
	formHandler := reciprocal.NewHandler(handover, verifier, m.Logger.With("component", "reciprocal"))
	formHandler.Limiter = limiter
	grants := smarthome.NewService(verifier, m.Logger.With("component", "smarthome"))
	grants.Limiter = limiter // a user's or client's hand-overs count together, whichever way they come
	grantSkill := func(skillID string) (reciprocal.Skill, error) {
		svc, err := services.Resolve(skillID)
		if err != nil {
			return reciprocal.Skill{}, err
		}
		sk, _ := handover.Skill(svc.SkillID) // every service's skill is a hand-over skill
		return sk, nil
	}

	reportMetrics, err := server.NewReportMetrics(registry)
	if err != nil {
		return err
	}
	if err := registry.Register(newSealedLinks(resealers...)); err != nil {
		return err
	}
	if _, err := server.NewStoreGauges(registry, storeGauges(store, views, m.Now)); err != nil {
		return err
	}
	if err := registry.Register(newBuildInfo(build)); err != nil {
		return err
	}
	regions := m.AlexaRegions
	if regions == nil {
		regions = alexa.RegionsFor(c.AlexaAPIURL)
	}
	profiles, err := alexa.New(alexa.Options{BaseURL: c.AlexaAPIURL, Regions: regions, Now: m.Now, Observer: amazon, HTTPClient: amazonClient})
	if err != nil {
		return fmt.Errorf("BROKER_ALEXA_API_URL: %w", err)
	}
	gateway, err := alexa.NewEventGateway(alexa.Options{BaseURL: c.AlexaAPIURL, Regions: regions, Now: m.Now, Observer: amazon, HTTPClient: amazonClient})
	if err != nil {
		return fmt.Errorf("BROKER_ALEXA_API_URL: %w", err)
	}
	sender := alexa.Deliveries{Health: profiles, Events: gateway}
	reportService := reports.NewService(store, services)
	reportService.Now, reportService.Observer = m.Now, reportMetrics
	reportService.Logger = m.Logger.With("component", "reports")
	reportService.EventObserver = observer
	if webhooks != nil {
		reportService.Notify = tokens.NewNotifySet(c.WebhookEvents)
		outbox := store.(events.Store)
		metrics, err := server.NewWebhookMetrics(registry, outbox.WebhookBacklog, m.Now)
		if err != nil {
			return err
		}
		webhooks.Observer = metrics
	}
	deliverer := reports.NewDeliverer(reportService, sender)
	deliverer.Deadline, deliverer.Retention = c.ReportDeadline, c.ReportRetention
	deliverer.IndexLag = indexLag(store)
	if m.ReportPollInterval > 0 {
		deliverer.PollInterval = m.ReportPollInterval
	}
	if m.ReportMinBackoff > 0 {
		deliverer.MinBackoff = m.ReportMinBackoff
	}

	operatorConsole, err := m.newConsole(skillIDs)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{
		GRPCAddr:      c.GRPCAddr,
		HTTPAddr:      c.HTTPAddr,
		Logger:        m.Logger,
		Health:        health.New(store.Ping),
		Registry:      registry,
		Authenticator: verifier,
		Scopes:        server.Scopes{Tokens: c.ScopeTokens, Profiles: c.ScopeProfiles, Admin: c.ScopeAdmin, Events: c.ScopeEvents},
		Reciprocal:    formHandler,
		SmartHome:     smarthome.NewHandler(grants, grantSkill),
		Console:       operatorConsole,
		Tracing:       tracer,
		Services: server.Services{
			Reciprocal:    server.NewReciprocalService(handover, limiter),
			PartnerTokens: server.NewPartnerTokenService(services, m.Now),
			Links:         server.NewLinkService(services),
			Reports:       server.NewProfileReportService(reportService, services),
			Events:        server.NewEventService(eventSources(store, views, services)),
			SmartHome:     server.NewSmartHomeService(grants, grantSkill),
			AlexaEvents:   server.NewAlexaEventService(reportService, services),
		},
	})
	if err != nil {
		return err
	}
	if err := srv.Open(); err != nil {
		return err
	}
	m.Server = srv
	m.closers = append(m.closers, srv.Close)

	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	wg := &m.background
	refreshInterval := backgroundRefreshInterval
	if m.BackgroundRefreshInterval > 0 {
		refreshInterval = m.BackgroundRefreshInterval
	}
	for _, svc := range all {
		wg.Go(func() { svc.RefreshInBackground(bg, c.BackgroundRefresh, refreshInterval) })
	}
	for _, r := range resealers {
		wg.Go(func() { r.Run(bg, keyCountInterval) })
	}
	wg.Go(func() { deliverer.Run(bg) })
	// Code claims and events are the storage's, whichever skill's service
	// sweeps them: the first one does.
	wg.Go(func() { all[0].SweepClaimsInBackground(bg, claimSweepInterval) })
	wg.Go(func() { all[0].SweepEventsInBackground(bg, c.EventRetention, eventSweepInterval) })
	if webhooks != nil {
		wg.Go(func() { webhooks.Run(bg) })
	}
	// The first thing Close does; it waits for the loops after the drain.
	m.closers = append(m.closers, func() error { stop(); return nil })

	m.Logger.Info("broker serving", "version", build.Version, "revision", build.Revision, "grpc_addr", srv.GRPCAddr(), "http_addr", srv.HTTPAddr(), "store", c.Store, "webhooks", webhooks != nil, "console", operatorConsole != nil)
	return nil
}

// newWebhooks returns the webhook deliverer of BROKER_WEBHOOK_URL, or nil when
// it is unset. It refuses a store that keeps no webhook outbox.
func (m *Main) newWebhooks(s store) (*events.Deliverer, error) {
	c := m.Config
	if c.WebhookURL == "" {
		return nil, nil
	}
	outbox, ok := s.(events.Store)
	if !ok {
		return nil, fmt.Errorf("BROKER_WEBHOOK_URL: the %s store keeps no webhook outbox yet", c.StoreKind)
	}
	d, err := events.NewDeliverer(outbox, c.WebhookURL, c.WebhookSecret)
	if err != nil {
		return nil, fmt.Errorf("BROKER_WEBHOOK_URL: %w", err)
	}
	// Real time, not m.Now: the webhook-timestamp is checked against the
	// receiver's clock.
	d.Deadline = c.WebhookDeadline
	d.IndexLag = indexLag(s)
	d.Logger = m.Logger.With("component", "webhooks")
	if m.WebhookPollInterval > 0 {
		d.PollInterval = m.WebhookPollInterval
	}
	if m.WebhookMinBackoff > 0 {
		d.MinBackoff = m.WebhookMinBackoff
	}
	return d, nil
}

// newConsole returns the operator console of BROKER_CONSOLE_CLIENT_ID, or
// nil when it is unset (the console is off), for the skills skillIDs.
func (m *Main) newConsole(skillIDs []string) (http.Handler, error) {
	c := m.Config
	if c.ConsoleClientID == "" {
		return nil, nil
	}
	h, err := console.New(console.Options{
		ClientID: c.ConsoleClientID, Issuer: c.JWTIssuer, PublicURL: c.PublicURL,
		Scopes: c.ConsoleScopes, Audience: c.ConsoleAudience, AdminScope: c.ScopeAdmin,
		Skills: skillIDs, Logger: m.Logger.With("component", "console"),
	})
	if err != nil {
		return nil, fmt.Errorf("BROKER_CONSOLE_CLIENT_ID: %w", err)
	}
	return h, nil
}

// backgroundRefreshInterval is how often background refresh looks for links
// about to need a refresh.
const backgroundRefreshInterval = 30 * time.Second

// claimSweepInterval is how often expired code claims are removed from a
// store that keeps them (bbolt; DynamoDB's time to live removes its own).
const claimSweepInterval = 10 * time.Minute

// eventSweepInterval is how often the events older than
// BROKER_EVENT_RETENTION are removed.
const eventSweepInterval = time.Hour

// eventSources are the parts of s that EventService reads, the links counted
// over every skill's view, and by skill; those s lacks stay nil, and their rpcs answer
// UNIMPLEMENTED.
func eventSources(s store, views map[string]tokens.Store, skills *tokens.Services) server.EventSources {
	src := server.EventSources{Skills: skills}
	src.Events, _ = s.(tokens.EventStore)
	var counters tokens.LinkCounters
	bySkill := make(map[string]tokens.LinkCounter, len(views))
	for id, v := range views {
		if c, ok := v.(tokens.LinkCounter); ok {
			counters = append(counters, c)
			bySkill[id] = c
		}
	}
	if len(counters) == len(views) {
		src.Links, src.SkillLinks = counters, bySkill
	}
	src.Reports, _ = s.(reports.Counter)
	src.Webhooks, _ = s.(server.WebhookBacklog)
	src.Pending, _ = s.(server.PendingDeliveries)
	return src
}

// storeGauges returns what the store's gauges read: each skill's link
// counters, when every view keeps them, and the outbox's PENDING deliveries,
// when the store lists them.
func storeGauges(s store, views map[string]tokens.Store, now func() time.Time) server.GaugeSources {
	src := server.GaugeSources{Now: now}
	bySkill := make(map[string]tokens.LinkCounter, len(views))
	for id, v := range views {
		if c, ok := v.(tokens.LinkCounter); ok {
			bySkill[id] = c
		}
	}
	if len(bySkill) == len(views) {
		src.Links = bySkill
	}
	src.Pending, _ = s.(reports.PendingLister)
	return src
}

// store is what the broker keeps: links and the reports outbox.
type store interface {
	tokens.Store
	reports.Store
}

// indexLag is how far behind its writes s may list pending reports and
// webhooks: the DynamoDB table's index lag; zero for a store that reads its
// own writes (bbolt).
func indexLag(s store) time.Duration {
	if l, ok := s.(interface{ IndexLag() time.Duration }); ok {
		return l.IndexLag()
	}
	return 0
}

// openStore opens the store BROKER_STORE names.
func (m *Main) openStore(ctx context.Context) (store, error) {
	c := m.Config
	switch c.StoreKind {
	case "bolt":
		s, err := bolt.Open(c.StoreTarget)
		if err != nil {
			return nil, fmt.Errorf("BROKER_STORE: %w", err)
		}
		m.closers = append(m.closers, s.Close)
		return s, nil
	case "dynamodb":
		s, err := dynamo.New(ctx, dynamo.Options{Table: c.StoreTarget, Endpoint: c.DynamoDBEndpoint, CreateTable: c.DynamoDBCreateTable, ClockOrder: c.DynamoDBClockOrder,
			Logger: m.Logger.With("component", "store")})
		if errors.Is(err, dynamo.ErrNoTable) {
			return nil, fmt.Errorf("BROKER_STORE: %w (on AWS, the data stack of infra/cloudformation makes it; on a local server, BROKER_DYNAMODB_CREATE_TABLE=true or --dynamodb-create-table creates it)", err)
		}
		if err != nil {
			return nil, fmt.Errorf("BROKER_STORE: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("BROKER_STORE: unknown store %q", c.StoreKind)
}

// skillsToWalk returns the ids of the skills of c, then those of the other
// skills with links in s (tokens.SkillLister), each once.
func skillsToWalk(ctx context.Context, s store, c config.Config) ([]string, error) {
	ids := make([]string, 0, len(c.Skills))
	for _, sk := range c.Skills {
		ids = append(ids, sk.ID)
	}
	lister, ok := s.(tokens.SkillLister)
	if !ok {
		return ids, nil
	}
	stored, err := lister.Skills(ctx)
	if err != nil {
		return nil, fmt.Errorf("BROKER_STORE: list the skills with links: %w", err)
	}
	for _, id := range stored {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// skillView returns s's view of the links of skillID (see tokens.Store): s's
// own for the default skill, which holds the links stored before skills
// existed.
func skillView(s store, skillID string) (tokens.Store, error) {
	switch s := s.(type) {
	case *bolt.Store:
		return s.ForSkill(skillID), nil
	case *dynamo.Store:
		return s.ForSkill(skillID), nil
	}
	return nil, fmt.Errorf("BROKER_STORE: the %T store keeps no skills", s)
}

// drain closes the token services for shutdown: no new refreshes or
// exchanges, and those in flight get what is left of the drain time
// (server.ShutdownTimeout from the start of Close) to store LWA's answers.
func (m *Main) drain(svc *tokens.Services) error {
	ctx, cancel := context.WithDeadline(context.Background(), m.closing.Add(server.ShutdownTimeout))
	defer cancel()
	if err := svc.Close(ctx); err != nil {
		return fmt.Errorf("drain token service: %w", err)
	}
	return nil
}

// Close stops the broker gracefully, in the reverse order of start-up: the
// background loops are told to stop, the server drains its calls, the token
// service its refreshes and exchanges in flight, all within one drain time of
// server.ShutdownTimeout, and the loops finish what they were sending (at
// most its send time, which runs alongside); then the store closes.
func (m *Main) Close() error {
	m.closing = time.Now()
	var first error
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	m.closers = nil
	return first
}

// newLogger logs JSON when w is not a terminal, readable text when it is,
// with the ids of the request a line belongs to (server.LogHandler).
func newLogger(w io.Writer, level string) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lvl}
	// Every line logged with a request's context carries its request and
	// trace ids.
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return slog.New(server.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(server.LogHandler(slog.NewJSONHandler(w, opts)))
}

// wakeWebhooks counts each stored event and wakes the webhook deliverer, so that
// an event leaves at once rather than at the deliverer's next poll.
type wakeWebhooks struct {
	metrics   tokens.EventObserver
	deliverer *events.Deliverer
}

var _ tokens.EventObserver = wakeWebhooks{}

// EventStored counts the event and wakes the deliverer; it never blocks.
func (w wakeWebhooks) EventStored(t tokens.EventType, skillID string) {
	w.metrics.EventStored(t, skillID)
	w.deliverer.Wake()
}
