package smarthome

import (
	"errors"
	"net/http"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// ErrForeignClient is returned when the grantee token was issued to a client
// that is not one of the skill's Alexa clients (its claim profile reads the
// client from client_id, azp, cid or appid).
var ErrForeignClient = &tokens.Error{Code: tokens.EPERMISSION, Message: "the grantee token's client is not an Alexa client of this skill"}

// messagePrefix begins the message of every ErrorResponse.
const messagePrefix = "Failed to handle the AcceptGrant directive: "

// status is the AcceptGrant error table: it returns the HTTP status of an
// error of Service.Accept, and the reason its ErrorResponse gives. It maps the
// failures the reciprocal endpoint shares with AcceptGrant to the statuses of
// that endpoint's table (internal/reciprocal's oauthError), so that a skill's
// Lambda sees one broker:
//
//	error, first match                   HTTP  reason
//	wraps tokens.ErrInvalidGrant         400   Login with Amazon refused the authorization code
//	wraps ErrForeignClient               400   ErrForeignClient's message
//	any other EINVALID                   400   the error's message (the field at fault)
//	EUNAUTHENTICATED                     401   the error's message
//	ERATELIMIT (reciprocal.Limiter)      429   the error's message (Retry-After)
//	EUNAVAILABLE                         503   the error's message
//	anything else                        500   internal error
//
// A token the reciprocal endpoint would answer invalid_client (a client that
// is not the skill's) is a 400 here too, though ErrForeignClient's code is
// EPERMISSION: what the broker's own table would make a 403. The messages of
// *tokens.Error never hold a token or a code, and the table shows no other
// error's text.
func status(err error) (int, string) {
	switch {
	case errors.Is(err, tokens.ErrInvalidGrant):
		return http.StatusBadRequest, "Login with Amazon refused the authorization code"
	case errors.Is(err, ErrForeignClient):
		return http.StatusBadRequest, ErrForeignClient.Message
	}
	switch tokens.ErrorCode(err) {
	case tokens.EINVALID:
		return http.StatusBadRequest, tokens.ErrorMessage(err)
	case tokens.EUNAUTHENTICATED:
		return http.StatusUnauthorized, tokens.ErrorMessage(err)
	case tokens.ERATELIMIT:
		return http.StatusTooManyRequests, tokens.ErrorMessage(err)
	case tokens.EUNAVAILABLE:
		return http.StatusServiceUnavailable, tokens.ErrorMessage(err)
	}
	return http.StatusInternalServerError, "internal error"
}
