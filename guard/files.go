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

// FileLoss is a file named by a row of a tenant the run did not approve: on disk
// before the command, gone after it (whatever became of the row).
type FileLoss struct {
	Tenant string `json:"tenant"`
	Table  string `json:"table"`
	Path   string `json:"path"`
}

// maxFileLosses bounds the losses a run keeps to report (the count is exact).
const maxFileLosses = 1000

// fileCheck is the files half of the blast radius, streamed: the rows' paths are
// read from the database and looked at one by one, before and after the command.
// Only the paths missing before are held (a tenant's files are not kept in memory).
type fileCheck struct {
	cols    []profile.FileColumn
	g       *catalog.Graph
	tenants []uuid.UUID // not approved
	missing map[string]bool
	lost    []FileLoss
	nLost   int
}

func newFileCheck(ctx context.Context, q catalog.Querier, g *catalog.Graph, cols []profile.FileColumn, approved map[string]*snapshot.Snapshot) (*fileCheck, error) {
	all, err := databaseTenants(ctx, q, g)
	if err != nil {
		return nil, err
	}
	fc := &fileCheck{cols: cols, g: g, missing: map[string]bool{}}
	for _, t := range all {
		if _, ok := approved[t.String()]; !ok {
			fc.tenants = append(fc.tenants, t)
		}
	}
	return fc, nil
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
			fc.lost = append(fc.lost, FileLoss{Tenant: tenant, Table: table, Path: path})
		}
	})
}

// walk streams, for every file column the graph reaches, each distinct path the
// not-approved tenants' rows name under the column's root, and whether it is on disk.
func (fc *fileCheck) walk(ctx context.Context, q catalog.Querier, fn func(tenant, table, path string, present bool)) error {
	if len(fc.tenants) == 0 {
		return nil
	}
	for _, c := range fc.cols {
		t := fc.g.Table(c.Table)
		if t == nil {
			continue
		}
		sel, ok := fc.g.SelectTenants(t, fc.tenants)
		if !ok {
			continue // no single-scan select for this table: its files are not checked
		}
		col := pgx.Identifier{c.Column}.Sanitize()
		rows, err := q.Query(ctx, "SELECT DISTINCT s.k, s."+col+"::text FROM ("+sel+") AS s(k) WHERE s."+col+" IS NOT NULL")
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
