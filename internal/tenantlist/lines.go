package tenantlist

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
)

// parseLines reads one ID per line; line is the number of the first line in r.
func parseLines(r io.Reader, name string, line int) ([]uuid.UUID, error) {
	sc := bufio.NewScanner(r)
	// Room for a line of MaxLineLength plus "\r\n", so that the length check
	// below, not the scanner, draws the line exactly at MaxLineLength.
	sc.Buffer(make([]byte, 0, 4096), MaxLineLength+2)
	out := newCollector()
	for ; sc.Scan(); line++ {
		text := sc.Text() // without "\n" or "\r\n"
		if len(text) > MaxLineLength {
			return nil, lineTooLong(name, line)
		}
		t := strings.TrimSpace(text)
		if t == "" || t[0] == '#' {
			continue
		}
		id, err := parseID(text)
		if err != nil {
			return nil, &ParseError{Source: name, Line: line, Input: echo(text), Err: err}
		}
		out.add(id)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, lineTooLong(name, line)
		}
		return nil, err // reported by Parse from the limitReader
	}
	return out.ids, nil
}

func lineTooLong(name string, line int) error {
	return &ParseError{Source: name, Line: line, Err: fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, MaxLineLength)}
}
