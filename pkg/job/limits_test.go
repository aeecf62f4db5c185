package job

import (
	"strings"
	"testing"
)

func TestIDRejectsDotSegments(t *testing.T) {
	for _, s := range []string{".", ".."} {
		if _, err := ParseID(s); err == nil {
			t.Errorf("ParseID(%q) accepted a path segment of its own", s)
		}
		if _, err := DecodeSubmission([]byte(`{"job_id": "` + s + `"}`)); err == nil {
			t.Errorf("DecodeSubmission accepted job_id %q", s)
		}
	}
	for _, s := range []string{"...", ".a", "a.", "a..b", "1.5"} {
		if _, err := ParseID(s); err != nil {
			t.Errorf("ParseID(%q): %v", s, err)
		}
	}
	for _, bad := range []string{"", "a/b", "a\x00", "a\nb", "\xff", strings.Repeat("x", maxIDLen+1)} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) should fail", bad)
		}
	}
	if _, err := ParseID(strings.Repeat("x", maxIDLen)); err != nil {
		t.Errorf("an id of exactly %d bytes: %v", maxIDLen, err)
	}
}

// nested is a job whose payload holds depth-1 levels of arrays, so the
// whole event nests depth levels deep.
func nested(depth int, open, close string) []byte {
	leaf := "[]"
	if close == "}" {
		leaf = "{}"
	}
	return []byte(`{"job_id": "n", "status": "NEW", "payload": ` + strings.Repeat(open, depth-2) + leaf + strings.Repeat(close, depth-2) + `}`)
}

func TestSubmissionNestingCap(t *testing.T) {
	for _, br := range [][2]string{{"[", "]"}, {`{"a":`, "}"}} {
		if _, err := DecodeSubmission(nested(MaxDepthStrict, br[0], br[1])); err != nil {
			t.Errorf("%d levels (%s) should be accepted: %v", MaxDepthStrict, br[0], err)
		}
		_, err := DecodeSubmission(nested(MaxDepthStrict+1, br[0], br[1]))
		if err == nil || !strings.Contains(err.Error(), "nested more than 64 levels") {
			t.Errorf("%d levels (%s): want a nesting error, got %v", MaxDepthStrict+1, br[0], err)
		}
		if _, err := DecodeStrict(nested(MaxDepthStrict+1, br[0], br[1])); err == nil {
			t.Errorf("DecodeStrict accepted %d levels", MaxDepthStrict+1)
		}
	}
}

func TestLenientDecodeNestingCap(t *testing.T) {
	if _, err := Decode(nested(MaxDepthLenient, "[", "]")); err != nil {
		t.Errorf("records on the topic up to %d levels should decode: %v", MaxDepthLenient, err)
	}
	_, err := Decode(nested(MaxDepthLenient+1, "[", "]"))
	if err == nil || !strings.Contains(err.Error(), "nested more than 512 levels") {
		t.Errorf("want a nesting error, got %v", err)
	}
	// 100k levels, far below the byte limit: refused fast, without the
	// decoder's recursion.
	if _, err := Decode(nested(100_000, "[", "]")); err == nil {
		t.Error("100000 levels decoded")
	}
}

func TestNestingCountsOnlyOutsideStrings(t *testing.T) {
	deepText := `"` + strings.Repeat("[{", 200) + `\"\\` + `"`
	if _, err := DecodeSubmission([]byte(`{"job_id": "s", "payload": {"text": ` + deepText + `}}`)); err != nil {
		t.Fatalf("brackets inside a string are not nesting: %v", err)
	}
}
