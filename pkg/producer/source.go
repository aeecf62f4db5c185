package producer

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// Source yields jobs to produce. Next returns io.EOF when there are no
// more; a *LineError for an input line that is not a job.
type Source interface {
	Next(ctx context.Context) (job.Event, error)
}

// pendingSource is a Source that can say whether Next would return
// without waiting for input, waiting up to d for it to.
type pendingSource interface {
	Pending(d time.Duration) bool
}

// LineError is an input line that is not a valid job.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// MockSource generates Count jobs of one type and payload, as the seed's
// producer does. Ids are numbers, like the seed's, drawn from a random
// base so two runs do not collide, and kept under 2^53 so JavaScript (the
// dashboard) reads them exactly.
type MockSource struct {
	Count   int
	Type    string
	Payload json.RawMessage

	next, end int64
}

// maxSafeJSONInt is the largest integer a float64 (JavaScript) holds exactly.
const maxSafeJSONInt = 1<<53 - 1

// NewMockSource returns a source of count mock jobs.
func NewMockSource(count int, jobType string, payload json.RawMessage) *MockSource {
	var b [8]byte
	_, _ = rand.Read(b[:])
	span := int64(maxSafeJSONInt) - int64(count) - 1_000_000
	base := 1_000_000 + int64(binary.BigEndian.Uint64(b[:])%uint64(span))
	return &MockSource{Count: count, Type: jobType, Payload: payload, next: base, end: base + int64(count)}
}

// Next returns the next mock job.
func (m *MockSource) Next(context.Context) (job.Event, error) {
	if m.next >= m.end {
		return job.Event{}, io.EOF
	}
	id := job.NumericID(m.next)
	m.next++
	return job.Event{JobID: id, Status: job.StatusNew, Type: m.Type, Payload: m.Payload}, nil
}

// LineSource reads jobs as JSON lines (the seed's payload works: one
// {"job_id": 1234, "status": "NEW"} per line). Blank lines are skipped.
//
// Lines are read by a goroutine of their own, so Next returns when its
// context ends even while a read is blocked (a terminal or a pipe with
// nothing to say): an interrupted `produce -f -` stops at once. The
// blocked read is abandoned with the source.
type LineSource struct {
	r     *bufio.Reader
	line  int
	once  sync.Once
	lines chan readResult
	// peeked is a result Pending took from lines; Next returns it first.
	peeked *readResult
}

type readResult struct {
	text    []byte
	tooLong bool
	err     error
}

// maxLineBytes bounds one input line; a longer line is a LineError and
// reading goes on with the next line.
const maxLineBytes = 1 << 20

// NewLineSource reads JSON lines from r.
func NewLineSource(r io.Reader) *LineSource {
	return &LineSource{r: bufio.NewReaderSize(r, 64*1024), lines: make(chan readResult, 64)}
}

// reader sends every line, then the error that ended reading.
func (l *LineSource) reader() {
	for {
		text, tooLong, err := l.readLine()
		l.lines <- readResult{text, tooLong, err}
		if err != nil {
			return
		}
	}
}

// Pending reports whether a line (or the end) has been read and waits
// for Next, waiting up to d for one: the reading goroutine is often a
// moment behind a fast file, and a batch should not end for that.
func (l *LineSource) Pending(d time.Duration) bool {
	l.once.Do(func() { go l.reader() })
	if l.peeked != nil || len(l.lines) > 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case res := <-l.lines:
		l.peeked = &res
		return true
	case <-t.C:
		return false
	}
}

// Next returns the next job, io.EOF at the end, or a *LineError.
func (l *LineSource) Next(ctx context.Context) (job.Event, error) {
	l.once.Do(func() { go l.reader() })
	for {
		var res readResult
		if l.peeked != nil {
			res, l.peeked = *l.peeked, nil
		} else {
			select {
			case <-ctx.Done():
				return job.Event{}, ctx.Err()
			case res = <-l.lines:
			}
		}
		text, tooLong, err := res.text, res.tooLong, res.err
		if err != nil {
			// Later calls see the same end.
			l.lines <- res
			if err == io.EOF {
				return job.Event{}, io.EOF
			}
			return job.Event{}, fmt.Errorf("reading jobs after line %d: %w", l.line, err)
		}
		l.line++
		if tooLong {
			return job.Event{}, &LineError{Line: l.line, Err: fmt.Errorf("line is longer than %d bytes", maxLineBytes)}
		}
		if len(trimSpace(text)) == 0 {
			continue
		}
		e, err := job.DecodeSubmission(text)
		if err != nil {
			return job.Event{}, &LineError{Line: l.line, Err: err}
		}
		if e.JobID.IsZero() {
			e.JobID = job.NewID()
		}
		return e, nil
	}
}

// readLine returns one line without its newline. A line over maxLineBytes
// is consumed whole and reported as tooLong.
func (l *LineSource) readLine() (text []byte, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, isPrefix, err := l.r.ReadLine()
		if err != nil {
			if err == io.EOF && (len(buf) > 0 || tooLong) {
				return buf, tooLong, nil
			}
			return nil, false, err
		}
		if !tooLong {
			buf = append(buf, chunk...)
			if len(buf) > maxLineBytes {
				tooLong, buf = true, nil
			}
		}
		if !isPrefix {
			return buf, tooLong, nil
		}
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// stamp sets the event times a producer owns.
func stamp(e *job.Event, now time.Time) {
	if e.CreatedAt.IsZero() {
		e.CreatedAt = now
	}
	e.UpdatedAt = now
}
