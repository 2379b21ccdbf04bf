package tenantlist

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/google/uuid"
)

// Bounds on what Parse reads: a runaway source of truth must fail, not exhaust
// memory. A tenant list of a million UUIDs is under 40 MiB.
const (
	MaxInputSize  = 64 << 20 // bytes in one input
	MaxLineLength = 64 << 10 // bytes in one line of the line format, without its newline
)

var utf8BOM = []byte("\xef\xbb\xbf")

// Parse reads a list of tenant IDs in one of three formats, detected from the
// first byte that is not whitespace (a leading UTF-8 byte order mark is skipped):
//
//   - '[': a JSON array of strings, ["…", "…"];
//   - '{' not followed by a hex digit: wazo-auth's tenant listing,
//     {"items":[{"uuid":"…","name":…},…],"total":…,"filtered":…}. Other keys are
//     ignored, but "total" and "filtered", when they are numbers, must equal the
//     number of items: a paginated or searched listing omits tenants, which would
//     then look deleted;
//   - anything else, including '{' followed by a hex digit (a braced UUID): one ID
//     per line; blank lines and lines whose first non-space byte is '#' are
//     skipped, a trailing \r is dropped, and an inline comment after an ID is an
//     error.
//
// Entries are parsed with ParseID. The result is deduplicated, in order of first
// appearance; an input with no entries gives an empty, non-nil list, and whether
// that is acceptable is for the policy to decide.
//
// name labels errors, which are *ParseError: a file path, "stdin", a URL. It is
// echoed as given, so it must not carry credentials. Inputs over MaxInputSize and
// lines over MaxLineLength are refused.
func Parse(r io.Reader, name string) ([]uuid.UUID, error) {
	lr := &limitReader{r: r, left: MaxInputSize}
	ids, err := parse(bufio.NewReaderSize(lr, 64<<10), name)
	// A cut or failed read can leave a partial last entry that fails to parse:
	// report the cause, not the symptom.
	switch {
	case lr.over:
		return nil, &ParseError{Source: name, Err: fmt.Errorf("%w: more than %d MiB", ErrTooLarge, MaxInputSize>>20)}
	case lr.err != nil:
		return nil, &ParseError{Source: name, Err: fmt.Errorf("read: %w", lr.err)}
	case err != nil:
		return nil, err
	}
	return ids, nil
}

func parse(br *bufio.Reader, name string) ([]uuid.UUID, error) {
	if b, err := br.Peek(len(utf8BOM)); err == nil && bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	// line counts the newlines skipped so that errors name lines of the input;
	// indent keeps the whitespace skipped on the current line, which the line
	// format gets back so that it echoes that line as it is.
	line, indent := 1, []byte{}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			return []uuid.UUID{}, nil
		}
		if err != nil {
			return nil, err // reported by Parse from the limitReader
		}
		if !isSpace(c) {
			_ = br.UnreadByte()
			break
		}
		indent = append(indent, c)
		if c == '\n' {
			line, indent = line+1, indent[:0]
		}
		if len(indent) > MaxLineLength {
			return nil, lineTooLong(name, line)
		}
	}
	head, _ := br.Peek(2)
	switch {
	case head[0] == '[':
		return parseJSON(br, name, line, arrayList)
	case head[0] == '{' && (len(head) < 2 || !isHexByte(head[1])):
		return parseJSON(br, name, line, wazoAuthList)
	}
	return parseLines(io.MultiReader(bytes.NewReader(indent), br), name, line)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// limitReader passes on at most left bytes and records, rather than hides, both
// a source that has more and a source that fails.
type limitReader struct {
	r    io.Reader
	left int64
	over bool
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.over {
		return 0, ErrTooLarge
	}
	// One byte more than allowed tells "exactly at the limit" from "over it".
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		l.over = true
		return int(l.left), ErrTooLarge
	}
	l.left -= int64(n)
	if err != nil && err != io.EOF {
		l.err = err
	}
	return n, err
}

// collector deduplicates IDs, keeping the order of first appearance.
type collector struct {
	seen map[uuid.UUID]struct{}
	ids  []uuid.UUID
}

func newCollector() *collector {
	return &collector{seen: map[uuid.UUID]struct{}{}, ids: []uuid.UUID{}}
}

func (c *collector) add(id uuid.UUID) {
	if _, ok := c.seen[id]; !ok {
		c.seen[id] = struct{}{}
		c.ids = append(c.ids, id)
	}
}
