package guard

import (
	"context"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/snapshot"
)

// Counts are rows per table per tenant (the tenant's key as text).
type Counts map[string]map[string]int64

// count reads every table's per-tenant row counts. Tables a purge only changes have
// no attribution and are not counted.
func count(ctx context.Context, q catalog.Querier, g *catalog.Graph) (Counts, error) {
	out := Counts{}
	for _, t := range g.Tables {
		sql := g.CountSQL(t)
		if sql == "" {
			continue
		}
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return nil, fmt.Errorf("guard: count %s: %w", t.Name, err)
		}
		m := map[string]int64{}
		for rows.Next() {
			var k *string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("guard: count %s: %w", t.Name, err)
			}
			if k != nil {
				m[*k] = n
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("guard: count %s: %w", t.Name, err)
		}
		out[t.Name.String()] = m
	}
	return out, nil
}

// Loss kinds.
const (
	// LossCollateral: rows of a tenant the guard did not approve are gone.
	LossCollateral = "collateral"
	// LossUnsaved: an approved tenant lost more rows of a table than its snapshot
	// holds — rows written after the snapshot were purged without a copy.
	LossUnsaved = "unsaved"
)

// Loss is one table of one tenant that lost rows it should not have.
type Loss struct {
	Kind     string    `json:"kind"`
	Tenant   string    `json:"tenant"`
	Table    string    `json:"table"`
	Before   int64     `json:"before"`
	After    int64     `json:"after"`
	Saved    int64     `json:"saved,omitempty"` // rows in the snapshot, for an approved tenant
	Snapshot uuid.UUID `json:"snapshot,omitzero"`
}

// removed sums, per table, the rows the approved tenants lost.
func removed(before, after Counts, approved map[string]*snapshot.Snapshot) map[string]int64 {
	out := map[string]int64{}
	for table, m := range before {
		for k, n := range m {
			if _, ok := approved[k]; ok && after[table][k] < n {
				out[table] += n - after[table][k]
			}
		}
	}
	return out
}

// blastRadius compares counts before and after the purge.
func blastRadius(before, after Counts, approved map[string]*snapshot.Snapshot) []Loss {
	var out []Loss
	tables := make([]string, 0, len(before))
	for t := range before {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	for _, table := range tables {
		tenants := make([]string, 0, len(before[table]))
		for k := range before[table] {
			tenants = append(tenants, k)
		}
		slices.Sort(tenants)
		for _, k := range tenants {
			b, a := before[table][k], after[table][k]
			if a >= b {
				continue
			}
			m, ok := approved[k]
			if !ok {
				out = append(out, Loss{Kind: LossCollateral, Tenant: k, Table: table, Before: b, After: a})
				continue
			}
			saved := int64(0)
			for _, mt := range m.Tables {
				if mt.Table == table {
					saved = mt.Rows
				}
			}
			if b-a > saved {
				out = append(out, Loss{Kind: LossUnsaved, Tenant: k, Table: table, Before: b, After: a, Saved: saved, Snapshot: m.ID})
			}
		}
	}
	return out
}

// BlastRadiusError says the purge removed rows or files it should not have.
type BlastRadiusError struct {
	Losses    []Loss
	Files     []FileLoss
	FilesLost int
	// Trashed are the rows the capturing fence kept meanwhile: the loss was
	// prevented, the command still misbehaved.
	Trashed int64
}

func (e *BlastRadiusError) Error() string {
	s := fmt.Sprintf("guard: blast radius check failed: %d losses", len(e.Losses)+e.FilesLost)
	for i, f := range e.Files {
		if i == 5 {
			s += fmt.Sprintf("; and %d more files", e.FilesLost-5)
			break
		}
		lost := "(not approved) lost"
		if f.Why == FileKeptRow {
			lost = "lost, from a row the retention purge keeps,"
		}
		s += fmt.Sprintf("; tenant %s %s file %s (%s): restore it with purgeguard files restore --under %s",
			f.Tenant, lost, f.Path, f.Table, f.Path)
	}
	for i, l := range e.Losses {
		if i == 5 {
			s += fmt.Sprintf("; and %d more", len(e.Losses)-5)
			break
		}
		switch l.Kind {
		case LossCollateral:
			s += fmt.Sprintf("; tenant %s (not approved) lost %d rows of %s (%d -> %d)", l.Tenant, l.Before-l.After, l.Table, l.Before, l.After)
		case LossNewer:
			s += fmt.Sprintf("; tenant %s lost %d %s rows newer than its retention cut-off (%d -> %d)", l.Tenant, l.Before-l.After, l.Table, l.Before, l.After)
		default:
			s += fmt.Sprintf("; tenant %s lost %d rows of %s but snapshot %s holds %d: %d rows purged without a copy",
				l.Tenant, l.Before-l.After, l.Table, l.Snapshot, l.Saved, l.Before-l.After-l.Saved)
		}
	}
	if e.Trashed > 0 {
		s += fmt.Sprintf("; the capturing fence kept %d rows in the trash meanwhile: run `purgeguard trash save`, then `purgeguard restore --tenant TENANT --snapshot SNAPSHOT` with the trash snapshot it names", e.Trashed)
	}
	return s
}
