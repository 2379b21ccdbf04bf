package catalog_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/testdata"
)

// The orgs of testdata/graph/data.sql.
var (
	orgA = uuid.MustParse("aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa")
	orgB = uuid.MustParse("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
	orgC = uuid.MustParse("cccccccc-cccc-4ccc-8ccc-cccccccccccc")
	orgD = uuid.MustParse("dddddddd-dddd-4ddd-8ddd-dddddddddddd")
)

func name(schema, table string) catalog.Name { return catalog.Name{Schema: schema, Table: table} }

// graphOptions names app.org and, as the tests of the graph schema do, app.usage.
func graphOptions() catalog.Options {
	return catalog.Options{
		Root:        name("app", "org"),
		Key:         "id",
		ExtraTables: []catalog.Extra{{Table: name("app", "usage"), Column: "org_id"}},
	}
}

// database returns a connection to a fresh database in which scripts have run.
func database(t *testing.T, scripts ...string) (context.Context, *pgx.Conn) {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, dsn)
	for _, s := range scripts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("run script: %v", err)
		}
	}
	return ctx, conn
}

// calllogdDatabase returns a fresh call-logd database generated with o, and its graph.
func calllogdDatabase(t *testing.T, o fixture.Options) (context.Context, *pgx.Conn, *catalog.Graph) {
	t.Helper()
	ctx, conn := database(t)
	if err := fixture.CreateSchema(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := fixture.Generate(ctx, conn, o); err != nil {
		t.Fatal(err)
	}
	return ctx, conn, load(t, ctx, conn, catalog.Options{Root: name("public", "call_logd_tenant"), Key: "uuid"})
}

func graphDatabase(t *testing.T) (context.Context, *pgx.Conn) {
	t.Helper()
	return database(t, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
}

func load(t *testing.T, ctx context.Context, conn *pgx.Conn, o catalog.Options) *catalog.Graph {
	t.Helper()
	g, err := catalog.Load(ctx, conn, o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return g
}

// tableNames returns the graph's tables as sorted "schema.table" strings.
func tableNames(g *catalog.Graph) []string {
	var names []string
	for _, t := range g.Tables {
		names = append(names, t.Name.String())
	}
	slices.Sort(names)
	return names
}

// checkOrder fails unless every foreign key between two tables of g, other than self
// references and the keys that break cycles, has its parent loaded before its child.
func checkOrder(t *testing.T, g *catalog.Graph) {
	t.Helper()
	pos := map[catalog.Name]int{}
	for i, tb := range g.Tables {
		pos[tb.Name] = i
	}
	if len(pos) != len(g.Tables) {
		t.Errorf("a table is listed twice: %v", tableNames(g))
	}
	broken := map[string]bool{}
	for _, c := range g.Cycles {
		broken[c.Break.Child.String()+"/"+c.Break.Constraint] = true
	}
	for _, fk := range g.FKs {
		if fk.Child == fk.Parent || broken[fk.Child.String()+"/"+fk.Constraint] {
			continue
		}
		if pos[fk.Parent] >= pos[fk.Child] {
			t.Errorf("load order: %s (#%d) before its parent %s (#%d) by %s", fk.Child, pos[fk.Child], fk.Parent, pos[fk.Parent], fk.Constraint)
		}
	}
	if len(g.Tables) == 0 || g.Tables[0].Name != g.Root {
		t.Errorf("load order does not start with the root %s", g.Root)
	}
}
