package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/reciprocal-broker/broker/internal/tokens"
)

// MaxSkillIDLen is the length in bytes of the longest skill id ForSkill
// takes. Skill ids are parts of keys.
const MaxSkillIDLen = 64

// skillKeys are the keys of one skill's items (see the package
// documentation): the default skill's are those of the table before skills
// existed, every other skill's name the skill.
type skillKeys struct {
	user  string // start of the pk of a user's link and lease: + user id
	code  string // start of the pk of a code claim: + code hash
	links string // gsi1pk of the skill's links
	stats string // sk of the counter item of the skill's links
}

// keysOf returns the keys of skillID's items, escaped as the package
// documentation says.
func keysOf(skillID string) skillKeys {
	if skillID == tokens.DefaultSkillID {
		return skillKeys{user: pkUser, code: pkCode, links: gsiLinks, stats: skCounterStats}
	}
	esc := keyEscaper.Replace(skillID)
	return skillKeys{
		user:  pkSkill + esc + "#" + pkUser,
		code:  pkSkill + esc + "#" + pkCode,
		links: gsiLinks + "#" + esc,
		stats: skCounterStats + "#" + esc,
	}
}

// ForSkill returns the view of the table that holds the links of skillID:
// a Store sharing s's client and table whose links, code claims, refresh
// leases and link counts (CountLinks) are skillID's alone, and whose links
// name skillID in their SkillID. The view of tokens.DefaultSkillID (or "")
// is the table as it was before skills existed, the store that New returns:
// links written then are the default skill's. Everything else — the reports
// outbox, events and webhooks, Ping — is the table's, the same through every
// view. Views are cheap and may be made at any time; two views of one skill
// are the same data.
//
// ForSkill panics when skillID is longer than MaxSkillIDLen bytes or not
// UTF-8: skill ids come from the broker's configuration, which checks them
// first.
func (s *Store) ForSkill(skillID string) *Store {
	if skillID == "" {
		skillID = tokens.DefaultSkillID
	}
	if len(skillID) > MaxSkillIDLen || !utf8.ValidString(skillID) {
		panic(fmt.Sprintf("dynamo: skill id %q is longer than %d bytes or not UTF-8", skillID, MaxSkillIDLen))
	}
	view := *s
	view.skill, view.keys = skillID, keysOf(skillID)
	return &view
}

// SkillID returns the skill of the view (see ForSkill).
func (s *Store) SkillID() string { return s.skill }

// Skills (tokens.SkillLister) returns the ids of the skills that have links in the
// table, sorted: those whose link counters count at least one link (see
// CountLinks), read from the counter items with one strongly consistent
// query. The counters are added to after each change, so a crash between the
// two may leave a skill's count one off. It returns an EUNAVAILABLE error
// when DynamoDB cannot be reached, and an EINTERNAL error when the counters
// are corrupt.
func (s *Store) Skills(ctx context.Context) ([]string, error) {
	const op = "skills with links"
	expr, err := expression.NewBuilder().WithKeyCondition(
		expression.Key(AttrPK).Equal(expression.Value(pkCounter)).
			And(expression.Key(AttrSK).BeginsWith(skCounterStats))).Build()
	if err != nil {
		return nil, fmt.Errorf("dynamo: %s: build query: %w", op, err)
	}
	in := &dynamodb.QueryInput{
		TableName: s.table, KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ConsistentRead: aws.Bool(true),
	}
	var skills []string
	for {
		out, err := s.client.Query(ctx, in)
		if err != nil {
			return nil, s.fail(op, err)
		}
		for _, item := range out.Items {
			var rec struct {
				SK      string `dynamodbav:"sk"`
				SkillID string `dynamodbav:"skill_id"`
			}
			if err := unmarshal(item, &rec); err != nil {
				return nil, fmt.Errorf("dynamo: %s: %w: %w", op, errCorrupt, err)
			}
			skill := tokens.DefaultSkillID
			if rec.SK != skCounterStats {
				if skill = rec.SkillID; skill == "" || keysOf(skill).stats != rec.SK {
					return nil, fmt.Errorf("dynamo: %s: counter item %q names skill %q: %w", op, rec.SK, skill, errCorrupt)
				}
			}
			counts, err := countsOf(op, item, countLinks)
			if err != nil {
				return nil, err
			}
			for _, n := range counts {
				if n > 0 {
					skills = append(skills, skill)
					break
				}
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	slices.Sort(skills)
	return skills, nil
}

// keyEscaper escapes a user id, a skill id or a delivery lane where it is
// part of a key followed by more: '\' becomes `\\` and '#' becomes `\#`, so
// that an unescaped '#' ends the escaped string.
var keyEscaper = strings.NewReplacer(`\`, `\\`, `#`, `\#`)
