package trash

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// Resolve attributes every trash row it can to a tenant, in q (a transaction the
// caller commits), and returns how many it attributed. The trigger files a row
// under its tenant itself only when the row alone tells it (TenantColumn, own);
// here the others follow the graph's foreign keys, preferring the cause of their
// going:
//  1. a parent row in the trash that the row references (through a set null or set
//     default key for an emptied row, then through a cascade key): its tenant,
//     repeated until nothing changes, so chains and self references resolve;
//  2. the row's own tenant column (TenantColumn);
//  3. a live parent, through a cascade key: the tenant it is attributed to, as
//     guard counts it;
//
// and again from 1 for the rows below those. A row none of these reaches (its
// parent deleted by an approved purge in a transaction that also captured) keeps
// no tenant and stays in the trash: List shows it.
func Resolve(ctx context.Context, q pgx.Tx, g *catalog.Graph) (int64, error) {
	// The capturing fence files most rows under their tenant itself (a cascade's
	// children through their parent's kept rows): then there is nothing to do.
	pending, err := unresolved(ctx, q)
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	// Fresh statistics: the trash may have grown by a million rows since autovacuum
	// last looked, and a join planned on an empty table's estimates loops (ANALYZE
	// of a large trash takes seconds: only when there is something to join). JIT
	// compiles for nothing on these few statements.
	if _, err := q.Exec(ctx, "ANALYZE purgeguard.trash; SET LOCAL jit = off; SET LOCAL work_mem = '64MB'"); err != nil {
		return 0, fmt.Errorf("trash: prepare the attribution: %w", err)
	}
	rels, err := readRelations(ctx, q)
	if err != nil {
		return 0, err
	}
	var total int64
	run := func(sql string) (int64, error) {
		tag, err := q.Exec(ctx, sql)
		if err != nil {
			return 0, err
		}
		total += tag.RowsAffected()
		return tag.RowsAffected(), nil
	}
	for round := 0; len(pending) > 0 && round <= len(g.Tables)+2; round++ {
		progress := false
		// 1: trash parents, to a fixed point.
		for changed := true; changed; {
			changed = false
			for _, t := range g.Tables {
				if !pending[t.Name] {
					continue
				}
				for _, fk := range orderedVia(t) {
					p := g.Table(fk.Parent)
					if p == nil {
						continue
					}
					n, err := run(fromTrashParent(rels, t, p, fk))
					if err != nil {
						return total, fmt.Errorf("trash: attribute rows of %s through %s: %w", t.Name, fk.Constraint, err)
					}
					changed = changed || n > 0
					progress = progress || n > 0
				}
			}
		}
		if pending, err = unresolved(ctx, q); err != nil || len(pending) == 0 {
			return total, err
		}
		// 2 and 3: own columns, live parents.
		for _, t := range g.Tables {
			if !pending[t.Name] {
				continue
			}
			if col, _ := TenantColumn(g, t); col != "" {
				n, err := run(fromOwnColumn(rels, t, col))
				if err != nil {
					return total, fmt.Errorf("trash: attribute rows of %s by %s: %w", t.Name, col, err)
				}
				progress = progress || n > 0
			}
			for _, fk := range t.Via {
				p := g.Table(fk.Parent)
				if fk.OnDelete != catalog.OnDeleteCascade || p == nil || p.Name == t.Name {
					continue
				}
				sql, ok := fromLiveParent(g, rels, t, p, fk)
				if !ok {
					continue
				}
				n, err := run(sql)
				if err != nil {
					return total, fmt.Errorf("trash: attribute rows of %s through live %s: %w", t.Name, p.Name, err)
				}
				progress = progress || n > 0
			}
		}
		if !progress {
			break
		}
		if pending, err = unresolved(ctx, q); err != nil {
			return total, err
		}
	}
	return total, nil
}

// unresolved returns the tables that have trash rows without a tenant.
func unresolved(ctx context.Context, q catalog.Querier) (map[catalog.Name]bool, error) {
	out := map[catalog.Name]bool{}
	rows, err := q.Query(ctx, "SELECT DISTINCT table_schema, table_name FROM purgeguard.trash WHERE tenant IS NULL")
	if err != nil {
		return nil, fmt.Errorf("trash: rows without a tenant: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (catalog.Name, error) {
		var n catalog.Name
		err := r.Scan(&n.Schema, &n.Table)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("trash: rows without a tenant: %w", err)
	}
	for _, n := range list {
		out[n] = true
	}
	return out, nil
}

// orderedVia lists t's keys to check for a trashed parent: set null and set
// default first (an emptied row belongs with the deleted row it pointed at), then
// cascades.
func orderedVia(t *catalog.Table) []catalog.FK {
	var first, then []catalog.FK
	for _, fk := range t.Via {
		if fk.OnDelete == catalog.OnDeleteCascade {
			then = append(then, fk)
		} else {
			first = append(first, fk)
		}
	}
	return append(first, then...)
}

// fromTrashParent attributes t's rows without a tenant that reference, through fk,
// a trash row of p that has one. Through a set null/default key only emptied rows
// (OpUpdate) are attributed: a deleted row went by a cascade, not by that key.
func fromTrashParent(rels relations, t, p *catalog.Table, fk catalog.FK) string {
	cond := "tr.tenant IS NULL"
	if fk.OnDelete != catalog.OnDeleteCascade {
		cond += " AND tr.op = " + literal(OpUpdate)
	}
	eq := make([]string, len(fk.Columns))
	for i := range fk.Columns {
		eq[i] = "k." + pgx.Identifier{fk.Columns[i]}.Sanitize() + " = p." + pgx.Identifier{fk.RefColumns[i]}.Sanitize()
	}
	return "UPDATE purgeguard.trash c SET tenant = p." + colTenant +
		" FROM (" + rels.rows(p, fk.RefColumns, "tr.tenant IS NOT NULL") + ") p, (" + rels.rows(t, fk.Columns, cond) + ") k" +
		" WHERE c.ctid = k." + colCtid + " AND c.tenant IS NULL AND " + strings.Join(eq, " AND ")
}

// fromOwnColumn attributes t's rows without a tenant to their tenant column.
func fromOwnColumn(rels relations, t *catalog.Table, col string) string {
	c := "k." + pgx.Identifier{col}.Sanitize()
	return "UPDATE purgeguard.trash c SET tenant = " + c + "::text FROM (" + rels.rows(t, []string{col}, "tr.tenant IS NULL") + ") k" +
		" WHERE c.ctid = k." + colCtid + " AND c.tenant IS NULL AND " + c + " IS NOT NULL"
}

// fromLiveParent attributes t's rows without a tenant whose parent through the
// cascade key fk is a live row of p, to that row's tenant.
func fromLiveParent(g *catalog.Graph, rels relations, t, p *catalog.Table, fk catalog.FK) (string, bool) {
	expr, from, ok := g.Attribution(p)
	if !ok {
		return "", false
	}
	sel := make([]string, len(fk.RefColumns))
	eq := make([]string, len(fk.Columns))
	for i := range fk.Columns {
		ref := pgx.Identifier{fk.RefColumns[i]}.Sanitize()
		sel[i] = "t0." + ref
		eq[i] = "k." + pgx.Identifier{fk.Columns[i]}.Sanitize() + " = lp." + ref
	}
	return "UPDATE purgeguard.trash c SET tenant = lp." + colTenant + " FROM (SELECT " + expr + "::text AS " + colTenant + ", " + strings.Join(sel, ", ") +
		" FROM " + from + ") lp, (" + rels.rows(t, fk.Columns, "tr.tenant IS NULL") + ") k" +
		" WHERE c.ctid = k." + colCtid + " AND c.tenant IS NULL AND lp." + colTenant + " IS NOT NULL AND " + strings.Join(eq, " AND "), true
}
