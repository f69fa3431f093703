// Package bolt is the broker's embedded store: links, code claims and refresh
// leases (tokens.Store, tokens.ClaimSweeper and tokens.Leaser) and the reports
// outbox (reports.Store), kept in one bbolt file on local disk. It is the
// default store (BROKER_STORE=bolt:PATH) and fits a single broker process:
// bbolt's file lock keeps other processes out, so several instances sharing
// links need the DynamoDB store.
//
// Links belong to a skill: Open returns the store of the default skill
// (tokens.DefaultSkillID), and ForSkill a view of the same file for another
// skill. The links, code claims and refresh leases of the default skill are in
// top-level buckets, where they were before skills existed, so that a file
// written then keeps every link; those of any other skill are in buckets of the
// same names nested in the skill's bucket under "skills". The outbox, the
// audit trail and the webhooks are shared by every skill: reports and events
// name their skill.
//
// The file holds these buckets:
//
//	links       user id → link record of the default skill
//	codes       code hash → code claim of the default skill: who claimed the
//	            code, and until when; removed by DeleteExpiredClaims once expired
//	leases      user id → refresh lease of the default skill: who holds it,
//	            and until when
//	skills      skill id → the skill's bucket, for every skill but the
//	            default one that has been written to, holding its own links,
//	            codes and leases buckets as above
//	reports     message id → report
//	pending     lane, a zero byte, big-endian sequence → message id of a
//	            PENDING report, where the lane is the report's reports.Lane (the
//	            user id alone for the default skill's profile reports, as
//	            before skills existed)
//	deliveries  lane → delivered mark: the Seq of the lane's newest report
//	            Alexa accepted
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
// are JSON objects with a "format" field (see recordFormat). A link record does
// not name its skill: its bucket does. Each change is one bbolt transaction,
// or part of one (see below). Tokens arrive sealed; the store never sees them
// in clear.
//
// # Group commit
//
// A bbolt commit writes its pages and syncs the file (fdatasync) before it
// returns; that sync, not the work of the change, is what a write costs. So
// the writes of the outbox, CreateReport (the acceptance of every profile
// report and Alexa event) and PutReport (each delivery's outcome), share
// commits: one committer goroutine takes every such write queued while the
// commit before was running, runs them in turn in one write transaction, and
// commits it, so that one fsync covers them all (see groupCommit). It waits
// for nothing: a write that finds the committer idle is committed at once,
// alone, so a lone write costs what it cost before. A change is as atomic and
// as isolated as in a transaction of its own (the changes of a transaction run
// in turn, each seeing the ones before; one that fails is taken out and run
// again alone), and CreateReport and PutReport still return only once their
// change is on disk: a report is stored durably before the broker answers
// 202 Accepted for it, and one whose commit failed is not accepted.
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
	bucketSkills  = []byte("skills")
)

// errUnavailable marks errors that mean the database cannot answer: it is closed,
// locked by another process, or its file cannot be read or written.
var errUnavailable = &tokens.Error{Code: tokens.EUNAVAILABLE, Message: "link store unavailable"}

// Store is the bbolt store: a tokens.Store, a tokens.Leaser and a reports.Store
// in one file. It is safe for concurrent use by many goroutines; bbolt's file
// lock keeps other processes out while it is open. Its methods return the
// errors their ports specify; the database closed, locked or failing to read or
// write is an EUNAVAILABLE error.
//
// A Store is the view of one skill (see ForSkill): its links, code claims,
// refresh leases and link counts (tokens.Store, tokens.Leaser,
// tokens.LinkCounter) are that skill's. Everything else is the file's, the
// same whichever view answers: the outbox (reports.Store, reports.Counter),
// the audit trail and webhooks (tokens.EventStore, events.Store), and the
// sweeps (DeleteExpiredClaims removes the expired claims of every skill).
type Store struct {
	*file
	// skill is the skill of the view's links: DefaultSkillID for the Store
	// that Open returns.
	skill string
	// root is true for the Store that Open returns, the one whose Close
	// closes the file.
	root bool
}

// file is what the views of one bbolt file share.
type file struct {
	db      *bbolt.DB
	commits *groupCommit // the group commit of the writes of reports (see commit.go)
	path    string
	now     func() time.Time

	links         linkCache      // the links read, in memory (see linkcache.go)
	deliveries    deliveryClaims // lanes' delivery claims, in memory (see delivery.go)
	webhookClaims deliveryClaims // users' webhook claims, in memory alike
}

var (
	_ tokens.Store       = (*Store)(nil)
	_ tokens.SkillLister = (*Store)(nil)
)

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
		names := [][]byte{bucketLinks, bucketCodes, bucketReports, bucketPending, bucketLeases, bucketSkills, bucketWebhooks, bucketWebhooksPending}
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
	f := &file{db: db, commits: newGroupCommit(db), path: path, now: time.Now}
	return &Store{file: f, skill: tokens.DefaultSkillID, root: true}, nil
}

// ForSkill returns the view of skillID of the file s reads: a Store whose
// links, code claims, refresh leases and link counts are those of skillID, and
// that sets Link.SkillID to skillID on every link it returns; "" is
// tokens.DefaultSkillID. The view of DefaultSkillID reads and writes what the
// Store that Open returns does (the top-level buckets, as the file was before
// skills existed); any other skill's buckets are made at the view's first
// write, and until then the view reads as empty. What is not a skill's (the
// outbox, the events, the webhooks, the delivery claims) is the same in every
// view. Views of one skill, taken twice, read and write the same data.
//
// A skill id is a bucket name: as the skills file allows them, ids are short
// and never empty. A view of an id longer than bbolt.MaxKeySize reads as empty
// and its writes return an EINVALID error.
//
// A view shares the file of s: its Close does nothing, and once the Store that
// Open returned is closed, the view's methods return EUNAVAILABLE errors.
func (s *Store) ForSkill(skillID string) *Store {
	if skillID == "" {
		skillID = tokens.DefaultSkillID
	}
	return &Store{file: s.file, skill: skillID}
}

// SkillID returns the skill whose links s holds: tokens.DefaultSkillID for the
// Store that Open returns.
func (s *Store) SkillID() string { return s.skill }

// Skills (tokens.SkillLister) returns the skills with data in the file: tokens.DefaultSkillID
// first, whose buckets every file has, then every other skill that a view has
// written a link, code claim or lease of (in byte order of their ids), even
// when those have been removed since. It is the same in every view, and lets a
// walk over every skill's links (a reseal, a key check) find the links of a
// skill no longer configured. It returns an EUNAVAILABLE error when the
// database cannot be read.
func (s *Store) Skills(ctx context.Context) ([]string, error) {
	skills := []string{tokens.DefaultSkillID}
	err := s.view(ctx, "list skills", func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSkills)
		if b == nil {
			return nil
		}
		return b.ForEachBucket(func(k []byte) error {
			skills = append(skills, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return skills, nil
}

// Close closes the database file and releases its lock, when s is the Store
// that Open returned; every later call of its methods, and of its views',
// returns an EUNAVAILABLE error. Closing twice is harmless. The Close of a view
// (see ForSkill) does nothing and returns nil: the file is its root's to
// close, so that every skill's user may close its store.
func (s *Store) Close() error {
	if !s.root {
		return nil
	}
	s.commits.close()
	s.links.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close %s: %w", s.path, err)
	}
	return nil
}

// bucket returns the bucket name of the view's skill in tx: the top-level one
// for the default skill, else the one in the skill's bucket under "skills"; or
// nil when the skill has none yet.
func (s *Store) bucket(tx *bbolt.Tx, name []byte) *bbolt.Bucket {
	if s.skill == tokens.DefaultSkillID {
		return tx.Bucket(name)
	}
	skills := tx.Bucket(bucketSkills)
	if skills == nil {
		return nil
	}
	b := skills.Bucket([]byte(s.skill))
	if b == nil {
		return nil
	}
	return b.Bucket(name)
}

// writableBucket returns the bucket name of the view's skill in the write
// transaction tx, as bucket does, making the skill's buckets when they do not
// exist. It returns an EINVALID error when the skill id is too long for a
// bucket name, and an EUNAVAILABLE error when the buckets cannot be made.
func (s *Store) writableBucket(tx *bbolt.Tx, name []byte) (*bbolt.Bucket, error) {
	if s.skill == tokens.DefaultSkillID {
		return tx.Bucket(name), nil
	}
	if len(s.skill) > bbolt.MaxKeySize {
		return nil, tokens.Errorf(tokens.EINVALID, "skill id longer than %d bytes", bbolt.MaxKeySize)
	}
	skills, err := tx.CreateBucketIfNotExists(bucketSkills)
	if err != nil {
		return nil, fmt.Errorf("bolt: create bucket %q: %w: %w", bucketSkills, errUnavailable, err)
	}
	skill, err := skills.CreateBucketIfNotExists([]byte(s.skill))
	if err != nil {
		return nil, fmt.Errorf("bolt: create bucket of skill %q: %w: %w", s.skill, errUnavailable, err)
	}
	b, err := skill.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, fmt.Errorf("bolt: create bucket %q of skill %q: %w: %w", name, s.skill, errUnavailable, err)
	}
	return b, nil
}

// decodeLink decodes a link record of the view's links, naming the view's
// skill in the link.
func (s *Store) decodeLink(v []byte) (*tokens.Link, error) {
	l, err := decodeLink(v)
	if err != nil {
		return nil, err
	}
	l.SkillID = s.skill
	return l, nil
}

// GetLink returns the link of userID in the view's skill, as tokens.Store
// specifies: a copy, or ErrLinkNotFound. A link read before is answered from
// memory (see linkCache). It returns an EUNAVAILABLE error when
// the database cannot be read, and an EINTERNAL error when the stored record is
// corrupt.
func (s *Store) GetLink(ctx context.Context, userID string) (*tokens.Link, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: get link: %w: %w", errUnavailable, err)
	}
	key := linkKey{s.skill, userID}
	if l, ok := s.links.get(key); ok {
		return l, nil
	}
	writes := s.links.writesSoFar()
	var link *tokens.Link
	err := s.view(ctx, "get link", func(tx *bbolt.Tx) error {
		b := s.bucket(tx, bucketLinks)
		if b == nil {
			return tokens.ErrLinkNotFound
		}
		v := b.Get([]byte(userID))
		if v == nil {
			return tokens.ErrLinkNotFound
		}
		var err error
		link, err = s.decodeLink(v)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.links.put(key, link, writes)
	return link, nil
}

// PutLink writes link in the view's skill as tokens.Store specifies, comparing
// versions and writing in one bbolt write transaction. Versions come from the
// sequence of the skill's links bucket, one per skill and file, so a link
// deleted and created again never takes a version that a stale reader could
// still hold.
//
// It returns an EINVALID error when link.Validate fails, link.SkillID is
// neither empty nor the view's skill, the user id is longer than a bbolt key
// (bbolt.MaxKeySize) or the skill id longer than a bucket name, ErrVersionConflict (wrapped) when the stored version
// differs, and an EUNAVAILABLE error when the database cannot be written. On
// any error link is left unchanged and nothing is written.
func (s *Store) PutLink(ctx context.Context, link *tokens.Link, events ...tokens.Event) error {
	if err := link.Validate(); err != nil {
		return err
	}
	if link.SkillID != "" && link.SkillID != s.skill {
		return tokens.Errorf(tokens.EINVALID, "link of skill %q given to the store of skill %q", link.SkillID, s.skill)
	}
	if err := checkEvents(events); err != nil {
		return err
	}
	if len(link.UserID) > bbolt.MaxKeySize {
		return tokens.Errorf(tokens.EINVALID, "user id longer than %d bytes", bbolt.MaxKeySize)
	}
	var version int64
	s.links.beginWrite(linkKey{s.skill, link.UserID})
	defer s.links.endWrite()
	err := s.update(ctx, "put link", func(tx *bbolt.Tx) error {
		b, err := s.writableBucket(tx, bucketLinks)
		if err != nil {
			return err
		}
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

// DeleteLink removes the link of userID in the view's skill, as tokens.Store
// specifies. It returns ErrLinkNotFound when there is none, and an EUNAVAILABLE
// error when the database cannot be written. The user's refresh lease, if any,
// stays until it is taken over.
func (s *Store) DeleteLink(ctx context.Context, userID string, events ...tokens.Event) error {
	if err := checkEvents(events); err != nil {
		return err
	}
	s.links.beginWrite(linkKey{s.skill, userID})
	defer s.links.endWrite()
	return s.update(ctx, "delete link", func(tx *bbolt.Tx) error {
		b := s.bucket(tx, bucketLinks)
		key := []byte(userID)
		if b == nil || b.Get(key) == nil {
			return tokens.ErrLinkNotFound
		}
		if err := b.Delete(key); err != nil {
			return fmt.Errorf("bolt: delete link: %w: %w", errUnavailable, err)
		}
		return writeEvents(tx, events)
	})
}

// ListLinks returns a page of the links of the view's skill as tokens.Store
// specifies, all read in one transaction. It returns an EUNAVAILABLE error when
// the database cannot be read, and an EINTERNAL error when a stored record is
// corrupt.
func (s *Store) ListLinks(ctx context.Context, cursor string, limit int) (tokens.LinkPage, error) {
	limit = tokens.PageSize(limit)
	var page tokens.LinkPage
	err := s.view(ctx, "list links", func(tx *bbolt.Tx) error {
		b := s.bucket(tx, bucketLinks)
		if b == nil {
			return nil
		}
		c := b.Cursor()
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
			link, err := s.decodeLink(v)
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

// ClaimCode records a claim of the code with codeHash for userID in the view's
// skill, and returns the code's owner, as tokens.Store specifies, in one write
// transaction. Each skill has its own claims: a code claimed in one skill is
// not claimed in another. A claim that stands is left as it is, also when its
// owner claims it again; a claim that is taken over, or renewed by its owner
// after it expired, gets the new expires. Expired claims stay in the file until
// they are claimed again or DeleteExpiredClaims removes them.
//
// It returns an EINVALID error when tokens.ValidateClaim refuses the arguments,
// codeHash is longer than a bbolt key or the skill id longer than a bucket
// name, an EUNAVAILABLE error when the database cannot be written, and an
// EINTERNAL error when the stored claim is corrupt.
func (s *Store) ClaimCode(ctx context.Context, codeHash, userID string, expires time.Time) (string, error) {
	if err := tokens.ValidateClaim(codeHash, userID); err != nil {
		return "", err
	}
	if len(codeHash) > bbolt.MaxKeySize {
		return "", tokens.Errorf(tokens.EINVALID, "code hash longer than %d bytes", bbolt.MaxKeySize)
	}
	var owner string
	err := s.update(ctx, "claim code", func(tx *bbolt.Tx) error {
		b, err := s.writableBucket(tx, bucketCodes)
		if err != nil {
			return err
		}
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

// groupUpdate runs fn as update does, but in a write transaction that it may
// share with the writes of other callers (see groupCommit): fn may run more
// than once, and must set its results anew on every run. It returns once the
// transaction is on disk, or failed. Errors are as for view.
func (s *Store) groupUpdate(ctx context.Context, op string, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s: %w: %w", op, errUnavailable, err)
	}
	var fnErr error
	err := s.commits.update(func(tx *bbolt.Tx) error {
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
