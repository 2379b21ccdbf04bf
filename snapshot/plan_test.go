package snapshot_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/snapshot"
)

// A dry run counts, table by table and tenant by tenant, exactly the rows and file
// paths the snapshot then saves: for one tenant, for several in one run, and for a
// retention scope.
func TestDryRunCountsWhatRunSaves(t *testing.T) {
	e := newEnv(t)
	cfg, err := pgx.ParseConfig(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	one := e.options(e.res.Tenants[0])
	three := e.options(e.res.Tenants[0], e.res.Tenants[1], e.res.Tenants[2])
	ret := e.options()
	ret.Retention = fixture.Retention(365)
	for name, o := range map[string]snapshot.Options{"one tenant": one, "three tenants": three, "retention": ret} {
		plans, err := snapshot.DryRun(testenv.Context(t), cfg, o)
		if err != nil {
			t.Fatalf("%s: dry run: %v", name, err)
		}
		ms := e.run(t, fileStore(t), o)
		saved := map[string]int{}
		for i, m := range ms {
			saved[m.Tenant.String()] = i
		}
		var rows int64
		for _, p := range plans {
			i, ok := saved[p.Tenant.String()]
			if !ok {
				if p.Rows != 0 || p.Files != 0 {
					t.Errorf("%s, tenant %s: dry run counts %d rows, %d files; the run saved no snapshot", name, p.Tenant, p.Rows, p.Files)
				}
				continue
			}
			m := ms[i]
			if len(p.Tables) != len(m.Tables) || p.Files != int64(len(m.Files)) || p.Scope.Kind != m.Scope.Kind {
				t.Errorf("%s, tenant %s: dry run %d tables, %d files, scope %s; snapshot %d, %d, %s",
					name, p.Tenant, len(p.Tables), p.Files, p.Scope.Kind, len(m.Tables), len(m.Files), m.Scope.Kind)
				continue
			}
			for j, tb := range m.Tables {
				if p.Tables[j].Table != tb.Schema+"."+tb.Name || p.Tables[j].Rows != tb.Rows {
					t.Errorf("%s, tenant %s: dry run %s %d rows, snapshot %s.%s %d", name, p.Tenant, p.Tables[j].Table, p.Tables[j].Rows, tb.Schema, tb.Name, tb.Rows)
				}
			}
			rows += p.Rows
		}
		if rows == 0 {
			t.Errorf("%s: nothing counted: the test compares nothing", name)
		}
	}
}
