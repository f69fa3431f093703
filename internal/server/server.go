// Package server is the broker's edge: the gRPC server with its interceptors,
// health and reflection, the HTTP gateway in front of it, the route of Alexa's
// reciprocal form endpoint (served by internal/reciprocal), metrics, and the one
// table where application error codes become gRPC codes and HTTP statuses
// (errors.go; the reciprocal endpoint's RFC 6749 errors are the one deliberate
// exception).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/health"
	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/tokens"
	"github.com/reciprocal-broker/broker/internal/tracing"
)

// ShutdownTimeout bounds how long Close lets in-flight calls finish.
const ShutdownTimeout = 10 * time.Second

// Services are the implementations of the broker's gRPC services. A nil field
// answers UNIMPLEMENTED (HTTP 501) for its methods.
type Services struct {
	// Reciprocal is Alexa's hand-over over gRPC (NewReciprocalService).
	Reciprocal brokerv1.ReciprocalServiceServer
	// PartnerTokens hands access tokens to the companion backend
	// (NewPartnerTokenService).
	PartnerTokens brokerv1.PartnerTokenServiceServer
	// Reports accepts profile reports (NewProfileReportService).
	Reports brokerv1.ProfileReportServiceServer
	// Links lets operators manage links (NewLinkService).
	Links brokerv1.LinkServiceServer
	// Events is the audit trail and stats (NewEventService).
	Events brokerv1.EventServiceServer
	// SmartHome takes AcceptGrant directives (NewSmartHomeService).
	SmartHome brokerv1.SmartHomeServiceServer
	// AlexaEvents accepts Alexa events (NewAlexaEventService).
	AlexaEvents brokerv1.AlexaEventServiceServer
}

// Options configure a Server.
type Options struct {
	// GRPCAddr and HTTPAddr are the listen addresses; port 0 picks a free port.
	GRPCAddr string
	HTTPAddr string
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Health answers /healthz, /readyz and grpc.health.v1; nil means always ready.
	Health *health.Checker
	// Registry collects the broker's metrics, served at /metrics; nil makes one.
	Registry *prometheus.Registry
	// Services implement the API.
	Services Services
	// Reciprocal serves POST /api/reciprocal/authorize (Alexa's form); nil answers 501.
	Reciprocal http.Handler
	// SmartHome serves POST /v1/smart-home/accept-grant (smarthome.Handler);
	// nil answers 501.
	SmartHome http.Handler
	// Console serves the operator console below /console/ (console.Handler);
	// nil leaves it off: /console/ is then the gateway's 404.
	Console http.Handler
	// Authenticator checks bearer tokens of every broker.v1 call; nil refuses
	// them all with UNAUTHENTICATED (health and reflection stay open).
	Authenticator auth.Authenticator
	// Scopes are the scope names that grant each right; the zero value keeps
	// the default names (ScopeTokens, ...).
	Scopes Scopes
	// Keepalive bounds the gRPC port's connections; zero fields take
	// DefaultKeepalive's.
	Keepalive Keepalive
	// Tracing starts a span for every HTTP request and gRPC call, the child of
	// the caller's traceparent; nil (or tracing off) starts none.
	Tracing *tracing.Tracing
}

// NewRegistry returns a metrics registry holding the Go runtime and process
// collectors, for the broker's own metrics to join.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server runs the gRPC server and the HTTP gateway of one broker process.
type Server struct {
	opts     Options
	logger   *slog.Logger
	health   *health.Checker
	registry *prometheus.Registry
	authn    auth.Authenticator

	grpc     *grpc.Server
	http     *http.Server
	inproc   *inprocConn
	gateway  *runtime.ServeMux
	grpcLis  net.Listener
	httpLis  net.Listener
	wg       sync.WaitGroup
	stopOnce sync.Once
	cancel   context.CancelFunc
}

// New builds a Server; Open starts it. It returns an error when the server's
// metrics cannot be registered with opts.Registry, as when that registry holds
// them already.
func New(opts Options) (*Server, error) {
	s := &Server{opts: opts, logger: opts.Logger, health: opts.Health, registry: opts.Registry, authn: opts.Authenticator}
	if s.authn == nil {
		s.authn = refuseAll{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = slog.New(LogHandler(s.logger.Handler()))
	if s.health == nil {
		s.health = health.New(nil)
	}
	if s.registry == nil {
		s.registry = NewRegistry()
	}

	grpcMetrics := newGRPCMetrics()
	if err := s.registry.Register(grpcMetrics); err != nil {
		return nil, fmt.Errorf("register gRPC metrics: %w", err)
	}
	// One interceptor serves the gRPC port and the gateway's in-process
	// calls alike.
	intercept := s.interceptor(grpcMetrics)
	s.grpc = grpc.NewServer(append([]grpc.ServerOption{
		grpc.UnaryInterceptor(intercept),
		grpc.MaxRecvMsgSize(1 << 20),
		// Calls run on a pool of goroutines whose stacks have grown already,
		// rather than each on a new one that grows its stack through the
		// interceptors (about 6 % of the CPU of a partner-token call); when
		// all are busy, a call gets a new goroutine as before.
		grpc.NumStreamWorkers(uint32(streamWorkers())),
	}, append(opts.Keepalive.serverOptions(), opts.Tracing.ServerOptions()...)...)...)
	s.inproc = newInprocConn(intercept)
	s.registerServices()
	grpcMetrics.initialize(s.grpc.GetServiceInfo())

	handler, err := s.httpHandler()
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           opts.Tracing.Handler(handler), // outermost: the request's lines carry its span
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// refuseAll is the Authenticator of a server configured without one.
type refuseAll struct{}

var _ auth.Authenticator = refuseAll{}

// Verify refuses every token with an EUNAUTHENTICATED error.
func (refuseAll) Verify(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, tokens.Errorf(tokens.EUNAUTHENTICATED, "no authenticator configured")
}

// deadlines are the methods that must answer within a time of their own,
// whatever deadline the caller set (or none): Alexa's hand-over, within
// reciprocal.Deadline. The interceptor starts it before the caller's token is
// verified, so that a slow fetch of the signing keys counts against it as
// much as LWA does.
var deadlines = map[string]time.Duration{
	brokerv1.ReciprocalService_Authorize_FullMethodName: reciprocal.Deadline,
}

// interceptor builds the one interceptor of every call, gRPC's and the
// gateway's: observeInterceptor (the request id, metrics and the request log)
// around, in this order, the method's own deadline (deadlines), recovery from
// a panic, authentication nearest the handler, and the error mapping (so that
// metrics and logs see final status codes).
//
// The steps are function calls in one interceptor rather than a chain of
// four (go-grpc-middleware's recovery and three of ours, as before): each
// level of a chain costs a closure per call, and with the recovery hand-written
// (a deferred recover) a partner-token call allocates three objects fewer.
func (s *Server) interceptor(metrics *grpcMetrics) grpc.UnaryServerInterceptor {
	authenticate := authenticator(s.authn, s.opts.Scopes)
	serve := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if d, ok := deadlines[info.FullMethod]; ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		defer func() {
			if p := recover(); p != nil {
				s.logger.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		callCtx, err := authenticate(ctx, info.FullMethod)
		if err == nil {
			resp, err = handler(callCtx, req)
		}
		if err != nil {
			return nil, callError(ctx, s.logger, info.FullMethod, err)
		}
		return resp, nil
	}
	return observeInterceptor(s.logger, metrics, serve)
}

// registerServices registers the API, health (grpc.health.v1, and
// broker.v1.ReadinessService for load balancers) and reflection, marking each
// API service SERVING as it is registered.
func (s *Server) registerServices() {
	svc := s.opts.Services
	if svc.Reciprocal == nil {
		svc.Reciprocal = brokerv1.UnimplementedReciprocalServiceServer{}
	}
	if svc.PartnerTokens == nil {
		svc.PartnerTokens = brokerv1.UnimplementedPartnerTokenServiceServer{}
	}
	if svc.Reports == nil {
		svc.Reports = brokerv1.UnimplementedProfileReportServiceServer{}
	}
	if svc.Links == nil {
		svc.Links = brokerv1.UnimplementedLinkServiceServer{}
	}
	if svc.Events == nil {
		svc.Events = brokerv1.UnimplementedEventServiceServer{}
	}
	if svc.SmartHome == nil {
		svc.SmartHome = brokerv1.UnimplementedSmartHomeServiceServer{}
	}
	if svc.AlexaEvents == nil {
		svc.AlexaEvents = brokerv1.UnimplementedAlexaEventServiceServer{}
	}
	s.health.Register(s.grpc)
	brokerv1.RegisterReadinessServiceServer(s.grpc, readinessService{health: s.health})
	reflection.Register(s.grpc)
	// The API is served on the gRPC port and to the gateway, in process.
	api := registrars{s.grpc, s.inproc}
	brokerv1.RegisterReciprocalServiceServer(api, svc.Reciprocal)
	s.health.Serving(brokerv1.ReciprocalService_ServiceDesc.ServiceName)
	brokerv1.RegisterPartnerTokenServiceServer(api, svc.PartnerTokens)
	s.health.Serving(brokerv1.PartnerTokenService_ServiceDesc.ServiceName)
	brokerv1.RegisterProfileReportServiceServer(api, svc.Reports)
	s.health.Serving(brokerv1.ProfileReportService_ServiceDesc.ServiceName)
	brokerv1.RegisterLinkServiceServer(api, svc.Links)
	s.health.Serving(brokerv1.LinkService_ServiceDesc.ServiceName)
	brokerv1.RegisterEventServiceServer(api, svc.Events)
	s.health.Serving(brokerv1.EventService_ServiceDesc.ServiceName)
	brokerv1.RegisterSmartHomeServiceServer(api, svc.SmartHome)
	s.health.Serving(brokerv1.SmartHomeService_ServiceDesc.ServiceName)
	brokerv1.RegisterAlexaEventServiceServer(api, svc.AlexaEvents)
	s.health.Serving(brokerv1.AlexaEventService_ServiceDesc.ServiceName)
}

// registrars registers each service with every one of its registrars.
type registrars []grpc.ServiceRegistrar

var _ grpc.ServiceRegistrar = registrars(nil)

// RegisterService registers impl as desc's implementation with each registrar.
func (rs registrars) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, r := range rs {
		r.RegisterService(desc, impl)
	}
}

// streamWorkers is the number of goroutines the gRPC server keeps to run
// calls on.
func streamWorkers() int { return 16 * goruntime.GOMAXPROCS(0) }

// Open listens on both addresses and starts serving in the background. It
// returns an error when an address cannot be listened on or the gateway cannot
// be set up. Close stops what Open started.
func (s *Server) Open() (err error) {
	if s.grpcLis, err = net.Listen("tcp", s.opts.GRPCAddr); err != nil {
		return fmt.Errorf("listen gRPC on %s: %w", s.opts.GRPCAddr, err)
	}
	if s.httpLis, err = net.Listen("tcp", s.opts.HTTPAddr); err != nil {
		s.grpcLis.Close()
		return fmt.Errorf("listen HTTP on %s: %w", s.opts.HTTPAddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel

	serve := func(name string, f func() error) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
				s.logger.Error("server stopped", "server", name, "err", err)
			}
		}()
	}
	serve("grpc", func() error { return s.grpc.Serve(s.grpcLis) })
	serve("http", func() error { return s.http.Serve(s.httpLis) })
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.health.Watch(ctx, 5*time.Second) }()
	return nil
}

// GRPCAddr returns the address the gRPC server listens on; call it after Open.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr returns the address the HTTP gateway listens on; call it after Open.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Close shuts down gracefully: health turns NOT_SERVING, the listeners close and
// refuse new calls, and in-flight calls get up to ShutdownTimeout to finish
// before they are cut off.
func (s *Server) Close() error {
	s.stopOnce.Do(func() {
		s.health.Shutdown()
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
		defer cancel()

		// HTTP first: its in-flight requests are calls of the gRPC services too.
		s.grpcLis.Close() // no new external gRPC connections meanwhile
		if err := s.http.Shutdown(ctx); err != nil {
			s.http.Close()
		}
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-ctx.Done():
			s.grpc.Stop()
			<-stopped
		}
		s.cancel()
		s.wg.Wait()
	})
	return nil
}
