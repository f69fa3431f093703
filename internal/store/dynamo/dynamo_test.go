package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/reciprocal-broker/broker/internal/reports"
	"github.com/reciprocal-broker/broker/internal/store/dynamo"
	"github.com/reciprocal-broker/broker/internal/store/dynamo/dynamotest"
	"github.com/reciprocal-broker/broker/internal/store/storetest"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

func TestStore(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.Run(t, func(t *testing.T) tokens.Store { return openNew(t, endpoint) })
}

func TestStore_Reports(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.RunReports(t, func(t *testing.T) reports.Store { return openNew(t, endpoint) })
}

func TestStore_PendingReports(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.RunPendingReports(t, func(t *testing.T) storetest.PendingListStore { return openNew(t, endpoint) })
}

func TestStore_Leases(t *testing.T) {
	endpoint := dynamotest.Start(t)
	storetest.RunLeases(t, func(t *testing.T) tokens.Leaser { return openNew(t, endpoint) })
}

func TestNew(t *testing.T) {
	endpoint := dynamotest.Start(t)

	t.Run("CreateTableIdempotent", func(t *testing.T) {
		table := dynamotest.NewTable(t, endpoint)
		first := mustNew(t, endpoint, table, true)
		link := storetest.NewLink("user-1")
		storetest.MustPut(t, first, link)

		second := mustNew(t, endpoint, table, true)
		if got := storetest.MustGet(t, second, "user-1"); got.Version != link.Version {
			t.Errorf("link read through the second store has version %d, want %d", got.Version, link.Version)
		}
	})

	t.Run("CreateTableConcurrent", func(t *testing.T) {
		table := dynamotest.NewTable(t, endpoint)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				s, err := dynamo.New(t.Context(), options(endpoint, table, true))
				if err != nil {
					t.Errorf("New %d error = %v", i, err)
					return
				}
				if err := s.Ping(t.Context()); err != nil {
					t.Errorf("Ping of store %d error = %v", i, err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("Schema", func(t *testing.T) {
		table := dynamotest.NewTable(t, endpoint)
		mustNew(t, endpoint, table, true)
		out, err := dynamotest.Client(endpoint).DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		keys := func(ks []types.KeySchemaElement) string {
			var b strings.Builder
			for _, k := range ks {
				fmt.Fprintf(&b, "%s:%s ", aws.ToString(k.AttributeName), k.KeyType)
			}
			return b.String()
		}
		if got, want := keys(out.Table.KeySchema), "pk:HASH sk:RANGE "; got != want {
			t.Errorf("table keys = %q, want %q", got, want)
		}
		if got, want := len(out.Table.GlobalSecondaryIndexes), 1; got != want {
			t.Fatalf("%d global secondary indexes, want %d", got, want)
		}
		gsi := out.Table.GlobalSecondaryIndexes[0]
		if got, want := aws.ToString(gsi.IndexName), dynamo.IndexGSI1; got != want {
			t.Errorf("index name = %q, want %q", got, want)
		}
		if got, want := keys(gsi.KeySchema), dynamo.AttrGSI1PK+":HASH "+dynamo.AttrGSI1SK+":RANGE "; got != want {
			t.Errorf("index keys = %q, want %q", got, want)
		}
		if got, want := gsi.Projection.ProjectionType, types.ProjectionTypeAll; got != want {
			t.Errorf("index projection = %q, want %q", got, want)
		}
	})

	t.Run("MissingTableWithoutCreate", func(t *testing.T) {
		table := dynamotest.NewTable(t, endpoint)
		_, err := dynamo.New(t.Context(), options(endpoint, table, false))
		if !errors.Is(err, dynamo.ErrNoTable) || tokens.ErrorCode(err) != tokens.EINVALID || !strings.Contains(err.Error(), table) {
			t.Errorf("New of a missing table: error = %v, want ErrNoTable (code %q) naming %s", err, tokens.EINVALID, table)
		}
	})

	t.Run("TableDeletedWhileRunning", func(t *testing.T) {
		table := dynamotest.NewTable(t, endpoint)
		s := mustNew(t, endpoint, table, true)
		client := dynamotest.Client(endpoint)
		if _, err := client.DeleteTable(t.Context(), &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Fatal(err)
		}
		gone := dynamodb.NewTableNotExistsWaiter(client, func(o *dynamodb.TableNotExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 10*time.Millisecond, 50*time.Millisecond
		})
		if err := gone.Wait(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.Ping(t.Context()); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("Ping of a missing table: error = %v, want code %q", err, tokens.EUNAVAILABLE)
		}
		if _, err := s.GetLink(t.Context(), "user-1"); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
			t.Errorf("GetLink from a missing table: error = %v, want code %q", err, tokens.EUNAVAILABLE)
		}
	})

	for _, tt := range []struct {
		name string
		opts dynamo.Options
	}{
		{"NoTable", dynamo.Options{Endpoint: endpoint, AWS: dynamotest.Config()}},
		{"NoRegion", func() dynamo.Options {
			cfg := dynamotest.Config()
			cfg.Region = ""
			return dynamo.Options{Table: "broker", AWS: cfg}
		}()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dynamo.New(t.Context(), tt.opts)
			if got, want := tokens.ErrorCode(err), tokens.EINVALID; got != want {
				t.Errorf("New error = %v (code %q), want code %q", err, got, want)
			}
		})
	}
}

// TestStore_Unreachable checks that calls fail as EUNAVAILABLE within their
// context's deadline when DynamoDB refuses connections or never answers.
func TestStore_Unreachable(t *testing.T) {
	refused := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}
	silent := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var conns []net.Conn
		t.Cleanup(func() {
			l.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c) // read nothing, answer nothing
				mu.Unlock()
			}
		}()
		return "http://" + l.Addr().String()
	}
	for _, tt := range []struct {
		name     string
		endpoint func(t *testing.T) string
		deadline time.Duration
	}{
		// Refused connections are retried with backoff, MaxAttempts in all,
		// which ends well before the deadline.
		{"Refused", refused, 5 * time.Second},
		// A server that never answers holds the call until the deadline.
		{"Silent", silent, 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := tt.endpoint(t)
			s := mustNew(t, endpoint, "broker", false)
			for _, c := range []struct {
				name string
				call func(ctx context.Context) error
			}{
				{"Ping", s.Ping},
				{"GetLink", func(ctx context.Context) error { _, err := s.GetLink(ctx, "user-1"); return err }},
				{"PutLink", func(ctx context.Context) error { return s.PutLink(ctx, storetest.NewLink("user-1")) }},
			} {
				t.Run(c.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), tt.deadline)
					defer cancel()
					start := time.Now()
					err := c.call(ctx)
					elapsed := time.Since(start)
					if got, want := tokens.ErrorCode(err), tokens.EUNAVAILABLE; got != want {
						t.Errorf("error = %v (code %q), want code %q", err, got, want)
					}
					if limit := tt.deadline + time.Second; elapsed > limit {
						t.Errorf("failed after %s, want within %s", elapsed, limit)
					}
				})
			}
		})
	}
}

// TestStore_Restart checks that a store recovers by itself once DynamoDB is back:
// calls fail as EUNAVAILABLE while it is down, and succeed after it restarts.
func TestStore_Restart(t *testing.T) {
	srv := dynamotest.StartServer(t)
	endpoint := srv.Endpoint()
	table := dynamotest.NewTable(t, endpoint)
	s := mustNew(t, endpoint, table, true)
	storetest.MustPut(t, s, storetest.NewLink("user-1"))

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := s.GetLink(ctx, "user-1"); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
		t.Errorf("GetLink while DynamoDB is down: error = %v, want code %q", err, tokens.EUNAVAILABLE)
	}
	if err := s.Ping(ctx); tokens.ErrorCode(err) != tokens.EUNAVAILABLE {
		t.Errorf("Ping while DynamoDB is down: error = %v, want code %q", err, tokens.EUNAVAILABLE)
	}

	srv.Restart() // in memory: the table is gone; make it again, as an operator would
	mustNew(t, endpoint, table, true)

	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after the restart error = %v", err)
	}
	if _, err := s.GetLink(t.Context(), "user-1"); !errors.Is(err, tokens.ErrLinkNotFound) {
		t.Errorf("GetLink from the new table: error = %v, want ErrLinkNotFound", err)
	}
	link := storetest.NewLink("user-2")
	storetest.MustPut(t, s, link)
	if got := storetest.MustGet(t, s, "user-2"); got.Version != link.Version {
		t.Errorf("link after the restart has version %d, want %d", got.Version, link.Version)
	}
}

func TestStore_CorruptItem(t *testing.T) {
	endpoint := dynamotest.Start(t)
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	b := func(v string) types.AttributeValue { return &types.AttributeValueMemberB{Value: []byte(v)} }
	link := func(change func(map[string]types.AttributeValue)) map[string]types.AttributeValue {
		item := map[string]types.AttributeValue{
			"pk": s("USER#user-1"), "sk": s("LINK"), "gsi1pk": s("LINK"), "gsi1sk": s("user-1"),
			"format": n("1"), "user_id": s("user-1"), "state": s("LINKED"), "sealed": b("x"), "version": n("1"),
		}
		change(item)
		return item
	}
	for _, tt := range []struct {
		name string
		item map[string]types.AttributeValue
	}{
		{"UnknownState", link(func(m map[string]types.AttributeValue) { m["state"] = s("HAPPY") })},
		{"UnknownFormat", link(func(m map[string]types.AttributeValue) { m["format"] = n("9") })},
		{"NoFormat", link(func(m map[string]types.AttributeValue) { delete(m, "format") })},
		{"VersionNotANumber", link(func(m map[string]types.AttributeValue) { m["version"] = s("one") })},
		{"SealedNotBinary", link(func(m map[string]types.AttributeValue) { m["sealed"] = n("1") })},
		{"NoSealed", link(func(m map[string]types.AttributeValue) { delete(m, "sealed") })},
		{"TimeNotANumber", link(func(m map[string]types.AttributeValue) { m["linked_at"] = s("yesterday") })},
		{"OtherUsersLink", link(func(m map[string]types.AttributeValue) { m["user_id"] = s("user-2") })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			table := dynamotest.NewTable(t, endpoint)
			st := mustNew(t, endpoint, table, true)
			putRaw(t, endpoint, table, tt.item)
			_, err := st.GetLink(t.Context(), "user-1")
			if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
				t.Errorf("GetLink of a corrupt item: error = %v (code %q), want code %q", err, got, want)
			}
			if _, err := st.ListLinks(t.Context(), "", 10); tokens.ErrorCode(err) != tokens.EINTERNAL {
				t.Errorf("ListLinks over a corrupt item: error = %v, want code %q", err, tokens.EINTERNAL)
			}
		})
	}

	t.Run("Claim", func(t *testing.T) {
		table := dynamotest.NewTable(t, endpoint)
		st := mustNew(t, endpoint, table, true)
		putRaw(t, endpoint, table, map[string]types.AttributeValue{
			"pk": s("CODE#code-1"), "sk": s("CODE"), "user_id": n("7"), "expires": s("never"),
		})
		_, err := st.ClaimCode(t.Context(), "code-1", "user-1", time.Now().Add(time.Hour))
		if got, want := tokens.ErrorCode(err), tokens.EINTERNAL; got != want {
			t.Errorf("ClaimCode over a corrupt claim: error = %v (code %q), want code %q", err, got, want)
		}
	})

	t.Run("Report", func(t *testing.T) {
		table := dynamotest.NewTable(t, endpoint)
		st := mustNew(t, endpoint, table, true)
		putRaw(t, endpoint, table, map[string]types.AttributeValue{
			"pk": s("REPORT#m1"), "sk": s("REPORT"), "gsi1pk": s("PENDING"), "gsi1sk": s("u#00000000000000000001"),
			"format": n("1"), "message_id": s("m1"), "user_id": s("u"), "state": s("PENDING"),
			"profiles": s("{not json"), "seq": n("1"), "version": n("1"),
		})
		if _, err := st.GetReport(t.Context(), "m1"); tokens.ErrorCode(err) != tokens.EINTERNAL {
			t.Errorf("GetReport of a corrupt item: error = %v, want code %q", err, tokens.EINTERNAL)
		}
		if _, err := st.LanePendingReports(t.Context(), "u"); tokens.ErrorCode(err) != tokens.EINTERNAL {
			t.Errorf("LanePendingReports over a corrupt item: error = %v, want code %q", err, tokens.EINTERNAL)
		}
	})
}

// TestStore_VersionsAcrossIncarnations checks that a writer who read a link
// before it was deleted and linked again cannot overwrite the new link.
func TestStore_VersionsAcrossIncarnations(t *testing.T) {
	s := openNew(t, dynamotest.Start(t))
	storetest.MustPut(t, s, storetest.NewLink("user-1"))
	stale := storetest.MustGet(t, s, "user-1")
	if err := s.DeleteLink(t.Context(), "user-1"); err != nil {
		t.Fatal(err)
	}
	again := storetest.NewLink("user-1")
	storetest.MustPut(t, s, again)
	if again.Version <= stale.Version {
		t.Errorf("version of the new link %d, want above the old one's %d", again.Version, stale.Version)
	}
	stale.Region = "FE"
	if err := s.PutLink(t.Context(), stale); !errors.Is(err, tokens.ErrVersionConflict) {
		t.Errorf("PutLink of the old link over the new one: error = %v, want ErrVersionConflict", err)
	}
}

// TestStore_UserIDsInKeys checks user ids that hold the index's separators, or
// that DynamoDB cannot keep.
func TestStore_UserIDsInKeys(t *testing.T) {
	endpoint := dynamotest.Start(t)

	t.Run("PendingReportsBySeparator", func(t *testing.T) {
		s := openNew(t, endpoint)
		t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		users := []string{"a", "a#", "a#b", `a\`, `a\#b`, `a\\#b`, "a#00000000000000000001", "ab"}
		for _, u := range users {
			for i := range 2 {
				r := storetest.NewReport(fmt.Sprintf("%s/%d", u, i), u, t0)
				if _, created, err := s.CreateReport(t.Context(), r); err != nil || !created {
					t.Fatalf("CreateReport(%q): created %v, err %v", r.MessageID, created, err)
				}
			}
		}
		for _, u := range users {
			got, err := s.LanePendingReports(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.MessageID)
			}
			if diff := cmp.Diff([]string{u + "/0", u + "/1"}, ids); diff != "" {
				t.Errorf("LanePendingReports(%q) (-want +got):\n%s", u, diff)
			}
		}
		due, err := s.DueReports(t.Context(), t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, r := range due {
			got = append(got, r.MessageID)
		}
		for _, u := range users {
			want = append(want, u+"/1")
		}
		slices.Sort(got)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("DueReports: each user's newest report (-want +got):\n%s", diff)
		}
	})

	t.Run("DueReportsPastAPage", func(t *testing.T) {
		// a's backlog spans several of DueReports' pages: a's newest report
		// stands for a, and b, behind it, is found.
		s := openNew(t, endpoint)
		t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		const backlog = 250
		for i := range backlog {
			if _, _, err := s.CreateReport(t.Context(), storetest.NewReport(fmt.Sprintf("a/%03d", i), "a", t0)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.CreateReport(t.Context(), storetest.NewReport("b/0", "b", t0)); err != nil {
			t.Fatal(err)
		}
		due, err := s.DueReports(t.Context(), t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range due {
			got = append(got, r.MessageID)
		}
		if diff := cmp.Diff([]string{fmt.Sprintf("a/%03d", backlog-1), "b/0"}, got); diff != "" {
			t.Errorf("DueReports (-want +got):\n%s", diff)
		}
	})

	t.Run("OldestEventPastAPage", func(t *testing.T) {
		// The same with Alexa events: a's oldest stands for its lane, and b
		// is found behind the backlog.
		s := openNew(t, endpoint)
		t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
		const backlog = 250
		for i := range backlog {
			if _, _, err := s.CreateReport(t.Context(), storetest.NewAlexaEvent(fmt.Sprintf("a/%03d", i), "home", "a", t0)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.CreateReport(t.Context(), storetest.NewAlexaEvent("b/0", "home", "b", t0)); err != nil {
			t.Fatal(err)
		}
		due, err := s.DueReports(t.Context(), t0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"a/000", "b/0"}, messageIDs(due)); diff != "" {
			t.Errorf("DueReports (-want +got):\n%s", diff)
		}
	})

	t.Run("Unstorable", func(t *testing.T) {
		s := openNew(t, endpoint)
		for _, tt := range []struct{ name, user string }{
			{"TooLong", strings.Repeat("x", dynamo.MaxUserIDLen+1)},
			{"NotUTF8", "user-\xff"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if err := s.PutLink(t.Context(), storetest.NewLink(tt.user)); tokens.ErrorCode(err) != tokens.EINVALID {
					t.Errorf("PutLink error = %v, want code %q", err, tokens.EINVALID)
				}
				if _, err := s.ClaimCode(t.Context(), "code-1", tt.user, time.Now().Add(time.Hour)); tokens.ErrorCode(err) != tokens.EINVALID {
					t.Errorf("ClaimCode error = %v, want code %q", err, tokens.EINVALID)
				}
				if _, err := s.AcquireLease(t.Context(), tt.user, "a", time.Now(), time.Now().Add(time.Minute)); tokens.ErrorCode(err) != tokens.EINVALID {
					t.Errorf("AcquireLease error = %v, want code %q", err, tokens.EINVALID)
				}
				if _, _, err := s.CreateReport(t.Context(), storetest.NewReport("m1", tt.user, time.Now())); tokens.ErrorCode(err) != tokens.EINVALID {
					t.Errorf("CreateReport error = %v, want code %q", err, tokens.EINVALID)
				}
				if _, err := s.GetLink(t.Context(), tt.user); !errors.Is(err, tokens.ErrLinkNotFound) {
					t.Errorf("GetLink error = %v, want ErrLinkNotFound", err)
				}
			})
		}
		longest := storetest.NewLink(strings.Repeat("#", dynamo.MaxUserIDLen))
		storetest.MustPut(t, s, longest)
		r := storetest.NewReport("m-longest", longest.UserID, time.Now())
		if _, _, err := s.CreateReport(t.Context(), r); err != nil {
			t.Errorf("CreateReport for the longest user id, all separators: %v", err)
		}
	})
}

func BenchmarkStore_GetLink(b *testing.B) {
	endpoint := dynamotest.Start(b)
	s := openNew(b, endpoint)
	storetest.MustPut(b, s, storetest.NewLink("user-1"))
	for b.Loop() {
		if _, err := s.GetLink(b.Context(), "user-1"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawGetItem reads the same item as BenchmarkStore_GetLink with the
// SDK alone, for the store's own cost by comparison.
func BenchmarkRawGetItem(b *testing.B) {
	endpoint := dynamotest.Start(b)
	table := dynamotest.NewTable(b, endpoint)
	s := mustNew(b, endpoint, table, true)
	storetest.MustPut(b, s, storetest.NewLink("user-1"))
	client := dynamotest.Client(endpoint)
	in := &dynamodb.GetItemInput{
		TableName: aws.String(table),
		Key: map[string]types.AttributeValue{
			dynamo.AttrPK: &types.AttributeValueMemberS{Value: "USER#user-1"},
			dynamo.AttrSK: &types.AttributeValueMemberS{Value: "LINK"},
		},
		ConsistentRead: aws.Bool(true),
	}
	for b.Loop() {
		out, err := client.GetItem(b.Context(), in)
		if err != nil || out.Item == nil {
			b.Fatalf("GetItem = %v, %v", out, err)
		}
	}
}

// options returns the options of a store of table on the dynalite at endpoint.
func options(endpoint, table string, create bool) dynamo.Options {
	return dynamo.Options{Table: table, Endpoint: endpoint, CreateTable: create, AWS: dynamotest.Config()}
}

// mustNew returns a store of table on the server at endpoint, creating the
// table when create is true.
func mustNew(tb testing.TB, endpoint, table string, create bool) *dynamo.Store {
	tb.Helper()
	s, err := dynamo.New(tb.Context(), options(endpoint, table, create))
	if err != nil {
		tb.Fatalf("New(%s) error = %v", table, err)
	}
	return s
}

// openNew returns a store of a new, empty table on the server at endpoint.
func openNew(tb testing.TB, endpoint string) *dynamo.Store {
	tb.Helper()
	return mustNew(tb, endpoint, dynamotest.NewTable(tb, endpoint), true)
}

// putRaw writes item into table, bypassing the store.
func putRaw(tb testing.TB, endpoint, table string, item map[string]types.AttributeValue) {
	tb.Helper()
	_, err := dynamotest.Client(endpoint).PutItem(tb.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	if err != nil {
		tb.Fatalf("PutItem into %s: %v", table, err)
	}
}
