// Package dynamotest runs dynalite, a local server of the DynamoDB API, for the
// tests of the DynamoDB store: Start gives a test an endpoint on 127.0.0.1,
// NewTable a fresh table name on it, Config and Client what to reach it with.
//
// dynalite comes from npm: package.json at the module root pins it, and `npm ci`
// there installs it into node_modules. When it or node is missing, the tests
// that need it are skipped, unless the environment variable CI is "true": then
// they fail, so that a CI run cannot pass without them. The server keeps its
// tables in memory and dies with the test that started it.
package dynamotest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// StartTimeout bounds how long Start waits for dynalite to accept connections.
const StartTimeout = 10 * time.Second

// Region is the region of Config and Client; dynalite ignores it.
const Region = "us-east-1"

// surviveAborts is loaded into dynalite's process: see the file.
//
//go:embed survive-aborts.cjs
var surviveAborts []byte

// Server is one dynalite process on 127.0.0.1, which keeps its tables in memory.
type Server struct {
	tb      testing.TB
	bin     string
	preload string // the path of surviveAborts
	port    int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
	output *lockedBuffer
}

// Start starts dynalite for tb, stopped by tb's cleanup, and returns its
// endpoint, such as "http://127.0.0.1:40123". See StartServer.
func Start(tb testing.TB) (endpoint string) {
	tb.Helper()
	return StartServer(tb).Endpoint()
}

// StartServer starts dynalite on a free port of 127.0.0.1, waits until it
// accepts connections (at most StartTimeout), and stops it in tb's cleanup.
// When node_modules/.bin/dynalite under the module root or node is missing, it
// skips tb, or fails it when the environment variable CI is "true".
func StartServer(tb testing.TB) *Server {
	tb.Helper()
	bin, err := dynalitePath()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("dynamotest: %v", err)
		}
		tb.Skipf("dynamotest: %v", err)
	}
	preload := filepath.Join(tb.TempDir(), "survive-aborts.cjs")
	if err := os.WriteFile(preload, surviveAborts, 0o600); err != nil {
		tb.Fatalf("dynamotest: %v", err)
	}
	s := &Server{tb: tb, bin: bin, preload: preload, port: freePort(tb)}
	tb.Cleanup(s.Stop)
	s.start()
	return s
}

// Endpoint returns the server's URL.
func (s *Server) Endpoint() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server and waits until it has exited; its tables are gone.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart stops the server, when it runs, and starts a new one, without tables,
// on the same port.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}

func (s *Server) start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := "5" // how long tables stay CREATING, DELETING, UPDATING
	cmd := exec.Command("node", "--require", s.preload, s.bin, "--host", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--createTableMs", ms, "--deleteTableMs", ms, "--updateTableMs", ms)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("dynamotest: start %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited, s.output = cmd, exited, out

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	deadline := time.Now().Add(StartTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		// dynalite says when it listens. Connecting is no proof: the port was
		// only free a moment ago, and another test's server may have taken
		// it, when dynalite fails to listen and exits.
		if strings.Contains(out.String(), "Dynalite listening at") {
			return
		}
		select {
		case <-exited:
			s.cmd = nil
			s.tb.Fatalf("dynamotest: dynalite exited before it listened on %s; its output:\n%s", addr, out)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			s.cmd = nil
			s.tb.Fatalf("dynamotest: dynalite did not listen on %s within %s; its output:\n%s", addr, StartTimeout, out)
		}
	}
}

// dynalitePath returns the path of node_modules/.bin/dynalite under the module
// root, the first directory up from the working directory that holds go.mod,
// or an error saying what is missing.
func dynalitePath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "dynalite")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("dynalite is not installed (run `npm ci` in %s): %w", dir, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node is not installed: %w", err)
	}
	return bin, nil
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dynamotest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var tables atomic.Int64

// NewTable returns a table name that no other test of the process uses, made
// from tb's name. It does not create the table (the store's CreateTable option
// does); tb's cleanup deletes it from the server at endpoint, if it exists then.
func NewTable(tb testing.TB, endpoint string) (tableName string) {
	tb.Helper()
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, tb.Name())
	name = fmt.Sprintf("t%d-%s", tables.Add(1), name)
	if len(name) > 255 {
		name = name[:255]
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := Client(endpoint).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var notFound *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &notFound) {
			tb.Logf("dynamotest: delete table %s: %v", name, err)
		}
	})
	return name
}

// Config returns an AWS configuration for dynalite: region Region and the
// static credentials "test"/"test", which dynalite accepts without checking.
func Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
}

// Client returns a DynamoDB client of the server at endpoint, built from Config.
func Client(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(Config(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// lockedBuffer collects a process's output, safe for the goroutines of exec and
// the test that reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
