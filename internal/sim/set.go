package sim

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Defaults of SetOptions.
const (
	// DefaultUser is the user whom a Set's user-specific faults strike and for
	// whom its admin route mints codes when SetOptions.User is empty: the
	// sandbox's demo parent.
	DefaultUser = "demo-parent"
	// DefaultAlexaClientID is the client id the partner issued to Alexa, as
	// BrokerEnv configures it, when SetOptions.AlexaClientID is empty.
	DefaultAlexaClientID = "alexa-skill-client"
)

// SetOptions configures StartSet. The zero value starts the LWA, Alexa Health
// API and authorization server simulators and the admin route on free loopback
// ports, without KMS.
type SetOptions struct {
	// LWAAddr, AlexaAddr and AuthAddr are the addresses of the LWA, Alexa Health
	// API and authorization server simulators. They must be loopback
	// addresses; empty means "127.0.0.1:0", a free port.
	LWAAddr   string
	AlexaAddr string
	AuthAddr  string
	// AdminAddr is the address of the admin route; empty means "127.0.0.1:0".
	// Unlike the simulators' addresses it may be any address.
	AdminAddr string
	// KMS starts the KMS simulator too, on a free loopback port, holding one
	// master key, DefaultKMSKeyID.
	KMS bool
	// Now is the clock of the LWA and Alexa simulators (code and token expiry,
	// the stamps of received reports); nil means time.Now. The authorization
	// server keeps real time, as the broker's token verifier does.
	Now func() time.Time
	// User is whom the user-specific faults strike and whom POST /codes mints
	// a code for when the request names nobody; empty means DefaultUser.
	User string
	// AlexaClientID is the client id BrokerEnv names in BROKER_ALEXA_CLIENT_IDS;
	// empty means DefaultAlexaClientID.
	AlexaClientID string
}

// Set is every party around the broker, simulated and started together for
// tests, `broker sandbox` and `broker simulate`: Login with Amazon, the Alexa
// API host (the Health API and the Event Gateway, accepting LWA's access
// tokens), the partner's authorization server, the companion backend's webhook
// receiver, KMS when asked, and an admin route that switches faults and mints
// authorization codes:
//
//	POST   /faults/{target}/{kind}?count=N   switch a fault on (see FaultNames)
//	DELETE /faults                           switch every fault off
//	POST   /codes?user=U                     a fresh LWA code for U, as text
//
// BrokerEnv gives the settings that point a broker at the Set; Close stops it
// all. The simulators' own methods are reached through the fields.
type Set struct {
	// LWA, Alexa and Auth are the running simulators; Alexa.Events() is the
	// Event Gateway.
	LWA   *LWA
	Alexa *Alexa
	Auth  *AuthServer
	// Webhooks is the running webhook receiver: the partner's companion
	// backend, told of link events.
	Webhooks *Webhooks
	// KMS is the running KMS simulator, or nil when SetOptions.KMS was false.
	KMS *KMS
	// Faults switches the simulators' faults on by name, as the admin route
	// does.
	Faults *Faults

	user, alexaClientID string
	admin               server
}

// StartSet starts the simulators and the admin route that opts describe, and
// returns once all of them are serving. They stop when Close is called or ctx
// is done. It returns an error naming the part that could not start, such as a
// port in use or a simulator's address that is not a loopback address; what
// had started is stopped again then.
func StartSet(ctx context.Context, opts SetOptions) (*Set, error) {
	if opts.User == "" {
		opts.User = DefaultUser
	}
	if opts.AlexaClientID == "" {
		opts.AlexaClientID = DefaultAlexaClientID
	}
	if opts.AdminAddr == "" {
		opts.AdminAddr = "127.0.0.1:0"
	}
	s := &Set{user: opts.User, alexaClientID: opts.AlexaClientID}
	if err := s.start(ctx, opts); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// start starts the parts one by one; StartSet stops them when one fails.
func (s *Set) start(ctx context.Context, opts SetOptions) error {
	s.LWA = NewLWA(LWAOptions{Addr: opts.LWAAddr, Now: opts.Now})
	if err := s.LWA.Start(ctx); err != nil {
		return fmt.Errorf("the LWA simulator: %w", err)
	}
	s.Alexa = NewAlexa(AlexaOptions{Addr: opts.AlexaAddr, LWA: s.LWA, Now: opts.Now})
	if err := s.Alexa.Start(ctx); err != nil {
		return fmt.Errorf("the Alexa Health API simulator: %w", err)
	}
	var err error
	if s.Auth, err = NewAuthServer(AuthServerOptions{Addr: opts.AuthAddr}); err == nil {
		err = s.Auth.Start(ctx)
	}
	if err != nil {
		return fmt.Errorf("authorization server simulator: %w", err)
	}
	s.Webhooks = NewWebhooks(WebhooksOptions{})
	if err := s.Webhooks.Start(ctx); err != nil {
		return fmt.Errorf("the webhook receiver simulator: %w", err)
	}
	if opts.KMS {
		s.KMS = NewKMS(KMSOptions{})
		if err := s.KMS.Start(ctx); err != nil {
			return fmt.Errorf("the KMS simulator: %w", err)
		}
	}
	s.Faults = &Faults{LWA: s.LWA, Alexa: s.Alexa, Webhooks: s.Webhooks, User: s.user}
	if err := s.admin.listen(ctx, "admin", opts.AdminAddr, s.adminHandler()); err != nil {
		return fmt.Errorf("simulators' admin route: %w", err)
	}
	return nil
}

// adminHandler serves the admin route.
func (s *Set) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/faults", s.Faults.Handler())
	mux.Handle("/faults/", s.Faults.Handler())
	mux.HandleFunc("POST /codes", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		if user == "" {
			user = s.user
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, s.LWA.IssueCodeFor(user))
	})
	return mux
}

// AdminURL returns the admin route's base URL, such as
// "http://127.0.0.1:41234".
func (s *Set) AdminURL() string { return s.admin.url() }

// BrokerEnv returns the settings that point a broker at the Set, by
// environment variable: the LWA client credentials and token URL, the Alexa
// API URL and Alexa's client id, the authorization server's issuer, audience
// and JWKS URL, the webhook receiver's URL and secret, and with KMS its endpoint and BROKER_ENCRYPTION_KEY naming
// DefaultKMSKeyID. The map is new on every call; the caller may change it.
func (s *Set) BrokerEnv() map[string]string {
	env := map[string]string{
		"BROKER_LWA_CLIENT_ID":     s.LWA.ClientID(),
		"BROKER_LWA_CLIENT_SECRET": s.LWA.ClientSecret(),
		"BROKER_LWA_TOKEN_URL":     s.LWA.TokenURL(),
		"BROKER_ALEXA_API_URL":     s.Alexa.URL(),
		"BROKER_ALEXA_CLIENT_IDS":  s.alexaClientID,
		"BROKER_JWT_ISSUER":        s.Auth.Issuer(),
		"BROKER_JWT_AUDIENCE":      s.Auth.Audience(),
		"BROKER_JWT_JWKS_URL":      s.Auth.JWKSURL(),
		"BROKER_WEBHOOK_URL":       s.Webhooks.URL(),
		"BROKER_WEBHOOK_SECRET":    s.Webhooks.Secret().Reveal(),
	}
	if s.KMS != nil {
		env["BROKER_KMS_ENDPOINT"] = s.KMS.URL()
		env["BROKER_ENCRYPTION_KEY"] = "kms:" + DefaultKMSKeyID
	}
	return env
}

// Close stops the admin route and every simulator: in-flight requests are
// cancelled and their handlers waited for. Calling it more than once is
// harmless; it always returns nil.
func (s *Set) Close() error {
	s.admin.close()
	if s.KMS != nil {
		s.KMS.Close()
	}
	if s.Webhooks != nil {
		s.Webhooks.Close()
	}
	if s.Auth != nil {
		s.Auth.Close()
	}
	if s.Alexa != nil {
		s.Alexa.Close()
	}
	if s.LWA != nil {
		s.LWA.Close()
	}
	return nil
}
