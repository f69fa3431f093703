package server

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// logHandler adds to every record logged with a context the request id of
// that context (request_id) and the trace and span ids of its span (trace_id,
// span_id), so that every line a request causes, the domain's too, can be
// found from one id.
type logHandler struct {
	next slog.Handler
}

var _ slog.Handler = logHandler{}

// LogHandler returns h adding request_id, trace_id and span_id to every record
// logged with a context that has them (InfoContext, LogAttrs...). Wrapping a
// handler LogHandler returned returns it unchanged.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{next: h}
}

// Enabled reports whether the wrapped handler takes records of level.
func (h logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle adds the ids of ctx to r and passes it on.
func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if id := RequestID(ctx); id != "" {
			r.AddAttrs(slog.String("request_id", id))
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns the handler with attrs added to every record.
func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{next: h.next.WithAttrs(attrs)}
}

// WithGroup returns the handler qualifying later attributes with name.
func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{next: h.next.WithGroup(name)}
}
