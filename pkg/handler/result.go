package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/jobctl/jobctl/pkg/job"
)

// MaxResultBytes caps a result: an exec handler keeps this much of its
// program's stdout, a worker this much of any handler's result.
const MaxResultBytes = 64 << 10

// ResultHandler is a Handler that can also return a result, kept in the
// job's DONE event. A worker calls HandleResult instead of Handle when
// its handler has it; a nil result adds nothing to the event.
type ResultHandler interface {
	Handler
	HandleResult(ctx context.Context, j job.Event) (json.RawMessage, error)
}

// Result turns a program's output into a job result of at most
// MaxResultBytes: the output itself when it is JSON (compacted), else the
// output as a JSON string (invalid UTF-8 replaced, one trailing newline
// dropped). total is how many bytes were written in all; when out holds
// fewer, or the result would be longer than MaxResultBytes, the output is
// cut and the result is a string of its start and a note saying so, never
// JSON. Empty output is no result.
func Result(out []byte, total int64) json.RawMessage {
	if total <= int64(len(out)) {
		trimmed := bytes.TrimSpace(out)
		if len(trimmed) == 0 {
			return nil
		}
		if json.Valid(trimmed) {
			var buf bytes.Buffer
			if json.Compact(&buf, trimmed) == nil && buf.Len() <= MaxResultBytes {
				return buf.Bytes()
			}
		}
		s := strings.TrimSuffix(strings.TrimSuffix(strings.ToValidUTF8(string(out), "\uFFFD"), "\n"), "\r")
		if q, _ := json.Marshal(s); len(q) <= MaxResultBytes {
			return q
		}
		total = int64(len(out))
	}
	// Cut: keep as much of the start as fits once quoted and escaped.
	keep := min(len(out), MaxResultBytes)
	for {
		s := strings.ToValidUTF8(string(out[:keep]), "\uFFFD") + fmt.Sprintf("\n[truncated: the first %d of %d bytes]", keep, total)
		q, _ := json.Marshal(s)
		if len(q) <= MaxResultBytes || keep == 0 {
			return q
		}
		next := keep*MaxResultBytes/len(q) - 64
		if next >= keep {
			next = keep - 1
		}
		keep = max(next, 0)
	}
}

// headBuffer keeps the first max bytes written to it and counts all.
// Locked: a command's leftover children may still write after it exited.
type headBuffer struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	total int64
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total += int64(len(p))
	if room := h.max - len(h.buf); room > 0 {
		h.buf = append(h.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (h *headBuffer) result() json.RawMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Result(h.buf, h.total)
}
