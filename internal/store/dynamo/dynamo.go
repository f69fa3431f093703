// Package dynamo is the broker's shared store: a tokens.Store, a tokens.Leaser and
// the reports outbox (reports.Store) kept in one DynamoDB table, so that several
// broker instances can share links, refresh leases and reports
// (BROKER_STORE=dynamodb:TABLE).
//
// # Skills
//
// Links belong to a skill and a user. A Store is a view of the table for one
// skill (Store.ForSkill; New returns the default skill's): links, code
// claims, refresh leases and link counts are the skill's alone. The
// tokens.DefaultSkillID view keeps the keys the table had before skills
// existed, so that links written then are the default skill's links; every
// other skill's keys name the skill. The reports outbox, the events and the
// webhooks are the table's, the same through every view.
//
// # Table design
//
// One table, keyed by the strings AttrPK (partition) and AttrSK (sort), with one
// global secondary index IndexGSI1 keyed by the strings AttrGSI1PK and
// AttrGSI1SK that projects every attribute. CreateTableInput is the schema, used
// both to create tables (Options.CreateTable) and to check the CloudFormation
// template. Items of the default skill, and the table's:
//
//	what            pk                  sk        gsi1pk    gsi1sk
//	link            USER#<user id>      LINK      LINK      <user id>
//	refresh lease   USER#<user id>      LEASE
//	code claim      CODE#<code hash>    CODE
//	delivery claim  USER#<user id>      DELIVERY             (a default profile lane)
//	                LANE#<lane>         DELIVERY             (every other lane)
//	report          REPORT#<message id> REPORT    PENDING   <escaped lane>#<seq>
//	                                              FINISHED  <finished_at>
//	counters        COUNTER             LINKS, REPORTS, STATS
//	event           USER#<user id>      EVENT#<order>       EVENTS#<type>  <order>
//	webhook         USER#<user id>      WEBHOOK#<order>     WEBHOOKS  <escaped user id>#<order>
//	webhook claim   USER#<user id>      WEBHOOKCLAIM
//
// Items of any other skill (<skill> is the skill id, escaped):
//
//	what            pk                                sk             gsi1pk         gsi1sk
//	link            SKILL#<skill>#USER#<user id>      LINK           LINK#<skill>   <user id>
//	refresh lease   SKILL#<skill>#USER#<user id>      LEASE
//	code claim      SKILL#<skill>#CODE#<code hash>    CODE
//	link counters   COUNTER                           STATS#<skill>
//
// So a skill's links are one partition of the index (ListLinks), and one user
// may hold a link in each skill. Another skill's link item and counter item
// name the skill in skill_id too (Skills reads the counter items).
// The events of every skill's links are kept under their user (the event's
// SkillID is an attribute): a user's audit trail and webhooks are one,
// whatever the skill.
//
// An event's order is its OccurredAt in Unix nanoseconds as 20 digits, '#',
// its id. A user's events are one range of the table (listed newest first,
// strongly consistent); a type's are one partition of the index; all events
// are the six types' partitions merged. Only a PENDING webhook is in the
// index, so a user's first item there is the user's oldest pending webhook.
// The STATS counter item holds links_<state> (of the default skill's links),
// reports_<state> and webhooks_PENDING; a STATS#<skill> item holds another
// skill's links_<state>; all are kept with atomic ADDs after the writes they
// count: links_ and webhooks_ after each write, reports_ in the background,
// the counts of many report writes in one ADD (see countQueue), so that
// accepting a report waits for no counter.
//
// Only PENDING reports and reports in an end state are in the index, each under
// its own gsi1pk. Numbers in sort keys (a report's Seq, its finished_at in Unix
// nanoseconds) are written as 20 zero-padded decimal digits, so that they sort as
// numbers. A pending report is indexed under its delivery lane (reports.Lane):
// the user id alone for the default skill's profile reports, as before lanes
// existed, else its kind, skill and user id separated by NUL bytes. User ids,
// skill ids and lanes are escaped where more follows them in a key — every '\'
// doubled, every '#' written as `\#` — so that the first unescaped '#' ends
// them: the prefix "<escaped lane>#" selects exactly one lane's reports, and
// no skill's keys pose as another's, whatever characters the ids hold. A
// link's gsi1sk is the user id as it is, which orders ListLinks by user id as
// bytes.
//
// A lane's delivery claim item holds who sends the lane's reports and until
// when (absent once released), and the lane's delivered mark, the highest Seq
// of a report of the lane that Alexa accepted; it is taken with a conditional
// update that keeps the mark. The claim of a lane that is a user id keeps the
// key it had before lanes existed.
//
// Reports other than the default skill's profile reports are written in
// format 2, which code from before lanes refuses rather than deliver them as
// profile reports; every other item keeps format 1.
//
// Code claims carry AttrTTL (Unix seconds) one day after they expire, leases one
// day after they end, delivery claims thirty days after they end, and reports in an end state thirty days after they
// finished, as a backstop to DeleteFinishedReports: the table's time-to-live setting on AttrTTL is made by
// the CloudFormation template, since local servers cannot make it.
//
// # Events with their changes
//
// DynamoDB has no transactions here (the store does not use
// TransactWriteItems), so a change and its events are ordered so that no
// event of a written change is lost and none is stored for a change that was
// not written. The change's own conditional write carries its events, in the
// item's outbox attribute (with outbox_at, the write's time): that write is
// the commit. Then the events are stored as event items, and webhooks of
// those with Notify set, each created only if absent, and the outbox is
// removed on the condition that it is still the same. A deletion with events
// first marks the link deleting (gone for readers) with its outbox, then
// stores the events and removes the item. A process that dies after the
// commit leaves the outbox in the item: every write of the item requires
// that it has none, and a writer that finds one flushes it first; GetLink,
// ListLinks, GetReport and DeleteFinishedReports flush outboxes older than
// outboxGrace. Nothing writes a report again once it is in an end state,
// and few read it: so DeleteFinishedReports, which the deliverer runs once an
// hour, also looks for stale outboxes among the reports finished in the last
// finishedFlushWindow (six hours) and flushes them while their webhooks are
// still due, besides flushing those of the reports it removes. Flushing
// twice stores nothing twice. Counters are added to
// after the commit: a crash between the two writes leaves a count off.
//
// Events carry AttrTTL at their retention (Options.EventRetention) plus a
// week after they occurred, as a backstop to DeleteEventsBefore; webhook
// items the same.
//
// # Consistency
//
// Every write that can race is conditional: a create requires that no item has
// its key, an update that the stored version is the one the caller read, a code
// claim or a lease that nobody else holds it. When a condition fails and the
// reason matters (who holds a code, whether a report changed or is gone), the
// store reads the item again, with a strongly consistent read, to decide; it
// never relies on ReturnValuesOnConditionCheckFailure. Reads by key are
// strongly consistent. Queries of the index (ListLinks, DueReports,
// LanePendingReports, DeleteFinishedReports) are eventually consistent, as every
// DynamoDB index is: a write may show there a moment late. Writes based on what
// they return are still conditional on the version, so a stale index costs a
// conflict, never a lost update.
//
// Versions of links come from the LINKS counter item: a link created (again)
// starts at the next counter value shifted left by 24 bits, and every update
// adds one. A writer that read a link before it was deleted and created anew
// therefore never matches the new link's version. A report's first version is
// its Seq, shifted the same way in counter order (see clockOrder).
//
// Records are the package's own forms (times as Number Unix nanoseconds, sealed
// tokens as Binary), never tokens.Link marshalled directly, so that the domain
// type can change without changing the table. Tokens arrive sealed; the store
// never sees them in clear.
package dynamo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/time/rate"

	"github.com/reciprocal-broker/broker/internal/awserr"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Names of the table's key attributes, its index and its time-to-live attribute.
// The CloudFormation template must use the same; CreateTableInput does.
const (
	// AttrPK is the table's partition key, a String.
	AttrPK = "pk"
	// AttrSK is the table's sort key, a String.
	AttrSK = "sk"
	// IndexGSI1 is the name of the table's one global secondary index, which
	// projects all attributes.
	IndexGSI1 = "gsi1"
	// AttrGSI1PK is IndexGSI1's partition key, a String.
	AttrGSI1PK = "gsi1pk"
	// AttrGSI1SK is IndexGSI1's sort key, a String.
	AttrGSI1SK = "gsi1sk"
	// AttrTTL is the attribute that the table's time to live reads: a Number of
	// Unix seconds after which DynamoDB may remove the item.
	AttrTTL = "ttl"
)

// Retry settings of the client that New builds: the SDK's standard retryer
// (exponential backoff with jitter, throttling and 5xx answers and connection
// errors retried) with at most MaxAttempts attempts per call, waiting at most
// MaxBackoff between two.
const (
	MaxAttempts = 5
	MaxBackoff  = 2 * time.Second
)

// MaxUserIDLen is the length in bytes of the longest user id the store keeps
// links, leases and reports of. User ids are parts of keys: escaped, a user id
// of this length still fits DynamoDB's 1024-byte sort keys in the index.
const MaxUserIDLen = 500

// Limits on key attribute sizes, in bytes, that DynamoDB enforces: a partition
// key of at most 2048 bytes and a sort key of at most 1024 bytes, in the table
// and in the index alike.
const (
	maxPartitionKey = 2048
	maxSortKey      = 1024
)

// recordFormat is the version of the item forms of this package. A change that
// old code could misread takes a new number; decoding refuses numbers it does not
// know.
const recordFormat = 1

// laneFormat is the format of the items of reports that are not profile
// reports of the default skill (Alexa events, other skills' reports): code
// from before lanes would misread them as the user's profile reports.
const laneFormat = 2

// versionShift places the counter value of a creation above every version that
// updates of an earlier incarnation of the same key can reach (2^24 updates).
const versionShift = 24

var (
	// errUnavailable marks errors that mean DynamoDB could not answer: the
	// network, throttling or a server error after the retries, a missing
	// table, or the caller's context ending.
	errUnavailable = &tokens.Error{Code: tokens.EUNAVAILABLE, Message: "store unavailable"}
	// errRejected marks requests that DynamoDB refused as malformed or not
	// allowed: a bug or a misconfiguration.
	errRejected = &tokens.Error{Code: tokens.EINTERNAL, Message: "store refused the request"}
	// errCorrupt marks items that cannot be decoded.
	errCorrupt = &tokens.Error{Code: tokens.EINTERNAL, Message: "stored record is corrupt"}
)

// ErrNoTable is the error New wraps, an EINVALID error, when the table does
// not exist and Options.CreateTable does not ask for it to be created.
var ErrNoTable = &tokens.Error{Code: tokens.EINVALID, Message: "the table does not exist"}

// dynamoAPI is the part of *dynamodb.Client that the store uses: tests may give
// the store anything with these methods in Options.Client.
type dynamoAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

var _ dynamoAPI = (*dynamodb.Client)(nil)

// Options configure New.
type Options struct {
	// Table is the name of the table. Required.
	Table string
	// Endpoint, when set, replaces the DynamoDB endpoint of the region, such as
	// "http://127.0.0.1:8000" for a local server.
	Endpoint string
	// CreateTable makes New create the table with CreateTableInput's schema when
	// it does not exist, and wait until it is ACTIVE. Production tables come from
	// the CloudFormation template instead.
	CreateTable bool
	// Client, when set, is used instead of a client that New builds from AWS and
	// Endpoint, which it then ignores: *dynamodb.Client, or a test's stand-in
	// with the same methods.
	Client dynamoAPI
	// AWS is the AWS configuration to build the client from (region,
	// credentials, HTTP client). When its Credentials are nil, New loads the
	// default configuration (environment, shared files, instance role) instead.
	// New always replaces its Retryer with its own (see MaxAttempts).
	AWS aws.Config
	// EventRetention is how long events are kept (BROKER_EVENT_RETENTION):
	// their time to live is this plus a week after they occurred. Zero means
	// DefaultEventRetention.
	EventRetention time.Duration
	// ClockOrder switches the table to clock order
	// (BROKER_DYNAMODB_CLOCK_ORDER), when this store creates its first
	// report: accepting a report is then one write instead of two. The
	// switch cannot be undone, and brokers of versions before clock order
	// then refuse to accept reports on the table; see clockOrder. A table
	// that New creates starts in clock order without it.
	ClockOrder bool
	// Logger is where the store warns of what needs an operator, such as
	// instances whose clocks disagree in clock order. Nil means slog.Default().
	Logger *slog.Logger
}

// Store is the DynamoDB store: a view of the table for one skill's links
// (see ForSkill; New returns the default skill's), and the table's reports,
// events and webhooks. It is safe for concurrent use by many goroutines, and
// by many processes sharing the table.
type Store struct {
	client         dynamoAPI
	table          *string
	now            func() time.Time
	eventRetention time.Duration
	skill          string       // the view's skill
	keys           skillKeys    // the keys of its items
	reportCounts   *countQueue  // the report counts not added yet, shared by the views
	order          *reportOrder // where new reports' Seq comes from, shared by the views
}

var (
	_ tokens.Store          = (*Store)(nil)
	_ tokens.Leaser         = (*Store)(nil)
	_ tokens.SkillLister    = (*Store)(nil)
	_ reports.Store         = (*Store)(nil)
	_ reports.PendingLister = (*Store)(nil)
)

// New returns the store of the table opts.Table, the view of the default
// skill's links (see ForSkill). It builds a DynamoDB client (unless
// opts.Client is set) with the standard retryer, and looks at the table: it
// creates the table when it is missing and opts.CreateTable asks for it, and
// otherwise refuses to start without it. A DynamoDB that cannot be reached now
// does not stop New: the store then answers EUNAVAILABLE (Ping for readiness)
// until DynamoDB answers again.
//
// It returns an EINVALID error when opts.Table is empty, when no AWS region
// is configured and opts.Endpoint is empty, or when the table does not exist
// and opts.CreateTable is false (wrapping ErrNoTable); an EUNAVAILABLE error
// when the table must be created but DynamoDB cannot be reached or the table
// does not become ACTIVE within TableWaitTimeout; and an EINTERNAL error when
// the AWS configuration cannot be loaded, DynamoDB refuses to describe or to
// create the table (credentials, permissions), or the table lacks the index
// IndexGSI1.
func New(ctx context.Context, opts Options) (*Store, error) {
	if opts.Table == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "dynamo: no table name")
	}
	client := opts.Client
	if client == nil {
		cfg := opts.AWS
		if cfg.Credentials == nil {
			loaded, err := config.LoadDefaultConfig(ctx)
			if err != nil {
				return nil, fmt.Errorf("dynamo: load AWS configuration: %w", err)
			}
			cfg = loaded
		}
		if cfg.Region == "" {
			if opts.Endpoint == "" {
				return nil, tokens.Errorf(tokens.EINVALID, "dynamo: no AWS region configured (set AWS_REGION)")
			}
			cfg.Region = "us-east-1" // local servers ignore it, but requests must be signed for one
		}
		client = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			if opts.Endpoint != "" {
				o.BaseEndpoint = aws.String(opts.Endpoint)
			}
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = MaxAttempts
				so.MaxBackoff = MaxBackoff
			})
		})
	}
	return newWithClient(ctx, opts, client)
}

// newWithClient is New with the client given: the seam of tests that stand in
// for DynamoDB.
func newWithClient(ctx context.Context, opts Options, client dynamoAPI) (*Store, error) {
	if opts.Table == "" {
		return nil, tokens.Errorf(tokens.EINVALID, "dynamo: no table name")
	}
	s := &Store{
		client: client, table: aws.String(opts.Table), now: time.Now, eventRetention: cmp.Or(opts.EventRetention, DefaultEventRetention),
		skill: tokens.DefaultSkillID, keys: keysOf(tokens.DefaultSkillID), reportCounts: &countQueue{},
		order: &reportOrder{
			toClock: opts.ClockOrder, clock: sequencer{now: time.Now},
			logger: cmp.Or(opts.Logger, slog.Default()), warned: rate.Sometimes{First: 1, Interval: time.Minute},
		},
	}
	if opts.CreateTable {
		if err := s.ensureTable(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.checkExists(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Ping describes the table. It returns an EUNAVAILABLE error when DynamoDB does
// not answer within ctx, refuses the call, or the table does not exist.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: s.table}); err != nil {
		return fmt.Errorf("dynamo: ping table %s: %w: %w", *s.table, errUnavailable, err)
	}
	return nil
}

// fail wraps err, an error of the client, with op and the kind of failure: an
// EINTERNAL error when DynamoDB refused the request as malformed or not allowed,
// else (network, throttling, server errors, a missing table, the context
// ending) an EUNAVAILABLE error.
func (s *Store) fail(op string, err error) error {
	if rejected(err) {
		return fmt.Errorf("dynamo: %s: %w: %w", op, errRejected, err)
	}
	return fmt.Errorf("dynamo: %s: %w: %w", op, errUnavailable, err)
}

// rejected reports whether err is DynamoDB's answer that the request itself is
// wrong (a client fault such as ValidationException or AccessDeniedException)
// rather than that it could not be served now.
func rejected(err error) bool {
	return awserr.Refused(err, "ResourceNotFoundException", "RequestTimeout", "RequestTimeoutException")
}

// conditionFailed reports whether err says that a write's condition was false.
func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// held reports whether the condition of a conditional write held, given the
// write's error: false and no error when DynamoDB refused the write for its
// condition, false and the store's error (s.fail) for any other failure.
func (s *Store) held(op string, err error) (bool, error) {
	switch {
	case conditionFailed(err):
		return false, nil
	case err != nil:
		return false, s.fail(op, err)
	}
	return true, nil
}

// key returns the primary key of an item.
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: pk},
		AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// get reads the item with pk and sk with a strongly consistent read, and returns
// nil when there is none.
func (s *Store) get(ctx context.Context, op, pk, sk string) (map[string]types.AttributeValue, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table,
		Key:            key(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out.Item, nil
}

// put writes item when cond holds. It reports false when cond did not hold.
func (s *Store) put(ctx context.Context, op string, item map[string]types.AttributeValue, cond expression.ConditionBuilder) (bool, error) {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return false, fmt.Errorf("dynamo: %s: build condition: %w", op, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 s.table,
		Item:                      item,
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	return s.held(op, err)
}

// updateIf applies update to the item with pk and sk when cond holds,
// creating the item when it does not exist, and returns the attributes that
// returnValues asks for. It reports false when cond did not hold.
func (s *Store) updateIf(ctx context.Context, op, pk, sk string, update expression.UpdateBuilder, cond expression.ConditionBuilder, returnValues types.ReturnValue) (map[string]types.AttributeValue, bool, error) {
	expr, err := expression.NewBuilder().WithUpdate(update).WithCondition(cond).Build()
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: %s: build update: %w", op, err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table,
		Key:                       key(pk, sk),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ReturnValues:              returnValues,
	})
	if held, err := s.held(op, err); !held {
		return nil, false, err
	}
	return out.Attributes, true, nil
}

// remove deletes the item with pk and sk when cond holds. It reports false when
// cond did not hold.
func (s *Store) remove(ctx context.Context, op, pk, sk string, cond expression.ConditionBuilder) (bool, error) {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return false, fmt.Errorf("dynamo: %s: build condition: %w", op, err)
	}
	_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 s.table,
		Key:                       key(pk, sk),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	return s.held(op, err)
}

// next adds one to the counter item with sort key sk, and returns the new value
// (1 the first time).
func (s *Store) next(ctx context.Context, op, sk string) (int64, error) {
	expr, err := expression.NewBuilder().
		WithUpdate(expression.Add(expression.Name(attrCounterValue), expression.Value(1))).
		Build()
	if err != nil {
		return 0, fmt.Errorf("dynamo: %s: build update: %w", op, err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 s.table,
		Key:                       key(pkCounter, sk),
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, s.fail(op, err)
	}
	var v struct {
		N int64 `dynamodbav:"n"`
	}
	if err := unmarshal(out.Attributes, &v); err != nil || v.N <= 0 {
		return 0, fmt.Errorf("dynamo: %s: counter %s answered %v: %w", op, sk, out.Attributes, errCorrupt)
	}
	return v.N, nil
}

// sortableDigits is how many decimal digits sortable writes: enough for any
// int64.
const sortableDigits = 20

// sortable writes n (negative counts as 0) as sortableDigits decimal digits,
// which sort as strings in the order of the numbers.
func sortable(n int64) string {
	return fmt.Sprintf("%0*d", sortableDigits, max(n, 0))
}

// nanos returns t in Unix nanoseconds, or nil for the zero time, so that the
// zero time is an absent attribute and 1970-01-01T00:00:00Z stays a time.
func nanos(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

// fromNanos is the inverse of nanos, in UTC.
func fromNanos(n *int64) time.Time {
	if n == nil {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// unixNanos is t in Unix nanoseconds, and 0 for the zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
