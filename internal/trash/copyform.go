package trash

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// A kept row is the text record_out wrote: "(f1,f2,...)", every field its column's
// output text, NULL an empty unquoted field, and a field quoted ("…") when it is
// empty or holds a quote, a backslash, a parenthesis, a comma or white space, with
// quotes and backslashes doubled inside. Turning that text into a COPY line takes
// no database work: the values are the same output functions' text, only quoted
// another way. Casting it back to a record (record_in: every column's input
// function) for COPY to run the output functions again cost trash save most of its
// time.

// field is one field of a record's text: rec[from:to], quoted or not, or NULL.
type field struct {
	from, to int
	quoted   bool
	null     bool
}

// errRecord is the error of a kept row that is not a record's text.
var errRecord = errors.New("not a record's text")

// splitRecord appends the fields of rec, a record's text as record_out writes it,
// to fs[:0].
func splitRecord(rec []byte, fs []field) ([]field, error) {
	fs = fs[:0]
	if len(rec) < 2 || rec[0] != '(' || rec[len(rec)-1] != ')' {
		return nil, errRecord
	}
	end := len(rec) - 1
	i := 1
	for {
		switch {
		case i == end || rec[i] == ',':
			fs = append(fs, field{null: true})
		case rec[i] == '"':
			j := i + 1
			for {
				if j >= end {
					return nil, errRecord
				}
				if c := rec[j]; c == '\\' {
					j += 2
					continue
				} else if c == '"' {
					if j+1 < end && rec[j+1] == '"' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			fs = append(fs, field{from: i + 1, to: j, quoted: true})
			i = j + 1
		default:
			j := i
			for j < end && rec[j] != ',' {
				if c := rec[j]; c == '"' || c == '\\' {
					return nil, errRecord // record_out quotes such a field
				}
				j++
			}
			fs = append(fs, field{from: i, to: j})
			i = j
		}
		if i == end {
			return fs, nil
		}
		if rec[i] != ',' {
			return nil, errRecord
		}
		i++
	}
}

// appendCopyField appends f's value in COPY's text form: \N for NULL, backslash,
// and the control characters COPY escapes, escaped as COPY escapes them. Runs of
// bytes that need nothing are appended whole: most fields are such a run, and a
// byte-by-byte append was most of the conversion's time.
func appendCopyField(dst, rec []byte, f field) []byte {
	if f.null {
		return append(dst, '\\', 'N')
	}
	s := rec[f.from:f.to]
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] >= 0x20 && s[i] != '\\' && (!f.quoted || s[i] != '"') {
			i++
		}
		dst = append(dst, s[:i]...)
		if i == len(s) {
			break
		}
		c := s[i]
		if f.quoted && (c == '\\' || c == '"') {
			i++ // a doubled quote, or a backslash escaping the next byte
			c = s[i]
		}
		s = s[i+1:]
		switch c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\v':
			dst = append(dst, '\\', 'v')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendCopyLine appends the COPY text line of the fields at idx of rec, a record
// of n fields.
func appendCopyLine(dst, rec []byte, idx []int, n int, fs []field) ([]byte, []field, error) {
	fs, err := splitRecord(rec, fs)
	if err != nil {
		return dst, fs, err
	}
	if len(fs) != n {
		return dst, fs, fmt.Errorf("%w: %d fields, the table has %d columns", errRecord, len(fs), n)
	}
	for i, k := range idx {
		if i > 0 {
			dst = append(dst, '\t')
		}
		dst = appendCopyField(dst, rec, fs[k])
	}
	return append(dst, '\n'), fs, nil
}

// copyFlush is how much of the COPY text WriteRows gathers before each write.
const copyFlush = 256 << 10

// WriteRows writes t's trash rows of tenant, every stored column, to w as COPY TO
// STDOUT of the live rows wrote them, converting each kept record's text here (see
// splitRecord). ok is false, with nothing written, when Select must be used
// instead: for rows kept from partitions (each partition's column order is its
// own), and for rows that may be kept twice (Select keeps the earliest).
func (s *Selector) WriteRows(ctx context.Context, q catalog.Querier, t *catalog.Table, tenant uuid.UUID, w io.Writer) (ok bool, err error) {
	if len(s.rels[t.Name]) > 0 || s.dedupe(t, tenant) {
		return false, nil
	}
	// The record's fields are every column of the table but the dropped ones
	// (generated ones too), in attnum order.
	rows, err := q.Query(ctx, `SELECT a.attname FROM pg_attribute a
		WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, t.Name.Sanitize())
	if err != nil {
		return false, fmt.Errorf("trash: columns of %s: %w", t.Name, err)
	}
	attrs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("trash: columns of %s: %w", t.Name, err)
	}
	cols := t.ColumnNames()
	idx := make([]int, len(cols))
	for i, c := range cols {
		idx[i] = -1
		for k, a := range attrs {
			if a == c {
				idx[i] = k
			}
		}
		if idx[i] < 0 {
			return false, fmt.Errorf("trash: column %s of %s: %w", c, t.Name, catalog.ErrNotFound)
		}
	}
	// Values as literals, as the selects of SelectColumns: a prepared statement's
	// generic plan (from its sixth run, one per table) cannot tell one table's
	// page ranges from another's.
	rows, err = q.Query(ctx, `SELECT tr.row FROM purgeguard.trash tr
		WHERE `+xnRange(s.numbered, "tr", s.xids[tenant])+`tr.table_schema = `+literal(t.Name.Schema)+` AND tr.table_name = `+literal(t.Name.Table)+`
			AND tr.rel_name IS NULL AND tr.tenant = `+literal(tenant.String())+` AND tr.xid = ANY (`+xidArray(s.xids[tenant])+`)`)
	if err != nil {
		return true, fmt.Errorf("trash: rows of %s: %w", t.Name, err)
	}
	defer rows.Close()
	buf := make([]byte, 0, copyFlush+4096)
	var fs []field
	for rows.Next() {
		rec := rows.RawValues()[0]
		if buf, fs, err = appendCopyLine(buf, rec, idx, len(attrs), fs); err != nil {
			return true, fmt.Errorf("trash: a kept row of %s: %w", t.Name, err)
		}
		if len(buf) >= copyFlush {
			if _, err := w.Write(buf); err != nil {
				return true, err
			}
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return true, fmt.Errorf("trash: rows of %s: %w", t.Name, err)
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return true, err
		}
	}
	return true, nil
}
