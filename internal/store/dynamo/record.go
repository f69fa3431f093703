package dynamo

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// Key values of the items (see the package documentation).
const (
	pkUser    = "USER#"   // + user id
	pkCode    = "CODE#"   // + code hash
	pkReport  = "REPORT#" // + message id
	pkCounter = "COUNTER"
	pkSkill   = "SKILL#" // + escaped skill id, '#', then pkUser or pkCode
	pkLane    = "LANE#"  // + delivery lane

	skLink           = "LINK"
	skLease          = "LEASE"
	skCode           = "CODE"
	skReport         = "REPORT"
	skDelivery       = "DELIVERY"
	skCounterLinks   = "LINKS"
	skCounterReports = "REPORTS"
	skCounterStats   = "STATS"
	skEvent          = "EVENT#"   // + event order (see eventOrder)
	skWebhook        = "WEBHOOK#" // + event order
	skWebhookClaim   = "WEBHOOKCLAIM"

	gsiLinks    = "LINK"
	gsiPending  = "PENDING"
	gsiFinished = "FINISHED"
	gsiEvents   = "EVENTS#" // + event type
	gsiWebhooks = "WEBHOOKS"
)

// Names of the attributes that conditions and filters name; they must match the
// dynamodbav tags of the item types below.
const (
	attrVersion       = "version"
	attrUserID        = "user_id"
	attrExpires       = "expires"
	attrOwner         = "owner"
	attrUntil         = "until"
	attrNextAttemptAt = "next_attempt_at"
	attrFinishedAt    = "finished_at"
	attrDelivered     = "delivered"
	attrFormat        = "format"
	attrCounterValue  = "n"
	attrState         = "state"
	attrSkillID       = "skill_id"
)

// Time to live of items that are of no use after a while, counted from the
// moment they become useless; DynamoDB removes them some time after.
const (
	claimTTL  = 24 * time.Hour
	leaseTTL  = 24 * time.Hour
	reportTTL = 30 * 24 * time.Hour
	// deliveryTTL counts from the end of a lane's last delivery claim. A lane
	// with pending reports is claimed at least once per retry, so the item
	// (and its delivered mark) goes only after a month without any.
	deliveryTTL = 30 * 24 * time.Hour
)

// linkItem is how a tokens.Link is kept: its state by wire name, its times as
// Unix nanoseconds (absent for the zero time), its sealed tokens as Binary.
type linkItem struct {
	PK                   string `dynamodbav:"pk"`
	SK                   string `dynamodbav:"sk"`
	GSI1PK               string `dynamodbav:"gsi1pk"`
	GSI1SK               string `dynamodbav:"gsi1sk"`
	Format               int    `dynamodbav:"format"`
	UserID               string `dynamodbav:"user_id"`
	SkillID              string `dynamodbav:"skill_id,omitempty"` // "" for the default skill
	State                string `dynamodbav:"state"`              // the state's wire name
	Region               string `dynamodbav:"region,omitempty"`
	LinkedAt             *int64 `dynamodbav:"linked_at,omitempty"`
	LastRefreshedAt      *int64 `dynamodbav:"last_refreshed_at,omitempty"`
	AccessTokenExpiresAt *int64 `dynamodbav:"access_token_expires_at,omitempty"`
	CodeHash             string `dynamodbav:"code_hash,omitempty"`
	KeyID                string `dynamodbav:"key_id,omitempty"`
	Sealed               []byte `dynamodbav:"sealed"`
	Version              int64  `dynamodbav:"version"`
}

// claimItem is how a claimed authorization code is kept.
type claimItem struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	Format  int    `dynamodbav:"format"`
	UserID  string `dynamodbav:"user_id"`
	Expires int64  `dynamodbav:"expires"` // Unix nanoseconds
	TTL     int64  `dynamodbav:"ttl"`
}

// leaseItem is how a refresh lease is kept.
type leaseItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	Format int    `dynamodbav:"format"`
	Owner  string `dynamodbav:"owner"`
	Until  int64  `dynamodbav:"until"` // Unix nanoseconds
	TTL    int64  `dynamodbav:"ttl"`
}

// reportItem is how a reports.Report is kept. Profiles are their JSON form, as
// the Alexa Health API takes them; the message of an Alexa event is Binary,
// byte for byte as given. Reports stored before skills and kinds existed
// have neither skill_id nor kind: profile reports of the default skill.
type reportItem struct {
	PK            string `dynamodbav:"pk"`
	SK            string `dynamodbav:"sk"`
	GSI1PK        string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK        string `dynamodbav:"gsi1sk,omitempty"`
	Format        int    `dynamodbav:"format"`
	MessageID     string `dynamodbav:"message_id"`
	UserID        string `dynamodbav:"user_id"`
	SkillID       string `dynamodbav:"skill_id,omitempty"`
	Kind          string `dynamodbav:"kind,omitempty"`
	Message       []byte `dynamodbav:"message,omitempty"`
	Profiles      string `dynamodbav:"profiles"`
	Seq           int64  `dynamodbav:"seq"`
	State         string `dynamodbav:"state"` // the state's wire name
	Attempts      int    `dynamodbav:"attempts"`
	LastError     string `dynamodbav:"last_error,omitempty"`
	SubmittedAt   *int64 `dynamodbav:"submitted_at,omitempty"`
	NextAttemptAt *int64 `dynamodbav:"next_attempt_at,omitempty"`
	DeliveredAt   *int64 `dynamodbav:"delivered_at,omitempty"`
	FinishedAt    *int64 `dynamodbav:"finished_at,omitempty"`
	Version       int64  `dynamodbav:"version"`
	TTL           int64  `dynamodbav:"ttl,omitempty"`
}

// deliveryItem is how a lane's delivery claim and delivered mark are kept;
// a released claim has no owner and no until.
type deliveryItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Format    int    `dynamodbav:"format"`
	Owner     string `dynamodbav:"owner,omitempty"`
	Until     int64  `dynamodbav:"until,omitempty"` // Unix nanoseconds
	Delivered int64  `dynamodbav:"delivered,omitempty"`
	TTL       int64  `dynamodbav:"ttl,omitempty"`
}

// pendingPrefix is the start of the gsi1sk of every pending report of a lane
// (see reports.Lane), or of every pending webhook of a user: the lane or the
// user id escaped (see keyEscaper), then '#'. No such prefix starts another.
func pendingPrefix(lane string) string {
	return keyEscaper.Replace(lane) + "#"
}

// deliveryPK returns the pk of the delivery claim item of lane: USER#<user
// id> for the lane of the default skill's profile reports, which is the user
// id (it holds no NUL, see tokens.CheckUserID), as before lanes existed;
// LANE#<lane> for every other lane, which holds a NUL (see reports.Lane).
func deliveryPK(lane string) string {
	if strings.IndexByte(lane, 0) < 0 {
		return pkUser + lane
	}
	return pkLane + lane
}

// checkLane returns an EINVALID error when the store cannot keep lane in its
// keys: not UTF-8, or too long, escaped, for a pending report's gsi1sk. The
// lane of a user id of at most MaxUserIDLen bytes always fits.
func checkLane(lane string) error {
	switch {
	case !utf8.ValidString(lane):
		return tokens.Errorf(tokens.EINVALID, "delivery lane is not UTF-8")
	case len(pendingPrefix(lane))+len(sortable(0)) > maxSortKey:
		return tokens.Errorf(tokens.EINVALID, "delivery lane too long for the store's keys")
	}
	return nil
}

func marshal(op string, v any) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMap(v)
	if err != nil {
		return nil, fmt.Errorf("dynamo: %s: encode item: %w", op, err)
	}
	return item, nil
}

func unmarshal(item map[string]types.AttributeValue, v any) error {
	return attributevalue.UnmarshalMap(item, v)
}

// encodeLink returns the item of l with version in place of l.Version, keyed
// and indexed as the package documentation's table design says for the
// view's skill.
func (s *Store) encodeLink(l *tokens.Link, version int64) (map[string]types.AttributeValue, error) {
	return marshal("put link", linkItem{
		PK: s.keys.user + l.UserID, SK: skLink, GSI1PK: s.keys.links, GSI1SK: l.UserID,
		Format: recordFormat, UserID: l.UserID, SkillID: s.skillAttr(), State: l.State.String(), Region: l.Region,
		LinkedAt: nanos(l.LinkedAt), LastRefreshedAt: nanos(l.LastRefreshedAt),
		AccessTokenExpiresAt: nanos(l.AccessTokenExpiresAt),
		CodeHash:             l.CodeHash, KeyID: l.Tokens.KeyID, Sealed: l.Tokens.Ciphertext,
		Version: version,
	})
}

// skillAttr returns the skill_id attribute of the view's links: "" (absent)
// for the default skill, as before skills existed.
func (s *Store) skillAttr() string {
	if s.keys.user == pkUser {
		return ""
	}
	return s.skill
}

// decodeLink decodes a link item of the view into a new Link of the view's
// skill. It returns an EINTERNAL error when the item is not a link of the
// view's skill of a format this package knows.
func (s *Store) decodeLink(item map[string]types.AttributeValue) (*tokens.Link, error) {
	var rec linkItem
	if err := unmarshal(item, &rec); err != nil {
		return nil, fmt.Errorf("dynamo: decode link: %w: %w", errCorrupt, err)
	}
	state, serr := tokens.ParseState(rec.State)
	switch {
	case rec.Format != recordFormat:
		return nil, fmt.Errorf("dynamo: decode link of %q: unknown format %d: %w", rec.UserID, rec.Format, errCorrupt)
	case serr != nil:
		return nil, fmt.Errorf("dynamo: decode link of %q: unknown state %q: %w", rec.UserID, rec.State, errCorrupt)
	case rec.UserID == "" || rec.PK != s.keys.user+rec.UserID || len(rec.Sealed) == 0 || rec.Version <= 0:
		return nil, fmt.Errorf("dynamo: decode link of %q: missing fields: %w", rec.UserID, errCorrupt)
	case rec.SkillID != s.skillAttr():
		return nil, fmt.Errorf("dynamo: decode link of %q: skill %q in the view of %q: %w", rec.UserID, rec.SkillID, s.skill, errCorrupt)
	}
	return &tokens.Link{
		UserID: rec.UserID, SkillID: s.skill, State: state, Region: rec.Region,
		LinkedAt: fromNanos(rec.LinkedAt), LastRefreshedAt: fromNanos(rec.LastRefreshedAt),
		AccessTokenExpiresAt: fromNanos(rec.AccessTokenExpiresAt),
		CodeHash:             rec.CodeHash,
		Tokens:               tokens.Sealed{KeyID: rec.KeyID, Ciphertext: rec.Sealed},
		Version:              rec.Version,
	}, nil
}

// decodeClaim decodes a code claim item. It returns an EINTERNAL error when the
// item is not a claim of a format this package knows.
func decodeClaim(item map[string]types.AttributeValue) (claimItem, error) {
	var rec claimItem
	if err := unmarshal(item, &rec); err != nil {
		return claimItem{}, fmt.Errorf("dynamo: decode code claim: %w: %w", errCorrupt, err)
	}
	if rec.Format != recordFormat || rec.UserID == "" {
		return claimItem{}, fmt.Errorf("dynamo: decode code claim: format %d, user %q: %w", rec.Format, rec.UserID, errCorrupt)
	}
	return rec, nil
}

// encodeReport encodes r with version. A report in an end state without a
// finish time expires reportTTL after now.
func encodeReport(r *reports.Report, version int64, now time.Time) (map[string]types.AttributeValue, error) {
	profiles, err := json.Marshal(r.Profiles)
	if err != nil {
		return nil, fmt.Errorf("dynamo: encode report %q: %w", r.MessageID, err)
	}
	rec := reportItem{
		PK: pkReport + r.MessageID, SK: skReport,
		Format: reportFormat(r), MessageID: r.MessageID, UserID: r.UserID,
		SkillID: r.SkillID, Kind: string(r.Kind), Message: r.Message, Profiles: string(profiles),
		Seq: r.Seq, State: r.State.String(), Attempts: r.Attempts, LastError: r.LastError,
		SubmittedAt: nanos(r.SubmittedAt), NextAttemptAt: nanos(r.NextAttemptAt),
		DeliveredAt: nanos(r.DeliveredAt), FinishedAt: nanos(r.FinishedAt),
		Version: version,
	}
	switch {
	case r.State == reports.StatePending:
		rec.GSI1PK, rec.GSI1SK = gsiPending, pendingPrefix(r.Lane())+sortable(r.Seq)
	case r.State.Final():
		rec.GSI1PK, rec.GSI1SK = gsiFinished, sortable(unixNanos(r.FinishedAt))
		finished := r.FinishedAt
		if finished.IsZero() {
			finished = now
		}
		rec.TTL = finished.Add(reportTTL).Unix()
	}
	return marshal("put report", rec)
}

// reportFormat returns the format of r's item: recordFormat for a profile
// report of the default skill, which code older than lanes reads right;
// laneFormat for every other report, which it would misread as one (and so
// must refuse).
func reportFormat(r *reports.Report) int {
	if r.Lane() == r.UserID {
		return recordFormat
	}
	return laneFormat
}

// decodeReport decodes a report item into a new Report. It returns an EINTERNAL
// error when the item is not a report of a format this package knows.
func decodeReport(item map[string]types.AttributeValue) (*reports.Report, error) {
	var rec reportItem
	if err := unmarshal(item, &rec); err != nil {
		return nil, fmt.Errorf("dynamo: decode report: %w: %w", errCorrupt, err)
	}
	state, serr := reports.ParseState(rec.State)
	kind := reports.Kind(rec.Kind)
	if (rec.Format != recordFormat && rec.Format != laneFormat) || serr != nil || kind.Validate() != nil || rec.MessageID == "" || rec.Version <= 0 {
		return nil, fmt.Errorf("dynamo: decode report %q: format %d, state %q, kind %q: %w", rec.MessageID, rec.Format, rec.State, rec.Kind, errCorrupt)
	}
	r := &reports.Report{
		MessageID: rec.MessageID, UserID: rec.UserID, SkillID: rec.SkillID, Kind: kind, Message: rec.Message, Seq: rec.Seq,
		State: state, Attempts: rec.Attempts, LastError: rec.LastError,
		SubmittedAt: fromNanos(rec.SubmittedAt), NextAttemptAt: fromNanos(rec.NextAttemptAt),
		DeliveredAt: fromNanos(rec.DeliveredAt), FinishedAt: fromNanos(rec.FinishedAt),
		Version: rec.Version,
	}
	if err := json.Unmarshal([]byte(rec.Profiles), &r.Profiles); err != nil {
		return nil, fmt.Errorf("dynamo: decode report %q: profiles: %w: %w", rec.MessageID, errCorrupt, err)
	}
	return r, nil
}
