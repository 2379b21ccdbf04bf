package trash

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// A kept row is its relation's record text when it was kept: its fields are the
// relation's columns then (trash_shape records, per capturing transaction and
// relation, the relation's OID and its columns' attribute numbers and names). A
// migration may add or drop columns before trash save reads the row back as the
// relation's record now, which would fail ("malformed record literal") or, were the
// counts equal, put values in the wrong columns. Reshape rewrites such rows first:
// a column dropped since loses its field, a column added since gets the value
// PostgreSQL gave the rows live then (readMissing). A field goes by attribute
// number within one relation (a renamed column keeps its values), by name where
// the relation was made again (a restore of a dump, a copy renamed over it, which
// renumber the columns). A column whose type changed keeps its field's text: the
// new type reads it, or the save fails on it and the rows stay in the trash.

// reshapeBatch is how many rows one UPDATE rewrites.
var reshapeBatch = 1000

// shape is the columns of a relation: its OID, and its columns' attribute numbers
// and names in the record's order.
type shape struct {
	relid uint32
	nums  []int16
	names []string
}

// staleShape is the rows of one relation kept with other columns than the relation
// has now, the same columns in each of the transactions xids.
type staleShape struct {
	xids         []uint64
	schema, name string
	was, now     shape
	mixed        bool            // rows kept with other columns too, in the same transaction
	from         []int           // for each column now, its field in a row kept (-1: added since)
	missing      map[int]*string // for each column added since, the text of its value (nil: NULL)
}

// Reshape rewrites the kept rows whose relation's columns changed since, within
// tx, and forgets the shapes of transactions the trash no longer holds. It returns
// how many rows it rewrote. Rows with no shape recorded are read as they are.
func Reshape(ctx context.Context, tx pgx.Tx) (int64, error) {
	var has bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('purgeguard.trash_shape') IS NOT NULL").Scan(&has); err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	if !has {
		return 0, nil
	}
	num, err := numbered(ctx, tx)
	if err != nil {
		return 0, err
	}
	// A numbered trash forgets shapes as Remove removes their rows; this check
	// would read the whole trash (it has no B-tree on xid).
	if !num {
		if _, err := tx.Exec(ctx, `DELETE FROM purgeguard.trash_shape s
			WHERE NOT EXISTS (SELECT 1 FROM purgeguard.trash t WHERE t.xid = s.xid)`); err != nil {
			return 0, fmt.Errorf("trash: shapes: %w", err)
		}
	}
	// The relations' columns now, once per relation. A shape without an OID was
	// recorded before OIDs were: its relation is taken for the same.
	rows, err := tx.Query(ctx, `WITH cur AS (
			SELECT r.rel_schema, r.rel_name, c.relid, c.nums, c.names
			FROM (SELECT DISTINCT rel_schema, rel_name FROM purgeguard.trash_shape) r
			CROSS JOIN LATERAL (SELECT a.attrelid AS relid, array_agg(a.attnum ORDER BY a.attnum) AS nums,
					array_agg(a.attname::text ORDER BY a.attnum) AS names
				FROM pg_catalog.pg_attribute a
				WHERE a.attrelid = to_regclass(quote_ident(r.rel_schema) || '.' || quote_ident(r.rel_name))
					AND a.attnum > 0 AND NOT a.attisdropped
				GROUP BY a.attrelid) c)
		SELECT s.xid::text, s.rel_schema, s.rel_name, coalesce(s.relid, cur.relid), s.attnums, s.attnames, cur.relid, cur.nums, cur.names, s.mixed
		FROM purgeguard.trash_shape s JOIN cur USING (rel_schema, rel_name)
		WHERE coalesce(s.relid, cur.relid) <> cur.relid OR s.attnums IS DISTINCT FROM cur.nums
		ORDER BY 1, 2, 3`)
	if err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	stale, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (staleShape, error) {
		var s staleShape
		var xid string
		err := r.Scan(&xid, &s.schema, &s.name, &s.was.relid, &s.was.nums, &s.was.names, &s.now.relid, &s.now.nums, &s.now.names, &s.mixed)
		if err != nil {
			return s, err
		}
		x, err := strconv.ParseUint(xid, 10, 64)
		if err != nil {
			return s, fmt.Errorf("shape of transaction %q: %w", xid, err)
		}
		s.xids = []uint64{x}
		return s, nil
	})
	if err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	if len(stale) == 0 {
		return 0, nil
	}
	stale = sameShapes(stale)
	// The values read for added columns are written under the output settings the
	// capture writes rows under (fence's row_text), for every reader to read alike.
	if _, err := tx.Exec(ctx, `SET LOCAL datestyle = 'ISO, MDY'; SET LOCAL intervalstyle = 'postgres';
		SET LOCAL timezone = 'UTC'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'`); err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	var n int64
	values := addedValues{}
	for _, s := range stale {
		if num {
			// Shapes whose rows an earlier version's save removed are forgotten
			// here, before they are planned: their relation may since have changed
			// beyond what rows could be read back from, and no row needs it.
			if err := s.forgetEmpty(ctx, tx); err != nil {
				return n, err
			}
			if len(s.xids) == 0 {
				continue
			}
		}
		if err := s.plan(); err != nil {
			return n, err
		}
		if err := s.readMissing(ctx, tx, values); err != nil {
			return n, err
		}
		m, err := s.rewrite(ctx, tx, num)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// sameShapes merges the shapes of one relation that differ in their transaction
// alone, in the order of each one's first: a service deleting row by row leaves
// thousands of transactions, each of which would otherwise cost its own cursor and
// half a dozen round trips.
func sameShapes(stale []staleShape) []staleShape {
	var out []staleShape
	at := map[string]int{}
	for _, s := range stale {
		k := fmt.Sprintf("%q %q %t %d %v %q %d %v %q", s.schema, s.name, s.mixed, s.was.relid, s.was.nums, s.was.names, s.now.relid, s.now.nums, s.now.names)
		if i, ok := at[k]; ok {
			out[i].xids = append(out[i].xids, s.xids...)
			continue
		}
		at[k] = len(out)
		out = append(out, s)
	}
	return out
}

// forgetEmpty drops from s, and from trash_shape, the transactions that have no row
// of its relation left in the trash: one probe of the BRIN index each, stopped at
// its first row; for many transactions, one read of the ranges that bound them.
func (s *staleShape) forgetEmpty(ctx context.Context, tx pgx.Tx) error {
	live, err := withRows(ctx, tx, s.xids, "coalesce(t.rel_schema, t.table_schema) = $2 AND coalesce(t.rel_name, t.table_name) = $3", s.schema, s.name)
	if err != nil {
		return fmt.Errorf("trash: rows of %s to reshape: %w", pgx.Identifier{s.schema, s.name}.Sanitize(), err)
	}
	if len(live) == len(s.xids) {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM purgeguard.trash_shape WHERE rel_schema = $2 AND rel_name = $3
		AND xid = ANY ($1::text[]::xid8[]) AND NOT xid = ANY ($4::text[]::xid8[])`, xidTexts(s.xids), s.schema, s.name, xidTexts(live)); err != nil {
		return fmt.Errorf("trash: shapes of %s: %w", pgx.Identifier{s.schema, s.name}.Sanitize(), err)
	}
	s.xids = live
	return nil
}

// kept names the transactions whose rows s is, for a message.
func (s *staleShape) kept() string {
	if len(s.xids) == 1 {
		return fmt.Sprintf("transaction %d", s.xids[0])
	}
	return fmt.Sprintf("transaction %d and %d others", s.xids[0], len(s.xids)-1)
}

// plan maps each column now to its field in a row kept.
func (s *staleShape) plan() error {
	byName := s.was.relid != s.now.relid
	if byName && len(s.was.names) != len(s.was.nums) {
		return fmt.Errorf("trash: rows of %s kept in %s: the table was made again since, and their columns' names were not recorded: they cannot be read back",
			pgx.Identifier{s.schema, s.name}.Sanitize(), s.kept())
	}
	s.from = make([]int, len(s.now.nums))
	for i := range s.now.nums {
		if byName {
			s.from[i] = slices.Index(s.was.names, s.now.names[i])
		} else {
			s.from[i] = slices.Index(s.was.nums, s.now.nums[i])
		}
	}
	return nil
}

// same reports whether the rows kept read as they are: every column now is the
// field at its own place, and no field is left over.
func (s *staleShape) same() bool {
	if len(s.was.nums) != len(s.now.nums) {
		return false
	}
	for i, k := range s.from {
		if k != i {
			return false
		}
	}
	return true
}

// readMissing reads, for each column added since the rows were kept, the value the
// relation's live rows got: its missing value (ADD COLUMN with a constant default;
// a partitioned table's partitions hold it, found by the column's name, since a
// partition may order its columns otherwise), else, when a rewrite of the table
// has cleared that (VACUUM FULL, CLUSTER, a rewriting ALTER), its default
// evaluated now, else NULL. A generated column gets NULL: restore computes it.
// Each column's value is read once per run (values), however many transactions
// kept rows before it was added: a service deleting row by row leaves thousands.
func (s *staleShape) readMissing(ctx context.Context, tx pgx.Tx, values addedValues) error {
	s.missing = map[int]*string{}
	for i, k := range s.from {
		if k >= 0 {
			continue
		}
		col := addedColumn{s.now.relid, s.now.nums[i]}
		if v, ok := values[col]; ok {
			s.missing[i] = v
			continue
		}
		var missing, def *string
		err := tx.QueryRow(ctx, `SELECT
			(SELECT m.attmissingval::text
				FROM (SELECT $1::oid AS relid, -1 AS level
					UNION ALL SELECT t.relid, t.level FROM pg_catalog.pg_partition_tree($1::oid) t) p
				JOIN pg_catalog.pg_attribute m ON m.attrelid = p.relid
				WHERE m.attname = a.attname AND NOT m.attisdropped AND m.atthasmissing ORDER BY p.level LIMIT 1),
			(SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attrdef d
				WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = '')
			FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::oid AND a.attnum = $2`,
			s.now.relid, s.now.nums[i]).Scan(&missing, &def)
		if err != nil {
			return fmt.Errorf("trash: column %s added to %s: %w", s.now.names[i], pgx.Identifier{s.schema, s.name}.Sanitize(), err)
		}
		switch {
		case missing != nil:
			v, null, ok := arrayElement(*missing)
			if !ok {
				return fmt.Errorf("trash: column %s added to %s: its missing value %q is not a one-element array", s.now.names[i], pgx.Identifier{s.schema, s.name}.Sanitize(), *missing)
			}
			if !null {
				s.missing[i] = &v
			}
			values[col] = s.missing[i]
		case def != nil:
			// The default as the catalog prints it: an expression of the table's own
			// definition, evaluated once for every row kept.
			var v *string
			if err := tx.QueryRow(ctx, "SELECT ("+*def+")::text").Scan(&v); err != nil {
				return fmt.Errorf("trash: column %s added to %s: its default %s: %w", s.now.names[i], pgx.Identifier{s.schema, s.name}.Sanitize(), *def, err)
			}
			s.missing[i] = v
			values[col] = v
		default:
			values[col] = nil
		}
	}
	return nil
}

// addedColumn is a column of a relation (OID, attribute number); addedValues the
// text of the value each added column gives rows kept before it (nil: NULL).
type (
	addedColumn struct {
		relid uint32
		num   int16
	}
	addedValues map[addedColumn]*string
)

// arrayElement reads the one element of a one-dimensional array's text as
// array_out writes it: "{NULL}", "{v}" or "{"v"}" with quotes and backslashes
// escaped by a backslash inside.
func arrayElement(a string) (v string, null, ok bool) {
	if len(a) < 2 || a[0] != '{' || a[len(a)-1] != '}' {
		return "", false, false
	}
	in := a[1 : len(a)-1]
	if in == "NULL" {
		return "", true, true
	}
	if len(in) < 2 || in[0] != '"' || in[len(in)-1] != '"' {
		if in == "" || strings.ContainsAny(in, "{}\",\\") {
			return "", false, false
		}
		return in, false, true
	}
	var b strings.Builder
	for i := 1; i < len(in)-1; i++ {
		c := in[i]
		if c == '\\' {
			i++
			if i >= len(in)-1 {
				return "", false, false
			}
			c = in[i]
		} else if c == '"' {
			return "", false, false
		}
		b.WriteByte(c)
	}
	return b.String(), false, true
}

// rewrite rewrites the transactions' rows of the relation into their columns now,
// reshapeBatch at a time through a cursor (a transaction may have kept a million
// rows: none is held longer than its batch), then records that shape. The cursor
// reads the rows as they were when it was opened, not as its batches rewrite them;
// each batch is written back by the rows' ctid (the trash has no index on its id).
// A row already in the columns now (kept in the same transaction after a migration
// it ran, its shape recorded before) is left as it is; where the columns are as many
// as before, a mixed shape's rows cannot be told apart, and the save fails on them
// rather than guess.
func (s *staleShape) rewrite(ctx context.Context, tx pgx.Tx, numbered bool) (int64, error) {
	rel := pgx.Identifier{s.schema, s.name}.Sanitize()
	var n int64
	if !s.same() {
		if _, err := tx.Exec(ctx, `DECLARE purgeguard_reshape NO SCROLL CURSOR FOR SELECT ctid, xid::text, row FROM purgeguard.trash t
			WHERE `+xnRange(numbered, "t", s.xids)+`xid = ANY ($1::text[]::xid8[]) AND coalesce(rel_schema, table_schema) = $2 AND coalesce(rel_name, table_name) = $3`,
			xidTexts(s.xids), s.schema, s.name); err != nil {
			return 0, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
		}
		var fs []field
		tids := make([]pgtype.TID, 0, reshapeBatch)
		texts := make([]string, 0, reshapeBatch)
		for {
			tids, texts = tids[:0], texts[:0]
			rows, err := tx.Query(ctx, "FETCH "+strconv.Itoa(reshapeBatch)+" FROM purgeguard_reshape")
			if err != nil {
				return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
			}
			got := 0
			for rows.Next() {
				got++
				var tid pgtype.TID
				var xid string
				var rec []byte
				if err := rows.Scan(&tid, &xid, &rec); err != nil {
					rows.Close()
					return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
				}
				fs, err = splitRecord(rec, fs)
				switch {
				case err == nil && s.mixed && len(s.was.nums) == len(s.now.nums):
					rows.Close()
					return n, fmt.Errorf("trash: rows of %s kept in transaction %s: the transaction kept them both before and after a migration that left the relation as many columns: which is which cannot be told, and none is read back",
						rel, xid)
				case err == nil && len(fs) == len(s.was.nums):
					tids = append(tids, tid)
					texts = append(texts, s.reshaped(rec, fs))
				case err == nil && len(fs) == len(s.now.nums):
					// already in the columns now
				default:
					rows.Close()
					return n, fmt.Errorf("trash: a row of %s kept in transaction %s has %d fields, neither the %d columns it was kept with nor the %d it has: %w",
						rel, xid, len(fs), len(s.was.nums), len(s.now.nums), errRecord)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
			}
			if len(tids) > 0 {
				if _, err := tx.Exec(ctx, `UPDATE purgeguard.trash t SET row = v.row FROM unnest($1::tid[], $2::text[]) v(tid, row) WHERE t.ctid = v.tid`,
					tids, texts); err != nil {
					return n, fmt.Errorf("trash: reshape rows of %s: %w", rel, err)
				}
				n += int64(len(tids))
			}
			if got == 0 {
				break
			}
		}
		if _, err := tx.Exec(ctx, "CLOSE purgeguard_reshape"); err != nil {
			return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE purgeguard.trash_shape SET relid = $4, attnums = $5, attnames = $6
		WHERE xid = ANY ($1::text[]::xid8[]) AND rel_schema = $2 AND rel_name = $3`,
		xidTexts(s.xids), s.schema, s.name, s.now.relid, s.now.nums, s.now.names); err != nil {
		return n, fmt.Errorf("trash: shape of %s: %w", rel, err)
	}
	return n, nil
}

// reshaped is rec, a record of the fields fs kept with s.was's columns, as a record
// of s.now's.
func (s *staleShape) reshaped(rec []byte, fs []field) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, k := range s.from {
		if i > 0 {
			b.WriteByte(',')
		}
		if k < 0 {
			if v := s.missing[i]; v != nil {
				b.WriteString(recordField(*v))
			}
			continue
		}
		switch f := fs[k]; {
		case f.null:
		case f.quoted:
			b.Write(rec[f.from-1 : f.to+1])
		default:
			b.Write(rec[f.from:f.to])
		}
	}
	b.WriteByte(')')
	return b.String()
}

// recordField is v as record_out writes a field: quoted when it is empty or holds a
// quote, a backslash, a parenthesis, a comma or white space, quotes and
// backslashes doubled inside.
func recordField(v string) string {
	if v != "" && !strings.ContainsAny(v, "\"\\(),\t\n\v\f\r ") {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || c == '\\' {
			b.WriteByte(c)
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}
