package trash

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
)

func TestAppendCopyLine(t *testing.T) {
	for _, c := range []struct {
		name, rec string
		idx       []int
		n         int
		want      string
	}{
		{"plain", `(1,abc,t)`, []int{0, 1, 2}, 3, "1\tabc\tt\n"},
		{"nulls", `(,x,)`, []int{0, 1, 2}, 3, "\\N\tx\t\\N\n"},
		{"one null column", `()`, []int{0}, 1, "\\N\n"},
		{"empty string", `("",x)`, []int{0, 1}, 2, "\tx\n"},
		{"quotes and backslashes", `("a""b","c\\d")`, []int{0, 1}, 2, "a\"b\tc\\\\d\n"},
		{"control characters", "(\"a\tb\nc\rd\",\"\b\f\v\")", []int{0, 1}, 2, "a\\tb\\nc\\rd\t\\b\\f\\v\n"},
		{"commas and parentheses", `("(1,2)","{a,b}")`, []int{0, 1}, 2, "(1,2)\t{a,b}\n"},
		{"a column skipped and reordered", `(1,gen,3)`, []int{2, 0}, 3, "3\t1\n"},
		{"array of quoted strings", `("{""a b"",""c\\\\d""}")`, []int{0}, 1, "{\"a b\",\"c\\\\\\\\d\"}\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := appendCopyLine(nil, []byte(c.rec), c.idx, c.n, nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("appendCopyLine(%q) = %q, want %q", c.rec, got, c.want)
			}
		})
	}
	for _, bad := range []string{``, `1,2`, `(1,2`, `("a)`, `("a"x)`, `(a"b)`, `(1,2,3)`} {
		if _, _, err := appendCopyLine(nil, []byte(bad), []int{0, 1}, 2, nil); !errors.Is(err, errRecord) {
			t.Errorf("appendCopyLine(%q): %v, want errRecord", bad, err)
		}
	}
}

// typesSQL is a table of every kind of value whose text needs quoting in a record
// or escaping in COPY, with a generated and a dropped column.
const typesSQL = `
CREATE TYPE mood AS ENUM ('happy', 'a "quoted", mood');
CREATE TABLE kinds (
	id int PRIMARY KEY,
	gone text,
	t text,
	v varchar(20),
	moods mood[],
	tags text[],
	j jsonb,
	b bytea,
	n numeric,
	f float8,
	ts timestamptz,
	iv interval,
	twice int GENERATED ALWAYS AS (id * 2) STORED,
	p point,
	r int4range
);
ALTER TABLE kinds DROP COLUMN gone;
INSERT INTO kinds (id, t, v, moods, tags, j, b, n, f, ts, iv, p, r) VALUES
	(1, 'plain', 'x', '{happy}', '{a,b}', '{"a": 1}', '\x00ff', 1.50, 0.1, '2026-01-02 03:04:05.678+01', '1 day 02:03:04', '(1,2)', '[1,5)'),
	(2, E'tab\there, new\nline, back\\slash \\N, "quote", (paren), cr\r, bs\b ff\f vt\x0b', ' lead',
		'{"a \"quoted\", mood",happy}', '{"x y","c\\d",NULL,""}', '{"k": "v\"\\\n"}', '\x5c0a', -0.000, 'NaN', 'infinity', '-1 mons', '(0.5,-1e-300)', 'empty'),
	(3, '', NULL, NULL, '{}', 'null', '', NULL, '-Infinity', NULL, NULL, NULL, NULL),
	(4, NULL, '', '{}', NULL, '[]', NULL, 1e-30, 1e300, '1999-12-31 23:59:59.999999+00', '00:00:00.000001', NULL, '(,)');`

// The COPY line made from each row's record text is the line COPY itself writes for
// that row, byte for byte, whatever the values hold.
func TestAppendCopyLineMatchesCopy(t *testing.T) {
	dsn := testenv.Postgres(t)
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, dsn)
	if _, err := conn.Exec(ctx, typesSQL); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	cols := "id, t, v, moods, tags, j, b, n, f, ts, iv, p, r"
	if _, err := conn.PgConn().CopyTo(ctx, &want, "COPY (SELECT "+cols+" FROM kinds ORDER BY id) TO STDOUT"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, "SELECT k::text FROM kinds k ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	// Fields of the record: id t v moods tags j b n f ts iv twice p r (gone dropped).
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13}
	var got []byte
	var fs []field
	for rows.Next() {
		if got, fs, err = appendCopyLine(got, rows.RawValues()[0], idx, 14, fs); err != nil {
			t.Fatalf("%s: %v", rows.RawValues()[0], err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Errorf("line %d:\ngot  %q\nwant %q", i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("COPY lines from the records differ from COPY's (%d bytes against %d)", len(got), len(want.String()))
	}
}
