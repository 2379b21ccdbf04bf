package snapshot

import (
	"bytes"
	"strings"
	"sync/atomic"
	"testing"
)

// tapKeysOf feeds text to a tap on field col in pieces of size n (every split point
// of a row is met for n = 1) and returns the keys as rendered for SQL.
func tapKeysOf(t *testing.T, text string, col int, typ string, n int) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ks := &idSet{uuid: typ == "uuid"}
	tap := &idTap{w: &out, col: col, keys: ks, spent: new(atomic.Int64)}
	for p := text; len(p) > 0; {
		k := min(n, len(p))
		if _, err := tap.Write([]byte(p[:k])); err != nil {
			return "", err
		}
		p = p[k:]
	}
	if err := tap.done(); err != nil {
		return "", err
	}
	if out.String() != text {
		t.Fatalf("tap changed the text: %q", out.String())
	}
	var got []string
	if err := idChunks([]*idSet{ks}, 1000, func(keys, _ []byte) error {
		got = append(got, string(keys))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(got, "|"), nil
}

func TestKeyTap(t *testing.T) {
	for _, c := range []struct {
		name, text string
		col        int
		typ        string
		want       string // keys, or the error's text
	}{
		{"first field", "1\ta\tb\n22\tc\\td\te\n", 0, "integer", "1,22"},
		{"middle field, escaped tab before it", "a\\tx\t7\tz\nb\t-3\tz\n", 1, "integer", "7,-3"},
		{"last field", "a\tb\t100\nc\td\t99\n", 2, "bigint", "100,99"},
		{"NULL keys skipped", "\\N\tx\n5\ty\n", 0, "integer", "5"},
		{"descending and far apart", "9223372036854775807\n-9223372036854775808\n0\n", 0, "bigint", "9223372036854775807,-9223372036854775808,0"},
		{"uuid", "x\t0E6A3C4D-1111-4222-8333-944455556666\n", 1, "uuid", "0e6a3c4d-1111-4222-8333-944455556666"},
		{"no rows", "", 0, "integer", ""},
		{"not an integer", "1\n1.5\n", 0, "integer", `key "1.5" is not an integer`},
		{"not a uuid", "zz\n", 0, "uuid", `key "zz" is not a UUID`},
		{"row too short", "a\t1\nc\n", 1, "integer", "COPY row with 1 fields, key column is field 2"},
		{"key too long", strings.Repeat("1", 70) + "\n", 0, "integer", "key field longer than 64 bytes"},
		{"text ends inside a row", "1\t2", 0, "integer", "COPY text ended inside a row"},
	} {
		for _, n := range []int{1, 3, 1 << 20} {
			got, err := tapKeysOf(t, c.text, c.col, c.typ, n)
			if err != nil {
				got = err.Error()
			}
			if !strings.HasPrefix(got, c.want) || (err == nil && got != c.want) {
				t.Errorf("%s, pieces of %d: got %q, want %q", c.name, n, got, c.want)
			}
		}
	}
}

// Chunks hold at most size keys, run across sets in order, and number each key's
// set when there are several.
func TestKeyChunks(t *testing.T) {
	set := func(keys ...string) *idSet {
		ks := &idSet{}
		for _, k := range keys {
			if err := ks.add([]byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		return ks
	}
	for _, c := range []struct {
		name string
		sets []*idSet
		size int
		want string
	}{
		{"one set", []*idSet{set("1", "5", "3")}, 2, "1,5/ 3/"},
		{"one set, exact chunks", []*idSet{set("1", "2")}, 2, "1,2/"},
		{"several sets across chunks", []*idSet{set("1", "5", "3"), set(), set("7")}, 2, "1,5/0,0 3,7/0,2"},
		{"no keys", []*idSet{set(), set()}, 2, ""},
	} {
		var got []string
		err := idChunks(c.sets, c.size, func(keys, ords []byte) error {
			got = append(got, string(keys)+"/"+string(ords))
			return nil
		})
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, strings.Join(got, " "), err, c.want)
		}
	}
}

// The choice between keyed selects and the join back: keyed up to keyedShareMax of
// the parent's estimated rows, joined above; keyed when there is no estimate to
// judge by (never analysed, or stale below what was saved).
func TestByParentIDs(t *testing.T) {
	max := keyedShareMax
	tests := []struct {
		name  string
		saved int64
		rows  float64
		want  bool
	}{
		{"nothing saved", 0, 1000, true},
		{"1% of the parent", 10, 1000, true},
		{"at the limit", int64(max * 1000), 1000, true},
		{"just over the limit", int64(max*1000) + 1, 1000, false},
		{"9% of a million", 90_000, 1e6, max >= 0.09},
		{"half the parent", 500, 1000, false},
		{"all of it", 1000, 1000, false},
		{"never analysed", 500, -1, true},
		{"empty by the estimate", 500, 0, true},
		{"estimate below what was saved", 2000, 1000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := byParentIDs(tt.saved, tt.rows); got != tt.want {
				t.Errorf("byParentIDs(%d, %v): got %v, want %v", tt.saved, tt.rows, got, tt.want)
			}
		})
	}
}
