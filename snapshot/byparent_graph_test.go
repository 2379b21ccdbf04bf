package snapshot_test

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/testdata"
)

// Children selected by the keys of their parent's saved rows hold exactly what the
// join back to the parent selects, for one tenant and for several in one run; and
// past the key budget a run falls back to the join and saves the same rows.
func TestRun_KeyedChildrenEqualJoined(t *testing.T) {
	e := newEnv(t)
	for _, tenants := range [][]int{{0}, {0, 1, 2}} {
		o := e.options()
		for _, i := range tenants {
			o.Tenants = append(o.Tenants, e.res.Tenants[i])
		}
		run := func(budget int64) ([]*archive.Manifest, string) {
			defer snapshot.SetKeyBudget(budget)()
			var logs bytes.Buffer
			o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := fileStore(t)
			ms := e.run(t, s, o)
			for _, m := range ms {
				for i, tb := range m.Tables {
					m.Tables[i].Key = strings.Join(storedLines(t, s, tb.Key), "")
				}
			}
			return ms, logs.String()
		}
		keyed, klog := run(16 << 20)
		joined, jlog := run(0)
		if !strings.Contains(klog, "selected by its parent's saved ids") || strings.Contains(klog, "over budget") {
			t.Fatalf("%d tenants: the run did not select children by their parent ids:\n%s", len(tenants), klog)
		}
		if !strings.Contains(jlog, "over budget") {
			t.Fatalf("%d tenants: the run over budget did not fall back to the join:\n%s", len(tenants), jlog)
		}
		for i := range keyed {
			for j, tb := range keyed[i].Tables {
				other := joined[i].Tables[j]
				if tb.Name != other.Name || tb.Key != other.Key || tb.Rows != other.Rows {
					t.Errorf("%d tenants, tenant %s, %s: by keys %d rows, joined %s %d rows, contents differ",
						len(tenants), keyed[i].Tenant, tb.Name, tb.Rows, other.Name, other.Rows)
				}
			}
			if keyed[i].Totals().Rows == 0 {
				t.Errorf("tenant %s: empty snapshot: the test compares nothing", keyed[i].Tenant)
			}
		}
		if !slices.EqualFunc(keyed, joined, func(a, b *archive.Manifest) bool { return a.Tenant == b.Tenant }) {
			t.Errorf("manifests in a different order")
		}
	}
}

// On the graph schema, where the keyed table's parent (a diamond) is saved tenant by
// tenant, all four orgs in one run: each snapshot's keyed table holds exactly what
// Select finds for its org.
func TestRun_KeyedUnderPerTenantParent(t *testing.T) {
	ctx := testenv.Context(t)
	dsn := testenv.Postgres(t)
	conn := testenv.Connect(t, dsn)
	for _, f := range []string{"graph/schema.sql", "graph/data.sql"} {
		if _, err := conn.Exec(ctx, testdata.MustSQL(f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	root, _ := catalog.ParseName("app.org")
	usage, _ := catalog.ParseName("app.usage")
	copts := catalog.Options{Root: root, Key: "id", ExtraTables: []catalog.Extra{{Table: usage, Column: "org_id"}}}
	var orgs []uuid.UUID
	for _, c := range "abcd" {
		orgs = append(orgs, uuid.MustParse(strings.ReplaceAll("xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx", "x", string(c))))
	}
	cfg, _ := pgx.ParseConfig(dsn)
	var logs bytes.Buffer
	s := fileStore(t)
	ss, err := snapshot.Run(ctx, cfg, s, snapshot.Options{Tenants: orgs, Graph: copts,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ms := manifests(t, s, ss)
	if !strings.Contains(logs.String(), `table="app.attachment \"v2\".files"`) || !strings.Contains(logs.String(), "selected by its parent's saved ids") {
		t.Fatalf("the attachment table was not selected by its parent ids:\n%s", logs.String())
	}
	g, err := catalog.Load(ctx, conn, copts)
	if err != nil {
		t.Fatal(err)
	}
	var keyed int
	for _, m := range ms {
		for _, tb := range m.Tables {
			table := g.Table(catalog.Name{Schema: tb.Schema, Table: tb.Name})
			var want bytes.Buffer
			if _, err := conn.PgConn().CopyTo(ctx, &want, "COPY ("+g.Select(table, m.Tenant)+") TO STDOUT"); err != nil {
				t.Fatal(err)
			}
			if got := storedLines(t, s, tb.Key); !slices.Equal(got, splitLines(want.String())) {
				t.Errorf("org %s, %s: snapshot holds %d rows, Select finds %d", m.Tenant, tb.Name, len(got), len(splitLines(want.String())))
			}
			if _, ok := g.SelectedByParent(table); ok {
				keyed += int(tb.Rows)
			}
		}
	}
	if keyed == 0 {
		t.Errorf("no row of a keyed table in any snapshot: the test compares nothing")
	}
}
