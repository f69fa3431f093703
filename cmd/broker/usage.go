package main

import (
	"fmt"
	"io"

	"github.com/reciprocal-broker/broker/internal/config"
)

// usage prints the commands and every setting with its default.
func usage(w io.Writer) {
	fmt.Fprint(w, `broker: the reciprocal token broker for Alexa mutual account linking.

Commands:
  serve     run the gRPC server and the HTTP gateway (the default)
  sandbox   run the broker of two skills with simulated Amazon and partner
            services, play each skill's linking story once, then keep serving
            (broker sandbox --help; --ports auto for free ports)
  simulate  run only the simulators and write the skills file, for a broker
            started separately (--ports auto for free ports)
  keys status
            count the stored links by the key that seals them (the settings
            of serve; on bbolt while no broker holds the file)
  bench     load-test a running broker through its public API: partner
            tokens, profile reports or Alexa events from many callers, with
            a summary of errors and latency percentiles (broker bench --help)
  links list|get|refresh|delete
            list, show, refresh or delete links through a running broker's
            gRPC API (broker links --help)
  events    list the audit trail's events: a user's or everyone's
  stats     count links, profile reports and webhooks by state
  completion bash|zsh
            print the shell completion script of broker
  version   print the version, VCS revision and Go version (also --version)
  help      show this help

`)
	config.Usage(w, "broker serve")
}
