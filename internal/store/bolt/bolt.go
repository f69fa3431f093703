// Package bolt is the broker's embedded store: links, code claims and refresh
// leases (tokens.Store, tokens.ClaimSweeper and tokens.Leaser) and the reports
// outbox (reports.Store), kept in one bbolt file on local disk. It is the
// default store (BROKER_STORE=bolt:PATH) and fits a single broker process:
// bbolt's file lock keeps other processes out, so several instances sharing
// links need the DynamoDB store.
//
// The file holds these buckets:
//
//	links       user id → link record
//	codes       code hash → code claim: who claimed the code, and until when;
//	            removed by DeleteExpiredClaims once expired
//	leases      user id → refresh lease: who holds it, and until when
//	reports     message id → report
//	pending     user id, a zero byte, big-endian sequence → message id of a PENDING report
//	deliveries  user id → delivered mark: the Seq of the user's newest report Alexa accepted
//	events      event id → event (the audit trail)
//	events_time time key → event id, where a time key is the event's time as
//	            8 bytes that sort as Unix nanoseconds, then its id
//	events_user user id (uvarint length first), time key → event id
//	events_type type (uvarint length first), time key → event id
//	webhooks    event id → webhook delivery record (state, attempts, version)
//	webhooks_pending user id (uvarint length first), time key → event id of a
//	            PENDING webhook: the first key of a user is the user's oldest
//
// Events are written in the transaction of the change they record (PutLink,
// DeleteLink, PutReport), with the webhooks of those to be sent; listings walk
// an index backwards, newest first, and a page's cursor is the last event's
// time key in base64. Counts by state are read in a transaction; delivery and
// webhook claims are kept in memory (see deliveryClaims).
//
// Records are the package's own forms, never domain types marshalled directly,
// so that the domain types can change without changing the file: a link record
// is a compact binary form that starts with its format byte (see linkFormat),
// since links are read on every partner-token call; claims, leases and reports
// are JSON objects with a "format" field (see recordFormat). Each change is one
// bbolt transaction. Tokens arrive sealed; the store never sees them in clear.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// OpenTimeout is how long Open waits for the file lock that another process (or
// another open Store in this one) holds, before it gives up.
const OpenTimeout = time.Second

var (
	bucketLinks   = []byte("links")
	bucketCodes   = []byte("codes")
	bucketReports = []byte("reports")
	bucketPending = []byte("pending")
	bucketLeases  = []byte("leases")
)

// errUnavailable marks errors that mean the database cannot answer: it is closed,
// locked by another process, or its file cannot be read or written.
var errUnavailable = &tokens.Error{Code: tokens.EUNAVAILABLE, Message: "link store unavailable"}

// Store is the bbolt store: a tokens.Store, a tokens.Leaser and a reports.Store
// in one file. It is safe for concurrent use by many goroutines; bbolt's file
// lock keeps other processes out while it is open. Its methods return the
// errors their ports specify; the database closed, locked or failing to read or
// write is an EUNAVAILABLE error.
type Store struct {
	db   *bbolt.DB
	path string
	now  func() time.Time

	deliveries    deliveryClaims // users' delivery claims, in memory (see delivery.go)
	webhookClaims deliveryClaims // users' webhook claims, in memory alike
}

var _ tokens.Store = (*Store)(nil)

// Open opens the store in the file at path, creating the file (mode 0600) and its
// parent directory (mode 0700) when they do not exist. It returns an EUNAVAILABLE
// error when another process holds the file for longer than OpenTimeout, and an
// EINTERNAL error when the file cannot be created or is not a bbolt database.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "bolt: no database path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: create directory of %s: %w", path, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: OpenTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt: open %s: file is locked by another process (waited %s): %w: %w",
			path, OpenTimeout, errUnavailable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		names := [][]byte{bucketLinks, bucketCodes, bucketReports, bucketPending, bucketLeases, bucketWebhooks, bucketWebhooksPending}
		for _, name := range append(names, eventBuckets...) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return &Store{db: db, path: path, now: time.Now}, nil
}

// Close closes the database file and releases its lock. Every later call of the
// store's methods returns an EUNAVAILABLE error. Closing twice is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", s.path, err)
	}
	return nil
}

// GetLink returns the link of userID, as tokens.Store specifies: a copy, or
// ErrLinkNotFound. It returns an EUNAVAILABLE error when the database cannot be
// read, and an EINTERNAL error when the stored record is corrupt.
func (s *Store) GetLink(ctx context.Context, userID string) (*tokens.Link, error) {
	var link *tokens.Link
	err := s.view(ctx, "get link", func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketLinks).Get([]byte(userID))
		if v == nil {
			return tokens.ErrLinkNotFound
		}
		var err error
		link, err = decodeLink(v)
		return err
	})
	if err != nil {
		return nil, err
	}
	return link, nil
}

// PutLink writes link as tokens.Store specifies, comparing versions and writing
// in one bbolt write transaction. Versions come from the links bucket's sequence,
// one per file, so a link deleted and created again never takes a version that a
// stale reader could still hold.
//
// It returns an EINVALID error when link.Validate fails or the user id is longer
// than a bbolt key (bbolt.MaxKeySize), ErrVersionConflict (wrapped) when the
// stored version differs, and an EUNAVAILABLE error when the database cannot be
// written. On any error link is left unchanged and nothing is written.
func (s *Store) PutLink(ctx context.Context, link *tokens.Link, events ...tokens.Event) error {
	if err := link.Validate(); err != nil {
		return err
	}
	if err := checkEvents(events); err != nil {
		return err
	}
	if len(link.UserID) > bbolt.MaxKeySize {
		return tokens.Errorf(tokens.EINVALID, "user id longer than %d bytes", bbolt.MaxKeySize)
	}
	var version int64
	err := s.update(ctx, "put link", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		key := []byte(link.UserID)
		var stored int64
		if v := b.Get(key); v != nil {
			old, err := decodeLink(v)
			if err != nil {
				return err
			}
			stored = old.Version
		}
		if stored != link.Version {
			return fmt.Errorf("bolt: put link of %q: stored version %d, given %d: %w",
				link.UserID, stored, link.Version, tokens.ErrVersionConflict)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("bolt: put link: next version: %w: %w", errUnavailable, err)
		}
		version = int64(seq)
		v, err := encodeLink(link, version)
		if err != nil {
			return err
		}
		if err := b.Put(key, v); err != nil {
			return fmt.Errorf("bolt: put link: %w: %w", errUnavailable, err)
		}
		return writeEvents(tx, events)
	})
	if err != nil {
		return err
	}
	link.Version = version
	return nil
}

// DeleteLink removes the link of userID, as tokens.Store specifies. It returns
// ErrLinkNotFound when there is none, and an EUNAVAILABLE error when the
// database cannot be written. The user's refresh lease, if any, stays until it is
// taken over.
func (s *Store) DeleteLink(ctx context.Context, userID string, events ...tokens.Event) error {
	if err := checkEvents(events); err != nil {
		return err
	}
	return s.update(ctx, "delete link", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		key := []byte(userID)
		if b.Get(key) == nil {
			return tokens.ErrLinkNotFound
		}
		if err := b.Delete(key); err != nil {
			return fmt.Errorf("bolt: delete link: %w: %w", errUnavailable, err)
		}
		return writeEvents(tx, events)
	})
}

// ListLinks returns a page of links as tokens.Store specifies, all read in one
// transaction. It returns an EUNAVAILABLE error when the database cannot be read,
// and an EINTERNAL error when a stored record is corrupt.
func (s *Store) ListLinks(ctx context.Context, cursor string, limit int) (tokens.LinkPage, error) {
	limit = tokens.PageSize(limit)
	var page tokens.LinkPage
	err := s.view(ctx, "list links", func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketLinks).Cursor()
		k, v := c.First()
		if cursor != "" {
			k, v = c.Seek([]byte(cursor))
			if k != nil && string(k) == cursor {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if len(page.Links) == limit {
				page.Next = page.Links[limit-1].UserID
				break
			}
			link, err := decodeLink(v)
			if err != nil {
				return err
			}
			page.Links = append(page.Links, link)
		}
		return nil
	})
	if err != nil {
		return tokens.LinkPage{}, err
	}
	return page, nil
}

// ClaimCode records a claim of the code with codeHash for userID, and returns
// the code's owner, as tokens.Store specifies, in one write transaction. A claim
// that stands is left as it is, also when its owner claims it again; a claim that
// is taken over, or renewed by its owner after it expired, gets the new expires.
// Expired claims stay in the file until they are claimed again or
// DeleteExpiredClaims removes them.
//
// It returns an EINVALID error when tokens.ValidateClaim refuses the arguments or
// codeHash is longer than a bbolt key, an EUNAVAILABLE error when the database
// cannot be written, and an EINTERNAL error when the stored claim is corrupt.
func (s *Store) ClaimCode(ctx context.Context, codeHash, userID string, expires time.Time) (string, error) {
	if err := tokens.ValidateClaim(codeHash, userID); err != nil {
		return "", err
	}
	if len(codeHash) > bbolt.MaxKeySize {
		return "", tokens.Errorf(tokens.EINVALID, "code hash longer than %d bytes", bbolt.MaxKeySize)
	}
	var owner string
	err := s.update(ctx, "claim code", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketCodes)
		key := []byte(codeHash)
		if v := b.Get(key); v != nil {
			c, err := decodeClaim(v)
			if err != nil {
				return err
			}
			if !c.Expires.Before(s.now()) {
				owner = c.UserID // the claim stands, whoever made it
				return nil
			}
		}
		v, err := encodeClaim(codeClaim{UserID: userID, Expires: expires})
		if err != nil {
			return err
		}
		if err := b.Put(key, v); err != nil {
			return fmt.Errorf("bolt: claim code: %w: %w", errUnavailable, err)
		}
		owner = userID
		return nil
	})
	if err != nil {
		return "", err
	}
	return owner, nil
}

// Ping reads the database in a transaction, as tokens.Store specifies. It
// returns an EUNAVAILABLE error when the database is closed or cannot be read.
func (s *Store) Ping(ctx context.Context) error {
	return s.view(ctx, "ping", func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketLinks) == nil || tx.Bucket(bucketCodes) == nil {
			return fmt.Errorf("bolt: ping: buckets missing: %w", errUnavailable)
		}
		return nil
	})
}

// view runs fn in a read transaction unless ctx has ended. Errors of fn are
// returned as they are; ctx having ended and errors of bbolt itself (closed
// database, failed read) become EUNAVAILABLE errors.
func (s *Store) view(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w: %w", op, errUnavailable, err)
	}
	var fnErr error
	err := s.db.View(func(tx *bbolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	return s.classify(op, err, fnErr)
}

// update runs fn in a write transaction, which commits when fn returns nil and rolls
// back otherwise. Errors are as for view.
func (s *Store) update(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w: %w", op, errUnavailable, err)
	}
	var fnErr error
	err := s.db.Update(func(tx *bbolt.Tx) error {
		fnErr = fn(tx)
		return fnErr
	})
	return s.classify(op, err, fnErr)
}

// classify returns fnErr, the error of a transaction's function, as it is, and
// marks an error of bbolt itself (err) as EUNAVAILABLE.
func (s *Store) classify(op string, err, fnErr error) error {
	switch {
	case fnErr != nil:
		return fnErr
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("bolt: %s: %s is closed: %w: %w", op, s.path, errUnavailable, err)
	default:
		return fmt.Errorf("bolt: %s: %s: %w: %w", op, s.path, errUnavailable, err)
	}
}
