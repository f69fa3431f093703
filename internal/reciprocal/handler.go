package reciprocal

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reciprocal-broker/broker/internal/auth"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// MaxBody is the largest form the endpoint reads.
const MaxBody = 64 << 10

// Handler serves POST /api/reciprocal/authorize: Alexa's form request in either
// form, answered with `{}` or an RFC 6749 §5.2 error from the endpoint's own
// error table (oauthError). It is safe for concurrent use.
type Handler struct {
	service *Service
	authn   auth.Authenticator
	logger  *slog.Logger

	// Limiter limits the hand-overs of each user and each client; one beyond
	// the limit is answered 429 with Retry-After and costs no LWA call. Set it
	// before the Handler serves; nil limits nothing.
	Limiter *Limiter
}

// NewHandler returns the endpoint's HTTP handler: authn verifies the user's
// JWT, s carries out the hand-over, and logger (nil discards) gets one line per
// hand-over.
func NewHandler(s *Service, authn auth.Authenticator, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{service: s, authn: authn, logger: logger}
}

// ServeHTTP parses and checks the form, authenticates the user's JWT, and has
// the code exchanged before answering, within Deadline: the time starts as
// the request arrives, so that a slow key server, verifying the JWT, counts
// against it as much as LWA does.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), Deadline)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	form, err := readForm(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	req := Request{GrantType: form.Get("grant_type"), Code: tokens.Secret(form.Get("code")), ClientID: form.Get("client_id")}
	// A malformed request is answered before authentication, as token endpoints do.
	if err := req.Validate(); err != nil {
		h.fail(w, r, err)
		return
	}

	raw, err := bearer(r, form)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if raw == "" {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		writeError(w, http.StatusUnauthorized, "invalid_token", "a bearer token is required")
		return
	}
	p, err := h.authn.Verify(ctx, raw)
	if err != nil {
		if tokens.ErrorCode(err) == tokens.EUNAUTHENTICATED {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		h.fail(w, r, err)
		return
	}
	if wait, err := h.Limiter.Allow(p); err != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)))
		h.fail(w, r, err)
		return
	}
	if err := h.service.Authorize(ctx, p, req); err != nil {
		h.fail(w, r, err)
		return
	}
	h.logger.InfoContext(ctx, "linked user", "user_id", p.Subject, "client_id", p.ClientID)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("{}"))
}

// fail answers with the RFC 6749 error of err, logging what the caller is not told.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status := oauthError(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	if status >= 500 {
		h.logger.ErrorContext(r.Context(), "reciprocal authorization failed", "err", err.Error())
	} else {
		h.logger.InfoContext(r.Context(), "reciprocal authorization refused", "error", code, "err", err.Error())
	}
	writeError(w, status, code, tokens.ErrorMessage(err))
}

// readForm reads the urlencoded body: the right content type, at most MaxBody
// bytes, and no field given twice.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errors.New("content type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errors.New("body is larger than 64 KiB")
		}
		return nil, errors.New("cannot read body")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errors.New("body is not a valid form")
	}
	for name, values := range form {
		if len(values) > 1 {
			return nil, errors.New(name + " is repeated")
		}
	}
	return form, nil
}

// bearer returns the user's JWT: the Authorization Bearer header (Amazon's form)
// or the access_token field (the IETF form, where an Authorization Basic header
// may carry Alexa's client credentials and is ignored). Both at once is an error
// (RFC 6750 §2), also when the Bearer header holds no token. A Bearer header
// without a single token (none, or two) sends none, as the gateway reads it: ""
// then asks the caller for one (401 with a bare challenge, RFC 6750 §3.1).
func bearer(r *http.Request, form url.Values) (string, error) {
	header := r.Header.Get("Authorization")
	fromHeader, _ := auth.ParseBearer(header)
	scheme, _, _ := strings.Cut(strings.TrimSpace(header), " ")
	isBearer := strings.EqualFold(scheme, "Bearer")
	if header != "" && !isBearer && !strings.HasPrefix(strings.ToLower(header), "basic ") {
		return "", errors.New("authorization header is neither Bearer nor Basic")
	}
	fromForm := form.Get("access_token")
	switch {
	case isBearer && fromForm != "":
		return "", errors.New("token given both in the header and in the form")
	case fromHeader != "":
		return fromHeader, nil
	}
	return fromForm, nil
}
