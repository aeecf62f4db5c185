package worker

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jobctl/jobctl/pkg/job"
)

// ProcessedRecord is one line of the processed-jobs log.
type ProcessedRecord struct {
	JobID      job.ID     `json:"job_id"`
	Status     job.Status `json:"status"`
	Worker     string     `json:"worker"`
	Group      string     `json:"group"`
	Partition  int        `json:"partition"`
	Offset     int64      `json:"offset"`
	DurationMS float64    `json:"duration_ms"`
	// Started and Time are when the attempt started and ended.
	Started time.Time `json:"started"`
	Time    time.Time `json:"time"`
	Run     int       `json:"run,omitempty"`
	Attempt int       `json:"attempt"`
	// Error is why a FAILED or DEAD attempt failed.
	Error string `json:"error,omitempty"`
}

// ProcessedLog appends one JSON line per finished attempt to a file. Lines
// are written only after the attempt's DONE, FAILED or DEAD event is
// acknowledged by Kafka, so the log never claims more than the topic holds.
type ProcessedLog struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	path string
}

// OpenProcessedLog opens path for appending, creating it if needed.
func OpenProcessedLog(path string) (*ProcessedLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening processed log: %w", err)
	}
	return &ProcessedLog{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path}, nil
}

// Write appends records and flushes them to the file, one write per batch
// rather than per line.
func (l *ProcessedLog) Write(records ...ProcessedRecord) error {
	if l == nil || len(records) == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	enc := json.NewEncoder(l.w)
	for _, r := range records {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("writing processed log %s: %w", l.path, err)
		}
	}
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("writing processed log %s: %w", l.path, err)
	}
	return nil
}

// Close flushes and closes the file.
func (l *ProcessedLog) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ferr := l.w.Flush()
	cerr := l.f.Close()
	if ferr != nil {
		return fmt.Errorf("flushing processed log %s: %w", l.path, ferr)
	}
	if cerr != nil {
		return fmt.Errorf("closing processed log %s: %w", l.path, cerr)
	}
	return nil
}
