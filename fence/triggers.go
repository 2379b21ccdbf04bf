package fence

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// trigger is one trigger of the fence on one table.
type trigger struct {
	table catalog.Name
	name  string
}

func (tr trigger) drop(ctx context.Context, tx pgx.Tx) error {
	sql := "DROP TRIGGER IF EXISTS " + pgx.Identifier{tr.name}.Sanitize() + " ON " + tr.table.Sanitize()
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("drop trigger %s on %s: %w", tr.name, tr.table, err)
	}
	return nil
}

// fenceTriggers returns the fence's triggers: every trigger calling its functions, and
// any trigger with its names on one of tables. Only triggers that exist are returned,
// so removing them locks no table that has none.
func fenceTriggers(ctx context.Context, tx pgx.Tx, tables []catalog.Name) ([]trigger, error) {
	schemas, names := make([]string, len(tables)), make([]string, len(tables))
	for i, t := range tables {
		schemas[i], names[i] = t.Schema, t.Table
	}
	rows, err := tx.Query(ctx, fenceTriggersSQL, DeleteTrigger, TruncateTrigger, schemas, names)
	if err != nil {
		return nil, fmt.Errorf("list fence triggers: %w", err)
	}
	triggers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (trigger, error) {
		var tr trigger
		err := row.Scan(&tr.table.Schema, &tr.table.Table, &tr.name)
		return tr, err
	})
	if err != nil {
		return nil, fmt.Errorf("list fence triggers: %w", err)
	}
	return triggers, nil
}

// dropStale removes the fence's triggers Install would not create now: those on tables
// that left the graph, and the DELETE trigger of a former root.
func dropStale(ctx context.Context, tx pgx.Tx, root catalog.Name, tables []catalog.Name) error {
	recorded, err := fencedTables(ctx, tx)
	if err != nil {
		return err
	}
	existing, err := fenceTriggers(ctx, tx, append(recorded, tables...))
	if err != nil {
		return err
	}
	wanted := map[trigger]bool{{root, DeleteTrigger}: true}
	for _, t := range tables {
		wanted[trigger{t, TruncateTrigger}] = true
	}
	for _, tr := range existing {
		if wanted[tr] {
			continue
		}
		if err := tr.drop(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// createTriggers creates (or replaces) the DELETE trigger on root and the TRUNCATE
// trigger on every table. The key column travels as the trigger's argument, a string
// literal; the function quotes it as an identifier when it reads OLD.
func createTriggers(ctx context.Context, tx pgx.Tx, root catalog.Name, key string, tables []catalog.Name) error {
	arg, err := quoteLiteral(key)
	if err != nil {
		return fmt.Errorf("key column: %w", err)
	}
	sql := "CREATE OR REPLACE TRIGGER " + pgx.Identifier{DeleteTrigger}.Sanitize() +
		" BEFORE DELETE ON " + root.Sanitize() +
		" FOR EACH ROW EXECUTE FUNCTION purgeguard.refuse_unapproved_delete(" + arg + ")"
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create trigger %s on %s: %w", DeleteTrigger, root, err)
	}
	for _, t := range tables {
		sql := "CREATE OR REPLACE TRIGGER " + pgx.Identifier{TruncateTrigger}.Sanitize() +
			" BEFORE TRUNCATE ON " + t.Sanitize() +
			" FOR EACH STATEMENT EXECUTE FUNCTION purgeguard.refuse_truncate()"
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("create trigger %s on %s: %w", TruncateTrigger, t, err)
		}
	}
	return nil
}
