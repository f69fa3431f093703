package reports

import (
	"context"
	"time"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Sentinel errors of the outbox, possibly wrapped with context.
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
type Store interface {
	// CreateReport stores r, whose Version is 0, unless a report with its
	// MessageID exists: then it stores nothing and returns the existing report
	// with created false. On creation it sets r.Seq, higher than the Seq of every
	// report created before, and r.Version.
	CreateReport(ctx context.Context, r *Report) (existing *Report, created bool, err error)
	// GetReport returns the report with messageID, or ErrReportNotFound.
	GetReport(ctx context.Context, messageID string) (*Report, error)
	// PutReport writes r when the stored version equals r.Version, then sets
	// r.Version to the new version. It returns ErrVersionConflict when
	// another writer came first, and ErrReportNotFound when r was removed.
	PutReport(ctx context.Context, r *Report) error
	// PendingReports returns up to limit PENDING reports whose NextAttemptAt is
	// not after now, in no promised order.
	PendingReports(ctx context.Context, now time.Time, limit int) ([]*Report, error)
	// UserPendingReports returns every PENDING report of userID, by Seq.
	UserPendingReports(ctx context.Context, userID string) ([]*Report, error)
	// DeleteFinishedReports removes reports that reached an end state before
	// before, and returns how many.
	DeleteFinishedReports(ctx context.Context, before time.Time) (int, error)
}
