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
	// Grouping by the key's own type and casting each group, not each row, is what
	// keeps a guard's two counting passes cheap on a large database.
	count := func(expr, from string) string {
		return fmt.Sprintf("SELECT k::text, n FROM (SELECT %s AS k, count(*) AS n FROM %s GROUP BY 1) c", expr, from)
	}
	if t.Name == g.Root {
		return count("t0."+ident(g.Key), from(t, "t0"))
	}
	if len(t.ExtraColumns) > 0 {
		return count("t0."+ident(t.ExtraColumns[0]), from(t, "t0"))
	}
	joins := []string{from(t, "t0")}
	cur, alias := t, "t0"
	for depth := 1; ; depth++ {
		fk, ok := cascadeParent(cur)
		if !ok || depth > len(g.Tables) {
			return ""
		}
		if fk.Parent == g.Root && len(fk.RefColumns) == 1 && fk.RefColumns[0] == g.Key {
			// The last hop: the child's own column holds the tenant, no need to join the root.
			return count(alias+"."+ident(fk.Columns[0]), strings.Join(joins, " "))
		}
		parent := g.Table(fk.Parent)
		if parent == nil {
			return ""
		}
		next := fmt.Sprintf("t%d", depth)
		joins = append(joins, "JOIN "+from(parent, next)+" ON "+match(fk, alias, next))
		cur, alias = parent, next
		if cur.Name == g.Root {
			return count(alias+"."+ident(g.Key), strings.Join(joins, " "))
		}
	}
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
