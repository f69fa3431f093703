package dynamo_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/events"
	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestStore_Skills(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.RunSkills(t, func(t *testing.T) func(string) tokens.Store {
		s := openNew(t, endpoint)
		return func(skillID string) tokens.Store { return s.ForSkill(skillID) }
	})
}

// TestStore_OtherSkill runs the link suites against the view of a skill that
// is not the default one: its keys differ, its behaviour does not.
func TestStore_OtherSkill(t *testing.T) {
	endpoint := dynamotest.Start(t)
	home := func(t *testing.T) *dynamo.Store { return openNew(t, endpoint).ForSkill("home") }
	t.Run("Links", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) tokens.Store { return home(t) })
	})
	t.Run("Leases", func(t *testing.T) {
		storetest.RunLeases(t, func(t *testing.T) tokens.Leaser { return home(t) })
	})
	t.Run("Counts", func(t *testing.T) {
		storetest.RunLinkCounts(t, func(t *testing.T) storetest.LinkCountStore { return home(t) })
	})
	t.Run("Events", func(t *testing.T) {
		storetest.RunEvents(t, func(t *testing.T) storetest.EventStore { return home(t) })
	})
}

func TestStore_ForSkill(t *testing.T) {
	s := mustNew(t, "http://127.0.0.1:1", "broker", false) // New's look at the table is refused, and let through
	for _, tt := range []struct{ give, want string }{
		{"", tokens.DefaultSkillID},
		{tokens.DefaultSkillID, tokens.DefaultSkillID},
		{"home", "home"},
	} {
		if got := s.ForSkill(tt.give).SkillID(); got != tt.want {
			t.Errorf("ForSkill(%q).SkillID() = %q, want %q", tt.give, got, tt.want)
		}
	}
	if got := s.SkillID(); got != tokens.DefaultSkillID {
		t.Errorf("New(...).SkillID() = %q, want %q", got, tokens.DefaultSkillID)
	}
	if got := s.ForSkill("home").ForSkill("baby").SkillID(); got != "baby" {
		t.Errorf("a view's ForSkill(baby).SkillID() = %q, want baby", got)
	}
	for _, bad := range []string{strings.Repeat("x", dynamo.MaxSkillIDLen+1), "skill-\xff"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ForSkill(%q) did not panic", bad)
				}
			}()
			s.ForSkill(bad)
		}()
	}
}

// TestStore_PreSkillsLayout writes items as the store wrote them before
// skills and delivery lanes existed, with PutItem, and reads them through the
// default skill's views: every link, claim, lease, count, pending report and
// delivered mark is still there, and writes keep the keys.
func TestStore_PreSkillsLayout(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	store := mustNew(t, endpoint, table, true)
	now := time.Now()
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	nanos := func(t time.Time) types.AttributeValue { return attrN(itoa(t.UnixNano())) }
	items := []map[string]types.AttributeValue{
		{"pk": attrS("COUNTER"), "sk": attrS("LINKS"), "n": attrN("1")},
		{"pk": attrS("COUNTER"), "sk": attrS("REPORTS"), "n": attrN("2")},
		{"pk": attrS("COUNTER"), "sk": attrS("STATS"), "links_LINKED": attrN("1"), "reports_PENDING": attrN("2")},
		{
			"pk": attrS("USER#u1"), "sk": attrS("LINK"), "gsi1pk": attrS("LINK"), "gsi1sk": attrS("u1"),
			"format": attrN("1"), "user_id": attrS("u1"), "state": attrS("LINKED"), "region": attrS("EU"),
			"linked_at": nanos(t0), "key_id": attrS("key-1"), "sealed": attrB("sealed"), "version": attrN(itoa(1 << 24)),
		},
		{
			"pk": attrS("CODE#hash-1"), "sk": attrS("CODE"), "format": attrN("1"), "user_id": attrS("u1"),
			"expires": nanos(now.Add(time.Hour)), "ttl": attrN(itoa(now.Add(25 * time.Hour).Unix())),
		},
		{
			"pk": attrS("USER#u1"), "sk": attrS("LEASE"), "format": attrN("1"), "owner": attrS("old-process"),
			"until": nanos(now.Add(time.Hour)), "ttl": attrN(itoa(now.Add(25 * time.Hour).Unix())),
		},
		{"pk": attrS("USER#u1"), "sk": attrS("DELIVERY"), "format": attrN("1"), "delivered": attrN("7")},
	}
	for i, id := range []string{"m1", "m2"} {
		seq := itoa(int64(i + 1))
		items = append(items, map[string]types.AttributeValue{
			"pk": attrS("REPORT#" + id), "sk": attrS("REPORT"), "gsi1pk": attrS("PENDING"), "gsi1sk": attrS("u1#" + strings.Repeat("0", 20-len(seq)) + seq),
			"format": attrN("1"), "message_id": attrS(id), "user_id": attrS("u1"), "profiles": attrS(`[{"profileId":"baby-1"}]`),
			"seq": attrN(seq), "state": attrS("PENDING"), "attempts": attrN("0"),
			"submitted_at": nanos(t0), "next_attempt_at": nanos(t0), "version": attrN(itoa(int64(i+1) << 24)),
		})
	}
	for _, item := range items {
		putRaw(t, endpoint, table, item)
	}

	for name, def := range map[string]*dynamo.Store{"New": store, `ForSkill("")`: store.ForSkill(""), "ForSkill(default)": store.ForSkill(tokens.DefaultSkillID)} {
		t.Run(name, func(t *testing.T) {
			link := storetest.MustGet(t, def, "u1")
			want := &tokens.Link{
				UserID: "u1", SkillID: tokens.DefaultSkillID, State: tokens.StateLinked, Region: "EU", LinkedAt: t0,
				Tokens: tokens.Sealed{KeyID: "key-1", Ciphertext: []byte("sealed")}, Version: 1 << 24,
			}
			if diff := cmp.Diff(want, link); diff != "" {
				t.Errorf("GetLink(u1) (-want +got):\n%s", diff)
			}
			page, err := def.ListLinks(t.Context(), "", 0)
			if err != nil || len(page.Links) != 1 || page.Links[0].UserID != "u1" {
				t.Errorf("ListLinks = %+v, %v; want u1", page.Links, err)
			}
			if counts, err := def.CountLinks(t.Context()); err != nil || counts[tokens.StateLinked] != 1 {
				t.Errorf("CountLinks = %v, %v; want 1 LINKED", counts, err)
			}
			if owner, err := def.ClaimCode(t.Context(), "hash-1", "u2", now.Add(time.Hour)); err != nil || owner != "u1" {
				t.Errorf("ClaimCode(hash-1, u2) = %q, %v; want u1's earlier claim", owner, err)
			}
			if held, err := def.AcquireLease(t.Context(), "u1", "new-process", now, now.Add(time.Minute)); err != nil || held {
				t.Errorf("AcquireLease(u1) = %v, %v; want the old process's lease to stand", held, err)
			}
			pending, err := def.LanePendingReports(t.Context(), reports.Lane(reports.KindProfileReport, tokens.DefaultSkillID, "u1"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"m1", "m2"}, messageIDs(pending)); diff != "" {
				t.Errorf("LanePendingReports(u1) (-want +got):\n%s", diff)
			}
			if pending[0].Lane() != "u1" || pending[0].Kind != "" || pending[0].SkillID != "" {
				t.Errorf("an old report's kind, skill and lane = %q, %q, %q; want \"\", \"\", u1", pending[0].Kind, pending[0].SkillID, pending[0].Lane())
			}
			due, err := def.DueReports(t.Context(), t0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"m2"}, messageIDs(due)); diff != "" {
				t.Errorf("DueReports (-want +got):\n%s", diff)
			}
			mark, held, err := def.ClaimDelivery(t.Context(), "u1", "deliverer", now, now.Add(time.Minute))
			if err != nil || !held || mark != 7 {
				t.Errorf("ClaimDelivery(u1) = %d, %v, %v; want the old mark 7, held", mark, held, err)
			}
			if err := def.ReleaseDelivery(t.Context(), "u1", "deliverer"); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("OtherSkillsApart", func(t *testing.T) {
		home := store.ForSkill("home")
		if _, err := home.GetLink(t.Context(), "u1"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("GetLink(home, u1) error = %v, want ErrLinkNotFound", err)
		}
		if owner, err := home.ClaimCode(t.Context(), "hash-1", "u2", now.Add(time.Hour)); err != nil || owner != "u2" {
			t.Errorf("ClaimCode(home, hash-1, u2) = %q, %v; want u2", owner, err)
		}
	})

	t.Run("WritesKeepTheKeys", func(t *testing.T) {
		link := storetest.MustGet(t, store, "u1")
		link.Region = "FE"
		storetest.MustPut(t, store, link)
		item := getRaw(t, endpoint, table, "USER#u1", "LINK")
		wantKeys(t, item, "LINK", "u1")
		if _, ok := item["skill_id"]; ok {
			t.Errorf("default skill's link item has a skill_id: %v", item["skill_id"])
		}
		r := storetest.NewReport("m3", "u1", t0)
		if _, _, err := store.CreateReport(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		item = getRaw(t, endpoint, table, "REPORT#m3", "REPORT")
		wantKeys(t, item, "PENDING", "u1#"+fmt.Sprintf("%020d", r.Seq))
		wantFormat(t, item, 1)
	})
}

// TestStore_SkillKeys checks the keys of the items of another skill's view
// and of the delivery lanes, as the package documentation lays them out.
func TestStore_SkillKeys(t *testing.T) {
	endpoint := dynamotest.Start(t)
	table := dynamotest.NewTable(t, endpoint)
	store := mustNew(t, endpoint, table, true)
	home := store.ForSkill("home")
	now := time.Now()

	storetest.MustPut(t, home, storetest.NewLink("u1"))
	item := getRaw(t, endpoint, table, "SKILL#home#USER#u1", "LINK")
	wantKeys(t, item, "LINK#home", "u1")
	if v, ok := item["skill_id"].(*types.AttributeValueMemberS); !ok || v.Value != "home" {
		t.Errorf("home's link item skill_id = %#v, want home", item["skill_id"])
	}
	if _, err := home.ClaimCode(t.Context(), "hash-1", "u1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	getRaw(t, endpoint, table, "SKILL#home#CODE#hash-1", "CODE")
	if _, err := home.AcquireLease(t.Context(), "u1", "o", now, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	getRaw(t, endpoint, table, "SKILL#home#USER#u1", "LEASE")
	item = getRaw(t, endpoint, table, "COUNTER", "STATS#home")
	if v, ok := item["links_LINKED"].(*types.AttributeValueMemberN); !ok || v.Value != "1" {
		t.Errorf("home's link counter = %#v, want 1", item["links_LINKED"])
	}

	t.Run("SkillIDsEscaped", func(t *testing.T) {
		// A skill id that holds the separators cannot pose as another
		// skill's user.
		odd, plain := store.ForSkill("a#USER#b"), store.ForSkill("a")
		l1, l2 := storetest.NewLink("c"), storetest.NewLink("USER#b#USER#c")
		storetest.MustPut(t, odd, l1)
		storetest.MustPut(t, plain, l2)
		getRaw(t, endpoint, table, `SKILL#a\#USER\#b#USER#c`, "LINK")
		getRaw(t, endpoint, table, "SKILL#a#USER#USER#b#USER#c", "LINK")
		if got := storetest.MustGet(t, odd, "c"); got.Version != l1.Version || got.SkillID != "a#USER#b" {
			t.Errorf("GetLink(a#USER#b, c) = %+v, want version %d", got, l1.Version)
		}
		if _, err := plain.GetLink(t.Context(), "c"); !errors.Is(err, tokens.ErrLinkNotFound) {
			t.Errorf("GetLink(a, c) error = %v, want ErrLinkNotFound", err)
		}
	})

	t.Run("Lanes", func(t *testing.T) {
		t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		e := storetest.NewAlexaEvent("e1", "home", "u#1", t0)
		if _, _, err := store.CreateReport(t.Context(), e); err != nil {
			t.Fatal(err)
		}
		item := getRaw(t, endpoint, table, "REPORT#e1", "REPORT")
		wantKeys(t, item, "PENDING", "alexa_event\x00home\x00u\\#1#"+fmt.Sprintf("%020d", e.Seq))
		wantFormat(t, item, 2) // code from before lanes refuses it rather than send it as a profile report
		r := storetest.NewReport("r1", "u#1", t0)
		r.SkillID = "baby"
		if _, _, err := store.CreateReport(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		wantFormat(t, getRaw(t, endpoint, table, "REPORT#r1", "REPORT"), 2)

		if _, held, err := store.ClaimDelivery(t.Context(), e.Lane(), "o", now, now.Add(time.Minute)); err != nil || !held {
			t.Fatalf("ClaimDelivery(e1's lane) = %v, %v", held, err)
		}
		getRaw(t, endpoint, table, "LANE#alexa_event\x00home\x00u#1", "DELIVERY")
	})

	t.Run("LaneTooLong", func(t *testing.T) {
		// The default lane of the longest user id fits; another lane of it,
		// escaped, does not.
		user := strings.Repeat("#", dynamo.MaxUserIDLen)
		if _, _, err := store.CreateReport(t.Context(), storetest.NewReport("long-1", user, now)); err != nil {
			t.Errorf("CreateReport(profile report, longest user id) error = %v", err)
		}
		e := storetest.NewAlexaEvent("long-2", "home", user, now)
		if _, _, err := store.CreateReport(t.Context(), e); tokens.ErrorCode(err) != tokens.EINVALID {
			t.Errorf("CreateReport(Alexa event, longest user id of separators) error = %v, want EINVALID", err)
		}
		if _, _, err := store.ClaimDelivery(t.Context(), e.Lane(), "o", now, now.Add(time.Minute)); tokens.ErrorCode(err) != tokens.EINVALID {
			t.Errorf("ClaimDelivery(that lane) error = %v, want EINVALID", err)
		}
		if got, err := store.LanePendingReports(t.Context(), e.Lane()); err != nil || len(got) != 0 {
			t.Errorf("LanePendingReports(that lane) = %v, %v; want none", messageIDs(got), err)
		}
	})
}

// TestStore_SkillEvents checks that the events of every skill's links are the
// table's: listed by user whatever their skill, with their SkillID, and sent
// as webhooks in the order they occurred.
func TestStore_SkillEvents(t *testing.T) {
	store := openNew(t, dynamotest.Start(t))
	def, home := store.ForSkill(tokens.DefaultSkillID), store.ForSkill("home")
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	event := func(typ tokens.EventType, skill string, i int) tokens.Event {
		e := storetest.NewTestEvent(typ, "u1", at.Add(time.Duration(i)*time.Second))
		e.SkillID, e.Notify = skill, true
		return e
	}
	e1 := event(tokens.EventLinked, tokens.DefaultSkillID, 0)
	e2 := event(tokens.EventLinked, "home", 1)
	e3 := event(tokens.EventDeleted, "home", 2)
	if err := def.PutLink(t.Context(), storetest.NewLink("u1"), e1); err != nil {
		t.Fatal(err)
	}
	if err := home.PutLink(t.Context(), storetest.NewLink("u1"), e2); err != nil {
		t.Fatal(err)
	}
	if err := home.DeleteLink(t.Context(), "u1", e3); err != nil {
		t.Fatal(err)
	}
	storetest.MustGet(t, def, "u1") // home's deletion leaves the default skill's link

	for name, view := range map[string]*dynamo.Store{"default": def, "home": home} {
		got := storetest.MustListEvents(t, view, tokens.EventFilter{UserID: "u1"})
		if diff := cmp.Diff([]tokens.Event{e3, e2, e1}, got); diff != "" {
			t.Errorf("ListEvents(u1) through %s's view (-want +got):\n%s", name, diff)
		}
	}
	if got := storetest.MustListEvents(t, def, tokens.EventFilter{Type: tokens.EventDeleted}); len(got) != 1 || got[0].SkillID != "home" {
		t.Errorf("ListEvents(DELETED) = %+v, want home's deletion", got)
	}

	for _, want := range []tokens.Event{e1, e2, e3} {
		due, err := def.DueWebhooks(t.Context(), at.Add(time.Hour), 0)
		if err != nil || len(due) != 1 {
			t.Fatalf("DueWebhooks = %d webhooks, %v; want 1", len(due), err)
		}
		if diff := cmp.Diff(want, due[0].Event); diff != "" {
			t.Errorf("due webhook (-want +got):\n%s", diff)
		}
		due[0].State = events.StateDelivered
		if err := home.PutWebhook(t.Context(), due[0]); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStore_SkillsListed(t *testing.T) {
	store := openNew(t, dynamotest.Start(t))
	assertSkills := func(want ...string) {
		t.Helper()
		got, err := store.Skills(t.Context())
		if err != nil {
			t.Fatalf("Skills error = %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Skills (-want +got):\n%s", diff)
		}
	}
	assertSkills()
	storetest.MustPut(t, store.ForSkill("x#y"), storetest.NewLink("u1"))
	storetest.MustPut(t, store.ForSkill("home"), storetest.NewLink("u1"))
	assertSkills("home", "x#y")
	storetest.MustPut(t, store, storetest.NewLink("u2"))
	baby := store.ForSkill("baby")
	storetest.MustPut(t, baby, storetest.NewLink("u3"))
	if err := baby.DeleteLink(t.Context(), "u3"); err != nil {
		t.Fatal(err)
	}
	assertSkills(tokens.DefaultSkillID, "home", "x#y") // baby's links are all gone
}

func attrS(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func attrN(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
func attrB(v string) types.AttributeValue { return &types.AttributeValueMemberB{Value: []byte(v)} }

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// getRaw reads the item pk, sk of table, bypassing the store, and fails the
// test when there is none.
func getRaw(tb testing.TB, endpoint, table, pk, sk string) map[string]types.AttributeValue {
	tb.Helper()
	out, err := dynamotest.Client(endpoint).GetItem(tb.Context(), &dynamodb.GetItemInput{
		TableName: aws.String(table), Key: map[string]types.AttributeValue{dynamo.AttrPK: attrS(pk), dynamo.AttrSK: attrS(sk)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		tb.Fatalf("GetItem(%q, %q) = %v, %v; want an item", pk, sk, out, err)
	}
	return out.Item
}

// wantKeys checks the index keys of item.
func wantKeys(tb testing.TB, item map[string]types.AttributeValue, gsi1pk, gsi1sk string) {
	tb.Helper()
	str := func(name string) string {
		v, _ := item[name].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	if got1, got2 := str(dynamo.AttrGSI1PK), str(dynamo.AttrGSI1SK); got1 != gsi1pk || got2 != gsi1sk {
		tb.Errorf("item %s index keys = %q, %q; want %q, %q", str(dynamo.AttrPK), got1, got2, gsi1pk, gsi1sk)
	}
}

// wantFormat checks the format attribute of item.
func wantFormat(tb testing.TB, item map[string]types.AttributeValue, format int64) {
	tb.Helper()
	if v, ok := item["format"].(*types.AttributeValueMemberN); !ok || v.Value != itoa(format) {
		tb.Errorf("item format = %#v, want %d", item["format"], format)
	}
}

// messageIDs returns the message ids of rs, in order.
func messageIDs(rs []*reports.Report) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.MessageID)
	}
	return out
}
