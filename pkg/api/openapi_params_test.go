package api

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/jobctl/jobctl/pkg/view"
)

// queryParams are the query parameters each GET route reads; the test
// below checks openapi.json documents them (and each path parameter).
// A handler that learns a parameter adds it here.
var queryParams = map[string][]string{
	"/jobs":      {"status", "type", "group", "after", "limit", "order", "since", "until"},
	"/dlq":       {"type", "error", "since", "until", "group", "kind", "limit", "id"},
	"/jobs/{id}": {},
}

func TestOpenAPIDocumentsEveryParameter(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name string `json:"name"`
				In   string `json:"in"`
			} `json:"parameters"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	pathParam := regexp.MustCompile(`\{([a-z_]+)\}`)
	for _, r := range New(Options{Store: &store{View: view.New(view.Options{})}}).routes {
		op, ok := doc.Paths[r.path][strings.ToLower(r.method)]
		if !ok {
			continue // TestOpenAPIDescribesEveryRoute reports it
		}
		documented := map[string]bool{}
		for _, p := range op.Parameters {
			documented[p.In+" "+p.Name] = true
		}
		for _, m := range pathParam.FindAllStringSubmatch(r.path, -1) {
			if !documented["path "+m[1]] {
				t.Errorf("%s %s: path parameter %s is not in openapi.json", r.method, r.path, m[1])
			}
		}
		if r.method != "GET" {
			continue
		}
		for _, name := range queryParams[r.path] {
			if !documented["query "+name] {
				t.Errorf("GET %s: query parameter %s is not in openapi.json", r.path, name)
			}
		}
	}
}
