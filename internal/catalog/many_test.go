package catalog_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
)

// For every table SelectTenants accepts, on call-logd and on the graph schema, the
// rows it gives each tenant are exactly the rows Select gives that tenant; and on
// call-logd it accepts every table.
func TestSelectTenantsMatchesSelect(t *testing.T) {
	const seed = 8
	ctx, conn, g := calllogdDatabase(t, fixture.Options{Seed: seed, Tenants: 4, CallLogsPerTenant: 25})
	tenants := []uuid.UUID{fixture.TenantID(seed, 0), fixture.TenantID(seed, 2), fixture.TenantID(seed, 3)}
	for _, tb := range g.Tables {
		if _, ok := g.SelectTenants(tb, tenants); !ok {
			t.Errorf("call-logd %s: SelectTenants refused a single-chain table", tb.Name)
		}
	}
	compareMany(t, ctx, conn, g, tenants)

	gctx, gconn := graphDatabase(t)
	gg := load(t, gctx, gconn, graphOptions())
	compareMany(t, gctx, gconn, gg, []uuid.UUID{orgA, orgB, orgC, orgD})
}

func compareMany(t *testing.T, ctx context.Context, conn *pgx.Conn, g *catalog.Graph, tenants []uuid.UUID) {
	t.Helper()
	for _, tb := range g.Tables {
		sql, ok := g.SelectTenants(tb, tenants)
		if !ok {
			continue
		}
		got := routedLines(t, ctx, conn, tb.Name, sql)
		for _, id := range tenants {
			want := copyLines(t, ctx, conn, g.Select(tb, id))
			slices.Sort(want)
			if g := got[id.String()]; !slices.Equal(g, want) {
				t.Errorf("%s, tenant %s: SelectTenants gives %d rows, Select %d", tb.Name, id, len(g), len(want))
			}
		}
	}
}

// routedLines runs sql, whose rows start with a tenant field, and returns each
// tenant's rows (without the field), sorted. A snapshot routes such rows to one
// stream at a time: a tenant's rows must come together.
func routedLines(t *testing.T, ctx context.Context, conn *pgx.Conn, table catalog.Name, sql string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	var prev string
	for _, line := range copyLines(t, ctx, conn, sql) {
		tenant, row, _ := strings.Cut(line, "\t")
		if _, seen := got[tenant]; seen && tenant != prev {
			t.Errorf("%s: rows of tenant %s resume after %s: not grouped by tenant", table, tenant, prev)
		}
		prev = tenant
		got[tenant] = append(got[tenant], row)
	}
	for _, rows := range got {
		slices.Sort(rows)
	}
	return got
}

func copyLines(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string) []string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &buf, "COPY ("+sql+") TO STDOUT"); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	lines := strings.Split(buf.String(), "\n")
	return lines[:len(lines)-1]
}
