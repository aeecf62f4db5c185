package admin

import (
	"fmt"
	"strings"
)

// ParseConfigs parses topic settings written as key=value
// ("retention.ms=86400000"). Only the first '=' separates: the value may
// contain more, and commas ("cleanup.policy=compact,delete"). The broker
// judges the values; this catches what is surely a typo: no '=', an empty
// or malformed key, or one key given twice with different values.
func ParseConfigs(entries []string) (map[string]string, error) {
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		k, v, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not key=value", e)
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, fmt.Errorf("%q has no key before '='", e)
		}
		for _, r := range k {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return nil, fmt.Errorf("%q: key %q has %q; config names are letters, digits, '.', '_' and '-'", e, k, r)
			}
		}
		if prev, dup := out[k]; dup && prev != v {
			return nil, fmt.Errorf("%s is given twice (%q and %q)", k, prev, v)
		}
		out[k] = v
	}
	return out, nil
}
