package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// relation is a table of pg_class: the root, an extra table, or one a foreign key joins.
type relation struct {
	oid       uint32
	name      Name
	kind      string // relkind: r, p, ...
	partition bool
	top       uint32 // the partitioned table a partition belongs to; else oid itself
	topName   Name
}

// constraint is a pg_constraint foreign key, not yet mapped to names.
type constraint struct {
	name                string
	child, parent       uint32 // conrelid, confrelid
	cols, refCols       []int16
	action              string // confdeltype
	setCols             []int16
	childTop, parentTop uint32
}

// attribute is a pg_attribute row, generated columns included: foreign keys may use them.
type attribute struct {
	num       int16
	name      string
	typ       string
	notNull   bool
	hasDef    bool
	identity  string
	generated bool
}

// Load computes the purge graph of o.Root from pg_catalog.
func Load(ctx context.Context, q Querier, o Options) (*Graph, error) {
	var version int
	if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("catalog: server version: %w", err)
	}
	if version < 120000 {
		// pg_partition_root() appeared in 12.
		return nil, fmt.Errorf("catalog: postgresql %d: version 12 or later is needed: %w", version/10000, ErrUnsupported)
	}

	what := "tenant root " + o.Root.String()
	root, err := resolve(ctx, q, o.Root, what)
	if err != nil {
		return nil, err
	}
	if root.kind == "r" {
		// DELETE without ONLY also deletes from legacy inheritance children, whose
		// rows a snapshot of the root would not hold.
		var inherited bool
		if err := q.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = $1)", root.oid).Scan(&inherited); err != nil {
			return nil, fmt.Errorf("catalog: %s: %w", what, err)
		}
		if inherited {
			return nil, fmt.Errorf("catalog: %s: has inheritance children: %w", what, ErrUnsupported)
		}
	}
	rootAttrs, err := attributes(ctx, q, []uint32{root.oid})
	if err != nil {
		return nil, err
	}
	key := findAttr(rootAttrs[root.oid], o.Key)
	if key == nil {
		return nil, fmt.Errorf("catalog: %s: column %q %w", what, o.Key, ErrNotFound)
	}
	var unique bool
	err = q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND i.indisunique
		AND i.indisvalid AND i.indnkeyatts = 1 AND i.indkey[0] = $2 AND i.indpred IS NULL AND i.indexprs IS NULL)`,
		root.oid, key.num).Scan(&unique)
	if err != nil {
		return nil, fmt.Errorf("catalog: %s: key uniqueness: %w", what, err)
	}
	if !unique {
		return nil, fmt.Errorf("catalog: %s: column %q is not unique (no primary key or unique constraint on it alone)", what, o.Key)
	}

	extras := map[uint32][]string{}
	var extraRels []relation
	for _, e := range o.ExtraTables {
		what := "extra table " + e.Table.String()
		r, err := resolve(ctx, q, e.Table, what)
		if err != nil {
			return nil, err
		}
		attrs, err := attributes(ctx, q, []uint32{r.oid})
		if err != nil {
			return nil, err
		}
		if findAttr(attrs[r.oid], e.Column) == nil {
			return nil, fmt.Errorf("catalog: %s: column %q %w", what, e.Column, ErrNotFound)
		}
		extraRels = append(extraRels, r)
		if !slices.Contains(extras[r.oid], e.Column) {
			extras[r.oid] = append(extras[r.oid], e.Column)
		}
	}

	cons, rels, err := foreignKeys(ctx, q, version)
	if err != nil {
		return nil, err
	}
	for _, r := range append(extraRels, root) {
		rels[r.oid] = r
	}
	b := &builder{root: root.oid, extras: extras, cons: cons, rels: rels}
	if err := b.reach(); err != nil {
		return nil, err
	}
	b.attrs, err = attributes(ctx, q, b.included())
	if err != nil {
		return nil, err
	}
	b.pks, err = primaryKeys(ctx, q, b.included())
	if err != nil {
		return nil, err
	}
	g, err := b.graph(o.Key, key.typ)
	if err != nil {
		return nil, err
	}
	if err := g.order(); err != nil {
		return nil, err
	}
	return g, nil
}

// resolve finds a table by name; what names it in errors ("tenant root public.x").
func resolve(ctx context.Context, q Querier, n Name, what string) (relation, error) {
	r := relation{name: n}
	var topSchema, topTable string
	err := q.QueryRow(ctx, `SELECT c.oid, c.relkind::text, c.relispartition, coalesce(pn.nspname, ''), coalesce(pc.relname, '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_class pc ON c.relispartition AND pc.oid = pg_partition_root(c.oid)
		LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2`, n.Schema, n.Table).
		Scan(&r.oid, &r.kind, &r.partition, &topSchema, &topTable)
	if isNoRows(err) {
		return r, fmt.Errorf("catalog: %s: table %w", what, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("catalog: %s: %w", what, err)
	}
	if r.kind != "r" && r.kind != "p" {
		return r, fmt.Errorf("catalog: %s: is not a table (relkind %s)", what, r.kind)
	}
	if r.partition {
		return r, fmt.Errorf("catalog: %s: is a partition of %s: name the partitioned table", what, Name{Schema: topSchema, Table: topTable})
	}
	r.top, r.topName = r.oid, r.name
	return r, nil
}

// foreignKeys returns every foreign key of the database that is not a clone of a
// partitioned table's (conparentid = 0), and the tables they join.
func foreignKeys(ctx context.Context, q Querier, version int) ([]constraint, map[uint32]relation, error) {
	setCols := "NULL::int2[]"
	if version >= 150000 {
		setCols = "con.confdelsetcols"
	}
	rows, err := q.Query(ctx, `SELECT con.conname, con.conrelid, con.confrelid, con.conkey, con.confkey,
		con.confdeltype::text, `+setCols+`
		FROM pg_constraint con WHERE con.contype = 'f' AND con.conparentid = 0
		ORDER BY con.conrelid, con.conname, con.oid`)
	if err != nil {
		return nil, nil, fmt.Errorf("catalog: foreign keys: %w", err)
	}
	var cons []constraint
	for rows.Next() {
		var c constraint
		if err := rows.Scan(&c.name, &c.child, &c.parent, &c.cols, &c.refCols, &c.action, &c.setCols); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("catalog: foreign keys: %w", err)
		}
		cons = append(cons, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("catalog: foreign keys: %w", err)
	}

	var oids []uint32
	for _, c := range cons {
		oids = append(oids, c.child, c.parent)
	}
	rows, err = q.Query(ctx, `SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relispartition,
		coalesce(pc.oid, c.oid), coalesce(pn.nspname, n.nspname), coalesce(pc.relname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_class pc ON c.relispartition AND pc.oid = pg_partition_root(c.oid)
		LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
		WHERE c.oid = ANY($1)`, oids)
	if err != nil {
		return nil, nil, fmt.Errorf("catalog: tables of foreign keys: %w", err)
	}
	rels := map[uint32]relation{}
	for rows.Next() {
		var r relation
		if err := rows.Scan(&r.oid, &r.name.Schema, &r.name.Table, &r.kind, &r.partition,
			&r.top, &r.topName.Schema, &r.topName.Table); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("catalog: tables of foreign keys: %w", err)
		}
		rels[r.oid] = r
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("catalog: tables of foreign keys: %w", err)
	}
	for i := range cons {
		cons[i].childTop = rels[cons[i].child].top
		cons[i].parentTop = rels[cons[i].parent].top
	}
	return cons, rels, nil
}

// attributes returns the columns of tables, in attnum order.
func attributes(ctx context.Context, q Querier, oids []uint32) (map[uint32][]attribute, error) {
	rows, err := q.Query(ctx, `SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
		a.attnotnull, a.atthasdef, a.attidentity::text, a.attgenerated <> ''
		FROM pg_attribute a WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
		ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return nil, fmt.Errorf("catalog: columns: %w", err)
	}
	defer rows.Close()
	attrs := map[uint32][]attribute{}
	for rows.Next() {
		var rel uint32
		var a attribute
		if err := rows.Scan(&rel, &a.num, &a.name, &a.typ, &a.notNull, &a.hasDef, &a.identity, &a.generated); err != nil {
			return nil, fmt.Errorf("catalog: columns: %w", err)
		}
		attrs[rel] = append(attrs[rel], a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: columns: %w", err)
	}
	return attrs, nil
}

// primaryKeys returns the attnums of each table's primary key, in key order.
func primaryKeys(ctx context.Context, q Querier, oids []uint32) (map[uint32][]int16, error) {
	rows, err := q.Query(ctx, `SELECT i.indrelid, i.indkey::int2[] FROM pg_index i
		WHERE i.indrelid = ANY($1) AND i.indisprimary`, oids)
	if err != nil {
		return nil, fmt.Errorf("catalog: primary keys: %w", err)
	}
	defer rows.Close()
	pks := map[uint32][]int16{}
	for rows.Next() {
		var rel uint32
		var cols []int16
		if err := rows.Scan(&rel, &cols); err != nil {
			return nil, fmt.Errorf("catalog: primary keys: %w", err)
		}
		pks[rel] = cols
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("catalog: primary keys: %w", err)
	}
	return pks, nil
}

func findAttr(attrs []attribute, name string) *attribute {
	for i := range attrs {
		if attrs[i].name == name {
			return &attrs[i]
		}
	}
	return nil
}

func attrByNum(attrs []attribute, num int16) *attribute {
	for i := range attrs {
		if attrs[i].num == num {
			return &attrs[i]
		}
	}
	return nil
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
