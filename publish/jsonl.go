package publish

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/edgemo/edgemo/engine/tree"
)

// JSONL writes one tree per line. Each line is written whole with a single
// Write, so a crash never leaves earlier trees unreadable, and `tail -f` sees
// trees as they come.
type JSONL struct {
	mu     sync.Mutex
	w      io.Writer
	closer io.Closer
	name   string
	n      uint64
}

// NewJSONL writes to w (not closed by Close).
func NewJSONL(w io.Writer, name string) *JSONL { return &JSONL{w: w, name: name} }

// OpenJSONL appends to path, or writes to stdout when path is "-" or "".
func OpenJSONL(path string) (*JSONL, error) {
	if path == "" || path == "-" {
		return NewJSONL(os.Stdout, "stdout"), nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open JSON Lines output %s: %w (check the directory exists and is writable)", path, err)
	}
	return &JSONL{w: f, closer: f, name: path}, nil
}

// Publish writes t as one line.
func (s *JSONL) Publish(_ context.Context, t *tree.Tree) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("jsonl %s: marshal tree %s: %w", s.name, t.ID, err)
	}
	b = append(b, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("jsonl %s: write: %w", s.name, err)
	}
	s.n++
	return nil
}

// Name is the file path or "stdout".
func (s *JSONL) Name() string { return s.name }

// Count is the number of trees written.
func (s *JSONL) Count() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Close closes the file (not stdout).
func (s *JSONL) Close() error {
	if s.closer == nil {
		return nil
	}
	if f, ok := s.closer.(*os.File); ok {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("jsonl %s: sync: %w", s.name, err)
		}
	}
	return s.closer.Close()
}
