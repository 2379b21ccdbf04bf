package snapshot

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// Plan is what a snapshot of one tenant would save, counted in one read of the
// database as Run reads it.
type Plan struct {
	Tenant uuid.UUID   `json:"tenant"`
	Scope  Scope       `json:"scope"`
	Tables []PlanTable `json:"tables"`
	Rows   int64       `json:"rows"`
	Files  int64       `json:"files"` // distinct paths the rows name, present or not
}

// PlanTable is one table of a Plan, in load order.
type PlanTable struct {
	Table string `json:"table"` // schema.table
	Rows  int64  `json:"rows"`
}

// DryRun counts, per tenant, the rows and file paths Run would save with the same
// options, and writes nothing anywhere. A table several tenants reach through one
// chain is counted for all of them in one scan, as Run reads it.
func DryRun(ctx context.Context, cfg *pgx.ConnConfig, o Options) ([]Plan, error) {
	o.defaults()
	r, e, files, scopes, err := prepare(ctx, cfg, &o, 1)
	if err != nil {
		return nil, err
	}
	defer r.close()
	plans := make([]Plan, len(o.Tenants))
	at := make(map[string]*Plan, len(o.Tenants))
	for i, t := range o.Tenants {
		plans[i] = Plan{Tenant: t, Scope: scopeOf(scopes[t]), Tables: []PlanTable{}}
		at[t.String()] = &plans[i]
	}
	for _, t := range e.tables {
		counts, err := e.count(ctx, r.coord, o.Tenants, t, "")
		if err != nil {
			return nil, fmt.Errorf("snapshot: count %s: %w", t.Name, err)
		}
		for i := range plans {
			n := counts[plans[i].Tenant.String()]
			plans[i].Tables = append(plans[i].Tables, PlanTable{Table: t.Name.String(), Rows: n})
			plans[i].Rows += n
		}
	}
	for _, c := range files {
		if !slices.Contains(e.tables, c.table) {
			continue // the scope holds no row of that table
		}
		counts, err := e.count(ctx, r.coord, o.Tenants, c.table, c.Column)
		if err != nil {
			return nil, fmt.Errorf("snapshot: count paths in %s.%s: %w", c.Table, c.Column, err)
		}
		for k, n := range counts {
			p, ok := at[k]
			if !ok {
				return nil, fmt.Errorf("snapshot: count paths in %s.%s: a row of tenant %q, not asked for", c.Table, c.Column, k)
			}
			p.Files += n
		}
	}
	return plans, nil
}

// count counts t's saved rows of each tenant, or with a column the distinct values
// it holds (NULL aside), in one scan for all tenants when the table allows it; keyed
// by the tenant's text.
func (e *exporter) count(ctx context.Context, q pgx.Tx, tenants []uuid.UUID, t *catalog.Table, column string) (map[string]int64, error) {
	agg := "count(*)"
	if column != "" {
		agg = "count(DISTINCT s." + pgx.Identifier{column}.Sanitize() + ")"
	}
	out := map[string]int64{}
	if sel, ok := e.sel.SelectTenants(t, tenants); ok && len(tenants) > 1 {
		rows, err := q.Query(ctx, "SELECT s.k, "+agg+" FROM ("+sel+") AS s(k) GROUP BY 1")
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, rows.Err()
	}
	for _, id := range tenants {
		sel := e.sel.Select(t, id)
		if column != "" {
			sel = e.sel.SelectColumns(t, id, []string{column})
		}
		var n int64
		if err := q.QueryRow(ctx, "SELECT "+agg+" FROM ("+sel+") AS s").Scan(&n); err != nil {
			return nil, err
		}
		out[id.String()] = n
	}
	return out, nil
}
