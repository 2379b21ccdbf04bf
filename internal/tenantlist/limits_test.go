package tenantlist_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/tenantlist"
)

// repeat reads s n times over (forever when n < 0) without holding it all in memory.
func repeat(s string, n int) io.Reader {
	return &repeater{s: s, left: n * len(s)}
}

type repeater struct {
	s    string
	off  int
	left int
}

func (r *repeater) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if r.left > 0 && len(p) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	if r.left > 0 {
		r.left -= n
	}
	return n, nil
}

// commentLines is a line-format input of exactly size bytes: idA, then comments.
func commentLines(size int) io.Reader {
	line := "#" + strings.Repeat(".", 62) + "\n"
	head := idA + "\n"
	n := (size - len(head)) / len(line)
	tail := strings.Repeat("#", size-len(head)-n*len(line))
	return io.MultiReader(strings.NewReader(head), repeat(line, n), strings.NewReader(tail))
}

func TestParseSizeLimit(t *testing.T) {
	t.Run("exactly at the limit", func(t *testing.T) {
		got, err := tenantlist.Parse(commentLines(tenantlist.MaxInputSize), "in")
		if err != nil || !slices.Equal(got, []uuid.UUID{uuidA}) {
			t.Errorf("Parse: got %v, %v, want [%v], nil", got, err, uuidA)
		}
	})
	for _, tc := range []struct {
		name string
		in   io.Reader
	}{
		{"lines one byte over", commentLines(tenantlist.MaxInputSize + 1)},
		// The cut falls inside a line, which must not be reported as a bad entry.
		{"lines cut inside an entry", io.MultiReader(commentLines(tenantlist.MaxInputSize-10), strings.NewReader("\n"+idB+"\n"))},
		{"JSON", io.MultiReader(strings.NewReader("["), repeat(strings.Repeat(" ", 1<<20), 65), strings.NewReader("]"))},
		{"endless", io.MultiReader(strings.NewReader("{\"items\": ["), repeat(`{"uuid": "`+idA+`"},`, -1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tenantlist.Parse(tc.in, "in")
			want := fmt.Sprintf("in: input too large: more than %d MiB", tenantlist.MaxInputSize>>20)
			if err == nil || err.Error() != want || !errors.Is(err, tenantlist.ErrTooLarge) {
				t.Errorf("Parse: got %v, %v, want error %s", got, err, want)
			}
		})
	}
}

func TestParseLineLimit(t *testing.T) {
	longest := "#" + strings.Repeat("x", tenantlist.MaxLineLength-1)
	for _, tc := range []struct {
		name, in string
		wantLine int // 0: no error
	}{
		{"longest line", idA + "\n" + longest + "\n" + idB, 0},
		{"longest line CRLF", idA + "\r\n" + longest + "\r\n" + idB, 0},
		{"longest line last", idA + "\n" + longest, 0},
		{"longest line of indent", strings.Repeat(" ", tenantlist.MaxLineLength) + "\n" + idA + "\n" + idB, 0},
		{"one byte too long", idA + "\n\n" + longest + "x\n" + idB, 3},
		{"one byte too long with CRLF", idA + "\r\n" + longest + "x\r\n" + idB, 2},
		{"far too long", idA + "\n" + strings.Repeat("x", 10*tenantlist.MaxLineLength) + "\n" + idB, 2},
		{"far too long last", idA + "\n" + idB + "\n" + strings.Repeat("x", 10*tenantlist.MaxLineLength), 3},
		{"indent too long", "\n" + strings.Repeat(" ", tenantlist.MaxLineLength+1) + idA, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tenantlist.Parse(strings.NewReader(tc.in), "in")
			if tc.wantLine == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				want := []uuid.UUID{uuidA, uuidB}
				if strings.HasPrefix(tc.name, "longest line last") {
					want = want[:1]
				}
				if !slices.Equal(got, want) {
					t.Errorf("Parse: got %v, want %v", got, want)
				}
				return
			}
			want := fmt.Sprintf("in:%d: line too long: more than %d bytes", tc.wantLine, tenantlist.MaxLineLength)
			if err == nil || err.Error() != want || !errors.Is(err, tenantlist.ErrLineTooLong) {
				t.Errorf("Parse: got %v, %v, want error %s", got, err, want)
			}
		})
	}
}

func TestParseReadError(t *testing.T) {
	reset := errors.New("connection reset by peer")
	for _, tc := range []struct{ name, head string }{
		{"lines cut inside an entry", idA + "\n" + idB[:10]},
		{"JSON cut", `["` + idA + `", "`},
		{"nothing read", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := io.MultiReader(strings.NewReader(tc.head), iotest.ErrReader(reset))
			got, err := tenantlist.Parse(r, "https://auth.example.com/api/auth/0.1/tenants")
			want := "https://auth.example.com/api/auth/0.1/tenants: read: connection reset by peer"
			if err == nil || err.Error() != want || !errors.Is(err, reset) {
				t.Errorf("Parse: got %v, %v, want error %s", got, err, want)
			}
		})
	}
}
