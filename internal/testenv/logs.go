package testenv

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Logs is a slog.Handler that keeps every record it is given, with the
// attributes of the logger it came through, for tests that check where a
// line was logged.
type Logs struct {
	mu    *sync.Mutex
	recs  *[]LogRecord
	attrs []slog.Attr
}

// LogRecord is one kept record: level, message and attributes (the
// logger's own first), values formatted with %v.
type LogRecord struct {
	Level   slog.Level
	Message string
	Attrs   map[string]string
}

func (r LogRecord) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q", r.Level, r.Message)
	for k, v := range r.Attrs {
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}

// NewLogs is an empty recorder; slog.New(l) logs into it.
func NewLogs() *Logs { return &Logs{mu: &sync.Mutex{}, recs: &[]LogRecord{}} }

// Logger is a logger (every level, debug included) that records into l.
func (l *Logs) Logger() *slog.Logger { return slog.New(l) }

func (l *Logs) Enabled(context.Context, slog.Level) bool { return true }

func (l *Logs) Handle(_ context.Context, r slog.Record) error {
	rec := LogRecord{Level: r.Level, Message: r.Message, Attrs: map[string]string{}}
	for _, a := range l.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	l.mu.Lock()
	*l.recs = append(*l.recs, rec)
	l.mu.Unlock()
	return nil
}

func (l *Logs) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.attrs = append(append([]slog.Attr{}, l.attrs...), as...)
	return &c
}

// WithGroup is not needed by edgemo's logging; group names are dropped.
func (l *Logs) WithGroup(string) slog.Handler { return l }

// Records is a copy of what was logged so far.
func (l *Logs) Records() []LogRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LogRecord(nil), *l.recs...)
}

// Find is the records with message msg whose attributes include every
// key/value pair of kv.
func (l *Logs) Find(msg string, kv ...string) []LogRecord {
	var out []LogRecord
	for _, r := range l.Records() {
		if r.Message != msg {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			ok = ok && r.Attrs[kv[i]] == kv[i+1]
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// CaptureDefaultLogs makes slog.Default (and with it the log package) log
// into a new recorder until the test ends, then restores both. Tests using
// it must not run in parallel with others that log.
func CaptureDefaultLogs(t testing.TB) *Logs {
	t.Helper()
	prev, w, flags := slog.Default(), log.Writer(), log.Flags()
	l := NewLogs()
	slog.SetDefault(l.Logger())
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(w)
		log.SetFlags(flags)
	})
	return l
}
