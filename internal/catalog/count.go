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
	key := ident(g.Key)
	if t.Name == g.Root {
		return fmt.Sprintf("SELECT t0.%s::text, count(*) FROM %s GROUP BY 1", key, from(t, "t0"))
	}
	if len(t.ExtraColumns) > 0 {
		return fmt.Sprintf("SELECT t0.%s::text, count(*) FROM %s GROUP BY 1", ident(t.ExtraColumns[0]), from(t, "t0"))
	}
	joins := []string{from(t, "t0")}
	cur, alias := t, "t0"
	for depth := 1; cur.Name != g.Root; depth++ {
		fk, ok := cascadeParent(cur)
		if !ok || depth > len(g.Tables) {
			return ""
		}
		parent := g.Table(fk.Parent)
		if parent == nil {
			return ""
		}
		next := fmt.Sprintf("t%d", depth)
		joins = append(joins, "JOIN "+from(parent, next)+" ON "+match(fk, alias, next))
		cur, alias = parent, next
	}
	return fmt.Sprintf("SELECT %s.%s::text, count(*) FROM %s GROUP BY 1", alias, key, strings.Join(joins, " "))
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
