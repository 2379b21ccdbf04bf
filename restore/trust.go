package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// IntegrityError refuses a snapshot whose content does not belong to the tenant
// being restored: a row that is not the tenant's (through the tenant graph), a file
// path no restored row names, or one that leaves its root. Nothing was written.
// Anyone able to write to the store could otherwise write into any tenant at the
// next restore; the CLI exits 4 on it, as on a failed verification.
type IntegrityError struct {
	Tenant   uuid.UUID
	Snapshot uuid.UUID
	Problems []string // each names a table or a file; at most a few per table
}

func (e *IntegrityError) Error() string {
	const shown = 10
	probs := e.Problems
	more := ""
	if len(probs) > shown {
		more = fmt.Sprintf("; and %d more", len(probs)-shown)
		probs = probs[:shown]
	}
	return fmt.Sprintf("restore: snapshot %s does not hold only tenant %s's data, nothing written: %s%s",
		e.Snapshot, e.Tenant, strings.Join(probs, "; "), more)
}

// ErrFileRefused is returned for a file that cannot be written where it belongs:
// its path leaves its root through a symbolic link, something other than a
// regular file is in its place, or no root is configured for it.
var ErrFileRefused = errors.New("file refused")

// maxNamed bounds the offending files or rows named per table or column.
const maxNamed = 5

// checkRows makes sure that every row this run inserted belongs to the tenant:
// once loaded, each staged row must be one of the rows a purge of the tenant
// removes (the graph's select of the table, run on the live tables inside the
// transaction), matched by primary key (every column without one); for a table
// copied straight in, the tenant's rows must have grown by exactly the rows
// copied. Only tables whose rows the purge deletes are checked: in the others
// restore only puts back the columns a purge emptied.
func (l *loader) checkRows(ctx context.Context, plans []*plan) ([]string, error) {
	var probs []string
	for _, p := range plans {
		if !p.rows {
			continue
		}
		if p.direct {
			n, err := l.count(ctx, "SELECT count(*) FROM ("+l.g.SelectColumns(p.live, l.m.Tenant, p.keyCols())+") x")
			if err != nil {
				return nil, fmt.Errorf("restore: table %s: check rows: %w", p.live.Name, err)
			}
			if got := n - p.before; got != p.copied {
				probs = append(probs, fmt.Sprintf("table %s: %d of its %d rows are not the tenant's", p.live.Name, p.copied-got, p.copied))
			}
			continue
		}
		if p.stage == "" {
			continue
		}
		// EXCEPT matches NULLs as equal, as a row match must without a primary key,
		// and is planned as a hashed (or sorted) set operation: a NOT EXISTS with
		// IS NOT DISTINCT FROM cannot be hashed and compared every staged row with
		// every row of the tenant (over 15 minutes for 100k rows already present).
		keys := p.keyCols()
		cols := make([]string, len(keys))
		for i, k := range keys {
			cols[i] = pgx.Identifier{k}.Sanitize()
		}
		list := strings.Join(cols, ", ")
		sql := "SELECT ROW(" + list + ")::text FROM (SELECT " + list + " FROM " + p.stage + " EXCEPT SELECT " + list +
			" FROM (" + l.g.SelectColumns(p.live, l.m.Tenant, keys) + ") x) s LIMIT " + fmt.Sprint(maxNamed+1)
		rows, err := l.tx.Query(ctx, sql)
		if err != nil {
			return nil, fmt.Errorf("restore: table %s: check rows: %w", p.live.Name, err)
		}
		bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("restore: table %s: check rows: %w", p.live.Name, err)
		}
		for i, r := range bad {
			if i == maxNamed {
				probs = append(probs, fmt.Sprintf("table %s: more rows not the tenant's", p.live.Name))
				break
			}
			probs = append(probs, fmt.Sprintf("table %s: row %s is not the tenant's", p.live.Name, r))
		}
	}
	return probs, nil
}

// keyCols are the columns a row is matched by: its primary key, else every column
// inserted.
func (p *plan) keyCols() []string {
	if len(p.live.PrimaryKey) > 0 {
		return p.live.PrimaryKey
	}
	return p.insert
}

// checkFiles makes sure that every file to write is named, in its column, by a row
// of the tenant (live, once loaded, or staged by this run). The paths the staging
// walk saw (walked waits for them) are copied into a temporary table, then each
// column's are checked in one anti-join: a check per batch of paths read the
// tenant's column once per batch, quadratic in a tenant's files (a million of
// them: a hundred reads of a million paths).
func (l *loader) checkFiles(ctx context.Context, plans []*plan, walked func(context.Context) (*pathSpill, error)) ([]string, error) {
	paths, err := walked(ctx)
	if err != nil {
		return nil, err
	}
	if paths.n == 0 {
		return nil, nil
	}
	l.staged++
	tmp := pgx.Identifier{"pg_temp", fmt.Sprintf("purgeguard_paths_%d", l.staged)}
	if _, err := l.tx.Exec(ctx, "CREATE TEMPORARY TABLE "+tmp.Sanitize()+" (c integer, p text) ON COMMIT DROP"); err != nil {
		return nil, fmt.Errorf("restore: check the files' paths: %w", err)
	}
	r, err := paths.reader()
	if err != nil {
		return nil, err
	}
	if _, err := l.tx.Conn().PgConn().CopyFrom(ctx, r, "COPY "+tmp.Sanitize()+" (c, p) FROM STDIN"); err != nil {
		return nil, fmt.Errorf("restore: check the files' paths: %w", err)
	}
	if _, err := l.tx.Exec(ctx, "ANALYZE "+tmp.Sanitize()); err != nil {
		return nil, fmt.Errorf("restore: check the files' paths: %w", err)
	}
	var probs []string
	for i, c := range paths.cols {
		bad, err := l.unnamed(ctx, plans, c.table, c.column, tmp.Sanitize(), i)
		if err != nil {
			return nil, err
		}
		for _, b := range bad {
			if len(probs) >= maxNamed {
				probs = append(probs, fmt.Sprintf("files of %s.%s: more paths no row of the tenant names", c.table, c.column))
				break
			}
			probs = append(probs, b)
		}
	}
	if _, err := l.tx.Exec(ctx, "DROP TABLE "+tmp.Sanitize()); err != nil {
		return nil, fmt.Errorf("restore: check the files' paths: %w", err)
	}
	slices.Sort(probs)
	return probs, nil
}

// unnamed returns a problem for each path of column index c in tmp (at most
// maxNamed+1) that no row of the tenant names in table's column. A column the
// tenant's tables do not have is one problem.
func (l *loader) unnamed(ctx context.Context, plans []*plan, table, column, tmp string, c int) ([]string, error) {
	name, err := catalog.ParseName(table)
	if err != nil {
		return nil, fmt.Errorf("restore: file column %s.%s: %w", table, column, err)
	}
	t := l.g.Table(name)
	if t == nil || t.Column(column) == nil {
		return []string{fmt.Sprintf("files of %s.%s: no such column in the tenant's tables", table, column)}, nil
	}
	id := pgx.Identifier{column}.Sanitize()
	// A hashed anti-join reads the tenant's column once. (A NOT EXISTS per path of
	// an array parameter was planned as a nested loop over the tenant's rows for
	// every path: 470 s of a 546 s restore of 42k files; the table is analyzed.)
	named := "SELECT x." + id + "::text AS p FROM (" + l.g.SelectColumns(t, l.m.Tenant, []string{column}) + ") x"
	for _, p := range plans {
		if p.live == t && p.stage != "" {
			named += " UNION ALL SELECT s." + id + "::text FROM " + p.stage + " s"
		}
	}
	rows, err := l.tx.Query(ctx, "SELECT f.p FROM "+tmp+" f WHERE f.c = $1 AND NOT EXISTS (SELECT FROM ("+named+") n WHERE n.p = f.p) LIMIT "+fmt.Sprint(maxNamed+1), c)
	if err != nil {
		return nil, fmt.Errorf("restore: files of %s.%s: check paths: %w", table, column, err)
	}
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("restore: files of %s.%s: check paths: %w", table, column, err)
	}
	out := make([]string, len(bad))
	for i, b := range bad {
		out[i] = fmt.Sprintf("file %s: no row of the tenant names it in %s.%s", b, table, column)
	}
	return out, nil
}
