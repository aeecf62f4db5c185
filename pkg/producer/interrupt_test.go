package producer

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// A read blocked on an input with nothing to say (a terminal, an open
// pipe) must not outlive the run's context.
func TestLineSourceNextEndsWithContextWhileReadBlocks(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	src := NewLineSource(pr)
	go func() { _, _ = pw.Write([]byte(`{"job_id": 1}` + "\n")) }()
	ctx, cancel := context.WithCancel(context.Background())
	if e, err := src.Next(ctx); err != nil || e.JobID.String() != "1" {
		t.Fatalf("first line: %+v %v", e, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := src.Next(ctx)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Next after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next stayed blocked on the read after its context ended")
	}
}

func TestLineSourceEOFStays(t *testing.T) {
	src := NewLineSource(strings.NewReader("{\"job_id\": 1}\n\n"))
	ctx := context.Background()
	if _, err := src.Next(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := src.Next(ctx); err != io.EOF {
			t.Fatalf("after the last line: %v, want io.EOF every time", err)
		}
	}
}

func TestRunInterruptedOnBlockedInputSaysInterrupted(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("{\"job_id\": 1}\n{\"job_id\": 2}\n")) }()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	w := &fakeEnqueuer{}
	start := time.Now()
	s, err := Run(ctx, w, NewLineSource(pr), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Run took %s after an interrupt", d)
	}
	if s.Sent != 2 || s.Stopped != "interrupted" || s.OK() {
		t.Fatalf("summary %+v: want the 2 jobs read sent and Stopped = interrupted", s)
	}
	if strings.Contains(s.String(), "context canceled") || !strings.Contains(s.String(), "interrupted") {
		t.Fatalf("summary line %q", s.String())
	}
}
