package trash

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A kept row is its relation's record text when it was kept: its fields are the
// relation's columns then (trash_shape records their attribute numbers per
// capturing transaction). A migration may add or drop columns before trash save
// reads the row back as the relation's record now, which would fail ("malformed
// record literal") or, were the counts equal, put values in the wrong columns.
// Reshape rewrites such rows first, field by attribute number: a column dropped
// since loses its field, a column added since gets the value PostgreSQL gave the
// rows that were live then (its missing value, the default it was added with) or
// NULL. A column whose type changed keeps its field's text: the new type reads it
// or the save fails, naming the row's relation.

// reshapeBatch is how many rows one UPDATE rewrites.
var reshapeBatch = 1000

// staleShape is a transaction's rows of one relation, kept with other columns than
// the relation has now.
type staleShape struct {
	xid      string
	schema   string
	name     string
	was, now []int16
	missing  map[int16]*string // columns added since: the text of the value live rows got (nil: NULL)
}

// Reshape rewrites the kept rows whose relation's columns changed since, within
// tx, and forgets the shapes of transactions the trash no longer holds. It returns
// how many rows it rewrote. A trash installed before shapes were recorded has no
// trash_shape: its rows are read as they are.
func Reshape(ctx context.Context, tx pgx.Tx) (int64, error) {
	var has bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('purgeguard.trash_shape') IS NOT NULL").Scan(&has); err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	if !has {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM purgeguard.trash_shape s
		WHERE NOT EXISTS (SELECT 1 FROM purgeguard.trash t WHERE t.xid = s.xid)`); err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT s.xid::text, s.rel_schema, s.rel_name, s.attnums, c.attnums
		FROM purgeguard.trash_shape s
		CROSS JOIN LATERAL (SELECT array_agg(a.attnum ORDER BY a.attnum) AS attnums FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = to_regclass(quote_ident(s.rel_schema) || '.' || quote_ident(s.rel_name))
			AND a.attnum > 0 AND NOT a.attisdropped) c
		WHERE c.attnums IS NOT NULL AND c.attnums IS DISTINCT FROM s.attnums
		ORDER BY 1, 2, 3`)
	if err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	stale, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (staleShape, error) {
		var s staleShape
		err := r.Scan(&s.xid, &s.schema, &s.name, &s.was, &s.now)
		return s, err
	})
	if err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	if len(stale) == 0 {
		return 0, nil
	}
	// The values read for added columns are written under the output settings the
	// capture writes rows under (fence's row_text), for every reader to read alike.
	if _, err := tx.Exec(ctx, `SET LOCAL datestyle = 'ISO, MDY'; SET LOCAL intervalstyle = 'postgres';
		SET LOCAL timezone = 'UTC'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'`); err != nil {
		return 0, fmt.Errorf("trash: shapes: %w", err)
	}
	var n int64
	for _, s := range stale {
		if err := s.readMissing(ctx, tx); err != nil {
			return n, err
		}
		m, err := s.rewrite(ctx, tx)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readMissing reads, for each column added since the rows were kept, the value the
// relation's live rows got: its missing value (ADD COLUMN with a constant default),
// else NULL (no default; a volatile default's values were each row's own). A
// partitioned table's rows got its partitions' (the parent stores none), found by
// the column's name: a partition may order its columns otherwise.
func (s *staleShape) readMissing(ctx context.Context, tx pgx.Tx) error {
	s.missing = map[int16]*string{}
	for _, a := range s.now {
		if slices.Contains(s.was, a) {
			continue
		}
		var typ, name string
		err := tx.QueryRow(ctx, `SELECT format_type(a.atttypid, a.atttypmod), a.attname FROM pg_catalog.pg_attribute a
			WHERE a.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) AND a.attnum = $3`,
			s.schema, s.name, a).Scan(&typ, &name)
		if err != nil {
			return fmt.Errorf("trash: column %d of %s.%s: %w", a, s.schema, s.name, err)
		}
		// attmissingval is a one-element array of the column's type, stored as
		// anyarray: its text is read back through an array of the column's type
		// (format_type's name, quoted as SQL needs).
		var v *string
		err = tx.QueryRow(ctx, `SELECT (a.attmissingval::text::`+typ+`[])[1]::text
			FROM (SELECT r.oid AS relid, -1 AS level FROM pg_catalog.pg_class r WHERE r.oid = to_regclass(quote_ident($1) || '.' || quote_ident($2))
				UNION ALL SELECT t.relid, t.level FROM pg_catalog.pg_partition_tree(to_regclass(quote_ident($1) || '.' || quote_ident($2))) t) p
			JOIN pg_catalog.pg_attribute a ON a.attrelid = p.relid
			WHERE a.attname = $3 AND NOT a.attisdropped AND a.atthasmissing ORDER BY p.level LIMIT 1`,
			s.schema, s.name, name).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("trash: value of column %s added to %s.%s: %w", name, s.schema, s.name, err)
		}
		s.missing[a] = v
	}
	return nil
}

// rewrite rewrites the transaction's rows of the relation into its columns now,
// reshapeBatch at a time through a cursor (a transaction may have kept a million
// rows: none is held longer than its batch), then records that shape. The cursor
// reads the rows as they were when it was opened, not as its batches rewrite them.
func (s *staleShape) rewrite(ctx context.Context, tx pgx.Tx) (int64, error) {
	rel := pgx.Identifier{s.schema, s.name}.Sanitize()
	if _, err := tx.Exec(ctx, `DECLARE purgeguard_reshape NO SCROLL CURSOR FOR SELECT id, row FROM purgeguard.trash
		WHERE xid = $1::xid8 AND coalesce(rel_schema, table_schema) = $2 AND coalesce(rel_name, table_name) = $3`,
		s.xid, s.schema, s.name); err != nil {
		return 0, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
	}
	var n int64
	var fs []field
	ids := make([]int64, 0, reshapeBatch)
	texts := make([]string, 0, reshapeBatch)
	for {
		ids, texts = ids[:0], texts[:0]
		rows, err := tx.Query(ctx, "FETCH "+strconv.Itoa(reshapeBatch)+" FROM purgeguard_reshape")
		if err != nil {
			return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
		}
		for rows.Next() {
			var id int64
			var rec []byte
			if err := rows.Scan(&id, &rec); err != nil {
				rows.Close()
				return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
			}
			if fs, err = splitRecord(rec, fs); err != nil || len(fs) != len(s.was) {
				rows.Close()
				return n, fmt.Errorf("trash: row %d of %s: %d fields, kept with %d columns: %w", id, rel, len(fs), len(s.was), errRecord)
			}
			ids = append(ids, id)
			texts = append(texts, s.reshaped(rec, fs))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
		}
		if len(ids) == 0 {
			break
		}
		if _, err := tx.Exec(ctx, `UPDATE purgeguard.trash t SET row = v.row FROM unnest($1::bigint[], $2::text[]) v(id, row) WHERE t.id = v.id`,
			ids, texts); err != nil {
			return n, fmt.Errorf("trash: reshape rows of %s: %w", rel, err)
		}
		n += int64(len(ids))
	}
	if _, err := tx.Exec(ctx, "CLOSE purgeguard_reshape"); err != nil {
		return n, fmt.Errorf("trash: rows of %s to reshape: %w", rel, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE purgeguard.trash_shape SET attnums = $4 WHERE xid = $1::xid8 AND rel_schema = $2 AND rel_name = $3`,
		s.xid, s.schema, s.name, s.now); err != nil {
		return n, fmt.Errorf("trash: shape of %s: %w", rel, err)
	}
	return n, nil
}

// reshaped is rec, a record of the fields fs kept with s.was's columns, as a record
// of s.now's.
func (s *staleShape) reshaped(rec []byte, fs []field) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, a := range s.now {
		if i > 0 {
			b.WriteByte(',')
		}
		if k := slices.Index(s.was, a); k >= 0 {
			f := fs[k]
			switch {
			case f.null:
			case f.quoted:
				b.Write(rec[f.from-1 : f.to+1])
			default:
				b.Write(rec[f.from:f.to])
			}
			continue
		}
		if v := s.missing[a]; v != nil {
			b.WriteString(recordField(*v))
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
