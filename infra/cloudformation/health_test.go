package cloudformation_test

import (
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	brokerv1 "github.com/reciprocal-broker/broker/api/proto/broker/v1"
)

// TestTargetGroups_HealthChecksSeeReadiness: every target group's health
// check fails while the broker cannot serve. The HTTP one asks /readyz for
// 200; the gRPC one calls broker.v1.ReadinessService/Check for code 0, since
// the load balancer reads only the status code, and grpc.health.v1's Check
// answers OK also when it says NOT_SERVING.
func TestTargetGroups_HealthChecksSeeReadiness(t *testing.T) {
	readiness := "/" + brokerv1.ReadinessService_ServiceDesc.ServiceName + "/" + brokerv1.ReadinessService_ServiceDesc.Methods[0].MethodName
	groups := loadResources(t, "AWS::ElasticLoadBalancingV2::TargetGroup")
	if len(groups) == 0 {
		t.Fatal("no target groups")
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			path, matcher := scalar(get(g.props, "HealthCheckPath")), get(g.props, "Matcher")
			switch version := scalar(get(g.props, "ProtocolVersion")); version {
			case "GRPC":
				if path != readiness || scalar(get(matcher, "GrpcCode")) != "0" {
					t.Errorf("health check %s, gRPC code %q; want %s, code 0", path, scalar(get(matcher, "GrpcCode")), readiness)
				}
			case "HTTP1", "HTTP2", "":
				if path != "/readyz" || scalar(get(matcher, "HttpCode")) != "200" {
					t.Errorf("health check %s, HTTP code %q; want /readyz, 200", path, scalar(get(matcher, "HttpCode")))
				}
			default:
				t.Errorf("protocol version %q", version)
			}
		})
	}
}

// TestDockerfile_ListensOnAllInterfaces: the image sets BROKER_HTTP_ADDR and
// BROKER_GRPC_ADDR to 0.0.0.0 (the binary's defaults are loopback, which
// nothing outside a container reaches), on the ports it exposes.
func TestDockerfile_ListensOnAllInterfaces(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continued lines, then read ENV NAME=VALUE ... and EXPOSE.
	text := strings.ReplaceAll(string(data), "\\\n", " ")
	env := map[string]string{}
	var exposed []string
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "ENV":
			for _, f := range fields[1:] {
				if name, value, ok := strings.Cut(f, "="); ok {
					env[name] = value
				}
			}
		case "EXPOSE":
			exposed = append(exposed, fields[1:]...)
		}
	}
	for _, name := range []string{"BROKER_HTTP_ADDR", "BROKER_GRPC_ADDR"} {
		host, port, err := net.SplitHostPort(env[name])
		if err != nil || host != "0.0.0.0" {
			t.Errorf("ENV %s=%q, want 0.0.0.0:PORT", name, env[name])
			continue
		}
		if !slices.Contains(exposed, port) {
			t.Errorf("%s listens on %s, which EXPOSE %v does not name", name, port, exposed)
		}
	}
	if regexp.MustCompile(`(?m)^ENV .*BROKER_(ENCRYPTION_KEY|LWA_CLIENT_SECRET|JWT_HS256_SECRET|WEBHOOK_SECRET)`).MatchString(text) {
		t.Error("the image sets a secret")
	}
}
