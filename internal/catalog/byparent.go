package catalog

// ParentRef says that a table's purged rows are exactly the rows whose one foreign-key
// column holds the key of a row of Parent the purge deletes: a snapshot that has just
// read Parent's rows can select the child's by those keys (SelectByParentIDs) instead of
// joining back to Parent, which for call-logd's children of call_log means not
// scanning call_log again for each of them (no index on call_log.tenant_uuid).
type ParentRef struct {
	Parent *Table
	Column string // Parent's referenced column, one of its stored columns
	Type   string // its type: smallint, integer, bigint or uuid
	Child  string // the child's referencing column
}

// keyTypes are the types whose COPY text a reader parses into a typed value before
// it goes back into SQL: values are never copied into SQL unparsed.
var keyTypes = map[string]bool{"smallint": true, "integer": true, "bigint": true, "uuid": true}

// SelectedByParent reports whether t's purged rows can be selected from the keys of its
// parent's: t is reached only through one single-column cascade foreign key to
// another table than the root, is neither the root nor an extra table, has no
// column a purge changes; and every row of the parent a tenant snapshot saves is one the purge
// deletes (the parent has no changed columns either).
func (g *Graph) SelectedByParent(t *Table) (ParentRef, bool) {
	if t.Name == g.Root || len(t.ExtraColumns) > 0 || len(t.Changed) > 0 || len(t.Via) != 1 {
		return ParentRef{}, false
	}
	fk := t.Via[0]
	if fk.OnDelete != OnDeleteCascade || fk.Parent == t.Name || len(fk.Columns) != 1 || len(fk.RefColumns) != 1 {
		return ParentRef{}, false
	}
	// Under the root, the tenant literal is the key: nothing to gain.
	p := g.Table(fk.Parent)
	if p == nil || p.Name == g.Root || !p.deletes() || len(p.Changed) > 0 {
		return ParentRef{}, false
	}
	c := p.Column(fk.RefColumns[0])
	if c == nil || !keyTypes[c.Type] {
		return ParentRef{}, false
	}
	return ParentRef{Parent: p, Column: c.Name, Type: c.Type, Child: fk.Columns[0]}, true
}

// SelectByParentIDs returns the select of every stored column of t's rows that reference
// one of a list of keys, around the list: head + "k1,k2,..." + tail. The caller
// renders keys it parsed as ref.Type (decimal integers, canonical UUIDs), so that no
// text read from the database goes back into SQL as is. Keys are unique in the
// parent (a foreign key references a unique key): the join returns each row once.
func (g *Graph) SelectByParentIDs(t *Table, ref ParentRef) (head, tail string) {
	return "SELECT " + columnList(t.ColumnNames()) + " FROM unnest('{",
		"}'::" + ref.Type + "[]) k(v) JOIN " + from(t, "t0") + " ON t0." + ident(ref.Child) + " = k.v"
}

// SelectByParentIDsTenants is SelectByParentIDs for several tenants at once, around two lists
// of the same length: head + keys + mid + ordinals + tail, where ordinal i is the
// number of the tenant whose parent row holds key i. Each row comes with its
// tenant's ordinal as text first, ordered by it, so that a reader can route it to
// the tenant's stream.
func (g *Graph) SelectByParentIDsTenants(t *Table, ref ParentRef) (head, mid, tail string) {
	return "SELECT k.t::text, " + columnList(t.ColumnNames()) + " FROM unnest('{",
		"}'::" + ref.Type + "[], '{",
		"}'::integer[]) k(v, t) JOIN " + from(t, "t0") + " ON t0." + ident(ref.Child) + " = k.v ORDER BY k.t"
}
