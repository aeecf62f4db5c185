package config

import (
	"fmt"
	"sort"
	"strings"
)

// UnknownKey is a key of a config file that jobctl does not know, with
// the known key it most likely meant ("" when none is close).
type UnknownKey struct {
	Key        string `json:"key"`
	Suggestion string `json:"did_you_mean,omitempty"`
}

// UnknownKeys returns those of keys (dotted, as a config file's keys are
// listed by viper) that are not configuration keys, sorted, each with a
// suggestion.
func UnknownKeys(keys []string) []UnknownKey {
	var out []UnknownKey
	for _, k := range keys {
		if _, ok := LookupKey(k); !ok {
			out = append(out, UnknownKey{Key: k, Suggestion: Suggest(k)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Suggest returns the known key that key is most likely a typo of, or "".
// Close means a small edit distance (a letter missing, extra, wrong or two
// swapped: about one edit per three letters, at most three); failing that,
// a key given without its section ("rate" for produce.rate) when only one
// section has it.
func Suggest(key string) string {
	key = strings.ToLower(key)
	best, bestDist := "", 0
	for _, k := range Keys {
		d := editDistance(key, k.Name)
		if best == "" || d < bestDist {
			best, bestDist = k.Name, d
		}
	}
	if best != "" && bestDist <= min(3, max(1, len(key)/3)) {
		return best
	}
	leaf := key[strings.LastIndex(key, ".")+1:]
	match := ""
	for _, k := range Keys {
		if k.Name[strings.LastIndex(k.Name, ".")+1:] == leaf {
			if match != "" {
				return "" // ambiguous
			}
			match = k.Name
		}
	}
	return match
}

// UnknownKeysError is a config file with keys jobctl does not know: a
// misspelt key would otherwise be a setting silently ignored.
type UnknownKeysError struct {
	File string
	Keys []UnknownKey
}

func (e *UnknownKeysError) Error() string {
	parts := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		parts[i] = fmt.Sprintf("unknown key %s in %s", k.Key, e.File)
		if k.Suggestion != "" {
			parts[i] += fmt.Sprintf(" (did you mean %s?)", k.Suggestion)
		}
	}
	return strings.Join(parts, "; ")
}

// editDistance is the optimal string alignment distance of a and b:
// Levenshtein's insertions, deletions and substitutions, plus swaps of two
// neighbouring letters, each costing one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance of ra[:i] and rb[:j].
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
