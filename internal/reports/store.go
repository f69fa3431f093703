package reports

import (
	"context"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Sentinel errors of the outbox, possibly wrapped with context. errors.Is
// matches them by identity.
var (
	// ErrReportNotFound is returned when no report has the message id asked for.
	ErrReportNotFound = &tokens.Error{Code: tokens.ENOTFOUND, Message: "report not found"}
	// ErrVersionConflict is returned by Store.PutReport when the stored version
	// is not the one the caller read: somebody else wrote first.
	ErrVersionConflict = &tokens.Error{Code: tokens.ECONFLICT, Message: "report was changed concurrently"}
)

// Store is the outbox: it keeps reports durably from acceptance until they are
// removed after their retention. Implementations are safe for concurrent use,
// also by several processes sharing the same storage.
//
// Every method may return an EUNAVAILABLE error when the storage cannot be
// reached, and an EINTERNAL error when a stored record is corrupt; each method
// names its other errors. Reports given to a Store are not kept by it, and
// reports it returns are the caller's: changing one afterwards changes nothing
// stored. The conformance suite, storetest.RunReports, holds every
// implementation to this.
type Store interface {
	// CreateReport stores r unless a report with its MessageID exists: then it
	// stores nothing and returns the existing report with created false (the
	// existing report may belong to another user). On creation it sets r.Seq,
	// higher than the Seq of every report created before through this Store
	// and its views, and of every report it has returned (there may be
	// gaps); a store that several processes share may order the reports of
	// different processes by their clocks, and says so. It sets r.Version,
	// and returns r with created true; r.Version is not read. Of concurrent
	// calls with one message id, exactly one creates.
	//
	// It returns an EINVALID error when r fails CheckStorable, or holds a key
	// longer than the storage can keep.
	CreateReport(ctx context.Context, r *Report) (existing *Report, created bool, err error)
	// GetReport returns the report with messageID. It returns ErrReportNotFound
	// (wrapped) when there is none, which is so for every message id that
	// CheckMessageID refuses, such as "".
	GetReport(ctx context.Context, messageID string) (*Report, error)
	// PutReport writes r when the stored version equals r.Version, then sets
	// r.Version to the new version; r.MessageID, r.UserID, r.SkillID, r.Kind,
	// r.Message and r.Seq must be the stored ones. On any error it leaves r as it was; on the errors below, the
	// stored report too.
	//
	// Writing r in StateDelivered raises the delivered mark of r's lane to
	// r.Seq, unless it is higher (see ClaimDelivery). A store that cannot
	// write both at once raises the mark first: a report accepted by the
	// Alexa API may raise it even when its write then fails, never the other
	// way round.
	//
	// It returns an EINVALID error when r fails CheckStorable,
	// ErrVersionConflict (wrapped) when another writer came first, and
	// ErrReportNotFound (wrapped) when no report has r's message id.
	//
	// events, when given (the delivery's outcome), are stored with the change
	// as tokens.Store.PutLink stores its events.
	PutReport(ctx context.Context, r *Report, events ...tokens.Event) error
	// DueReports returns, for up to tokens.PageSize(limit) lanes (see Lane),
	// one PENDING report of the lane whose NextAttemptAt is not after now, in
	// no promised order: a limit of zero or less asks for
	// tokens.DefaultPageSize. The report of a lane is its newest pending one
	// (the highest Seq) when the lane's kind Supersedes, else its oldest (the
	// lowest Seq); the lane's other pending reports are never returned, due or
	// not, so that a lane with a long backlog takes one place in the answer like
	// any other lane, and a lane whose report waits for a retry (or is being
	// sent) takes none. A report written a moment ago may be missing or stale in
	// the answer (then another report may stand for its lane); PutReport's
	// version check catches that.
	DueReports(ctx context.Context, now time.Time, limit int) ([]*Report, error)
	// LanePendingReports returns every PENDING report of lane, by Seq, whether
	// due or not. It returns none for a lane without pending reports, such as
	// "".
	LanePendingReports(ctx context.Context, lane string) ([]*Report, error)
	// DeleteFinishedReports removes the reports in an end state whose
	// FinishedAt is before before, and returns how many it removed. Reports the
	// storage removed by itself (a time to live) are not counted. When it fails,
	// the reports removed until then may stay removed.
	//
	// A Deliverer runs it once an hour. A store that writes a report and its
	// events apart may finish there storing the events of the reports that
	// ended lately (see the store's comment): it is meant to run that often,
	// whatever the retention.
	DeleteFinishedReports(ctx context.Context, before time.Time) (int, error)

	// ClaimDelivery takes the delivery claim of lane for owner until until,
	// when no other owner's claim stands at now: there is none, it ended before
	// now, or owner holds it already (which extends it to until). It reports
	// whether owner holds the claim; another owner's claim is the answer false,
	// not an error. A Deliverer sends a lane's reports only under the lane's
	// claim, so that deliverers sharing the outbox (several broker instances)
	// send one lane's reports one at a time and in order.
	//
	// With the claim it returns the lane's delivered mark: the highest Seq of
	// the lane's reports that PutReport stored as StateDelivered, or 0 (also
	// when held is false). The mark outlives the claim (ReleaseDelivery and a
	// claim that ran out keep it) and the reports (their removal keeps it).
	//
	// It returns an EINVALID error when CheckDeliveryClaim refuses lane and
	// owner (one of them is empty), or the store cannot keep lane (too long
	// for its keys).
	ClaimDelivery(ctx context.Context, lane, owner string, now, until time.Time) (delivered int64, held bool, err error)
	// ReleaseDelivery ends owner's delivery claim of lane, keeping the lane's
	// delivered mark. When another owner holds the claim, or nobody (an
	// empty lane or owner included), it does nothing and returns nil.
	ReleaseDelivery(ctx context.Context, lane, owner string) error
}

// CheckDeliveryClaim returns an EINVALID error when Store.ClaimDelivery may
// not give lane's delivery claim to owner: either is empty. Every Store's
// ClaimDelivery calls it first.
func CheckDeliveryClaim(lane, owner string) error {
	switch {
	case lane == "":
		return tokens.Errorf(tokens.EINVALID, "no lane to claim the delivery of")
	case owner == "":
		return tokens.Errorf(tokens.EINVALID, "no owner to hold the delivery claim")
	}
	return nil
}

// CheckMessageID returns an EINVALID error unless id can name a stored report:
// it is not empty, at most MaxMessageIDLen bytes long and UTF-8. No report has
// an id it refuses, so Store.GetReport answers ErrReportNotFound for one
// without asking the storage.
func CheckMessageID(id string) error {
	switch {
	case id == "":
		return tokens.Errorf(tokens.EINVALID, "report message id is empty")
	case len(id) > MaxMessageIDLen:
		return tokens.Errorf(tokens.EINVALID, "report message id is longer than %d bytes", MaxMessageIDLen)
	case !utf8.ValidString(id):
		return tokens.Errorf(tokens.EINVALID, "report message id is not UTF-8")
	}
	return nil
}

// CheckStorable returns an EINVALID error when r cannot be stored: its message
// id fails CheckMessageID, it has no user id, its Kind fails Validate, or
// its State is not one of the four states. Store.CreateReport and Store.PutReport call it first, so that every
// store refuses the same reports. It does not look at the profiles, which
// Validate checks before a report is accepted.
func (r *Report) CheckStorable() error {
	if r == nil {
		return tokens.Errorf(tokens.EINVALID, "no report")
	}
	if err := CheckMessageID(r.MessageID); err != nil {
		return err
	}
	switch {
	case r.UserID == "":
		return tokens.Errorf(tokens.EINVALID, "report %q has no user id", r.MessageID)
	case r.Kind.Validate() != nil:
		return tokens.Errorf(tokens.EINVALID, "report %q has an unknown kind %q", r.MessageID, string(r.Kind))
	case !slices.Contains(states, r.State):
		return tokens.Errorf(tokens.EINVALID, "report %q has no known state (%d)", r.MessageID, r.State)
	}
	return nil
}
