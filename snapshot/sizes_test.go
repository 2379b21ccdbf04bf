package snapshot

import (
	"testing"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/testdata"
)

// Sizes order the work, largest first: a plain table has its own size, a
// partitioned one the sum of its partitions'. (pg_partition_tree alone gave every
// plain table 0, and the order was the catalog's.)
func TestRelationSizes(t *testing.T) {
	ctx := testenv.Context(t)
	conn := testenv.Connect(t, testenv.Postgres(t))
	for _, f := range []string{"graph/schema.sql", "graph/data.sql"} {
		if _, err := conn.Exec(ctx, testdata.MustSQL(f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	g, err := catalog.Load(ctx, conn, catalog.Options{Root: catalog.Name{Schema: "app", Table: "org"}, Key: "id"})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	sizes, err := relationSizes(ctx, tx, g)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	if err := conn.QueryRow(ctx, "SELECT sum(pg_relation_size(inhrelid))::bigint FROM pg_inherits WHERE inhparent = 'app.audit_log'::regclass").Scan(&want); err != nil {
		t.Fatal(err)
	}
	for _, tb := range g.Tables {
		n := sizes[tb.Name]
		switch {
		case tb.Partitioned && (n != want || n == 0):
			t.Errorf("%s (partitioned): size %d, want its partitions' %d", tb.Name, n, want)
		case !tb.Partitioned && n == 0:
			t.Errorf("%s: size 0, want its own (it holds rows)", tb.Name)
		}
	}
}
