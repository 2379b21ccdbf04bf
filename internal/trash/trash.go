// Package trash reads and empties purgeguard.trash, where the capturing fence keeps
// every row deleted (or emptied) by a statement guard did not approve. Each row is
// kept as the text form of the record (`OLD::text`, written under fixed output
// settings), with the graph table it belongs to, the relation it was deleted from (a
// partition of a partitioned table), the capturing transaction and its time. Read
// back, `row::relation` gives the record again, and COPY of its columns writes what
// COPY of the live row wrote: PostgreSQL's own output functions, not a re-encoding.
// trash save does without the cast where it can (Selector.WriteRows): the record's
// text already holds each column's output, only quoted another way than COPY's.
//
// Rows whose tenant the trigger could not tell on its own (a participant of a call
// log, a task under another tenant's task) are attributed by Resolve, through the
// graph's foreign keys, to the tenant whose deleted row caused theirs to go.
package trash

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// Table is the trash, as SQL names it.
const Table = "purgeguard.trash"

// Operations a trash row records.
const (
	OpDelete = "delete" // the row was deleted
	OpUpdate = "update" // the row's old version, before a column it held was emptied
)

// Exists reports whether the trash table is there (the fence installed, any mode).
func Exists(ctx context.Context, q catalog.Querier) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('purgeguard.trash') IS NOT NULL").Scan(&ok); err != nil {
		return false, fmt.Errorf("trash: look for %s: %w", Table, err)
	}
	return ok, nil
}

// Transaction is one capturing transaction's rows of one tenant.
type Transaction struct {
	Xid   uint64    `json:"xid"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Rows  int64     `json:"rows"`
}

// Group is what the trash holds of one tenant (Tenant nil: rows not attributed yet),
// table and transaction.
type Group struct {
	Tenant *uuid.UUID `json:"tenant"`
	Table  string     `json:"table"`
	Xid    uint64     `json:"xid"`
	First  time.Time  `json:"first"`
	Last   time.Time  `json:"last"`
	Rows   int64      `json:"rows"`
}

// List returns the trash's rows grouped by tenant, table and transaction, oldest
// first; with tenant set, that tenant's only.
func List(ctx context.Context, q catalog.Querier, tenant *uuid.UUID) ([]Group, error) {
	var filter string
	var args []any
	if tenant != nil {
		filter, args = "WHERE tenant = $1", []any{tenant.String()}
	}
	rows, err := q.Query(ctx, `
		SELECT tenant, table_schema || '.' || table_name, xid::text::numeric::bigint, first, last, n FROM (
			SELECT tenant, table_schema, table_name, xid, min(at) AS first, max(at) AS last, count(*) AS n
			FROM purgeguard.trash `+filter+`
			GROUP BY tenant, table_schema, table_name, xid) g
		ORDER BY first, 1, 2, xid`, args...)
	if err != nil {
		return nil, fmt.Errorf("trash: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Group, error) {
		var g Group
		var t *string
		var xid int64
		if err := r.Scan(&t, &g.Table, &xid, &g.First, &g.Last, &g.Rows); err != nil {
			return g, err
		}
		g.Xid = uint64(xid)
		if t != nil {
			id, err := uuid.Parse(*t)
			if err != nil {
				return g, fmt.Errorf("tenant %q: %w", *t, err)
			}
			g.Tenant = &id
		}
		return g, nil
	})
	if err != nil {
		return nil, fmt.Errorf("trash: list: %w", err)
	}
	return out, nil
}

// Stats are the trash's size and age, for metrics.
type Stats struct {
	Rows       int64      `json:"rows"`
	Unresolved int64      `json:"unresolved"` // rows no tenant is known for yet
	Oldest     *time.Time `json:"oldest,omitempty"`
}

// ReadStats counts the trash.
func ReadStats(ctx context.Context, q catalog.Querier) (Stats, error) {
	var s Stats
	err := q.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE tenant IS NULL), min(at) FROM purgeguard.trash").
		Scan(&s.Rows, &s.Unresolved, &s.Oldest)
	if err != nil {
		return s, fmt.Errorf("trash: count: %w", err)
	}
	return s, nil
}

// CountUnresolved counts the rows no tenant is known for yet (through a partial
// index: they are few, the trash may be large).
func CountUnresolved(ctx context.Context, q catalog.Querier) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, "SELECT count(*) FROM purgeguard.trash WHERE tenant IS NULL").Scan(&n); err != nil {
		return 0, fmt.Errorf("trash: count rows without a tenant: %w", err)
	}
	return n, nil
}

// Transactions returns, per tenant, the capturing transactions of its attributed
// rows, in xid order. A transaction commits its rows at once, so a set of xids read
// now names exactly the rows a later read or delete by (tenant, xid) finds.
func Transactions(ctx context.Context, q catalog.Querier) (map[uuid.UUID][]Transaction, error) {
	// Grouped by the xid8 itself: its conversion, once per group, not per row.
	rows, err := q.Query(ctx, `
		SELECT tenant, xid::text::numeric::bigint, first, last, n FROM (
			SELECT tenant, xid, min(at) AS first, max(at) AS last, count(*) AS n
			FROM purgeguard.trash WHERE tenant IS NOT NULL GROUP BY tenant, xid) g
		ORDER BY tenant, xid`)
	if err != nil {
		return nil, fmt.Errorf("trash: transactions: %w", err)
	}
	defer rows.Close()
	out := map[uuid.UUID][]Transaction{}
	for rows.Next() {
		var t string
		var xid int64
		var tr Transaction
		if err := rows.Scan(&t, &xid, &tr.First, &tr.Last, &tr.Rows); err != nil {
			return nil, fmt.Errorf("trash: transactions: %w", err)
		}
		id, err := uuid.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("trash: a row of tenant %q, not a UUID: %w", t, err)
		}
		tr.Xid = uint64(xid)
		out[id] = append(out[id], tr)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trash: transactions: %w", err)
	}
	return out, nil
}

// numbered reports whether the trash's rows carry xn, their transaction's number
// under the trash's BRIN index (a fence installed by an earlier version has a
// B-tree on xid instead: readers then select by xid alone).
func numbered(ctx context.Context, q catalog.Querier) (bool, error) {
	return hasColumn(ctx, q, Table, "xn")
}

// hasColumn reports whether the fence's table rel (schema-qualified) has column
// col: a fence installed by an earlier version lacks the columns added since,
// until fence install runs again.
func hasColumn(ctx context.Context, q catalog.Querier, rel, col string) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
		WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped)`, rel, col).Scan(&ok); err != nil {
		return false, fmt.Errorf("trash: columns of %s: %w", rel, err)
	}
	return ok, nil
}

// xnRange renders, for a trash whose rows are numbered, a condition on alias's xn
// that xids' rows meet, followed by AND: the BRIN index then reads the page ranges
// those transactions' rows are in, and the exact xid condition beside it picks
// them. A few transactions are listed (one probe of the index each, so a tenant's
// transactions far apart do not read every range between them); many, as a service
// deleting row by row leaves, are bounded. Nothing for a trash whose rows are not
// numbered, or no xids.
func xnRange(numbered bool, alias string, xids []uint64) string {
	if !numbered || len(xids) == 0 {
		return ""
	}
	if len(xids) <= xnListed {
		return alias + ".xn = ANY ('{" + strings.Join(xidTexts(xids), ",") + "}'::bigint[]) AND "
	}
	lo, hi := slices.Min(xids), slices.Max(xids)
	return fmt.Sprintf("%s.xn BETWEEN %d AND %d AND ", alias, lo, hi)
}

// xnListed is how many transactions xnRange lists rather than bounds.
const xnListed = 64

// Summarize prepares the trash for reading, within tx: it summarizes the page
// ranges of the trash's BRIN index that are not summarized yet (the rows kept
// since the last VACUUM or save), so that the reads after it skip the ranges of
// other transactions and tables instead of reading all of those, and it analyzes
// the columns readers select by: a trash just filled has no statistics, and
// without them the planner passes the BRIN index by for a scan of the whole trash
// per table. It needs the trash's owner: for another role, or a trash without the
// index (an earlier version's fence), it does nothing. It returns how many ranges
// it summarized.
func Summarize(ctx context.Context, tx pgx.Tx) (int64, error) {
	var n *int64
	err := tx.QueryRow(ctx, `SELECT CASE WHEN to_regclass('purgeguard.trash_xn_table') IS NOT NULL
			AND pg_catalog.pg_has_role((SELECT relowner FROM pg_catalog.pg_class WHERE oid = 'purgeguard.trash'::regclass), 'USAGE')
		THEN pg_catalog.brin_summarize_new_values(to_regclass('purgeguard.trash_xn_table'))::bigint END`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("trash: summarize the index of %s: %w", Table, err)
	}
	if n == nil {
		return 0, nil
	}
	if _, err := tx.Exec(ctx, "ANALYZE purgeguard.trash (xn, xid, table_schema, table_name, rel_schema, rel_name, op, tenant)"); err != nil {
		return *n, fmt.Errorf("trash: analyze %s: %w", Table, err)
	}
	return *n, nil
}

// Delete removes tenant's rows of the transactions xids: what a committed trash
// snapshot holds.
func Delete(ctx context.Context, q catalog.Querier, tenant uuid.UUID, xids []uint64) (int64, error) {
	num, err := numbered(ctx, q)
	if err != nil {
		return 0, err
	}
	return deleteRows(ctx, q, num, tenant, xids)
}

// deleteRows is Delete on a trash whose rows are numbered or not (num).
func deleteRows(ctx context.Context, q catalog.Querier, num bool, tenant uuid.UUID, xids []uint64) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `WITH d AS (DELETE FROM purgeguard.trash t WHERE `+xnRange(num, "t", xids)+`tenant = $1 AND xid = ANY ($2::text[]::xid8[]) RETURNING 1)
		SELECT count(*) FROM d`, tenant.String(), xidTexts(xids)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("trash: delete rows of tenant %s: %w", tenant, err)
	}
	if !num {
		return n, nil // Reshape forgets the shapes of an earlier fence's trash
	}
	// The shapes of those transactions that kept no other tenant's rows go too.
	live, err := withRows(ctx, q, xids, "true")
	if err != nil {
		return 0, fmt.Errorf("trash: shapes of tenant %s's transactions: %w", tenant, err)
	}
	var gone int64
	if err := q.QueryRow(ctx, `WITH d AS (DELETE FROM purgeguard.trash_shape WHERE xid = ANY ($1::text[]::xid8[])
		AND NOT xid = ANY ($2::text[]::xid8[]) RETURNING 1) SELECT count(*) FROM d`, xidTexts(xids), xidTexts(live)).Scan(&gone); err != nil {
		return 0, fmt.Errorf("trash: shapes of tenant %s's transactions: %w", tenant, err)
	}
	return n, nil
}

// withRows returns which of xids still have a row in a numbered trash meeting cond
// (on alias t; its arguments from $2 on). A few transactions are probed one by one
// through the BRIN index, each stopped at its first row; many (a service deleting
// row by row) are read at once over the page ranges that bound them, since a probe
// of a transaction whose rows are gone reads its page ranges whole.
func withRows(ctx context.Context, q catalog.Querier, xids []uint64, cond string, args ...any) ([]uint64, error) {
	var live []uint64
	collect := func(sql string) error {
		rows, err := q.Query(ctx, sql, append([]any{xidTexts(xids)}, args...)...)
		if err != nil {
			return err
		}
		live, err = pgx.CollectRows(rows, pgx.RowTo[uint64])
		return err
	}
	if len(xids) <= xnListed {
		err := withoutSeqscan(ctx, q, func() error {
			return collect(`SELECT x::text::bigint FROM unnest($1::text[]::xid8[]) x WHERE EXISTS (SELECT 1 FROM purgeguard.trash t
				WHERE t.xn = x::text::bigint AND t.xid = x AND ` + cond + ` LIMIT 1)`)
		})
		return live, err
	}
	err := collect(`SELECT DISTINCT t.xn FROM purgeguard.trash t WHERE ` + xnRange(true, "t", xids) + `t.xid = ANY ($1::text[]::xid8[]) AND ` + cond)
	return live, err
}

// rowOfShape selects a trash row of shape s's transaction, if it has one: a probe
// of the BRIN index by the transaction's number, stopped at the first row.
const rowOfShape = `SELECT 1 FROM purgeguard.trash t WHERE t.xn = s.xid::text::bigint AND t.xid = s.xid LIMIT 1`

// withoutSeqscan runs fn with sequential scans off for q's transaction, then puts
// the setting back: a probe by transaction number must go through the trash's BRIN
// index, one page range per transaction, where a planner counting on a join would
// read the whole trash (q must be in a transaction, whose end puts it back too).
func withoutSeqscan(ctx context.Context, q catalog.Querier, fn func() error) error {
	var prev string
	if err := q.QueryRow(ctx, "SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)").Scan(&prev, nil); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	return q.QueryRow(ctx, "SELECT set_config('enable_seqscan', $1, true)", prev).Scan(nil)
}

// TruncateLockTimeout is how long Remove waits for the trash's exclusive lock
// before it deletes row by row instead: a service transaction capturing rows holds
// a lock that conflicts, and every capture behind the waiting TRUNCATE would wait too.
const TruncateLockTimeout = "200ms"

// SQLSTATEs on which Remove deletes instead of truncating.
const (
	lockNotAvailable      = "55P03"
	insufficientPrivilege = "42501"
)

// Sole is what a caller read of one tenant's rows in the trash (Transactions, after
// the last attribution, under the lock that keeps other saves and attributions
// out): Rows rows of the tenant in its transactions, and no row of another tenant
// in them. Remove then checks that the trash holds nothing else through the index
// instead of reading every row.
type Sole struct {
	Rows int64
}

// Remove removes tenant's rows of the transactions xids, as Delete, within tx. When
// those are all the trash holds (the usual case once the other tenants' saves are
// done), it empties the trash with TRUNCATE instead: deleting a million rows one by
// one, and vacuuming them later, is most of a large save's cost. It checks that
// under the trash's exclusive lock, which no capturing transaction holds a conflicting
// one beside: a row kept while Remove runs waits for tx and lands in the trash emptied.
// When the lock is not granted within TruncateLockTimeout, or TRUNCATE is not
// allowed, it deletes. truncated says which it did. tx's commit makes either final,
// its rollback undoes either. tx must be READ COMMITTED for TRUNCATE: in a snapshot
// taken before the lock was granted, a row a capture committed meanwhile would be
// neither seen by the check nor spared by TRUNCATE; under another isolation Remove
// deletes.
//
// With sole (nil: not known) the check reads the index only: the trash's distinct
// transactions must all be among xids, and no row may lack a tenant; sole's
// promise covers the rest (a committed transaction gains no rows, and only an
// attribution changes a row's tenant). Without it, the check counts every row
// (a full scan of the trash: a second after a million rows were kept).
func Remove(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, xids []uint64, sole *Sole) (n int64, truncated bool, err error) {
	num, err := numbered(ctx, tx)
	if err != nil {
		return 0, false, err
	}
	n, truncated, err = truncateAll(ctx, tx, num, tenant, xids, sole)
	if err != nil || truncated {
		return n, truncated, err
	}
	n, err = deleteRows(ctx, tx, num, tenant, xids)
	return n, false, err
}

// othersSQL tells whether the trash holds a row of a transaction not in $1 or a row
// without a tenant, reading the index only: it walks the trash's distinct
// transactions, one index descent each (a loose index scan; they are few: one per
// capturing transaction), and looks for a row without a tenant in the partial index
// that lists them.
const othersSQL = `WITH RECURSIVE x AS (
	SELECT (SELECT t.xid FROM purgeguard.trash t ORDER BY t.xid LIMIT 1) AS xid
	UNION ALL
	SELECT (SELECT t.xid FROM purgeguard.trash t WHERE t.xid > x.xid ORDER BY t.xid LIMIT 1) FROM x WHERE x.xid IS NOT NULL)
SELECT EXISTS (SELECT 1 FROM x WHERE x.xid IS NOT NULL AND NOT x.xid = ANY ($1::text[]::xid8[]))
	OR EXISTS (SELECT 1 FROM purgeguard.trash t WHERE t.tenant IS NULL)`

// othersNumberedSQL is othersSQL for a trash whose rows are numbered (xn), which
// has no B-tree on xid to walk: the transactions that kept rows are those of the
// shapes (every capture records one, and fence install recorded them for the rows
// kept before), and a shape of another transaction counts when its transaction
// still has a row (one probe of the BRIN index per such shape; a shape may outlive
// its rows, removed by an earlier version's save).
const othersNumberedSQL = `SELECT EXISTS (SELECT 1 FROM purgeguard.trash_shape s
		CROSS JOIN LATERAL (` + rowOfShape + `) r
		WHERE NOT s.xid = ANY ($1::text[]::xid8[]))
	OR EXISTS (SELECT 1 FROM purgeguard.trash t WHERE t.tenant IS NULL)`

// truncateAll empties the trash if it holds only tenant's rows of xids, in a
// savepoint it rolls back otherwise (which releases the lock it took).
func truncateAll(ctx context.Context, tx pgx.Tx, num bool, tenant uuid.UUID, xids []uint64, sole *Sole) (int64, bool, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("trash: remove rows of tenant %s: %w", tenant, err)
	}
	n, ok, err := func() (int64, bool, error) {
		var prev, isolation string
		if err := sp.QueryRow(ctx, "SELECT current_setting('transaction_isolation')").Scan(&isolation); err != nil {
			return 0, false, err
		}
		if isolation != "read committed" {
			return 0, false, nil
		}
		if err := sp.QueryRow(ctx, "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, true)", TruncateLockTimeout).Scan(&prev, nil); err != nil {
			return 0, false, err
		}
		if _, err := sp.Exec(ctx, "LOCK TABLE purgeguard.trash IN ACCESS EXCLUSIVE MODE"); err != nil {
			return 0, false, err
		}
		if _, err := sp.Exec(ctx, "SELECT set_config('lock_timeout', $1, true)", prev); err != nil {
			return 0, false, err
		}
		var all, mine int64
		if sole != nil {
			others := false
			check := func() error { return sp.QueryRow(ctx, othersSQL, xidTexts(xids)).Scan(&others) }
			if num {
				check = func() error {
					return withoutSeqscan(ctx, sp, func() error { return sp.QueryRow(ctx, othersNumberedSQL, xidTexts(xids)).Scan(&others) })
				}
			}
			if err := check(); err != nil {
				return 0, false, err
			}
			if others {
				return 0, false, nil
			}
			mine = sole.Rows
		} else {
			if err := sp.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE tenant = $1 AND xid = ANY ($2::text[]::xid8[])) FROM purgeguard.trash",
				tenant.String(), xidTexts(xids)).Scan(&all, &mine); err != nil {
				return 0, false, err
			}
			if all != mine {
				return 0, false, nil
			}
		}
		if _, err := sp.Exec(ctx, "TRUNCATE purgeguard.trash"); err != nil {
			return 0, false, err
		}
		// Every shape is of a transaction whose rows just went (a capture waits for
		// the lock before it keeps a row, and records its shape after).
		if _, err := sp.Exec(ctx, "DELETE FROM purgeguard.trash_shape"); err != nil {
			return 0, false, err
		}
		return mine, true, nil
	}()
	var pgErr *pgconn.PgError
	switch {
	case err == nil && ok:
		if err := sp.Commit(ctx); err != nil {
			return 0, false, fmt.Errorf("trash: remove rows of tenant %s: %w", tenant, err)
		}
		return n, true, nil
	case err == nil, errors.As(err, &pgErr) && (pgErr.Code == lockNotAvailable || pgErr.Code == insufficientPrivilege):
		if err := sp.Rollback(ctx); err != nil {
			return 0, false, fmt.Errorf("trash: remove rows of tenant %s: %w", tenant, err)
		}
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("trash: remove rows of tenant %s: %w", tenant, err)
	}
}

func xidTexts(xids []uint64) []string {
	s := make([]string, len(xids))
	for i, x := range xids {
		s[i] = fmt.Sprint(x)
	}
	return s
}

// xidArray renders xids as an xid8[] literal: the selects go inside COPY, which
// takes no parameters. The values are numbers: nothing to escape.
func xidArray(xids []uint64) string {
	return "'{" + strings.Join(xidTexts(xids), ",") + "}'::xid8[]"
}

// literal quotes s as an SQL string literal (standard_conforming_strings on, as
// every supported PostgreSQL has by default; a backslash is then no escape).
func literal(s string) string {
	if strings.Contains(s, `\`) {
		return "E'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
