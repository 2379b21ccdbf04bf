package guard

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/snapshot"
)

// FileLoss is a file named by a row the run had to leave alone — of a tenant it did
// not approve, or, for a retention purge, a row the purge keeps (newer than the
// cut-off) — on disk before the command, gone after it.
type FileLoss struct {
	Tenant string `json:"tenant"`
	Table  string `json:"table"`
	Path   string `json:"path"`
	// Why the file had to stay: FileNotApproved or FileKeptRow.
	Why string `json:"why"`
}

// Why a lost file had to stay.
const (
	FileNotApproved = "not_approved" // its tenant was not approved for the purge
	FileKeptRow     = "kept_row"     // a retention purge keeps the row naming it
)

// maxFileLosses bounds the losses a run keeps to report (the count is exact).
const maxFileLosses = 1000

// fileCheck is the files half of the blast radius, streamed: the paths of the rows
// whose files must stay are read from the database and looked at one by one, before
// and after the command. Only the paths missing before are held (a tenant's files
// are not kept in memory).
type fileCheck struct {
	cols []profile.FileColumn
	g    *catalog.Graph
	// paths returns the query of the distinct (tenant as text, path) pairs of t's
	// column col whose files must stay; false when it cannot be told (no single-scan
	// select for t: its files are not checked). nil: nothing to check.
	paths   func(t *catalog.Table, col string) (string, bool)
	why     string
	missing map[string]bool
	lost    []FileLoss
	nLost   int
}

// newFileCheck checks the files of every tenant not approved.
func newFileCheck(ctx context.Context, q catalog.Querier, g *catalog.Graph, cols []profile.FileColumn, approved map[string]*snapshot.Snapshot) (*fileCheck, error) {
	all, err := databaseTenants(ctx, q, g)
	if err != nil {
		return nil, err
	}
	fc := &fileCheck{cols: cols, g: g, why: FileNotApproved, missing: map[string]bool{}}
	var others []uuid.UUID
	for _, t := range all {
		if _, ok := approved[t.String()]; !ok {
			others = append(others, t)
		}
	}
	if len(others) > 0 {
		fc.paths = func(t *catalog.Table, col string) (string, bool) {
			sel, ok := g.SelectTenants(t, others)
			if !ok {
				return "", false
			}
			return pathsOf(sel, "s", col), true
		}
	}
	return fc, nil
}

// newRetentionFileCheck checks the files of every row a retention purge of tenants
// keeps: every tenant's rows but those of scope (what the purge removes or empties,
// up to the cut-offs read before the snapshot, margin included: the snapshot holds
// their files). A purge that removes a recording whose call log it keeps loses it.
func newRetentionFileCheck(ctx context.Context, q catalog.Querier, g *catalog.Graph, cols []profile.FileColumn, scope *catalog.Retention, tenants []uuid.UUID) (*fileCheck, error) {
	all, err := databaseTenants(ctx, q, g)
	if err != nil {
		return nil, err
	}
	fc := &fileCheck{cols: cols, g: g, why: FileKeptRow, missing: map[string]bool{}}
	if len(all) == 0 {
		return fc, nil
	}
	reached := map[catalog.Name]bool{}
	for _, t := range scope.Tables() {
		reached[t.Name] = true
	}
	fc.paths = func(t *catalog.Table, col string) (string, bool) {
		sel, ok := g.SelectTenants(t, all)
		if !ok {
			return "", false
		}
		if !reached[t.Name] {
			return pathsOf(sel, "s", col), true // the purge takes none of its rows
		}
		removed, ok := scope.SelectTenants(t, tenants)
		if !ok {
			return "", false
		}
		return pathsOf(sel, "s", col) + " EXCEPT " + pathsOf(removed, "r", col), true
	}
	return fc, nil
}

// pathsOf selects the distinct (tenant, path) pairs of the rows sel selects (its
// first column the tenant as text), the path column as text.
func pathsOf(sel, alias, col string) string {
	c := alias + "." + pgx.Identifier{col}.Sanitize()
	return "SELECT DISTINCT " + alias + ".k, " + c + "::text FROM (" + sel + ") AS " + alias + "(k) WHERE " + c + " IS NOT NULL"
}

// before notes the paths already missing.
func (fc *fileCheck) before(ctx context.Context, q catalog.Querier) error {
	return fc.walk(ctx, q, func(tenant, table, path string, present bool) {
		if !present {
			fc.missing[path] = true
		}
	})
}

// after records every path present before and gone now.
func (fc *fileCheck) after(ctx context.Context, q catalog.Querier) error {
	return fc.walk(ctx, q, func(tenant, table, path string, present bool) {
		if present || fc.missing[path] {
			return
		}
		fc.missing[path] = true // one loss per path, whichever rows name it
		fc.nLost++
		if len(fc.lost) < maxFileLosses {
			fc.lost = append(fc.lost, FileLoss{Tenant: tenant, Table: table, Path: path, Why: fc.why})
		}
	})
}

// walk streams, for every file column the graph reaches, each distinct path under
// the column's root of the rows whose files must stay, and whether it is on disk.
func (fc *fileCheck) walk(ctx context.Context, q catalog.Querier, fn func(tenant, table, path string, present bool)) error {
	if fc.paths == nil {
		return nil
	}
	for _, c := range fc.cols {
		t := fc.g.Table(c.Table)
		if t == nil {
			continue
		}
		sql, ok := fc.paths(t, c.Column)
		if !ok {
			continue // no single-scan select for this table: its files are not checked
		}
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return fmt.Errorf("guard: paths in %s.%s: %w", c.Table, c.Column, err)
		}
		root := filepath.Clean(c.Root)
		for rows.Next() {
			var k, p string
			if err := rows.Scan(&k, &p); err != nil {
				rows.Close()
				return fmt.Errorf("guard: paths in %s.%s: %w", c.Table, c.Column, err)
			}
			clean := filepath.Clean(p)
			if !filepath.IsAbs(p) || !archive.Within(root, clean) {
				continue
			}
			_, err := os.Lstat(clean)
			fn(k, c.Table.String(), clean, err == nil)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("guard: paths in %s.%s: %w", c.Table, c.Column, err)
		}
	}
	return nil
}
