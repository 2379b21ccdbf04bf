package catalog

// Attribution returns the expression giving the tenant of a row of t, aliased t0,
// and the FROM clause it needs: the root's key, an extra table's tenant column, or
// the join along t's first cascade keys up to the root, as CountSQL counts. ok is
// false for a table a purge only changes (set null/default): it has no tenant.
func (g *Graph) Attribution(t *Table) (expr, from string, ok bool) {
	return g.attribution(t, false)
}
