package config

import "testing"

func TestSuggest(t *testing.T) {
	for key, want := range map[string]string{
		"topik":              "topic",
		"brokrs":             "brokers",
		"log.levle":          "log.level",
		"produce.rat":        "produce.rate",
		"rate":               "produce.rate", // without its section
		"consume.concurency": "consume.concurrency",
		"TOPIK":              "topic",
		"completely.unknown": "",
		"x":                  "",
	} {
		if got := Suggest(key); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestUnknownKeys(t *testing.T) {
	got := UnknownKeys([]string{"topic", "topik", "brokers", "aaa.zzz"})
	if len(got) != 2 || got[0].Key != "aaa.zzz" || got[1] != (UnknownKey{Key: "topik", Suggestion: "topic"}) {
		t.Fatalf("UnknownKeys = %+v", got)
	}
	err := &UnknownKeysError{File: "jobctl.yaml", Keys: got[1:]}
	if want := "unknown key topik in jobctl.yaml (did you mean topic?)"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	err.Keys = got
	if want := "unknown key aaa.zzz in jobctl.yaml; unknown key topik in jobctl.yaml (did you mean topic?)"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"topic", "topik", 1}, {"level", "levle", 1}, {"kitten", "sitting", 3}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
