package catalog_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
)

// On call-logd every table cascades along one path: per-tenant counts equal the
// rows Select finds for that tenant, and sum to the table's rows.
func TestCountSQLCallLogd(t *testing.T) {
	const seed = 5
	ctx, conn, g := calllogdDatabase(t, fixture.Options{Seed: seed, Tenants: 3, CallLogsPerTenant: 30, BigTenantCallLogs: 50})
	for _, tb := range g.Tables {
		sql := g.CountSQL(tb)
		if sql == "" {
			t.Errorf("%s: no count query", tb.Name)
			continue
		}
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		counts := map[string]int64{}
		for rows.Next() {
			var tenant *string
			var n int64
			if err := rows.Scan(&tenant, &n); err != nil {
				t.Fatal(err)
			}
			if tenant == nil {
				t.Errorf("%s: %d rows attributed to no tenant", tb.Name, n)
				continue
			}
			counts[*tenant] = n
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		var total int64
		for i := range 3 {
			tenant := fixture.TenantID(seed, i)
			var want int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM ("+g.Select(tb, tenant)+") x").Scan(&want); err != nil {
				t.Fatal(err)
			}
			if got := counts[tenant.String()]; got != want {
				t.Errorf("%s, tenant %d: counted %d, Select finds %d", tb.Name, i, got, want)
			}
			total += want
		}
		var all int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+tb.Name.Sanitize()).Scan(&all); err != nil {
			t.Fatal(err)
		}
		if total != all || all == 0 {
			t.Errorf("%s: %d rows attributed, table holds %d", tb.Name, total, all)
		}
	}
}

// On the graph schema every table that deletes rows has an attribution and the
// queries run; set-null-only tables have none.
func TestCountSQLGraph(t *testing.T) {
	ctx, conn := graphDatabase(t)
	g := load(t, ctx, conn, graphOptions())
	for _, tb := range g.Tables {
		sql := g.CountSQL(tb)
		onlyChanged := tb.Reach == catalog.ReachSetNull || tb.Reach == catalog.ReachSetDefault
		if onlyChanged {
			if sql != "" {
				t.Errorf("%s (%s): got a count query, want none", tb.Name, tb.Reach)
			}
			continue
		}
		if sql == "" {
			t.Errorf("%s (%s): no count query", tb.Name, tb.Reach)
			continue
		}
		rows, err := conn.Query(ctx, sql)
		if err != nil {
			t.Fatalf("%s: %s: %v", tb.Name, sql, err)
		}
		if _, err := pgx.CollectRows(rows, pgx.RowToMap); err != nil {
			t.Errorf("%s: %v", tb.Name, err)
		}
	}
}
