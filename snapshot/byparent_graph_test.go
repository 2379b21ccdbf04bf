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
			defer snapshot.SetKeyedShareMax(1)() // keyed whatever the tenants' share, within the budget
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

// The run picks, per child table, keyed selects for a tenant that is a small share
// of the parent's rows and the join back for a large one (the share summed over
// the tenants of a run), and both paths save the same rows, byte for byte per row.
func TestRun_KeyedOrJoinedByShare(t *testing.T) {
	e := newEnv(t)
	if _, err := e.conn.Exec(testenv.Context(t), "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	// Tenant #0 has 200 of the 380 call logs, the others 60 each: about 53% and 16%.
	defer snapshot.SetKeyedShareMax(0.3)()
	run := func(tenants []int) ([]*archive.Manifest, string) {
		o := e.options()
		for _, i := range tenants {
			o.Tenants = append(o.Tenants, e.res.Tenants[i])
		}
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
	const keyedMsg, joinedMsg = "selected by its parent's saved ids", "share of the parent too large"
	tests := []struct {
		name    string
		tenants []int
		keyed   bool
	}{
		{"small tenant", []int{1}, true},
		{"big tenant", []int{0}, false},
		{"two small tenants, their shares summed", []int{1, 2}, false}, // 120 of 380 call logs: over 0.3
		{"small and big tenants", []int{0, 1}, false},
		{"small tenant again", []int{3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, log := run(tt.tenants)
			if got := strings.Contains(log, keyedMsg); got != tt.keyed {
				t.Errorf("keyed selects: got %v, want %v:\n%s", got, tt.keyed, log)
			}
			if got := strings.Contains(log, joinedMsg); got == tt.keyed {
				t.Errorf("joined back by share: got %v, want %v:\n%s", got, !tt.keyed, log)
			}
			// The other path, forced, saves the same rows.
			restore := snapshot.SetKeyedShareMax(-1) // always joined
			if !tt.keyed {
				restore()
				restore = snapshot.SetKeyedShareMax(1) // always keyed
			}
			other, olog := run(tt.tenants)
			restore()
			if strings.Contains(olog, keyedMsg) == tt.keyed {
				t.Fatalf("forced run took the same path:\n%s", olog)
			}
			for i := range ms {
				for j, tb := range ms[i].Tables {
					if o := other[i].Tables[j]; tb.Name != o.Name || tb.Key != o.Key || tb.Rows != o.Rows {
						t.Errorf("tenant %s, %s: %d rows one way, %d the other, contents differ", ms[i].Tenant, tb.Name, tb.Rows, o.Rows)
					}
				}
			}
		})
	}
}
