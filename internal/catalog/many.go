package catalog

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// SelectTenants selects the rows of several tenants in one scan: the tenant's key as
// text first, then t's stored columns, ordered by tenant, so that a reader can route
// each row to its tenant's stream while holding one stream open. It applies to a
// table whose rows reach the root through a single chain of cascade keys (no self
// reference, no diamond, no SET NULL reach), where the join along the chain selects
// exactly what Select does tenant by tenant; ok is false otherwise, and the caller
// uses Select per tenant.
func (g *Graph) SelectTenants(t *Table, tenants []uuid.UUID) (sql string, ok bool) {
	expr, joins, ok := g.attribution(t)
	if !ok || len(tenants) == 0 {
		return "", false
	}
	lits := make([]string, len(tenants))
	for i, id := range tenants {
		lits[i] = g.TenantLiteral(id)
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = "t0." + ident(c.Name)
	}
	// Ordered by the key itself, not its text: for one tenant the order is then
	// known from the WHERE clause and costs no sort.
	return fmt.Sprintf("SELECT %s::text, %s FROM %s WHERE %s IN (%s) ORDER BY %s",
		expr, strings.Join(cols, ", "), joins, expr, strings.Join(lits, ", "), expr), true
}

// attribution returns the expression giving a row's tenant and the FROM clause it
// needs, for a table on a single cascade chain to the root.
func (g *Graph) attribution(t *Table) (expr, joins string, ok bool) {
	if len(t.Changed) > 0 {
		return "", "", false
	}
	if t.Name == g.Root {
		if len(t.Via) > 0 {
			return "", "", false
		}
		return "t0." + ident(g.Key), from(t, "t0"), true
	}
	if len(t.ExtraColumns) > 0 {
		if len(t.Via) > 0 || len(t.ExtraColumns) > 1 {
			return "", "", false
		}
		return "t0." + ident(t.ExtraColumns[0]), from(t, "t0"), true
	}
	parts := []string{from(t, "t0")}
	cur, alias := t, "t0"
	for depth := 1; depth <= len(g.Tables); depth++ {
		if len(cur.Via) != 1 || len(cur.Changed) > 0 || len(cur.ExtraColumns) > 0 {
			return "", "", false
		}
		fk := cur.Via[0]
		if fk.OnDelete != OnDeleteCascade || fk.Parent == cur.Name {
			return "", "", false
		}
		if fk.Parent == g.Root && len(fk.RefColumns) == 1 && fk.RefColumns[0] == g.Key {
			if root := g.Table(g.Root); root == nil || len(root.Via) > 0 {
				return "", "", false
			}
			return alias + "." + ident(fk.Columns[0]), strings.Join(parts, " "), true
		}
		parent := g.Table(fk.Parent)
		if parent == nil {
			return "", "", false
		}
		next := fmt.Sprintf("t%d", depth)
		parts = append(parts, "JOIN "+from(parent, next)+" ON "+match(fk, alias, next))
		cur, alias = parent, next
		if cur.Name == g.Root {
			if len(cur.Via) > 0 {
				return "", "", false
			}
			return alias + "." + ident(g.Key), strings.Join(parts, " "), true
		}
	}
	return "", "", false
}
