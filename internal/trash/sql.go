package trash

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// Names of the trash's own columns in the selects rendered here, chosen so that no
// table column can clash with them.
const (
	colID     = `"trash.id"` // shared by the rows one statement kept: orders copies, names no row
	colCtid   = `"trash.ctid"`
	colTenant = `"trash.tenant"`
	colXid    = `"trash.xid"`
	colOp     = `"trash.op"`
)

// TenantColumn returns the column of t that holds its rows' tenant when the row
// alone tells it: the root's key, an extra table's tenant column, or the column of a
// single-column cascade key to the root's key. own reports whether that column is
// also the tenant a deleted row belongs to in the trash: true when t has no other
// cascade parent (a member of tenant A deleted because tenant B's project went is
// filed under B, the tenant whose purge took it, as B's snapshot would hold it).
func TenantColumn(g *catalog.Graph, t *catalog.Table) (col string, own bool) {
	cascades := 0
	for _, fk := range t.Via {
		if fk.OnDelete == catalog.OnDeleteCascade {
			cascades++
		}
	}
	switch {
	case t.Name == g.Root:
		return g.Key, true
	case len(t.ExtraColumns) > 0:
		return t.ExtraColumns[0], cascades == 0
	}
	for _, fk := range t.Via {
		if fk.OnDelete == catalog.OnDeleteCascade && fk.Parent == g.Root && len(fk.Columns) == 1 && fk.RefColumns[0] == g.Key {
			return fk.Columns[0], cascades == 1
		}
	}
	return "", false
}

// narrowColumns is the most columns rows casts out one by one.
const narrowColumns = 2

// relations maps each graph table to the partitions its trash rows were deleted
// from, other than itself (rel_name is NULL for a row deleted from the table itself).
type relations map[catalog.Name][]catalog.Name

// readRelations reads the partitions the trash holds rows of.
func readRelations(ctx context.Context, q catalog.Querier) (relations, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT table_schema, table_name, rel_schema, rel_name
		FROM purgeguard.trash WHERE rel_name IS NOT NULL ORDER BY 1, 2, 3, 4`)
	if err != nil {
		return nil, fmt.Errorf("trash: partitions: %w", err)
	}
	defer rows.Close()
	out := relations{}
	for rows.Next() {
		var t, r catalog.Name
		if err := rows.Scan(&t.Schema, &t.Table, &r.Schema, &r.Table); err != nil {
			return nil, fmt.Errorf("trash: partitions: %w", err)
		}
		out[t] = append(out[t], r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trash: partitions: %w", err)
	}
	return out, nil
}

// rows renders a select of t's trash rows meeting cond (on alias tr): the trash's
// own columns, then cols of each row read back as a record of the relation it came
// from. For a few columns (the keys Resolve joins on) each is cast out on its own,
// so that joins carry the values, not the whole record; for many, OFFSET 0 keeps
// the cast a column of its own, made once per row rather than once per field.
func (rs relations) rows(t *catalog.Table, cols []string, cond string) string {
	narrow := len(cols) <= narrowColumns
	one := func(rel catalog.Name, relCond string) string {
		sel := "SELECT tr.ctid AS " + colCtid + ", tr.id AS " + colID + ", tr.tenant AS " + colTenant + ", tr.xid AS " + colXid + ", tr.op AS " + colOp
		for _, c := range cols {
			id := pgx.Identifier{c}.Sanitize()
			if narrow {
				sel += ", (tr.row::" + rel.Sanitize() + ")." + id + " AS " + id
			} else {
				sel += ", (x.r)." + id + " AS " + id
			}
		}
		from := " FROM purgeguard.trash tr"
		if !narrow {
			from += " CROSS JOIN LATERAL (SELECT tr.row::" + rel.Sanitize() + " AS r OFFSET 0) x"
		}
		return sel + from +
			" WHERE tr.table_schema = " + literal(t.Name.Schema) + " AND tr.table_name = " + literal(t.Name.Table) +
			" AND " + relCond + " AND (" + cond + ")"
	}
	parts := []string{one(t.Name, "tr.rel_name IS NULL")}
	for _, p := range rs[t.Name] {
		parts = append(parts, one(p, "tr.rel_schema = "+literal(p.Schema)+" AND tr.rel_name = "+literal(p.Table)))
	}
	return strings.Join(parts, " UNION ALL ")
}

// Selector renders, for the snapshot engine, the trash rows of one tenant from the
// given transactions instead of the live rows. A row captured more than once (its
// file path emptied, then deleted) is saved once, in its earliest version: the one
// before any purge touched it.
type Selector struct {
	rels    relations
	xids    map[uuid.UUID][]uint64
	updated map[catalog.Name]bool // tables with emptied rows kept (OpUpdate)
	// repeated: per table, the transactions in which more than one statement kept
	// its rows (trash_shape.several, or the table and a partition of it)
	repeated map[catalog.Name]map[uint64]bool
	numbered bool // the rows carry xn (see xnRange)
}

// NewSelector reads what it needs within q (the snapshot's read): the partitions
// the trash holds rows of, the tables it holds emptied rows of, and the
// transactions that kept a table's rows in several statements.
func NewSelector(ctx context.Context, q catalog.Querier, xids map[uuid.UUID][]uint64) (*Selector, error) {
	rels, err := readRelations(ctx, q)
	if err != nil {
		return nil, err
	}
	repeated, err := readRepeated(ctx, q, rels)
	if err != nil {
		return nil, err
	}
	num, err := numbered(ctx, q)
	if err != nil {
		return nil, err
	}
	names, err := q.Query(ctx, "SELECT DISTINCT table_schema, table_name FROM purgeguard.trash WHERE op = "+literal(OpUpdate))
	if err != nil {
		return nil, fmt.Errorf("trash: tables with emptied rows: %w", err)
	}
	list, err := pgx.CollectRows(names, func(r pgx.CollectableRow) (catalog.Name, error) {
		var n catalog.Name
		err := r.Scan(&n.Schema, &n.Table)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("trash: tables with emptied rows: %w", err)
	}
	updated := map[catalog.Name]bool{}
	for _, n := range list {
		updated[n] = true
	}
	return &Selector{rels: rels, xids: xids, updated: updated, repeated: repeated, numbered: num}, nil
}

// readRepeated reads, from the shapes the captures recorded, the transactions in
// which a table's rows were kept by more than one statement (several, or shapes of
// the table and a partition): there one transaction may hold a row twice (deleted,
// put back, deleted again). fence install marks the shapes recorded before
// statements were counted several.
func readRepeated(ctx context.Context, q catalog.Querier, rels relations) (map[catalog.Name]map[uint64]bool, error) {
	if has, err := hasColumn(ctx, q, "purgeguard.trash_shape", "several"); err != nil || !has {
		return nil, err
	}
	table := map[catalog.Name]catalog.Name{} // a partition the trash holds rows of: its graph table
	for t, parts := range rels {
		for _, p := range parts {
			table[p] = t
		}
	}
	rows, err := q.Query(ctx, "SELECT xid::text, rel_schema, rel_name, several FROM purgeguard.trash_shape")
	if err != nil {
		return nil, fmt.Errorf("trash: shapes: %w", err)
	}
	defer rows.Close()
	seen := map[catalog.Name]map[uint64]bool{}
	repeated := map[catalog.Name]map[uint64]bool{}
	for rows.Next() {
		var (
			xidText string
			rel     catalog.Name
			several bool
		)
		if err := rows.Scan(&xidText, &rel.Schema, &rel.Table, &several); err != nil {
			return nil, fmt.Errorf("trash: shapes: %w", err)
		}
		xid, err := strconv.ParseUint(xidText, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("trash: shape of transaction %q: %w", xidText, err)
		}
		t, ok := table[rel]
		if !ok {
			t = rel
		}
		if seen[t] == nil {
			seen[t] = map[uint64]bool{}
		}
		if several || seen[t][xid] {
			if repeated[t] == nil {
				repeated[t] = map[uint64]bool{}
			}
			repeated[t][xid] = true
		}
		seen[t][xid] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trash: shapes: %w", err)
	}
	return repeated, nil
}

// Select selects every stored column of t's trash rows of tenant.
func (s *Selector) Select(t *catalog.Table, tenant uuid.UUID) string {
	return s.SelectColumns(t, tenant, t.ColumnNames())
}

// SelectColumns selects cols of t's trash rows of tenant from its transactions.
func (s *Selector) SelectColumns(t *catalog.Table, tenant uuid.UUID, cols []string) string {
	cond := xnRange(s.numbered, "tr", s.xids[tenant]) + "tr.tenant = " + literal(tenant.String()) + " AND tr.xid = ANY (" + xidArray(s.xids[tenant]) + ")"
	all := t.ColumnNames()
	for _, c := range cols {
		if !slices.Contains(all, c) {
			all = append(all, c)
		}
	}
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = "s." + pgx.Identifier{c}.Sanitize()
	}
	inner := s.rels.rows(t, all, cond)
	// A row is kept twice when it was emptied, then deleted, or deleted, put back
	// and deleted again: in another transaction (a delete in one transaction
	// deletes a row once, unless the same transaction inserted it again: then two
	// of its statements kept the table's rows). Only then
	// is the sort by key that keeps the first copy worth its cost. The copies were
	// kept by different statements, so their ids differ and the lower is the earlier.
	if !s.dedupe(t, tenant) {
		return "SELECT " + strings.Join(out, ", ") + " FROM (" + inner + ") s"
	}
	pk := make([]string, len(t.PrimaryKey))
	for i, c := range t.PrimaryKey {
		pk[i] = "u." + pgx.Identifier{c}.Sanitize()
	}
	return "SELECT " + strings.Join(out, ", ") + " FROM (SELECT DISTINCT ON (" + strings.Join(pk, ", ") + ") u.* FROM (" +
		inner + ") u ORDER BY " + strings.Join(pk, ", ") + ", u." + colID + ") s"
}

// dedupe reports whether tenant's rows of t may hold a row twice, to be saved once
// (see SelectColumns).
func (s *Selector) dedupe(t *catalog.Table, tenant uuid.UUID) bool {
	if len(t.PrimaryKey) == 0 {
		return false
	}
	if s.updated[t.Name] || len(s.xids[tenant]) > 1 {
		return true
	}
	return slices.ContainsFunc(s.xids[tenant], func(x uint64) bool { return s.repeated[t.Name][x] })
}

// SelectTenants has no single-scan form for the trash: false.
func (s *Selector) SelectTenants(*catalog.Table, []uuid.UUID) (string, bool) { return "", false }
