package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
)

// apiRoute is one path of the HTTP API, as the OpenAPI document writes it
// (/v1/links/{user_id}:refresh), and the methods it takes.
type apiRoute struct {
	path     string
	segments []string
	methods  []string
}

// methodOrder is the order of the methods in an Allow header.
var methodOrder = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// apiRoutes reads the routes of an OpenAPI 2.0 document (its paths and their
// operations).
func apiRoutes(doc []byte) ([]apiRoute, error) {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("read the OpenAPI document's routes: %w", err)
	}
	routes := make([]apiRoute, 0, len(d.Paths))
	for path, ops := range d.Paths {
		r := apiRoute{path: path, segments: strings.Split(path, "/")}
		for m := range ops {
			if m := strings.ToUpper(m); slices.Contains(methodOrder, m) {
				r.methods = append(r.methods, m)
			}
		}
		routes = append(routes, r)
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("read the OpenAPI document's routes: it has none")
	}
	return routes, nil
}

// match reports whether a request path, split at '/' still percent-encoded, is
// r's, as the gateway matches it: a literal segment matches itself, {name}
// any one segment (an empty one too: the call then says the id is missing),
// and {name}:verb one that ends in :verb after at least one character.
func (r apiRoute) match(segments []string) bool {
	if len(segments) != len(r.segments) {
		return false
	}
	for i, want := range r.segments {
		got := segments[i]
		if !strings.HasPrefix(want, "{") {
			if got != want {
				return false
			}
			continue
		}
		_, verb, hasVerb := strings.Cut(want, "}:")
		if hasVerb && !(strings.HasSuffix(got, ":"+verb) && len(got) > len(verb)+1) {
			return false
		}
	}
	return true
}

// better reports whether r names a request with method that both r and other
// match better than other does: the route that takes the method, else the
// one with more literal segments and verbs (/v1/links/{user_id}:refresh over
// /v1/links/{user_id}).
func (r apiRoute) better(other apiRoute, method string) bool {
	if takes, otherTakes := slices.Contains(r.methods, method), slices.Contains(other.methods, method); takes != otherTakes {
		return takes
	}
	return r.specificity() > other.specificity()
}

// specificity counts r's literal segments and verbs.
func (r apiRoute) specificity() int {
	n := 0
	for _, seg := range r.segments {
		if !strings.HasPrefix(seg, "{") || strings.Contains(seg, "}:") {
			n++
		}
	}
	return n
}

// allowMethods names the request's route, for the request metrics, by the
// OpenAPI path template it matches (unmatched requests keep the name
// "gateway"). It answers a request whose path is a route of routes but whose
// method none of the routes of that path take with 405 Method Not Allowed,
// the methods they take in the Allow header (RFC 9110 §15.5.6), and the
// gateway's JSON status (code UNIMPLEMENTED). Every other request goes to
// next, which answers 404 for a path of no route. A POST of an HTML form goes
// to next when the route takes GET or the method of its X-HTTP-Method-Override
// header: the gateway serves it so (grpc-gateway's path length fallback).
func allowMethods(routes []apiRoute, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segments := strings.Split(r.URL.EscapedPath(), "/")
		var (
			allow []string
			named *apiRoute // the route the metrics name the request by
		)
		matched := false
		method := r.Method
		form := r.Method == http.MethodPost && r.Header.Get("Content-Type") == "application/x-www-form-urlencoded"
		if form {
			if override := r.Header.Get("X-HTTP-Method-Override"); override != "" {
				method = strings.ToUpper(override)
			}
		}
		for i, rt := range routes {
			if !rt.match(segments) {
				continue
			}
			matched = true
			for _, m := range rt.methods {
				if !slices.Contains(allow, m) {
					allow = append(allow, m)
				}
			}
			if named == nil || rt.better(*named, method) {
				named = &routes[i]
			}
		}
		if rec, ok := w.(*statusRecorder); ok && named != nil {
			rec.route = named.path // a template: ids never become label values
		}
		if !matched || slices.Contains(allow, method) || (form && slices.Contains(allow, http.MethodGet)) {
			next.ServeHTTP(w, r)
			return
		}
		slices.SortFunc(allow, func(a, b string) int { return slices.Index(methodOrder, a) - slices.Index(methodOrder, b) })
		w.Header().Set("Allow", strings.Join(allow, ", "))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_ = json.NewEncoder(w).Encode(struct {
			Code    int32  `json:"code"`
			Message string `json:"message"`
		}{int32(codes.Unimplemented), fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, strings.Join(allow, ", "))})
	})
}
