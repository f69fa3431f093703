package server

import "net/http"

// HTTPHandler returns the handler of s's HTTP port, for benchmarks that call
// it without a connection.
func HTTPHandler(s *Server) http.Handler { return s.http.Handler }
