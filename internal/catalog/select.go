package catalog

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Select returns a query selecting, with every stored column of t, exactly the rows
// of t that `DELETE FROM root WHERE key = tenant` (and deleting the extra tables' rows
// of tenant) removes or changes. It takes no parameters, so that it can go inside
// COPY (...) TO STDOUT: the tenant is a literal rendered from the typed uuid alone.
func (g *Graph) Select(t *Table, tenant uuid.UUID) string {
	return g.SelectColumns(t, tenant, t.ColumnNames())
}

// SelectColumns is Select with a chosen column list.
//
// Rows are found by semi-joins along the foreign keys by which the purge reaches t,
// OR'ed when there are several (diamonds), each parent row being itself a row the
// purge deletes; a table cascading from itself gets a WITH RECURSIVE closure of its
// deleted rows. The same graph and tenant always give the same text.
func (g *Graph) SelectColumns(t *Table, tenant uuid.UUID, cols []string) string {
	r := &renderer{g: g, ctes: map[Name]string{}}
	literal := "'" + tenant.String() + "'"
	r.anchor = func(t *Table, alias string) []string { return tenantAnchor(g, t, alias, literal) }
	return r.render(t, cols, append(r.deleted(t, "t0", 0, true), r.changed(t, "t0")...))
}

// render assembles the select of cols of t under terms (OR'ed), with the closures
// the terms use.
func (r *renderer) render(t *Table, cols []string, terms []string) string {
	sql := "SELECT " + columnList(cols) + " FROM " + from(t, "t0") + " WHERE " + strings.Join(terms, " OR ")
	if len(terms) == 0 {
		sql += "false"
	}
	if len(r.defs) > 0 {
		sql = "WITH RECURSIVE " + strings.Join(r.defs, ", ") + " " + sql
	}
	return sql
}

// TenantLiteral returns the tenant as an SQL literal of the root key's type.
func (g *Graph) TenantLiteral(tenant uuid.UUID) string {
	return typed("'"+tenant.String()+"'", g.KeyType)
}

type renderer struct {
	g *Graph
	// anchor returns the conditions that make row alias of t deleted by the purge
	// itself rather than through a foreign key: the tenant's root row and extra rows
	// for a tenant purge, the rows older than a cut-off for a retention purge.
	anchor func(t *Table, alias string) []string
	ctes   map[Name]string // closure name of each self-cascading table seen
	defs   []string        // closure definitions, each after those it uses
	path   []Name          // tables whose deleted rows are being rendered
}

// deleted returns the conditions, any of which makes row alias of t one the purge
// deletes. In t's own closure, self is false: the closure adds those rows itself.
func (r *renderer) deleted(t *Table, alias string, depth int, self bool) []string {
	if slices.Contains(r.path, t.Name) {
		// Load refuses such graphs; one built by hand would recurse forever.
		panic(fmt.Sprintf("catalog: cascade cycle through %s", t.Name))
	}
	r.path = append(r.path, t.Name)
	defer func() { r.path = r.path[:len(r.path)-1] }()

	terms := r.anchor(t, alias)
	for _, fk := range t.Via {
		if fk.OnDelete != OnDeleteCascade {
			continue
		}
		if fk.Parent != t.Name {
			if e := r.exists(fk, alias, depth); e != "" {
				terms = append(terms, e)
			}
		} else if self {
			d := r.closure(t)
			terms = append(terms, "EXISTS (SELECT 1 FROM "+d+" WHERE "+match(fk, alias, d)+")")
		}
	}
	return terms
}

// changed returns the conditions, any of which makes row alias of t one whose
// columns the purge sets to NULL or DEFAULT.
func (r *renderer) changed(t *Table, alias string) []string {
	var terms []string
	for _, fk := range t.Via {
		if fk.OnDelete != OnDeleteSetNull && fk.OnDelete != OnDeleteSetDefault {
			continue
		}
		if fk.Parent == t.Name && recursive(t) {
			d := r.closure(t)
			terms = append(terms, "EXISTS (SELECT 1 FROM "+d+" WHERE "+match(fk, alias, d)+")")
			continue
		}
		if e := r.exists(fk, alias, 0); e != "" {
			terms = append(terms, e)
		}
	}
	return terms
}

// tenantAnchor: t's rows the purge of one tenant deletes by themselves: the root's
// row and the extra table's rows of the tenant (literal, quoted, uncast).
func tenantAnchor(g *Graph, t *Table, alias, literal string) []string {
	var terms []string
	if t.Name == g.Root {
		terms = append(terms, alias+"."+ident(g.Key)+" = "+typed(literal, g.KeyType))
	}
	for _, c := range t.ExtraColumns {
		typ := ""
		if col := t.Column(c); col != nil {
			typ = col.Type
		}
		terms = append(terms, alias+"."+ident(c)+" = "+typed(literal, typ))
	}
	return terms
}

// exists renders: the row of fk.Parent that row alias references through fk is
// deleted; "" when no row of the parent is.
func (r *renderer) exists(fk FK, alias string, depth int) string {
	parent := r.g.Table(fk.Parent)
	if parent == nil {
		panic(fmt.Sprintf("catalog: foreign key %s references %s, which is not in the graph", fk.Constraint, fk.Parent))
	}
	p := fmt.Sprintf("t%d", depth+1)
	cond := r.deleted(parent, p, depth+1, true)
	where := match(fk, alias, p) + " AND "
	switch len(cond) {
	case 0:
		return ""
	case 1:
		where += cond[0]
	default:
		where += "(" + strings.Join(cond, " OR ") + ")"
	}
	return "EXISTS (SELECT 1 FROM " + from(parent, p) + " WHERE " + where + ")"
}

// closure returns the name of the recursive query holding, for every row of t the
// purge deletes, the columns t's self references point at. Rows reached through a
// self reference are found by joining on those columns, so NULLs in them never
// match, as in the foreign key.
func (r *renderer) closure(t *Table) string {
	if name, ok := r.ctes[t.Name]; ok {
		return name
	}
	name := fmt.Sprintf("d%d", len(r.ctes)+1)
	r.ctes[t.Name] = name
	// The definition is a scope of its own: t being rendered outside it is no cycle.
	outer := r.path
	r.path = nil
	defer func() { r.path = outer }()
	var keep []string
	var joins []string
	for _, fk := range t.Via {
		if fk.Parent != t.Name {
			continue
		}
		for _, c := range fk.RefColumns {
			if !slices.Contains(keep, c) {
				keep = append(keep, c)
			}
		}
		if fk.OnDelete == OnDeleteCascade {
			joins = append(joins, "("+match(fk, "t0", name)+")")
		}
	}
	colList := make([]string, len(keep))
	selList := make([]string, len(keep))
	for i, c := range keep {
		colList[i] = ident(c)
		selList[i] = "t0." + ident(c)
	}
	sel := "SELECT " + strings.Join(selList, ", ") + " FROM " + from(t, "t0")
	base := r.deleted(t, "t0", 0, false)
	def := name + " (" + strings.Join(colList, ", ") + ") AS (" + sel + " WHERE "
	if len(base) == 0 {
		def += "false"
	} else {
		def += strings.Join(base, " OR ")
	}
	if len(joins) > 0 {
		def += " UNION " + sel + " JOIN " + name + " ON " + strings.Join(joins, " OR ")
	}
	r.defs = append(r.defs, def+")")
	return name
}

func recursive(t *Table) bool {
	return slices.ContainsFunc(t.Via, func(fk FK) bool {
		return fk.Parent == t.Name && fk.OnDelete == OnDeleteCascade
	})
}

// match renders the join of fk: child row's columns equal the parent row's.
func match(fk FK, child, parent string) string {
	conds := make([]string, len(fk.Columns))
	for i, c := range fk.Columns {
		conds[i] = parent + "." + ident(fk.RefColumns[i]) + " = " + child + "." + ident(c)
	}
	return strings.Join(conds, " AND ")
}

// from renders a table with its alias. A plain table is read with ONLY: a cascade
// acts on that table's own rows, not on those of tables inheriting from it. A
// partitioned table is read whole: it stands for its partitions.
func from(t *Table, alias string) string {
	if t.Partitioned {
		return t.Name.Sanitize() + " " + alias
	}
	return "ONLY " + t.Name.Sanitize() + " " + alias
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// columnList renders the select list of cols on the table aliased t0.
func columnList(cols []string) string {
	list := make([]string, len(cols))
	for i, c := range cols {
		list[i] = "t0." + ident(c)
	}
	return strings.Join(list, ", ")
}

func typed(literal, typ string) string {
	if typ == "" {
		return literal
	}
	return literal + "::" + typ
}
