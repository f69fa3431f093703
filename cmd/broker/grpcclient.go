package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// envToken is the environment variable of the bearer token that the commands
// calling a running broker (bench, links, events, stats) send when --token is
// not given. A token in the environment, unlike one on the command line, is
// not visible to the machine's other users.
const envToken = "BROKER_TOKEN"

// bearerProblem says what is wrong with a bearer token of --token or
// BROKER_TOKEN, naming the flag, or returns "" when nothing is.
func bearerProblem(token string) string {
	if strings.ContainsAny(token, " \t\r\n") {
		return `--token: the bare JWT, without "Bearer "`
	}
	return ""
}

// dialBroker returns the gRPC connection to the broker at addr (HOST:PORT):
// over TLS, the server's certificate checked unless insecure, or without TLS
// when plaintext. opts add to the dial options, such as the caller's
// credentials. Nothing is dialled before the first call, so a wrong address
// shows there.
func dialBroker(addr string, plaintext, insecureTLS bool, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds := credentials.NewTLS(&tls.Config{InsecureSkipVerify: insecureTLS}) // the operator's choice, for a test certificate
	if plaintext {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("--grpc-addr %s: %w", addr, err)
	}
	return conn, nil
}

// bearerCredentials puts "authorization: Bearer …" into each call's
// metadata, the token of its source. It allows connections without TLS, as
// --plaintext asks for a broker reached on a trusted network.
type bearerCredentials struct {
	src oauth2.TokenSource
}

var _ credentials.PerRPCCredentials = bearerCredentials{}

// GetRequestMetadata returns the authorization metadata of the source's
// current token.
func (b bearerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	t, err := b.src.Token()
	if err != nil {
		return nil, fmt.Errorf("bearer token: %w", err)
	}
	return map[string]string{"authorization": "Bearer " + t.AccessToken}, nil
}

// RequireTransportSecurity reports false: --plaintext is allowed.
func (bearerCredentials) RequireTransportSecurity() bool { return false }
