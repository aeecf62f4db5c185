package view

import (
	"encoding/json"
	"fmt"
)

// ResultLimit bounds the result the view keeps per job, in bytes: the
// handlers' own cap (handler.MaxResultBytes), so the view shows what the
// DONE event holds. Only jobs with a result pay for it. A longer result
// (from another producer) is kept as a note saying where the whole is.
const ResultLimit = 64 << 10

func keptResult(r json.RawMessage) string {
	if len(r) <= ResultLimit {
		return string(r)
	}
	note, _ := json.Marshal(fmt.Sprintf("[a result of %d bytes: more than the %d the view keeps; the DONE event in the topic holds it]", len(r), ResultLimit))
	return string(note)
}
