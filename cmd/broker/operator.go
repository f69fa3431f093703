package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"golang.org/x/oauth2"
	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
	"github.com/reciprocal-broker/broker/internal/config"
	"github.com/reciprocal-broker/broker/internal/tokens"
)

// The environment variables of the operator commands besides BROKER_TOKEN;
// BROKER_GRPC_ADDR and BROKER_JWT_ISSUER are the broker's own settings.
const (
	envGRPCAddr     = "BROKER_GRPC_ADDR"
	envIssuer       = "BROKER_JWT_ISSUER"
	envClientID     = "BROKER_CLIENT_ID"
	envClientSecret = "BROKER_CLIENT_SECRET"
)

// operatorCommand is one of the operator commands.
type operatorCommand struct {
	// name is the command after "broker", such as "links list".
	name string
	// user is true when the command takes a user id.
	user bool
	// summary says what it does, for usage.
	summary string
}

// operatorCommands are the operator commands, in the order usage lists them.
var operatorCommands = []operatorCommand{
	{"links list", false, "list links ordered by user id, a page at a time"},
	{"links get", true, "show a user's link (never a token)"},
	{"links refresh", true, "refresh a user's tokens with LWA now, and show the link"},
	{"links delete", true, "delete a user's link and its tokens"},
	{"events", false, "list events newest first: a user's (--user) or everyone's"},
	{"stats", false, "count links, profile reports and webhooks by state"},
}

// findOperatorCommand returns the operator command called name.
func findOperatorCommand(name string) (operatorCommand, bool) {
	i := slices.IndexFunc(operatorCommands, func(c operatorCommand) bool { return c.name == name })
	if i < 0 {
		return operatorCommand{}, false
	}
	return operatorCommands[i], true
}

// cliIO is what an operator command reads and writes.
type cliIO struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	// interactive is true when stdin is a terminal: links delete asks there
	// before it deletes.
	interactive bool
}

// processIO returns the cliIO of the process, with its stdin.
func processIO(getenv func(string) string, stdout, stderr io.Writer) cliIO {
	return cliIO{getenv: getenv, stdin: os.Stdin, stdout: stdout, stderr: stderr, interactive: term.IsTerminal(int(os.Stdin.Fd()))}
}

// operatorConfig is what the flags of an operator command say.
type operatorConfig struct {
	cmd                 operatorCommand
	addr                string
	plaintext, insecure bool
	token               string
	creds               clientCredentials
	clientSecret        string
	json                bool
	timeout             time.Duration

	user      string
	skillID   string
	state     brokerv1.LinkState
	pageSize  int
	pageToken string
	all       bool
	eventType string
	reason    string
	yes       bool
}

// operatorFlagSet returns the flag set of the operator command cmd, bound to
// c: the flags of every operator command, then the command's own.
func operatorFlagSet(cmd operatorCommand, c *operatorConfig, state *string) *flag.FlagSet {
	fs := flag.NewFlagSet("broker "+cmd.name, flag.ContinueOnError)
	fs.StringVar(&c.addr, "grpc-addr", "", "the broker's gRPC address, HOST:PORT (default $"+envGRPCAddr+", else "+config.DefaultGRPCAddr+")")
	fs.BoolVar(&c.plaintext, "plaintext", false, "gRPC without TLS, as the broker itself serves it")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fs.StringVar(&c.token, "token", "", "a bearer JWT with the admin scope (default $"+envToken+"; never printed)")
	fs.StringVar(&c.creds.clientID, "client-id", "", "obtain the token with the client-credentials grant of this client (default $"+envClientID+")")
	fs.StringVar(&c.clientSecret, "client-secret", "", "the client's secret (default $"+envClientSecret+", which other users of the machine cannot see)")
	fs.StringVar(&c.creds.issuer, "issuer", "", "the authorization server's issuer URL, whose discovery document names its token endpoint (default $"+envIssuer+")")
	fs.StringVar(&c.creds.scope, "scope", "broker:admin", "the scopes the client-credentials grant asks for, space-separated")
	fs.StringVar(&c.creds.audience, "audience", "", "the audience parameter of the client-credentials grant, for servers that need one (Auth0)")
	fs.BoolVar(&c.json, "json", false, "print JSON (proto field names; one object a line for lists) instead of a table")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "the longest a call may take")
	switch cmd.name {
	case "links list":
		fs.StringVar(&c.skillID, "skill-id", "", "only the links of this skill (may be left out for a broker of one skill)")
		fs.StringVar(state, "state", "", "only the links in this state: LINKED or RELINK_REQUIRED")
	case "links get", "links refresh", "links delete":
		fs.StringVar(&c.skillID, "skill-id", "", "the skill of the user's link (may be left out for a broker of one skill)")
	case "events":
		fs.StringVar(&c.user, "user", "", "only this user's events")
		fs.StringVar(&c.skillID, "skill-id", "", "with --user: the skill of the user's events (may be left out for a broker of one skill)")
		fs.StringVar(&c.eventType, "type", "", "only the events of this type, such as link.relink_required (not with --user)")
	}
	if cmd.name == "links list" || cmd.name == "events" {
		fs.IntVar(&c.pageSize, "page-size", 0, "the most items a page holds (0: the broker's default, 100; at most 1000)")
		fs.StringVar(&c.pageToken, "page-token", "", "start at this page, as the previous page's hint gave it")
		fs.BoolVar(&c.all, "all", false, "follow the pages to the last one")
	}
	if cmd.name == "links delete" {
		fs.StringVar(&c.reason, "reason", "", "why, such as user_request: the reason of the link.deleted event (default operator)")
		fs.BoolVar(&c.yes, "yes", false, "delete without asking (required when stdin is not a terminal)")
	}
	return fs
}

// operatorCommandRun runs `broker links …`, `broker events` or `broker stats`,
// args following "broker", and returns the exit code: 1 when the broker
// refused a call or could not be reached, 2 for a bad command line.
func operatorCommandRun(ctx context.Context, args []string, cio cliIO) int {
	name := args[0]
	args = args[1:]
	if name == "links" {
		if len(args) == 0 {
			linksUsage(cio.stderr)
			return 2
		}
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
			linksUsage(cio.stdout)
			return 0
		}
		if _, ok := findOperatorCommand("links " + args[0]); !ok {
			fmt.Fprintf(cio.stderr, "broker links: unknown command %q (broker links --help)\n", args[0])
			return 2
		}
		name, args = "links "+args[0], args[1:]
	}
	cmd, _ := findOperatorCommand(name)
	c, code, ok := parseOperatorFlags(cmd, args, cio)
	if !ok {
		return code
	}
	return runOperator(ctx, c, cio)
}

// parseOperatorFlags reads the command line of the operator command cmd. It
// reports false, with the exit code, when the command stops here: 0 after
// --help, 2 after a bad flag or argument, which it names on stderr.
func parseOperatorFlags(cmd operatorCommand, args []string, cio cliIO) (operatorConfig, int, bool) {
	c := operatorConfig{cmd: cmd}
	var state string
	fs := operatorFlagSet(cmd, &c, &state)
	fs.SetOutput(cio.stderr)
	fs.Usage = func() {} // a bad flag is named on stderr, without the whole usage
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			operatorUsage(cio.stdout, cmd, fs)
			return c, 0, false
		}
		fmt.Fprintf(cio.stderr, "(broker %s --help lists the flags)\n", cmd.name)
		return c, 2, false
	}
	usageError := func(format string, args ...any) (operatorConfig, int, bool) {
		fmt.Fprintf(cio.stderr, "broker %s: %s (broker %s --help)\n", cmd.name, fmt.Sprintf(format, args...), cmd.name)
		return c, 2, false
	}
	switch {
	case cmd.user && len(positional) == 0:
		return usageError("the user id is required: broker %s USER", cmd.name)
	case cmd.user && len(positional) > 1, !cmd.user && len(positional) > 0:
		return usageError("unexpected argument %q", positional[len(positional)-1])
	case cmd.user && positional[0] == "":
		return usageError("the user id is empty")
	}
	if cmd.user {
		c.user = positional[0]
	}

	if c.addr == "" {
		c.addr = cio.getenv(envGRPCAddr)
	}
	if c.addr == "" {
		c.addr = config.DefaultGRPCAddr
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return usageError("--grpc-addr %q: want HOST:PORT", c.addr)
	}
	if c.timeout <= 0 {
		return usageError("--timeout %v: want more than 0", c.timeout)
	}
	if state != "" {
		v, ok := brokerv1.LinkState_value[strings.ToUpper(state)]
		if !ok || v == 0 {
			return usageError("--state %q: want LINKED or RELINK_REQUIRED", state)
		}
		c.state = brokerv1.LinkState(v)
	}
	switch {
	case c.pageSize < 0:
		return usageError("--page-size %d: want 0 or more", c.pageSize)
	case cmd.name == "events" && c.user != "" && c.eventType != "":
		return usageError("--type lists every user's events: leave out --user")
	case cmd.name == "events" && c.user == "" && c.skillID != "":
		return usageError("--skill-id is for a user's events: give --user")
	case cmd.name == "links delete" && !c.yes && !cio.interactive:
		return usageError("--yes is required when stdin is not a terminal")
	}

	// The bearer token: --token, or the grant of --client-id, or else the
	// same from the environment; a flag wins over the environment.
	switch {
	case c.token != "" && c.creds.clientID != "":
		return usageError("--token and --client-id: give one")
	case c.token != "", c.creds.clientID != "":
	case cio.getenv(envToken) != "":
		c.token = cio.getenv(envToken)
	case cio.getenv(envClientID) != "":
		c.creds.clientID = cio.getenv(envClientID)
	default:
		return usageError("a bearer token is required: --token or %s, or --client-id and --client-secret (%s, %s) for the client-credentials grant", envToken, envClientID, envClientSecret)
	}
	if c.token != "" {
		if p := bearerProblem(c.token); p != "" {
			return usageError("%s", p)
		}
		return c, 0, true
	}
	if c.clientSecret == "" {
		c.clientSecret = cio.getenv(envClientSecret)
	}
	c.creds.secret, c.clientSecret = tokens.Secret(c.clientSecret), ""
	if c.creds.issuer == "" {
		c.creds.issuer = cio.getenv(envIssuer)
	}
	switch {
	case c.creds.secret == "":
		return usageError("--client-secret or %s is required with --client-id", envClientSecret)
	case c.creds.issuer == "":
		return usageError("--issuer or %s is required with --client-id", envIssuer)
	}
	return c, 0, true
}

// parseInterspersed parses fs's flags among args, also after positional
// arguments (broker links get USER --skill-id S), and returns the positional
// arguments; every argument after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}

// runOperator obtains the bearer token, calls the broker and prints its
// answer, and returns the exit code.
func runOperator(ctx context.Context, c operatorConfig, cio cliIO) int {
	fail := func(err error) int {
		fmt.Fprintf(cio.stderr, "broker %s: %v\n", c.cmd.name, err)
		return 1
	}
	var src oauth2.TokenSource = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: c.token})
	if c.token == "" {
		client := &http.Client{Timeout: c.timeout}
		var err error
		if src, err = c.creds.tokenSource(ctx, client); err != nil {
			return fail(err)
		}
	}
	if c.cmd.name == "links delete" && !c.yes {
		if !confirmDelete(c, cio) {
			fmt.Fprintf(cio.stderr, "broker %s: not deleted\n", c.cmd.name)
			return 1
		}
	}
	conn, err := dialBroker(c.addr, c.plaintext, c.insecure, grpc.WithPerRPCCredentials(bearerCredentials{src: src}))
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	o := operator{c: c, out: cio.stdout, stderr: cio.stderr, links: brokerv1.NewLinkServiceClient(conn), events: brokerv1.NewEventServiceClient(conn)}
	if err := o.run(ctx); err != nil {
		if s, ok := status.FromError(err); ok {
			err = callError(s)
		}
		return fail(err)
	}
	return 0
}

// confirmDelete asks on the terminal whether to delete the link, and reports
// whether the answer was yes.
func confirmDelete(c operatorConfig, cio cliIO) bool {
	skill := ""
	if c.skillID != "" {
		skill = " in skill " + strconv.Quote(c.skillID)
	}
	fmt.Fprintf(cio.stderr, "Delete the link of user %q%s and its stored tokens? [y/N] ", c.user, skill)
	line, _ := bufio.NewReader(cio.stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// callError is the error of a refused call: its gRPC code and the broker's
// message, with a hint when TLS met a broker serving without it.
func callError(s *status.Status) error {
	msg := s.Message()
	if strings.Contains(msg, "first record does not look like a TLS handshake") {
		msg += " (the broker serves gRPC without TLS: --plaintext)"
	}
	return fmt.Errorf("%s: %s", s.Code(), msg)
}

// operator runs one operator command against the broker's clients.
type operator struct {
	c      operatorConfig
	out    io.Writer
	stderr io.Writer
	links  brokerv1.LinkServiceClient
	events brokerv1.EventServiceClient
}

// call runs one call with the command's timeout.
func call[Req, Resp any](ctx context.Context, timeout time.Duration, f func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return f(ctx, req)
}

// run calls the broker and prints the answer.
func (o operator) run(ctx context.Context) error {
	c := o.c
	switch c.cmd.name {
	case "links list":
		return o.listLinks(ctx)
	case "links get":
		l, err := call(ctx, c.timeout, o.links.GetLink, &brokerv1.GetLinkRequest{UserId: c.user, SkillId: c.skillID})
		if err != nil {
			return err
		}
		return o.printLink(l)
	case "links refresh":
		l, err := call(ctx, c.timeout, o.links.RefreshLink, &brokerv1.RefreshLinkRequest{UserId: c.user, SkillId: c.skillID})
		if err != nil {
			return err
		}
		return o.printLink(l)
	case "links delete":
		resp, err := call(ctx, c.timeout, o.links.DeleteLink, &brokerv1.DeleteLinkRequest{UserId: c.user, SkillId: c.skillID, Reason: c.reason})
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(o.out, resp)
		}
		skill := ""
		if c.skillID != "" {
			skill = " in skill " + strconv.Quote(c.skillID)
		}
		_, err = fmt.Fprintf(o.out, "Deleted the link of user %q%s and its stored tokens.\n", c.user, skill)
		return err
	case "events":
		return o.listEvents(ctx)
	case "stats":
		s, err := call(ctx, c.timeout, o.events.GetStats, &brokerv1.GetStatsRequest{})
		if err != nil {
			return err
		}
		if c.json {
			return writeJSON(o.out, s)
		}
		return writeStats(o.out, s)
	}
	return fmt.Errorf("unknown command %q", c.cmd.name)
}

// listLinks prints ListLinks' pages: the first, or every one with --all.
func (o operator) listLinks(ctx context.Context) error {
	c := o.c
	req := &brokerv1.ListLinksRequest{PageSize: int32(min(c.pageSize, 1000)), PageToken: c.pageToken, State: c.state, SkillId: c.skillID}
	t := newTable(o.out, linkColumns...)
	for {
		resp, err := call(ctx, c.timeout, o.links.ListLinks, req)
		if err != nil {
			return err
		}
		for _, l := range resp.GetLinks() {
			if err := o.item(t, l, linkRow(l)); err != nil {
				return err
			}
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" || !c.all {
			break
		}
	}
	return o.finish(t, req.PageToken, "links")
}

// listEvents prints the pages of ListLinkEvents (with --user) or ListEvents.
func (o operator) listEvents(ctx context.Context) error {
	c := o.c
	size := int32(min(c.pageSize, 1000))
	page := func(token string) (*brokerv1.ListEventsResponse, error) {
		if c.user != "" {
			return call(ctx, c.timeout, o.events.ListLinkEvents, &brokerv1.ListLinkEventsRequest{UserId: c.user, SkillId: c.skillID, PageSize: size, PageToken: token})
		}
		return call(ctx, c.timeout, o.events.ListEvents, &brokerv1.ListEventsRequest{Type: c.eventType, PageSize: size, PageToken: token})
	}
	t := newTable(o.out, eventColumns...)
	token := c.pageToken
	for {
		resp, err := page(token)
		if err != nil {
			return err
		}
		for _, e := range resp.GetEvents() {
			if err := o.item(t, e, eventRow(e)); err != nil {
				return err
			}
		}
		if token = resp.GetNextPageToken(); token == "" || !c.all {
			break
		}
	}
	return o.finish(t, token, "events")
}

// item prints one item of a list: a JSON line, or a row of t.
func (o operator) item(t *table, m proto.Message, row []string) error {
	if o.c.json {
		return writeJSON(o.out, m)
	}
	t.row(row...)
	return nil
}

// finish flushes a list's table and, when another page follows, says on
// stderr how to get it.
func (o operator) finish(t *table, next, what string) error {
	if !o.c.json {
		if err := t.flush(); err != nil {
			return err
		}
	}
	if next != "" {
		fmt.Fprintf(o.stderr, "broker %s: more %s follow: --page-token %s, or --all\n", o.c.cmd.name, what, next)
	}
	return nil
}

// printLink prints a link as one line of JSON, or as a table.
func (o operator) printLink(l *brokerv1.Link) error {
	if o.c.json {
		return writeJSON(o.out, l)
	}
	t := newTable(o.out, linkColumns...)
	t.row(linkRow(l)...)
	return t.flush()
}

// jsonOptions marshal as the HTTP gateway answers: proto field names, every
// field present.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// writeJSON writes m as one line of JSON.
func writeJSON(w io.Writer, m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal the answer: %w", err)
	}
	var buf bytes.Buffer
	// protojson's spacing varies on purpose; compact it into one steady line.
	if err := json.Compact(&buf, b); err != nil {
		return fmt.Errorf("marshal the answer: %w", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// table writes aligned columns, the header first.
type table struct {
	tw *tabwriter.Writer
}

// newTable returns a table on w with the columns' header written.
func newTable(w io.Writer, columns ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(columns, "\t"))
	return t
}

// row adds a row of cells, each shown by cell.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// flush writes the table.
func (t *table) flush() error { return t.tw.Flush() }

// cell returns s as a table shows it: "-" when empty, quoted in Go syntax
// when it holds a tab, a line break or any other character that is not
// printable, so that no user id can break the table or drive the terminal.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// when shows a timestamp in RFC 3339, UTC, or "" when it is absent.
func when(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// linkColumns are the columns of a table of links.
var linkColumns = []string{"USER", "SKILL", "STATE", "REGION", "LINKED", "TOKEN EXPIRES", "LAST REFRESHED"}

// linkRow is a link's row.
func linkRow(l *brokerv1.Link) []string {
	return []string{l.GetUserId(), l.GetSkillId(), l.GetState().String(), l.GetRegion(), when(l.GetLinkedAt()), when(l.GetAccessTokenExpiresAt()), when(l.GetLastRefreshedAt())}
}

// eventColumns are the columns of a table of events.
var eventColumns = []string{"OCCURRED", "TYPE", "USER", "SKILL", "ACTOR", "DATA", "ID"}

// eventRow is an event's row; its data are key=value pairs in key order.
func eventRow(e *brokerv1.Event) []string {
	fields := e.GetData().GetFields()
	var data []string
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fields[k]
		var s string
		if str, ok := v.GetKind().(*structpb.Value_StringValue); ok && str.StringValue != "" && !strings.ContainsAny(str.StringValue, " \"") {
			s = str.StringValue
		} else {
			b, _ := json.Marshal(v.AsInterface())
			s = string(b)
		}
		data = append(data, k+"="+s)
	}
	return []string{when(e.GetOccurredAt()), e.GetType(), e.GetUserId(), e.GetSkillId(), e.GetActor(), strings.Join(data, " "), e.GetId()}
}

// writeStats writes the broker's counts as a table: links, then profile
// reports (deliveries), then webhooks, states in their enum order.
func writeStats(w io.Writer, s *brokerv1.Stats) error {
	t := newTable(w, "KIND", "STATE", "COUNT")
	for _, kind := range []struct {
		name   string
		counts map[string]int32
		order  map[string]int32
	}{
		{"links", s.GetLinks(), brokerv1.LinkState_value},
		{"deliveries", s.GetDeliveries(), brokerv1.ReportState_value},
		{"webhooks", s.GetWebhooks(), brokerv1.ReportState_value},
	} {
		states := slices.SortedFunc(maps.Keys(kind.counts), func(a, b string) int {
			oa, knownA := kind.order[a]
			ob, knownB := kind.order[b]
			switch {
			case knownA && knownB:
				return int(oa - ob)
			case knownA != knownB: // known states first
				if knownA {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		})
		for _, st := range states {
			t.row(kind.name, st, strconv.Itoa(int(kind.counts[st])))
		}
	}
	return t.flush()
}

// linksUsage prints the operator commands.
func linksUsage(w io.Writer) {
	fmt.Fprint(w, "Usage: broker COMMAND [flags]\n\nThe operator commands, which call a running broker's gRPC API:\n")
	for _, c := range operatorCommands {
		args := ""
		if c.user {
			args = " USER"
		}
		fmt.Fprintf(w, "  %-24s %s\n", c.name+args, c.summary)
	}
	fmt.Fprint(w, "\nbroker COMMAND --help lists each one's flags.\n\n")
	fmt.Fprint(w, operatorNotes)
}

// operatorNotes are what usage says of every operator command.
const operatorNotes = `The broker is reached at --grpc-addr (default $BROKER_GRPC_ADDR, the address
the broker listens on, else ` + config.DefaultGRPCAddr + `), over TLS unless --plaintext (the
broker serves gRPC without TLS; TLS is for a proxy in front of it). The call
carries a bearer JWT with the admin scope: --token or $BROKER_TOKEN, or one
obtained with the client-credentials grant of --client-id and --client-secret
($BROKER_CLIENT_ID, $BROKER_CLIENT_SECRET) at the authorization server of
--issuer ($BROKER_JWT_ISSUER), whose token endpoint its discovery document
names. The token and the secret are never printed.

Answers print as a table, or as JSON with --json: proto field names, every
field present, one object a line for lists. The exit code is 1 when the
broker refused a call (its code and message on stderr) or could not be
reached, 2 for a bad command line.
`

// operatorUsage prints the usage of one operator command.
func operatorUsage(w io.Writer, cmd operatorCommand, fs *flag.FlagSet) {
	args := ""
	if cmd.user {
		args = " USER"
	}
	fmt.Fprintf(w, "Usage: broker %s%s [flags]\n\nbroker %s: %s.\n\n%s\nFlags:\n", cmd.name, args, cmd.name, cmd.summary, operatorNotes)
	fs.SetOutput(w)
	fs.PrintDefaults()
}
