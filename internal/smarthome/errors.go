package smarthome

import (
	"errors"
	"net/http"

	"github.com/reciprocal-broker/broker/internal/reciprocal"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// ErrForeignClient is returned when the grantee token was issued to a client
// that is not one of the skill's Alexa clients (its claim profile reads the
// client from client_id, azp, cid or appid). It is an EINVALID error: the
// directive is answered 400, as the form endpoint answers invalid_client.
var ErrForeignClient = &tokens.Error{Code: tokens.EINVALID, Message: "the grantee token's client is not an Alexa client of this skill"}

// messagePrefix begins the message of every ErrorResponse.
const messagePrefix = "Failed to handle the AcceptGrant directive: "

// status returns the HTTP status of an error of Service.Accept, by the
// hand-overs' table (reciprocal.HTTPStatus), and the reason its ErrorResponse
// gives: for LWA's refusal of the code a fixed text, for an error the table
// answers 500 "internal error", else the message of the error's
// *tokens.Error, which never holds a token or a code (the field at fault, why
// the token was refused, how long to wait).
func status(err error) (int, string) {
	code := reciprocal.HTTPStatus(err)
	switch {
	case errors.Is(err, tokens.ErrInvalidGrant):
		return code, "Login with Amazon refused the authorization code"
	case code == http.StatusInternalServerError:
		return code, "internal error"
	}
	return code, tokens.ErrorMessage(err)
}
