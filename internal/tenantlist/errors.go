package tenantlist

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors a ParseError wraps, for callers that branch with errors.Is.
var (
	ErrNotUUID             = errors.New("not a UUID")
	ErrSyntax              = errors.New("invalid JSON")
	ErrJSONType            = errors.New("unexpected JSON type")
	ErrMissing             = errors.New("missing")
	ErrDuplicateKey        = errors.New("duplicate key")
	ErrInconsistentListing = errors.New("inconsistent listing")
	ErrLineTooLong         = errors.New("line too long")
	ErrTooLarge            = errors.New("input too large")
)

// maxEcho bounds how much of an offending input an error repeats: the input may be
// a whole binary file fed by mistake, and an error message must stay readable.
const maxEcho = 80

// ParseError is an entry, or a whole input, that could not be read as tenant IDs.
type ParseError struct {
	Source string // where the list came from: a file path, "stdin", a URL; "" for ParseID
	Line   int    // 1-based line of the offending entry; 0 when not known
	Index  string // JSON path of the offending value, e.g. "items[3].uuid"; "" for the line format
	Input  string // the offending text, cut to 80 bytes ("…" marks a cut); "" when none
	Err    error  // the reason, wrapping one of the Err* values above
}

// Error reads like a compiler message: `tenants.txt:12: "abc": not a UUID`.
func (e *ParseError) Error() string {
	var b strings.Builder
	switch {
	case e.Source != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.Source, e.Line)
	case e.Source != "":
		b.WriteString(e.Source + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Index != "" {
		b.WriteString(e.Index + ": ")
	}
	if e.Input != "" {
		fmt.Fprintf(&b, "%q: ", e.Input)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid tenant list")
	}
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// echo cuts s to maxEcho bytes, backing off to a rune boundary when s is UTF-8.
func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	return s[:cut] + "…"
}
