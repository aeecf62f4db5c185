// Package output prints command results as an aligned table for people or
// as JSON for scripts (-o json).
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Format is how results are printed.
type Format string

const (
	Table Format = "table"
	JSON  Format = "json"
)

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case Table, JSON:
		return Format(s), nil
	}
	return "", fmt.Errorf("output format %q: want table or json", s)
}

// Printer writes results in one format.
type Printer struct {
	W      io.Writer
	Format Format
}

// Print writes v as JSON, or as the table that rows builds.
func (p Printer) Print(v any, header []string, rows func() [][]string) error {
	if p.Format == JSON {
		return WriteJSON(p.W, v)
	}
	return WriteTable(p.W, header, rows())
}

// WriteJSON writes v as indented JSON with a trailing newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteTable writes rows under header, columns aligned.
func WriteTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(header) > 0 {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
