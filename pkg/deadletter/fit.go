package deadletter

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jobctl/jobctl/pkg/job"
)

// Size limits of a letter. A letter must never be refused by the broker
// for its size (the job would be lost from both topics), so a letter over
// MaxLetterBytes is cut until it fits: Kafka's default message.max.bytes
// is 1 MiB, and the budget leaves room for the key, headers and batch
// overhead.
const (
	MaxLetterBytes = 900 << 10
	MaxRecordBytes = 64 << 10
	// maxErrorBytes and maxFieldBytes are what one error text and one
	// short field keep when the letter is still too big after its record
	// and payload were cut.
	maxErrorBytes = 1 << 10
	maxFieldBytes = 1 << 10
	maxReasonText = 4 << 10
	// keepErrors is how many attempt errors, at each end, are kept when
	// even short error texts are too many.
	keepErrors = 5
)

// Fit returns the letter as it is written: a poison record capped at
// MaxRecordBytes, and anything cut that had to be to fit budget bytes of
// JSON, named in Truncated and explained at the end of Reason.
func Fit(l Letter, budget int) (Letter, error) {
	out, _, err := fit(l, budget)
	return out, err
}

func fit(l Letter, budget int) (Letter, []byte, error) {
	baseReason := l.Reason
	var notes []string
	cut := func(what, note string) {
		if !contains(l.Truncated, what) {
			l.Truncated = append(append([]string(nil), l.Truncated...), what)
		}
		notes = append(notes, note)
	}
	encode := func() ([]byte, error) {
		out := l
		if len(notes) > 0 {
			out.Reason = strings.TrimSpace(baseReason + " [cut to fit one Kafka record: " + strings.Join(notes, "; ") + "]")
		}
		return json.Marshal(out)
	}
	finish := func() (Letter, []byte, error) {
		if len(notes) > 0 {
			l.Reason = strings.TrimSpace(baseReason + " [cut to fit one Kafka record: " + strings.Join(notes, "; ") + "]")
		}
		v, err := json.Marshal(l)
		return l, v, err
	}

	if n := len(l.Record); n > MaxRecordBytes {
		l.Record = l.Record[:MaxRecordBytes]
		cut("record", fmt.Sprintf("record kept %d of %d bytes", MaxRecordBytes, n))
	}
	v, err := encode()
	if err != nil || len(v) <= budget {
		return finishOr(finish, err)
	}

	// 1. The poison record: base64 takes 4 bytes per 3.
	if n := len(l.Record); n > 0 {
		excess := len(v) - budget + 256 // room for the note
		keep := max(0, n-(excess*3+3)/4)
		l.Record = l.Record[:keep]
		cut("record", fmt.Sprintf("record kept %d of %d bytes", keep, n))
		if v, err = encode(); err != nil || len(v) <= budget {
			return finishOr(finish, err)
		}
	}
	// 2. The payload: replaced by a note of its size.
	if n := len(l.Payload); n > 0 {
		l.Payload = json.RawMessage(fmt.Sprintf(`{"truncated":%d}`, n))
		cut("payload", fmt.Sprintf("payload of %d bytes replaced by {\"truncated\": %d}", n, n))
		if v, err = encode(); err != nil || len(v) <= budget {
			return finishOr(finish, err)
		}
	}
	// 3. The error texts, then how many errors are kept.
	if len(l.Errors) > 0 {
		errs := make([]job.AttemptError, len(l.Errors))
		copy(errs, l.Errors)
		for i := range errs {
			errs[i].Error = truncate(errs[i].Error, maxErrorBytes)
		}
		l.Errors = errs
		cut("errors", fmt.Sprintf("error texts kept to %d bytes each", maxErrorBytes))
		if v, err = encode(); err != nil || len(v) <= budget {
			return finishOr(finish, err)
		}
		if n := len(l.Errors); n > 2*keepErrors {
			kept := append(append([]job.AttemptError(nil), l.Errors[:keepErrors]...), l.Errors[n-keepErrors:]...)
			l.Errors = kept
			notes = append(notes, fmt.Sprintf("kept the first and last %d of %d errors", keepErrors, n))
			if v, err = encode(); err != nil || len(v) <= budget {
				return finishOr(finish, err)
			}
		}
	}
	// 4. What else can be long: bounded so the letter always fits.
	if len(l.Key) > maxFieldBytes {
		notes = append(notes, fmt.Sprintf("key kept %d of %d bytes", maxFieldBytes, len(l.Key)))
		l.Key = l.Key[:maxFieldBytes]
	}
	l.Type = truncate(l.Type, maxFieldBytes)
	l.Group = truncate(l.Group, maxFieldBytes)
	l.Origin.Topic = truncate(l.Origin.Topic, maxFieldBytes)
	if len(baseReason) > maxReasonText {
		baseReason = truncate(baseReason, maxReasonText)
		notes = append(notes, "reason cut")
	}
	cut("fields", "long fields cut")
	if v, err = encode(); err != nil || len(v) <= budget {
		return finishOr(finish, err)
	}
	for i := range l.Errors {
		l.Errors[i].Error = truncate(l.Errors[i].Error, 64)
	}
	l.Record, l.Payload = nil, nil
	if v, err = encode(); err == nil && len(v) > budget {
		return l, nil, fmt.Errorf("dead letter of job %s does not fit in %d bytes even when cut", l.JobID, budget)
	}
	return finishOr(finish, err)
}

func finishOr(finish func() (Letter, []byte, error), err error) (Letter, []byte, error) {
	if err != nil {
		return Letter{}, nil, fmt.Errorf("encoding dead letter: %w", err)
	}
	return finish()
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + mark
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
