// Package catalog computes, from pg_catalog, what a purge of one tenant touches: the
// tables `DELETE FROM <root> WHERE <key> = tenant` reaches through foreign keys, the
// SQL selecting exactly the rows it removes or changes, and the order a restore loads
// them in. It reads only catalog tables: a service's database is shared with others,
// and their data is none of purgeguard's business.
//
// A Graph holds everything Select needs in its exported fields, so a graph decoded
// from a snapshot manifest renders the same SQL as the one Load returned.
package catalog

import (
	"github.com/purgeguard/purgeguard/profile"

	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Querier is what Load needs: *pgx.Conn, pgx.Tx and *pgxpool.Pool all satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	// ErrNotFound is wrapped by Load's errors for a missing root table, key column,
	// extra table or extra column; they read "...: table does not exist".
	ErrNotFound = errors.New("does not exist")
	// ErrUnsupported is wrapped by Load's errors for a schema whose purge this package
	// cannot select exactly (a cascade cycle through several tables, a foreign key
	// declared on a single partition, a root with inheritance children) or restore (a
	// cycle no nullable foreign key breaks). Refusing is safer than a snapshot that
	// silently misses rows.
	ErrUnsupported = errors.New("not supported")
)

// Reach kinds: how a purge reaches a table.
const (
	ReachRoot       = "root"
	ReachCascade    = "cascade"
	ReachSetNull    = "set_null"
	ReachSetDefault = "set_default"
	ReachExtra      = "extra"
)

// Foreign key ON DELETE actions, as FK.OnDelete spells them.
const (
	OnDeleteCascade    = "cascade"
	OnDeleteSetNull    = "set_null"
	OnDeleteSetDefault = "set_default"
	OnDeleteRestrict   = "restrict"
	OnDeleteNoAction   = "no_action"
)

// Name is a schema-qualified table name, unquoted.
type Name = profile.TableName

// ParseName splits "schema.table" at its first dot; "table" alone is in public. Names
// are taken as written (no case folding, no quotes), as pg_class spells them.
func ParseName(s string) (Name, error) {
	n, err := profile.ParseTableName(s)
	if err != nil {
		return Name{}, fmt.Errorf("catalog: %w", err)
	}
	return n, nil
}

// Options says where the tenant tree starts.
type Options = profile.Tenants

// Extra is a table holding a tenant column but no foreign key to the root: the purge
// removes its rows where Column = tenant.
type Extra = profile.ExtraTable

// Column is one stored column of a table, in attnum order.
type Column struct {
	Name       string `json:"name"`
	Type       string `json:"type"` // format_type(atttypid, atttypmod)
	NotNull    bool   `json:"not_null,omitempty"`
	HasDefault bool   `json:"has_default,omitempty"`
	Identity   string `json:"identity,omitempty"` // "", "always", "by_default"
}

// Identity kinds.
const (
	IdentityAlways    = "always"
	IdentityByDefault = "by_default"
)

// FK is one foreign key between two tables of the graph.
type FK struct {
	Constraint string   `json:"constraint"`
	Child      Name     `json:"child"`
	Columns    []string `json:"columns"`
	Parent     Name     `json:"parent"`
	RefColumns []string `json:"ref_columns"`
	OnDelete   string   `json:"on_delete"`
	// SetColumns, for set null/default, are the columns the purge changes: all of
	// Columns unless the constraint names a column list (PostgreSQL 15).
	SetColumns []string `json:"set_columns,omitempty"`
}

// Table is one table of the graph. A partitioned table stands for all its partitions.
type Table struct {
	Name Name `json:"name"`
	// Reach is the strongest way the purge reaches the table:
	// root > cascade > set_null > set_default > extra.
	Reach        string   `json:"reach"`
	Columns      []Column `json:"columns"`
	PrimaryKey   []string `json:"primary_key,omitempty"`
	NoPrimaryKey bool     `json:"no_primary_key,omitempty"`
	Partitioned  bool     `json:"partitioned,omitempty"`
	// Changed lists the columns a purge sets to NULL/DEFAULT in rows it does not
	// delete (through set_null/set_default foreign keys), in column order.
	Changed []string `json:"changed,omitempty"`
	// Via are the foreign keys by which the purge reaches the table (cascade, set
	// null, set default), self references included.
	Via []FK `json:"via,omitempty"`
	// ExtraColumns are the tenant columns configured for it as an extra table.
	ExtraColumns []string `json:"extra_columns,omitempty"`
}

// Column returns the stored column called name, or nil.
func (t *Table) Column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// ColumnNames returns the names of the stored columns, in order.
func (t *Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// deletes reports whether the purge deletes rows of t (rather than only changing them).
func (t *Table) deletes() bool {
	return t.Reach == ReachRoot || t.Reach == ReachCascade || len(t.ExtraColumns) > 0
}

// Cycle is a foreign-key cycle among the graph's tables. Restore loads Break's
// columns as NULL and sets them once every table of the cycle is loaded.
type Cycle struct {
	Tables []Name `json:"tables"`
	Break  FK     `json:"break"`
}

// Graph is what a purge of one tenant touches.
type Graph struct {
	Root    Name   `json:"root"`
	Key     string `json:"key"`
	KeyType string `json:"key_type"` // format_type of the key column
	// Tables are in load order: parents before children, the root first when
	// nothing it references is in the graph.
	Tables []*Table `json:"tables"`
	FKs    []FK     `json:"fks"` // every foreign key between two tables of the graph
	Cycles []Cycle  `json:"cycles,omitempty"`
}

// Tenants lists the tenants of the root, in key order: every tenant a purge of all
// of them (a retention purge) goes through.
func (g *Graph) Tenants(ctx context.Context, q Querier) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT %s::text FROM %s ORDER BY 1", ident(g.Key), g.Root.Sanitize()))
	if err != nil {
		return nil, fmt.Errorf("catalog: tenants of %s: %w", g.Root, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("catalog: tenants of %s: %w", g.Root, err)
	}
	out := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		if out[i], err = uuid.Parse(k); err != nil {
			return nil, fmt.Errorf("catalog: %s.%s holds %q, not a tenant UUID: %w", g.Root, g.Key, k, err)
		}
	}
	return out, nil
}

// Table returns the table called n, or nil if it is not in the graph.
func (g *Graph) Table(n Name) *Table {
	for _, t := range g.Tables {
		if t.Name == n {
			return t
		}
	}
	return nil
}
