package job

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendJSON appends e as json.Marshal would write it, byte for byte,
// without reflection: every worker writes one event per job, and
// json.Marshal's reflection was a tenth of a worker's CPU. Strings that
// need escaping, and the rare errors list, go through encoding/json
// itself, so the output stays identical (TestAppendJSONMatchesMarshal).
func (e Event) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"job_id":`...)
	if e.JobID.numeric {
		b = append(b, e.JobID.text...)
	} else {
		b = appendString(b, e.JobID.text)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, string(e.Status))
	b = appendTime(b, `,"created_at":`, e.CreatedAt)
	b = appendTime(b, `,"updated_at":`, e.UpdatedAt)
	if e.Type != "" {
		b = append(b, `,"type":`...)
		b = appendString(b, e.Type)
	}
	if len(e.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, e.Payload...) // compact JSON: parse compacts it
	}
	if e.Run != 0 {
		b = strconv.AppendInt(append(b, `,"run":`...), int64(e.Run), 10)
	}
	if e.Attempt != 0 {
		b = strconv.AppendInt(append(b, `,"attempt":`...), int64(e.Attempt), 10)
	}
	if e.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, e.Error)
	}
	if e.Worker != "" {
		b = append(b, `,"worker":`...)
		b = appendString(b, e.Worker)
	}
	if e.Group != "" {
		b = append(b, `,"group":`...)
		b = appendString(b, e.Group)
	}
	b = appendTime(b, `,"retry_at":`, e.RetryAt)
	b = appendTime(b, `,"run_at":`, e.RunAt)
	b = appendTime(b, `,"started_at":`, e.StartedAt)
	if len(e.Errors) > 0 {
		errs, err := json.Marshal(e.Errors)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"errors":`...), errs...)
	}
	if len(e.Result) > 0 {
		// Rare (DONE events of result handlers) and free-form: encoding/json
		// compacts and escapes it exactly as Marshal would.
		res, err := json.Marshal(e.Result)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"result":`...), res...)
	}
	return append(b, '}'), nil
}

func appendTime(b []byte, field string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, field...)
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string the way encoding/json escapes
// it (HTML characters included).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
