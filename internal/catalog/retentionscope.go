package catalog

import (
	"github.com/purgeguard/purgeguard/profile"

	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Rule is one kind of a scheduled retention purge. Rows of Table whose TimeColumn is
// before the tenant's cut-off are deleted, with everything that cascades from them;
// or, when NullTable is set, they stay, and the rows of NullTable referencing them
// get NullColumns set to NULL (call-logd's recordings: the file goes, the row stays).
type Rule = profile.PurgeRule

func nulls(r Rule) bool { return !r.NullTable.IsZero() }

// Retention renders what a retention purge removes or changes for some tenants,
// each with its own cut-off per kind. It selects, like Graph for a tenant purge:
// the rows the purge deletes, what cascades from them, the rows whose columns it
// nulls, and, for those, the rows they reference through the rule's table, so that
// a restore can put a nulled row back even after a later purge deleted it.
type Retention struct {
	g       *Graph
	rules   []ruleRefs
	cutoffs map[uuid.UUID]map[string]time.Time
}

type ruleRefs struct {
	Rule
	table *Table
	null  *Table
	fk    FK // NullTable → Table
}

// ErrRetention is wrapped by the errors of a retention set-up that does not match
// the database.
var ErrRetention = errors.New("retention rule does not match the database")

// Retention checks rules against the graph and returns the scope of a retention
// purge for the tenants of cutoffs, each of which needs a cut-off for every kind.
func (g *Graph) Retention(rules []Rule, cutoffs map[uuid.UUID]map[string]time.Time) (*Retention, error) {
	r := &Retention{g: g, cutoffs: cutoffs}
	for _, rule := range rules {
		rr := ruleRefs{Rule: rule, table: g.Table(rule.Table)}
		if rr.table == nil {
			return nil, fmt.Errorf("catalog: retention %s: table %s is not reached from %s: %w", rule.Kind, rule.Table, g.Root, ErrRetention)
		}
		for _, c := range []string{rule.TenantColumn, rule.TimeColumn} {
			if rr.table.Column(c) == nil {
				return nil, fmt.Errorf("catalog: retention %s: column %s.%s %w", rule.Kind, rule.Table, c, ErrNotFound)
			}
		}
		if nulls(rule) {
			rr.null = g.Table(rule.NullTable)
			if rr.null == nil {
				return nil, fmt.Errorf("catalog: retention %s: table %s is not reached from %s: %w", rule.Kind, rule.NullTable, g.Root, ErrRetention)
			}
			i := slices.IndexFunc(g.FKs, func(fk FK) bool { return fk.Child == rule.NullTable && fk.Parent == rule.Table })
			if i < 0 {
				return nil, fmt.Errorf("catalog: retention %s: no foreign key from %s to %s: %w", rule.Kind, rule.NullTable, rule.Table, ErrRetention)
			}
			rr.fk = g.FKs[i]
			if len(rule.NullColumns) == 0 {
				return nil, fmt.Errorf("catalog: retention %s: no column to null in %s: %w", rule.Kind, rule.NullTable, ErrRetention)
			}
			for _, c := range rule.NullColumns {
				col := rr.null.Column(c)
				if col == nil {
					return nil, fmt.Errorf("catalog: retention %s: column %s.%s %w", rule.Kind, rule.NullTable, c, ErrNotFound)
				}
				if col.NotNull {
					return nil, fmt.Errorf("catalog: retention %s: column %s.%s is NOT NULL: %w", rule.Kind, rule.NullTable, c, ErrRetention)
				}
			}
		}
		r.rules = append(r.rules, rr)
	}
	for t, cuts := range cutoffs {
		for _, rule := range rules {
			if _, ok := cuts[rule.Kind]; !ok {
				return nil, fmt.Errorf("catalog: retention: tenant %s has no %s cut-off", t, rule.Kind)
			}
		}
	}
	return r, nil
}

// Tables returns the graph's tables a retention purge can touch, in load order.
func (r *Retention) Tables() []*Table {
	var out []*Table
	for _, t := range r.g.Tables {
		if len(r.terms(&renderer{g: r.g, ctes: map[Name]string{}}, t, nil)) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Select returns a query selecting, with every stored column of t, the rows of t the
// retention purge of tenant removes or changes (and the rows those reference through
// a nulling rule's table). Like Graph.Select it takes no parameters.
func (r *Retention) Select(t *Table, tenant uuid.UUID) string {
	return r.SelectColumns(t, tenant, t.ColumnNames())
}

// SelectColumns is Select with a chosen column list.
func (r *Retention) SelectColumns(t *Table, tenant uuid.UUID, cols []string) string {
	rd := &renderer{g: r.g, ctes: map[Name]string{}}
	return rd.render(t, cols, r.terms(rd, t, []uuid.UUID{tenant}))
}

// SelectTenants is Graph.SelectTenants for the retention scope: the rows of several
// tenants in one scan, the tenant's key as text first, ordered by tenant.
func (r *Retention) SelectTenants(t *Table, tenants []uuid.UUID) (string, bool) {
	expr, joins, ok := r.g.attribution(t, true)
	if !ok || len(tenants) == 0 {
		return "", false
	}
	terms, ok := r.chainTerms(t, tenants)
	if !ok {
		return "", false
	}
	lits := make([]string, len(tenants))
	for i, id := range tenants {
		lits[i] = r.g.TenantLiteral(id)
	}
	return fmt.Sprintf("SELECT %s::text, %s FROM %s WHERE %s IN (%s) AND (%s) ORDER BY %s",
		expr, columnList(t.ColumnNames()), joins, expr, strings.Join(lits, ", "), strings.Join(terms, " OR "), expr), true
}

// chainTerms renders terms for a table on a strict cascade chain, on the aliases
// the attribution joins it with (t1 its parent, t2 the grandparent...): a row is
// deleted when any table up the chain anchors it, so each level is a plain
// condition on the joined row, not a subquery scanning the parent again.
func (r *Retention) chainTerms(t *Table, tenants []uuid.UUID) ([]string, bool) {
	anchor := r.anchor(tenants)
	var terms []string
	cur, alias := t, "t0"
	for depth := 1; cur != nil && cur.Name != r.g.Root; depth++ {
		terms = append(terms, anchor(cur, alias)...)
		fk, ok := cascadeParent(cur)
		if !ok || depth > len(r.g.Tables) {
			return nil, false
		}
		next := fmt.Sprintf("t%d", depth)
		for _, rule := range r.rules {
			if !nulls(rule.Rule) {
				continue
			}
			if rule.NullTable == cur.Name && depth == 1 && rule.fk.Constraint == fk.Constraint && rule.fk.Parent == fk.Parent {
				terms = append(terms, "("+notNull(rule.NullColumns, "t0")+") AND "+r.older(rule, next, tenants))
			} else if rule.NullTable == t.Name && depth == 1 {
				return nil, false // nulled through another key: the general form
			}
			if rule.Table == cur.Name && depth == 1 {
				terms = append(terms, r.older(rule, "t0", tenants)+" AND EXISTS (SELECT 1 FROM "+
					from(rule.null, "n1")+" WHERE "+match(rule.fk, "n1", "t0")+" AND ("+notNull(rule.NullColumns, "n1")+"))")
			}
		}
		cur, alias = r.g.Table(fk.Parent), next
	}
	if len(terms) == 0 {
		return nil, false
	}
	return terms, true
}

// terms are the conditions, any of which puts row t0 of t in the scope. With no
// tenants, every rule applies as if some tenant matched: that tells which tables
// the scope can reach.
func (r *Retention) terms(rd *renderer, t *Table, tenants []uuid.UUID) []string {
	rd.anchor = r.anchor(tenants)
	terms := append(rd.deleted(t, "t0", 0, true), rd.changed(t, "t0")...)
	for _, rule := range r.rules {
		if !nulls(rule.Rule) {
			continue
		}
		if rule.NullTable == t.Name {
			terms = append(terms, "("+notNull(rule.NullColumns, "t0")+") AND EXISTS (SELECT 1 FROM "+
				from(rule.table, "p1")+" WHERE "+match(rule.fk, "t0", "p1")+" AND "+r.older(rule, "p1", tenants)+")")
		}
		if rule.Table == t.Name {
			terms = append(terms, r.older(rule, "t0", tenants)+" AND EXISTS (SELECT 1 FROM "+
				from(rule.null, "n1")+" WHERE "+match(rule.fk, "n1", "t0")+" AND ("+notNull(rule.NullColumns, "n1")+"))")
		}
	}
	return terms
}

// anchor returns the renderer's anchor for a retention purge of tenants: rows of a
// deleting rule's table older than the tenant's cut-off.
func (r *Retention) anchor(tenants []uuid.UUID) func(t *Table, alias string) []string {
	return func(t *Table, alias string) []string {
		var out []string
		for _, rule := range r.rules {
			if !nulls(rule.Rule) && rule.Table == t.Name {
				out = append(out, r.older(rule, alias, tenants))
			}
		}
		return out
	}
}

// older renders: row alias of rule's table belongs to one of tenants and is older
// than that tenant's cut-off. Tenants are grouped by cut-off, so a nightly run over
// every tenant, most on the default, compares each row a few times, not once per
// tenant.
func (r *Retention) older(rule ruleRefs, alias string, tenants []uuid.UUID) string {
	if tenants == nil {
		return "true"
	}
	typ := rule.table.Column(rule.TenantColumn).Type
	groups := map[time.Time][]string{}
	for _, id := range tenants {
		cut := r.cutoffs[id][rule.Kind]
		groups[cut] = append(groups[cut], typed("'"+id.String()+"'", typ))
	}
	cuts := make([]time.Time, 0, len(groups))
	for c := range groups {
		cuts = append(cuts, c)
	}
	slices.SortFunc(cuts, time.Time.Compare)
	var parts []string
	for _, c := range cuts {
		parts = append(parts, fmt.Sprintf("%s.%s IN (%s) AND %s.%s < '%s'::timestamptz",
			alias, ident(rule.TenantColumn), strings.Join(groups[c], ", "),
			alias, ident(rule.TimeColumn), c.UTC().Format(time.RFC3339Nano)))
	}
	if len(parts) == 0 {
		return "false"
	}
	return "((" + strings.Join(parts, ") OR (") + "))"
}

func notNull(cols []string, alias string) string {
	conds := make([]string, len(cols))
	for i, c := range cols {
		conds[i] = alias + "." + ident(c) + " IS NOT NULL"
	}
	return strings.Join(conds, " OR ")
}

// Newer is a query counting, per tenant, the rows of one kind that a retention
// purge must leave alone: rows newer than the tenant's cut-off (for a nulling kind,
// the rows of NullTable still holding a value under such a row).
type Newer struct {
	Kind string
	SQL  string // SELECT tenant::text, count(*) ... GROUP BY 1
	// HeldSQL counts, the same way, every row of the kind the purge could take,
	// whatever its age: HeldSQL's count minus SQL's is what the purge takes.
	HeldSQL string
}

// NewerSQL returns one Newer per rule, for the tenants of the cut-offs.
func (r *Retention) NewerSQL() []Newer {
	tenants := make([]uuid.UUID, 0, len(r.cutoffs))
	for t := range r.cutoffs {
		tenants = append(tenants, t)
	}
	slices.SortFunc(tenants, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	var out []Newer
	for _, rule := range r.rules {
		typ := rule.table.Column(rule.TenantColumn).Type
		vals := make([]string, len(tenants))
		for i, t := range tenants {
			vals[i] = fmt.Sprintf("(%s, '%s'::timestamptz)", typed("'"+t.String()+"'", typ),
				r.cutoffs[t][rule.Kind].UTC().Format(time.RFC3339Nano))
		}
		cuts := "(VALUES " + strings.Join(vals, ", ") + ") AS c(k, cut)"
		tc, tm := ident(rule.TenantColumn), ident(rule.TimeColumn)
		// A row another rule deletes (a recording under a call log past the cdr
		// cut-off) may go whatever its own kind's cut-off says.
		t, join, keep := rule.table, "", ""
		if nulls(rule.Rule) {
			t = rule.null
			join = " JOIN " + from(rule.table, "p") + " ON " + match(rule.fk, "t0", "p")
			keep = " AND (" + notNull(rule.NullColumns, "t0") + ")"
		}
		hold := keep
		parent := "t0"
		if nulls(rule.Rule) {
			parent = "p"
		}
		rd := &renderer{g: r.g, ctes: map[Name]string{}}
		rd.anchor = r.anchor(tenants)
		if del := rd.deleted(t, "t0", 0, true); len(del) > 0 {
			keep += " AND NOT (" + strings.Join(del, " OR ") + ")"
		}
		head := "SELECT " + parent + "." + tc + "::text, count(*) FROM " + from(t, "t0") + join + " JOIN " + cuts +
			" ON c.k = " + parent + "." + tc + " WHERE "
		held := head + "true" + hold + " GROUP BY 1"
		sql := head + parent + "." + tm + " >= c.cut" + keep + " GROUP BY 1"
		if len(rd.defs) > 0 {
			sql = "WITH RECURSIVE " + strings.Join(rd.defs, ", ") + " " + sql
		}
		out = append(out, Newer{Kind: rule.Kind, SQL: sql, HeldSQL: held})
	}
	return out
}
