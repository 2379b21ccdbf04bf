package catalog

import (
	"fmt"
	"strings"
)

// CountSQL returns a query counting t's rows per tenant: `SELECT tenant::text,
// count(*) ... GROUP BY 1`, each row attributed to the tenant its first cascade path
// leads to (or its extra column), joining up to the root. It is how a guard tells,
// after a purge, whose rows went. A table the purge only changes (set null/default)
// holds other tenants' rows: it has no attribution and returns "".
//
// Rows reached only through a self reference (a task under a task of another
// tenant) count for the tenant of their own path: the guard compares counts before
// and after, so any consistent attribution works.
func (g *Graph) CountSQL(t *Table) string {
	expr, joins, ok := g.attribution(t, false)
	if !ok {
		return ""
	}
	// Grouping by the key's own type and casting each group, not each row, is what
	// keeps a guard's two counting passes cheap on a large database.
	return fmt.Sprintf("SELECT k::text, n FROM (SELECT %s AS k, count(*) AS n FROM %s GROUP BY 1) c", expr, joins)
}

// attribution returns the expression giving a row's tenant and the FROM clause it
// needs: the root's key, an extra table's tenant column, or the join along the
// table's cascade chain up to the root (the root itself is not joined when the last
// key references its key). Loose, it follows each table's first cascade key to
// another table, and any table that deletes rows has one. Strict, every table on
// the chain must be reached by that one key alone (no self reference, no diamond, no
// SET NULL reach): then the join selects exactly what Select does per tenant.
func (g *Graph) attribution(t *Table, strict bool) (expr, joins string, ok bool) {
	single := func(t *Table) bool { return len(t.Via) <= 1 && len(t.Changed) == 0 }
	if strict && !single(t) {
		return "", "", false
	}
	if t.Name == g.Root {
		if strict && len(t.Via) > 0 {
			return "", "", false
		}
		return "t0." + ident(g.Key), from(t, "t0"), true
	}
	if len(t.ExtraColumns) > 0 {
		if strict && (len(t.Via) > 0 || len(t.ExtraColumns) > 1) {
			return "", "", false
		}
		return "t0." + ident(t.ExtraColumns[0]), from(t, "t0"), true
	}
	parts := []string{from(t, "t0")}
	cur, alias := t, "t0"
	for depth := 1; depth <= len(g.Tables); depth++ {
		fk, ok := cascadeParent(cur)
		if !ok || strict && (!single(cur) || len(cur.ExtraColumns) > 0) {
			return "", "", false
		}
		root := g.Table(g.Root)
		if strict && (root == nil || len(root.Via) > 0) {
			return "", "", false
		}
		if fk.Parent == g.Root && len(fk.RefColumns) == 1 && fk.RefColumns[0] == g.Key {
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
			return alias + "." + ident(g.Key), strings.Join(parts, " "), true
		}
	}
	return "", "", false
}

// cascadeParent is the first cascade foreign key of t to another table.
func cascadeParent(t *Table) (FK, bool) {
	for _, fk := range t.Via {
		if fk.Child == t.Name && fk.Parent != t.Name && fk.OnDelete == OnDeleteCascade {
			return fk, true
		}
	}
	return FK{}, false
}
