package catalog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
)

// The property everything else rests on: for every table of the graph, Select
// returns exactly the rows that the purge removes or changes, found by comparing
// whole tables before and after a real purge (rolled back); and no table outside the
// graph changes at all.

func TestSelectMatchesPurgeGraph(t *testing.T) {
	ctx, conn := graphDatabase(t)
	g := load(t, ctx, conn, graphOptions())
	cases := []struct {
		name   string
		tenant uuid.UUID
		want   map[string]int // rows selected per table; nil: any, but some beyond the root
	}{
		{"A", orgA, map[string]int{
			"app.org": 1, "app.project": 3, "app.member": 4, "app.task": 9, "app.comment": 4,
			`app.attachment "v2".files`: 3, "app.audit_log": 2, "app.audit_note": 1,
			"app.bookmark": 2, "app.external_link": 2, "app.usage": 3,
		}},
		{"B", orgB, nil},
		{"C", orgC, nil},
		{"D only the root row", orgD, map[string]int{"app.org": 1}},
		{"absent tenant", uuid.MustParse("eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee"), map[string]int{"app.usage": 1}},
		{"unknown tenant", uuid.MustParse("01234567-89ab-4def-8123-456789abcdef"), map[string]int{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := checkPurge(t, ctx, conn, g, c.tenant)
			got := res.rows
			if c.tenant == orgA {
				// A's purge uses every set null/default path: each column of Changed
				// is changed in some row it keeps.
				for _, tb := range g.Tables {
					if !slices.Equal(res.changed[tb.Name.String()], tb.Changed) {
						t.Errorf("%s: purge changed %q in kept rows, Changed is %q", tb.Name, res.changed[tb.Name.String()], tb.Changed)
					}
				}
			}
			if c.want == nil {
				delete(got, "app.org")
				if len(got) == 0 {
					t.Error("nothing selected beyond the root: the case proves nothing")
				}
				return
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("rows selected = %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestSelectMatchesPurgeCallLogd(t *testing.T) {
	const seed = 7
	ctx, conn, g := calllogdDatabase(t, fixture.Options{Seed: seed, Tenants: 3, CallLogsPerTenant: 40})
	for i := range 3 {
		tenant := fixture.TenantID(seed, i)
		t.Run(tenant.String(), func(t *testing.T) {
			got := checkPurge(t, ctx, conn, g, tenant).rows
			for _, tb := range []string{"public.call_logd_call_log", "public.call_logd_call_log_participant", "public.call_logd_recording"} {
				if got[tb] == 0 {
					t.Errorf("no rows of %s selected: the case proves nothing (%v)", tb, got)
				}
			}
			if got["public.call_logd_call_log"] != 40 {
				t.Errorf("%d call logs selected, want 40", got["public.call_logd_call_log"])
			}
		})
	}
}

// TestSelectMatchesPurgeTextKey covers a root cascading from itself (a closure over
// the root) and a key that is not uuid.
func TestSelectMatchesPurgeTextKey(t *testing.T) {
	ctx, conn := database(t, `
		CREATE SCHEMA misc;
		CREATE TABLE misc.tenant (code text PRIMARY KEY, parent_code text REFERENCES misc.tenant ON DELETE CASCADE);
		CREATE TABLE misc.item (id int PRIMARY KEY, tenant_code text NOT NULL REFERENCES misc.tenant ON DELETE CASCADE,
			sibling_id int REFERENCES misc.item ON DELETE SET NULL);
		INSERT INTO misc.tenant VALUES
			('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', NULL), ('sub', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'),
			('subsub', 'sub'), ('subsubsub', 'subsub'), ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', NULL), ('b-sub', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
		INSERT INTO misc.item VALUES (1, 'subsubsub', NULL), (2, 'b-sub', 1), (3, 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb', 2);
	`)
	g := load(t, ctx, conn, catalog.Options{Root: name("misc", "tenant"), Key: "code"})
	if g.KeyType != "text" {
		t.Errorf("key type %q", g.KeyType)
	}
	for tenant, want := range map[uuid.UUID]map[string]int{
		orgA: {"misc.tenant": 4, "misc.item": 2},
		orgB: {"misc.tenant": 2, "misc.item": 2},
	} {
		t.Run(tenant.String(), func(t *testing.T) {
			if got := checkPurge(t, ctx, conn, g, tenant).rows; !maps.Equal(got, want) {
				t.Errorf("rows selected = %v, want %v", got, want)
			}
		})
	}
}

// purged is what checkPurge saw: rows selected per table (tables with none left out)
// and the columns the purge changed in the rows it kept, per table.
type purged struct {
	rows    map[string]int
	changed map[string][]string
}

// checkPurge compares, for each table, Select's rows with those the purge of tenant
// removes or changes.
func checkPurge(t *testing.T, ctx context.Context, conn *pgx.Conn, g *catalog.Graph, tenant uuid.UUID) purged {
	t.Helper()
	others := otherTables(t, ctx, conn, g)
	before := contents(t, ctx, conn, g, others)
	selected := map[string][]string{}
	res := purged{rows: map[string]int{}, changed: map[string][]string{}}
	for _, tb := range g.Tables {
		sql := g.Select(tb, tenant)
		selected[tb.Name.String()] = rowsOf(t, ctx, conn, "SELECT to_jsonb(x)::text FROM ("+sql+") x")
		if n := len(selected[tb.Name.String()]); n > 0 {
			res.rows[tb.Name.String()] = n
		}
		// What the snapshot runs: the same query inside COPY.
		tag, err := conn.PgConn().CopyTo(ctx, &bytes.Buffer{}, "COPY ("+sql+") TO STDOUT")
		if err != nil || tag.RowsAffected() != int64(len(selected[tb.Name.String()])) {
			t.Errorf("%s: COPY: %v, %d rows, want %d", tb.Name, err, tag.RowsAffected(), len(selected[tb.Name.String()]))
		}
	}

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	purge := "DELETE FROM " + g.Root.Sanitize() + " WHERE " + pgx.Identifier{g.Key}.Sanitize() + " = $1::text::" + g.KeyType
	if _, err := tx.Exec(ctx, purge, tenant.String()); err != nil {
		t.Fatalf("purge: %v", err)
	}
	for _, tb := range g.Tables {
		for _, col := range tb.ExtraColumns {
			if _, err := tx.Exec(ctx, "DELETE FROM "+tb.Name.Sanitize()+" WHERE "+pgx.Identifier{col}.Sanitize()+" = $1", tenant); err != nil {
				t.Fatalf("purge %s: %v", tb.Name, err)
			}
		}
	}
	after := contents(t, ctx, tx, g, others)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	for _, tb := range g.Tables {
		n := tb.Name.String()
		gone := minus(before[n], after[n])
		if got := selected[n]; !slices.Equal(got, gone) {
			t.Errorf("%s: Select returns %d rows, the purge removes or changes %d\nselected: %q\npurged:   %q",
				n, len(got), len(gone), got, gone)
		}
		if cols := checkChanged(t, tb, gone, after[n]); len(cols) > 0 {
			res.changed[n] = cols
		}
	}
	for _, n := range others {
		if !slices.Equal(before[n], after[n]) {
			t.Errorf("%s, not in the graph, changed: %q -> %q", n, before[n], after[n])
		}
	}
	return res
}

// checkChanged fails if a row the purge kept (same primary key) differs in a column
// that Table.Changed does not list. It returns the columns that differ, in the
// order of Changed.
func checkChanged(t *testing.T, tb *catalog.Table, gone, after []string) []string {
	t.Helper()
	if len(tb.PrimaryKey) == 0 {
		return nil
	}
	differ := map[string]bool{}
	key := func(row map[string]json.RawMessage) string {
		var k []string
		for _, c := range tb.PrimaryKey {
			k = append(k, string(row[c]))
		}
		b, _ := json.Marshal(k)
		return string(b)
	}
	kept := map[string]map[string]json.RawMessage{}
	for _, r := range after {
		row := decode(t, r)
		kept[key(row)] = row
	}
	for _, r := range gone {
		old := decode(t, r)
		now, ok := kept[key(old)]
		if !ok {
			continue
		}
		for c, v := range old {
			if bytes.Equal(v, now[c]) {
				continue
			}
			differ[c] = true
			if !slices.Contains(tb.Changed, c) {
				t.Errorf("%s: purge changed column %s (%s -> %s), not in Changed %q", tb.Name, c, v, now[c], tb.Changed)
			}
		}
	}
	var cols []string
	for _, c := range tb.Changed {
		if differ[c] {
			cols = append(cols, c)
		}
	}
	return cols
}

func decode(t *testing.T, row string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(row), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// otherTables lists every table of the database outside the graph (partitions are
// read through their parent).
func otherTables(t *testing.T, ctx context.Context, conn *pgx.Conn, g *catalog.Graph) []string {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
		AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []catalog.Name
	for rows.Next() {
		var n catalog.Name
		if err := rows.Scan(&n.Schema, &n.Table); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var others []string
	for _, n := range names {
		if g.Table(n) == nil {
			others = append(others, n.Sanitize())
		}
	}
	return others
}

// contents returns the sorted rows of every table as JSON text: graph tables by
// name, with their stored columns; the others by quoted name, whole.
func contents(t *testing.T, ctx context.Context, q catalog.Querier, g *catalog.Graph, others []string) map[string][]string {
	t.Helper()
	m := map[string][]string{}
	for _, tb := range g.Tables {
		var cols []string
		for _, c := range tb.ColumnNames() {
			cols = append(cols, pgx.Identifier{c}.Sanitize())
		}
		m[tb.Name.String()] = rowsOf(t, ctx, q, "SELECT to_jsonb(x)::text FROM (SELECT "+strings.Join(cols, ", ")+" FROM "+tb.Name.Sanitize()+") x")
	}
	for _, n := range others {
		m[n] = rowsOf(t, ctx, q, "SELECT to_jsonb(x)::text FROM "+n+" x")
	}
	return m
}

func rowsOf(t *testing.T, ctx context.Context, q catalog.Querier, sql string) []string {
	t.Helper()
	rows, err := q.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	slices.Sort(got)
	return got
}

// minus returns the sorted rows of a not in b, as multisets.
func minus(a, b []string) []string {
	left := map[string]int{}
	for _, r := range b {
		left[r]++
	}
	var out []string
	for _, r := range a {
		if left[r] > 0 {
			left[r]--
			continue
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}
