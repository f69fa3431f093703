package reports

import "context"

// PendingLister is an optional ability of a Store: listing every PENDING
// report, a page at a time, from the index of pending reports that the store
// keeps for DueReports, so that operators see what waits to be delivered and
// why (LastError) without reading the finished reports. Implementations are
// safe for concurrent use; the method may return EUNAVAILABLE and EINTERNAL
// errors as the Store's. storetest.RunPendingReports holds every
// implementation to this.
type PendingLister interface {
	// PendingReports returns up to tokens.PageSize(limit) PENDING reports in
	// the order of the store's index, a lane's reports together and by Seq,
	// starting after cursor ("" for the first page); the page's Next is the
	// cursor of the following page, "" after the last. Paging from "" to
	// the end returns every report that stayed PENDING meanwhile once; a
	// report written a moment ago may be missing or stale, as in DueReports.
	// It returns an EINVALID error when cursor is not one that
	// PendingReports gave.
	PendingReports(ctx context.Context, cursor string, limit int) (ReportPage, error)
}

// ReportPage is one page of PendingLister.PendingReports.
type ReportPage struct {
	// Reports are the page's reports.
	Reports []*Report
	// Next is the cursor of the following page; "" after the last.
	Next string
}
