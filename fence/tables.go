package fence

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// graphTables returns the tables to fence: the root, g's tables, and every partition
// below g's partitioned tables, each once, in that order.
func graphTables(ctx context.Context, tx pgx.Tx, g *catalog.Graph) ([]catalog.Name, error) {
	tables, _, err := graphRelations(ctx, tx, g)
	return tables, err
}

// graphRelations is graphTables, with the partitions below each of g's partitioned
// tables (sub-partitions included).
func graphRelations(ctx context.Context, tx pgx.Tx, g *catalog.Graph) ([]catalog.Name, map[catalog.Name][]catalog.Name, error) {
	partitions := map[catalog.Name][]catalog.Name{}
	seen := map[catalog.Name]bool{}
	var out []catalog.Name
	add := func(n catalog.Name) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	add(g.Root)
	for _, t := range g.Tables {
		add(t.Name)
		if !t.Partitioned {
			continue
		}
		parts, err := queryNames(ctx, tx, partitionsSQL, t.Name.Schema, t.Name.Table)
		if err != nil {
			return nil, nil, fmt.Errorf("partitions of %s: %w", t.Name, err)
		}
		partitions[t.Name] = parts
		for _, p := range parts {
			add(p)
		}
	}
	return out, partitions, nil
}

// fencedTables returns the tables purgeguard.fenced records; none without the fence.
func fencedTables(ctx context.Context, tx pgx.Tx) ([]catalog.Name, error) {
	var exists bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('purgeguard.fenced') IS NOT NULL").Scan(&exists); err != nil {
		return nil, fmt.Errorf("look for %s.fenced: %w", Schema, err)
	}
	if !exists {
		return nil, nil
	}
	names, err := queryNames(ctx, tx, "SELECT schema, table_name FROM purgeguard.fenced ORDER BY 1, 2")
	if err != nil {
		return nil, fmt.Errorf("read %s.fenced: %w", Schema, err)
	}
	return names, nil
}

// record makes purgeguard.fenced list exactly tables.
func record(ctx context.Context, tx pgx.Tx, tables []catalog.Name) error {
	schemas, names := make([]string, len(tables)), make([]string, len(tables))
	for i, t := range tables {
		schemas[i], names[i] = t.Schema, t.Table
	}
	if _, err := tx.Exec(ctx, "DELETE FROM purgeguard.fenced"); err != nil {
		return fmt.Errorf("clear %s.fenced: %w", Schema, err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO purgeguard.fenced (schema, table_name) SELECT * FROM unnest($1::text[], $2::text[])",
		schemas, names); err != nil {
		return fmt.Errorf("record fenced tables: %w", err)
	}
	return nil
}

// queryNames runs sql, which selects (schema, table) pairs.
func queryNames(ctx context.Context, q catalog.Querier, sql string, args ...any) ([]catalog.Name, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Name, error) {
		var n catalog.Name
		err := row.Scan(&n.Schema, &n.Table)
		return n, err
	})
}
