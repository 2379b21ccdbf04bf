package catalog_test

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
)

// Which tables are selected by their parent's keys, on both test schemas: only those
// reached through one single-column cascade key from a table, not the root, whose
// saved rows are all deleted; and for each, the keys of the parent's selected rows
// select exactly the rows Select does, alone and several tenants at once.
func TestSelectByKeysMatchesSelect(t *testing.T) {
	const seed = 9
	ctx, conn, g := calllogdDatabase(t, fixture.Options{Seed: seed, Tenants: 3, CallLogsPerTenant: 25})
	checkKeyed(t, ctx, conn, g, []uuid.UUID{fixture.TenantID(seed, 0), fixture.TenantID(seed, 2)}, map[string]string{
		"public.call_logd_call_log_participant": "public.call_logd_call_log.id integer",
		"public.call_logd_call_log_destination": "public.call_logd_call_log.id integer",
		"public.call_logd_recording":            "public.call_logd_call_log.id integer",
	})

	gctx, gconn := graphDatabase(t)
	gg := load(t, gctx, gconn, graphOptions())
	// Not keyed: project (under the root), member and task (parent project has a
	// set-null column), comment (a diamond), task_dependency (composite key),
	// audit_log (under the root), bookmark/external_link (set null/default).
	checkKeyed(t, gctx, gconn, gg, []uuid.UUID{orgA, orgB, orgC, orgD}, map[string]string{
		`app.attachment "v2".files`: "app.comment.id bigint",
	})
}

func checkKeyed(t *testing.T, ctx context.Context, conn *pgx.Conn, g *catalog.Graph, tenants []uuid.UUID, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, tb := range g.Tables {
		ref, ok := g.SelectedByParent(tb)
		if !ok {
			continue
		}
		got[tb.Name.String()] = ref.Parent.Name.String() + "." + ref.Column + " " + ref.Type
		var all, allOrds []string
		wantAll := map[string][]string{}
		for i, id := range tenants {
			// The parent's keys, as the snapshot reads them: from its saved rows.
			keys := copyLines(t, ctx, conn, g.SelectColumns(ref.Parent, id, []string{ref.Column}))
			for j := range keys {
				keys[j] = strings.TrimSuffix(keys[j], "\n")
			}
			head, tail := g.SelectByParentIDs(tb, ref)
			byKeys := copyLines(t, ctx, conn, head+strings.Join(keys, ",")+tail)
			want := copyLines(t, ctx, conn, g.Select(tb, id))
			slices.Sort(byKeys)
			slices.Sort(want)
			if !slices.Equal(byKeys, want) {
				t.Errorf("%s, tenant %s: %d rows by %d keys, Select %d", tb.Name, id, len(byKeys), len(keys), len(want))
			}
			ord := strconv.Itoa(i)
			for _, k := range keys {
				all, allOrds = append(all, k), append(allOrds, ord)
			}
			wantAll[ord] = want
		}
		head, mid, tail := g.SelectByParentIDsTenants(tb, ref)
		gotAll := routedLines(t, ctx, conn, tb.Name, head+strings.Join(all, ",")+mid+strings.Join(allOrds, ",")+tail)
		for ord, want := range wantAll {
			if !slices.Equal(gotAll[ord], want) {
				t.Errorf("%s, tenants at once, tenant #%s: %d rows, Select %d", tb.Name, ord, len(gotAll[ord]), len(want))
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("keyed tables:\n got %v\nwant %v", got, want)
	}
}

// The SQL around the keys, with awkward names: identifiers quoted, the key type
// from the parent's column.
func TestSelectByKeysSQL(t *testing.T) {
	root, parent, child := name("s", "r"), name(`we"ird`, "p.x"), name("s", `c"y`)
	toRoot := catalog.FK{Constraint: "a", Child: parent, Columns: []string{"org"}, Parent: root, RefColumns: []string{"id"}, OnDelete: catalog.OnDeleteCascade}
	toParent := catalog.FK{Constraint: "b", Child: child, Columns: []string{`p"id`}, Parent: parent, RefColumns: []string{"i d"}, OnDelete: catalog.OnDeleteCascade}
	g := &catalog.Graph{Root: root, Key: "id", KeyType: "uuid", Tables: []*catalog.Table{
		{Name: root, Reach: catalog.ReachRoot, Columns: []catalog.Column{{Name: "id", Type: "uuid"}}},
		{Name: parent, Reach: catalog.ReachCascade, Columns: []catalog.Column{{Name: "i d", Type: "bigint"}, {Name: "org", Type: "uuid"}}, Via: []catalog.FK{toRoot}},
		{Name: child, Reach: catalog.ReachCascade, Partitioned: true, Columns: []catalog.Column{{Name: `p"id`, Type: "bigint"}, {Name: "v", Type: "text"}}, Via: []catalog.FK{toParent}},
	}, FKs: []catalog.FK{toRoot, toParent}}
	if _, ok := g.SelectedByParent(g.Tables[1]); ok {
		t.Errorf("a child of the root is keyed: its tenant literal is the key")
	}
	ref, ok := g.SelectedByParent(g.Tables[2])
	if !ok || ref.Parent != g.Tables[1] || ref.Column != "i d" || ref.Type != "bigint" || ref.Child != `p"id` {
		t.Fatalf("SelectedByParent = %+v, %v", ref, ok)
	}
	head, tail := g.SelectByParentIDs(g.Tables[2], ref)
	if got, want := head+"1,2"+tail, `SELECT t0."p""id", t0."v" FROM unnest('{1,2}'::bigint[]) k(v) JOIN "s"."c""y" t0 ON t0."p""id" = k.v`; got != want {
		t.Errorf("SelectByParentIDs:\n got %s\nwant %s", got, want)
	}
	head, mid, tail := g.SelectByParentIDsTenants(g.Tables[2], ref)
	if got, want := head+"1,2"+mid+"0,1"+tail, `SELECT k.t::text, t0."p""id", t0."v" FROM unnest('{1,2}'::bigint[], '{0,1}'::integer[]) k(v, t) JOIN "s"."c""y" t0 ON t0."p""id" = k.v ORDER BY k.t`; got != want {
		t.Errorf("SelectByParentIDsTenants:\n got %s\nwant %s", got, want)
	}
	// What makes a table not keyed, one change at a time.
	for _, c := range []struct {
		name   string
		change func(g *catalog.Graph)
	}{
		{"parent key of type text", func(g *catalog.Graph) { g.Tables[1].Columns[0].Type = "text" }},
		{"parent with a changed column", func(g *catalog.Graph) { g.Tables[1].Changed = []string{"org"} }},
		{"two keys to the child", func(g *catalog.Graph) { g.Tables[2].Via = append(g.Tables[2].Via, toParent) }},
		{"composite key", func(g *catalog.Graph) {
			g.Tables[2].Via[0].Columns, g.Tables[2].Via[0].RefColumns = []string{`p"id`, "v"}, []string{"i d", "org"}
		}},
		{"set null key", func(g *catalog.Graph) { g.Tables[2].Via[0].OnDelete = catalog.OnDeleteSetNull }},
		{"child also an extra table", func(g *catalog.Graph) { g.Tables[2].ExtraColumns = []string{"v"} }},
		{"self reference", func(g *catalog.Graph) { g.Tables[2].Via[0].Parent = child }},
		{"generated (unsaved) parent column", func(g *catalog.Graph) { g.Tables[1].Columns = g.Tables[1].Columns[1:] }},
	} {
		g2 := *g
		g2.Tables = make([]*catalog.Table, len(g.Tables))
		for i, tb := range g.Tables {
			cp := *tb
			cp.Columns = slices.Clone(tb.Columns)
			cp.Via = slices.Clone(tb.Via)
			g2.Tables[i] = &cp
		}
		c.change(&g2)
		if ref, ok := g2.SelectedByParent(g2.Tables[2]); ok {
			t.Errorf("%s: keyed by %+v", c.name, ref)
		}
	}
}
