package tokens

import (
	"errors"
	"fmt"
)

// Code is the kind of an application error. A type of its own, so that a
// misspelt code does not compile.
type Code string

// Error codes of the application. They are few on purpose: each maps to exactly one
// gRPC code and one HTTP status at the edge (internal/server), and nowhere else.
const (
	ENOTFOUND        Code = "not_found"       // the thing asked for does not exist
	EINVALID         Code = "invalid"         // the caller's input is wrong
	EUNAUTHENTICATED Code = "unauthenticated" // no valid credentials were presented
	EPERMISSION      Code = "permission"      // the caller may not do this
	ERELINK          Code = "relink_required" // the user must link the skill again
	ECONFLICT        Code = "conflict"        // a concurrent writer won; try again
	EUNAVAILABLE     Code = "unavailable"     // a dependency (store, Amazon) cannot be reached
	ERATELIMIT       Code = "rate_limited"    // the caller asked too often; try again later
	EUNIMPLEMENTED   Code = "unimplemented"   // the method is not built yet
	EINTERNAL        Code = "internal"        // a bug or a misconfiguration; never detailed to callers
)

// Error is the application's error. Its Message is safe to show to the caller: it
// never holds a token, code or secret. Any other error is internal, and callers
// see only that something went wrong.
type Error struct {
	// Code is one of the E* constants.
	Code Code
	// Message is a human-readable explanation for the caller.
	Message string
}

// Error returns the message with its code.
func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for any
// other non-nil error, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, and a
// generic text for any other non-nil error so that internals never leak.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Sentinel errors that adapters return, possibly wrapped with context. errors.Is
// matches a sentinel by identity, never by its code or message: another error
// with the same text is not the sentinel.
var (
	// ErrLinkNotFound is returned when a user has no link.
	ErrLinkNotFound = &Error{Code: ENOTFOUND, Message: "link not found"}
	// ErrVersionConflict is returned by Store.PutLink when the stored version is not
	// the one the caller read: somebody else wrote first.
	ErrVersionConflict = &Error{Code: ECONFLICT, Message: "link was changed concurrently"}
	// ErrInvalidGrant is returned by an Exchanger when LWA refused the authorization
	// code or refresh token (OAuth error invalid_grant). It is final: retrying the
	// same grant cannot succeed.
	ErrInvalidGrant = &Error{Code: EINVALID, Message: "Login with Amazon refused the grant"}
	// ErrUnimplemented is returned by methods whose capability has not landed yet.
	ErrUnimplemented = &Error{Code: EUNIMPLEMENTED, Message: "not implemented yet"}
)
