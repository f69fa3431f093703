package reciprocal

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Errors of a hand-over beyond the domain's own; each maps to one RFC 6749 code.
var (
	// ErrUnsupportedGrantType is returned for a grant_type other than Alexa's two.
	ErrUnsupportedGrantType = &tokens.Error{Code: tokens.EINVALID, Message: "unsupported grant_type"}
	// ErrInvalidClient is returned when client_id is not an allowed Alexa client
	// or differs from the bearer token's client, as its claim profile reads it
	// (client_id, azp, cid or appid).
	ErrInvalidClient = &tokens.Error{Code: tokens.EPERMISSION, Message: "client_id is not an allowed Alexa client of this token"}
)

// oauthError is the reciprocal endpoint's error table: it returns the RFC 6749
// §5.2 error code and the HTTP status of an error of Authorize or of the
// Authenticator.
//
// It is the one deliberate exception to the broker's single error table
// (internal/server's outcomes, which every gRPC and gateway call answers
// through). Alexa calls this endpoint as an OAuth 2.0 token endpoint and
// expects RFC 6749 JSON errors, {"error":"invalid_grant","error_description":
// "…"}, not the gateway's gRPC status JSON, {"code":N,"message":"…"}; so the
// domain's error codes are mapped here a second time, to OAuth error codes:
//
//	error, first match                         error                    HTTP
//	wraps tokens.ErrInvalidGrant               invalid_grant            400
//	wraps ErrUnsupportedGrantType              unsupported_grant_type   400
//	wraps ErrInvalidClient                     invalid_client           400
//	any other EINVALID                         invalid_request          400
//	EUNAUTHENTICATED                           invalid_token            401
//	ERATELIMIT (Limiter)                       temporarily_unavailable  429
//	EUNAVAILABLE                               temporarily_unavailable  503
//	anything else                              server_error             500
//
// invalid_token is RFC 6750's code (§3.1) for a bearer token that is not
// accepted; a 401 also carries WWW-Authenticate: Bearer error="invalid_token".
// RFC 6749 has no code for a caller that asks too often; temporarily_unavailable
// says to try again later, and the 429 carries Retry-After.
// The handler answers three cases of its own before the service is asked: a
// method other than POST (invalid_request, 405); a form it cannot read, an
// Authorization header neither Bearer nor Basic, or a token both in the header
// and in the form (invalid_request, 400); and no bearer token at all
// (invalid_token, 401, WWW-Authenticate: Bearer).
func oauthError(err error) (code string, status int) {
	switch {
	case errors.Is(err, tokens.ErrInvalidGrant):
		return "invalid_grant", http.StatusBadRequest
	case errors.Is(err, ErrUnsupportedGrantType):
		return "unsupported_grant_type", http.StatusBadRequest
	case errors.Is(err, ErrInvalidClient):
		return "invalid_client", http.StatusBadRequest
	}
	switch tokens.ErrorCode(err) {
	case tokens.EINVALID:
		return "invalid_request", http.StatusBadRequest
	case tokens.EUNAUTHENTICATED:
		return "invalid_token", http.StatusUnauthorized
	case tokens.ERATELIMIT:
		return "temporarily_unavailable", http.StatusTooManyRequests
	case tokens.EUNAVAILABLE:
		return "temporarily_unavailable", http.StatusServiceUnavailable
	}
	return "server_error", http.StatusInternalServerError
}

// HTTPStatus returns the HTTP status of an error of a hand-over by
// oauthError's table. Every hand-over answers by it: the form endpoint's, and
// AcceptGrant's (internal/smarthome), whose body is Alexa's ErrorResponse
// rather than RFC 6749's, so that a skill sees one broker whichever way its
// codes come.
func HTTPStatus(err error) int {
	_, status := oauthError(err)
	return status
}

// writeError writes an RFC 6749 §5.2 error body, {"error":code,
// "error_description":description}, with status; an empty description is left
// out.
func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, description})
}
