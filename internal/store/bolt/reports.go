package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

var (
	_ reports.Store         = (*Store)(nil)
	_ reports.PendingLister = (*Store)(nil)
)

// reportRecord is how a reports.Report is kept in the "reports" bucket.
// SkillID, Kind and Message are kept as given: absent when empty, and the
// message as base64 (a pointer, so that an empty message is kept apart from
// none).
type reportRecord struct {
	Format        int               `json:"format"`
	MessageID     string            `json:"message_id"`
	UserID        string            `json:"user_id"`
	SkillID       string            `json:"skill_id,omitempty"`
	Kind          string            `json:"kind,omitempty"`
	Message       *[]byte           `json:"message,omitempty"`
	Profiles      []reports.Profile `json:"profiles"`
	Seq           int64             `json:"seq"`
	State         string            `json:"state"`
	Attempts      int               `json:"attempts"`
	LastError     string            `json:"last_error,omitempty"`
	SubmittedAt   string            `json:"submitted_at"`
	NextAttemptAt string            `json:"next_attempt_at,omitempty"`
	DeliveredAt   string            `json:"delivered_at,omitempty"`
	FinishedAt    string            `json:"finished_at,omitempty"`
	Version       int64             `json:"version"`
}

// reportFormatLanes is the "format" of the record of a report that code
// older than skills and kinds would misread: one of another lane than its
// user's profile reports in the default skill (another skill, or an Alexa
// event), or with a message. That code, which refuses formats it does not
// know, then fails on the record rather than deliver it as the default
// skill's profile report. The other reports keep recordFormat, which both
// read alike.
const reportFormatLanes = 2

// encodeReport encodes r, with version, as a report record.
func encodeReport(r *reports.Report, version int64) ([]byte, error) {
	rec := reportRecord{
		Format: recordFormat, MessageID: r.MessageID, UserID: r.UserID, SkillID: r.SkillID, Kind: string(r.Kind),
		Profiles: r.Profiles, Seq: r.Seq,
		State: r.State.String(), Attempts: r.Attempts, LastError: r.LastError,
		SubmittedAt: formatTime(r.SubmittedAt), NextAttemptAt: formatTime(r.NextAttemptAt),
		DeliveredAt: formatTime(r.DeliveredAt), FinishedAt: formatTime(r.FinishedAt), Version: version,
	}
	if r.Message != nil {
		rec.Message = &r.Message
	}
	if r.Message != nil || r.Lane() != r.UserID {
		rec.Format = reportFormatLanes
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("bolt: encode report %q: %w", r.MessageID, err)
	}
	return b, nil
}

// decodeReport decodes a report record into a new Report. Its errors carry no
// code: they are EINTERNAL, a corrupt record.
func decodeReport(v []byte) (*reports.Report, error) {
	var rec reportRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("bolt: decode report: %w", err)
	}
	if rec.Format != recordFormat && rec.Format != reportFormatLanes {
		return nil, fmt.Errorf("bolt: decode report %q: unknown record format %d", rec.MessageID, rec.Format)
	}
	kind := reports.Kind(rec.Kind)
	if kind.Validate() != nil {
		return nil, fmt.Errorf("bolt: decode report %q: unknown kind %q", rec.MessageID, rec.Kind)
	}
	state, err := reports.ParseState(rec.State)
	if err != nil {
		// A stored record that does not decode is corrupt: internal, not the caller's.
		return nil, fmt.Errorf("bolt: decode report %q: unknown state %q", rec.MessageID, rec.State)
	}
	r := &reports.Report{
		MessageID: rec.MessageID, UserID: rec.UserID, SkillID: rec.SkillID, Kind: kind,
		Profiles: rec.Profiles, Seq: rec.Seq,
		State: state, Attempts: rec.Attempts, LastError: rec.LastError, Version: rec.Version,
	}
	if rec.Message != nil {
		r.Message = *rec.Message
	}
	for _, t := range []struct {
		dst *time.Time
		s   string
	}{{&r.SubmittedAt, rec.SubmittedAt}, {&r.NextAttemptAt, rec.NextAttemptAt}, {&r.DeliveredAt, rec.DeliveredAt}, {&r.FinishedAt, rec.FinishedAt}} {
		if *t.dst, err = parseTime(t.s); err != nil {
			return nil, fmt.Errorf("bolt: decode report %q: %w", rec.MessageID, err)
		}
	}
	return r, nil
}

// pendingKey indexes a pending report: its lane (see reports.Lane), a zero
// byte, and the sequence big-endian, so that a lane's pending reports are one
// ordered range. A lane may hold zero bytes itself; the sequence's fixed
// length keeps it apart: a key's lane is the key without its last nine bytes.
func pendingKey(lane string, seq int64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(lane), 0), uint64(seq))
}

// maxLaneLen is the length in bytes of the longest lane whose pending key (the
// lane, a zero byte and eight bytes of Seq) bbolt can keep.
const maxLaneLen = bbolt.MaxKeySize - 9

// CreateReport stores r as reports.Store.CreateReport says, in one group
// commit (see the package comment): it returns once r is on disk. It takes
// r.Seq and r.Version from the bucket's sequence, so both grow without gaps. Beyond the port's errors, it returns an EINVALID error for a report
// whose lane is longer than maxLaneLen bytes (a user id, skill id and kind
// about 500 bytes long).
func (s *Store) CreateReport(ctx context.Context, r *reports.Report) (*reports.Report, bool, error) {
	if err := r.CheckStorable(); err != nil {
		return nil, false, fmt.Errorf("bolt: create report: %w", err)
	}
	if len(r.Lane()) > maxLaneLen {
		return nil, false, tokens.Errorf(tokens.EINVALID, "report %q: user id and skill id longer than %d bytes together", r.MessageID, maxLaneLen)
	}
	var existing *reports.Report
	var seq, version int64
	err := s.groupUpdate(ctx, "create report", func(tx *bbolt.Tx) error {
		existing, seq, version = nil, 0, 0 // a group commit may run this again
		b := tx.Bucket(bucketReports)
		if v := b.Get([]byte(r.MessageID)); v != nil {
			var err error
			existing, err = decodeReport(v)
			return err
		}
		n, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("bolt: create report: %w: %w", errUnavailable, err)
		}
		seq, version = int64(n), int64(n)
		rec := *r
		rec.Seq = seq
		return s.putReport(tx, &rec, version)
	})
	switch {
	case err != nil:
		return nil, false, err
	case existing != nil:
		return existing, false, nil
	}
	r.Seq, r.Version = seq, version
	return r, true, nil
}

// putReport writes r with version and keeps the pending index in step.
func (s *Store) putReport(tx *bbolt.Tx, r *reports.Report, version int64) error {
	v, err := encodeReport(r, version)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketReports).Put([]byte(r.MessageID), v); err != nil {
		return fmt.Errorf("bolt: put report: %w: %w", errUnavailable, err)
	}
	pending, key := tx.Bucket(bucketPending), pendingKey(r.Lane(), r.Seq)
	if r.State == reports.StatePending {
		err = pending.Put(key, []byte(r.MessageID))
	} else {
		err = pending.Delete(key)
	}
	if err != nil {
		return fmt.Errorf("bolt: index report: %w: %w", errUnavailable, err)
	}
	return nil
}

// GetReport returns the report with messageID as reports.Store.GetReport says.
func (s *Store) GetReport(ctx context.Context, messageID string) (*reports.Report, error) {
	var r *reports.Report
	err := s.view(ctx, "get report", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketReports).Get([]byte(messageID))
		if v == nil {
			return fmt.Errorf("bolt: get report %q: %w", messageID, reports.ErrReportNotFound)
		}
		var err error
		r, err = decodeReport(v)
		return err
	})
	return r, err
}

// PutReport writes r as reports.Store.PutReport says, in one group commit
// (see the package comment) whose change compares the versions, writes the
// report, keeps the pending index in step and, for a DELIVERED report, raises
// its lane's delivered mark. The new version comes from the bucket's
// sequence. It returns once the change is on disk.
func (s *Store) PutReport(ctx context.Context, r *reports.Report, events ...tokens.Event) error {
	if err := r.CheckStorable(); err != nil {
		return fmt.Errorf("bolt: put report: %w", err)
	}
	if err := checkEvents(events); err != nil {
		return err
	}
	var version int64
	err := s.groupUpdate(ctx, "put report", func(tx *bbolt.Tx) error {
		version = 0 // a group commit may run this again
		b := tx.Bucket(bucketReports)
		v := b.Get([]byte(r.MessageID))
		if v == nil {
			return fmt.Errorf("bolt: put report %q: %w", r.MessageID, reports.ErrReportNotFound)
		}
		old, err := decodeReport(v)
		if err != nil {
			return err
		}
		if old.Version != r.Version {
			return fmt.Errorf("bolt: put report %q: stored version %d, given %d: %w", r.MessageID, old.Version, r.Version, reports.ErrVersionConflict)
		}
		n, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("bolt: put report: %w: %w", errUnavailable, err)
		}
		version = int64(n)
		if r.State == reports.StateDelivered {
			if err := raiseMark(tx, r.Lane(), r.Seq); err != nil {
				return err
			}
		}
		if err := s.putReport(tx, r, version); err != nil {
			return err
		}
		return writeEvents(tx, events)
	})
	if err != nil {
		return err
	}
	r.Version = version
	return nil
}

// DueReports returns one pending report of each lane that is due, as
// reports.Store.DueReports says: the newest of a lane of profile reports, the
// oldest of a lane of Alexa events. It walks the whole pending index, by lane
// and Seq, keeping the first and last message id of each lane (the lane is
// each key without its last nine bytes), and reads only those reports, until
// it has limit due ones: the first, whose Kind says whether it Supersedes,
// then the last instead when it does. The reports of a lane are all of one
// kind, which the lane names.
func (s *Store) DueReports(ctx context.Context, now time.Time, limit int) ([]*reports.Report, error) {
	limit = tokens.PageSize(limit)
	var due []*reports.Report
	err := s.view(ctx, "due reports", func(tx *bbolt.Tx) error {
		rb := tx.Bucket(bucketReports)
		type ends struct{ oldest, newest []byte } // message ids, valid in tx
		var lanes []string
		byLane := map[string]*ends{}
		c := tx.Bucket(bucketPending).Cursor()
		for k, id := c.First(); k != nil; k, id = c.Next() {
			if len(k) < 9 {
				return fmt.Errorf("bolt: due reports: pending key %q too short", k)
			}
			lane := string(k[:len(k)-9])
			e, seen := byLane[lane]
			if !seen {
				e = &ends{oldest: id}
				byLane[lane] = e
				lanes = append(lanes, lane)
			}
			e.newest = id // keys of a lane run by Seq: the last one is the newest
		}
		for _, lane := range lanes {
			if len(due) == limit {
				break
			}
			e := byLane[lane]
			r, err := indexedReport(rb, e.oldest)
			if err != nil {
				return err
			}
			if r != nil && r.Kind.Supersedes() && !bytes.Equal(e.oldest, e.newest) {
				if r, err = indexedReport(rb, e.newest); err != nil {
					return err
				}
			}
			if r != nil && !r.NextAttemptAt.After(now) {
				due = append(due, r)
			}
		}
		return nil
	})
	return due, err
}

// LanePendingReports returns the pending reports of lane as
// reports.Store.LanePendingReports says, from one range of the pending index:
// the keys that start with the lane and a zero byte, and are nine bytes longer
// than the lane (a longer lane may start the same way).
func (s *Store) LanePendingReports(ctx context.Context, lane string) ([]*reports.Report, error) {
	var out []*reports.Report
	err := s.view(ctx, "lane pending reports", func(tx *bbolt.Tx) error {
		rb := tx.Bucket(bucketReports)
		prefix := append([]byte(lane), 0)
		c := tx.Bucket(bucketPending).Cursor()
		for k, id := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, id = c.Next() {
			if len(k) != len(prefix)+8 {
				continue
			}
			r, err := indexedReport(rb, id)
			if err != nil {
				return err
			}
			if r != nil {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// PendingReports returns a page of the pending reports as
// reports.PendingLister.PendingReports says, from the pending index, by lane
// and Seq. Its cursor is the index key of the page's last report, base64url.
func (s *Store) PendingReports(ctx context.Context, cursor string, limit int) (reports.ReportPage, error) {
	limit = tokens.PageSize(limit)
	after, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || (cursor != "" && len(after) < 9) {
		return reports.ReportPage{}, tokens.Errorf(tokens.EINVALID, "the cursor of pending reports is not one this store gave")
	}
	var page reports.ReportPage
	err = s.view(ctx, "pending reports", func(tx *bbolt.Tx) error {
		rb := tx.Bucket(bucketReports)
		c := tx.Bucket(bucketPending).Cursor()
		k, id := c.First()
		if cursor != "" {
			if k, id = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, id = c.Next()
			}
		}
		var last []byte
		for ; k != nil; k, id = c.Next() {
			if len(page.Reports) == limit {
				page.Next = base64.RawURLEncoding.EncodeToString(last)
				break
			}
			r, err := indexedReport(rb, id)
			if err != nil {
				return err
			}
			if r != nil {
				page.Reports = append(page.Reports, r)
				last = k
			}
		}
		return nil
	})
	if err != nil {
		return reports.ReportPage{}, err
	}
	return page, nil
}

// indexedReport returns the report with the message id that the pending index
// holds, from the reports bucket rb, or nil when there is none.
func indexedReport(rb *bbolt.Bucket, id []byte) (*reports.Report, error) {
	v := rb.Get(id)
	if v == nil {
		return nil, nil
	}
	return decodeReport(v)
}

// DeleteFinishedReports removes finished reports as
// reports.Store.DeleteFinishedReports says, in one transaction: all of them or,
// when it fails, none.
func (s *Store) DeleteFinishedReports(ctx context.Context, before time.Time) (int, error) {
	var n int
	err := s.update(ctx, "delete finished reports", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketReports)
		var gone [][]byte
		err := b.ForEach(func(k, v []byte) error {
			r, err := decodeReport(v)
			if err != nil {
				return err
			}
			if r.State.Final() && r.FinishedAt.Before(before) {
				gone = append(gone, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("bolt: delete report: %w: %w", errUnavailable, err)
			}
		}
		n = len(gone)
		return nil
	})
	return n, err
}
