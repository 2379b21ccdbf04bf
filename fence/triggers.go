package fence

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/trash"
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
	rows, err := tx.Query(ctx, fenceTriggersSQL, triggerNames, schemas, names)
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

// planned is a trigger Install creates, with its CREATE statement.
type planned struct {
	trigger
	sql string
}

func (p planned) create(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, p.sql); err != nil {
		return fmt.Errorf("create trigger %s on %s: %w", p.name, p.table, err)
	}
	return nil
}

// wanted plans the triggers of mode: in both, the TRUNCATE trigger on every table;
// in refuse mode the DELETE trigger on the root; in capture mode the capturing
// statement trigger on every table of g and every partition below a partitioned
// one, calling each table's generated function (returned too), the approval
// marking row trigger on the root, and the capturing UPDATE trigger on every table
// with a watched column or a column a purge sets to NULL or DEFAULT.
func wanted(g *catalog.Graph, mode string, tables []catalog.Name, partitions map[catalog.Name][]catalog.Name, watch []Column) ([]planned, []captureFunction, error) {
	var out []planned
	var funcs []captureFunction
	switch mode {
	case ModeRefuse:
		arg, err := quoteLiteral(g.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("key column: %w", err)
		}
		out = append(out, planned{trigger{g.Root, DeleteTrigger}, "CREATE OR REPLACE TRIGGER " + pgx.Identifier{DeleteTrigger}.Sanitize() +
			" BEFORE DELETE ON " + g.Root.Sanitize() +
			" FOR EACH ROW EXECUTE FUNCTION purgeguard.refuse_unapproved_delete(" + arg + ")"})
	case ModeCapture:
		var err error
		if funcs, err = captureFunctions(g, partitions); err != nil {
			return nil, nil, err
		}
		for _, f := range funcs {
			col, _ := trash.TenantColumn(g, g.Table(f.table))
			for _, rel := range f.rels {
				out = append(out, captureTrigger(rel, f))
				if col == "" {
					out = append(out, markStatementTrigger(rel, f))
				}
			}
		}
		arg, err := quoteLiteral(g.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("key column: %w", err)
		}
		out = append(out, planned{trigger{g.Root, MarkTrigger}, "CREATE OR REPLACE TRIGGER " + pgx.Identifier{MarkTrigger}.Sanitize() +
			" BEFORE DELETE ON " + g.Root.Sanitize() +
			" FOR EACH ROW EXECUTE FUNCTION purgeguard.mark_delete(" + arg + ")"})
		for _, t := range g.Tables {
			col, _ := trash.TenantColumn(g, t)
			if sql, ok := updateTrigger(t, col, watch); ok {
				out = append(out, planned{trigger{t.Name, CaptureUpdateTrigger}, sql})
			}
		}
	default:
		return nil, nil, fmt.Errorf("mode %q: want %s or %s", mode, ModeRefuse, ModeCapture)
	}
	for _, t := range tables {
		out = append(out, planned{trigger{t, TruncateTrigger}, "CREATE OR REPLACE TRIGGER " + pgx.Identifier{TruncateTrigger}.Sanitize() +
			" BEFORE TRUNCATE ON " + t.Sanitize() +
			" FOR EACH STATEMENT EXECUTE FUNCTION purgeguard.refuse_truncate()"})
	}
	return out, funcs, nil
}

// updateTrigger renders the capturing UPDATE trigger of t, if t has columns to
// watch: those a purge sets to NULL (kept when emptied), to DEFAULT (kept when a
// cascade changes them) and the configured ones (kept when emptied). The WHEN
// clause filters in the executor, so an UPDATE that empties nothing never calls the
// function.
func updateTrigger(t *catalog.Table, tenantCol string, watch []Column) (string, bool) {
	var cols, conds []string
	add := func(c, cond string) {
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
			conds = append(conds, cond)
		}
	}
	emptied := func(c string) string {
		id := pgx.Identifier{c}.Sanitize()
		return "(OLD." + id + " IS NOT NULL AND NEW." + id + " IS NULL)"
	}
	for _, w := range watch {
		if w.Table == t.Name {
			add(w.Column, emptied(w.Column))
		}
	}
	for _, fk := range t.Via {
		for _, c := range fk.SetColumns {
			switch fk.OnDelete {
			case catalog.OnDeleteSetNull:
				add(c, emptied(c))
			case catalog.OnDeleteSetDefault:
				id := pgx.Identifier{c}.Sanitize()
				add(c, "(OLD."+id+" IS DISTINCT FROM NEW."+id+" AND pg_trigger_depth() > 0)")
			}
		}
	}
	if len(cols) == 0 {
		return "", false
	}
	ids := make([]string, len(cols))
	for i, c := range cols {
		ids[i] = pgx.Identifier{c}.Sanitize()
	}
	args, err := quoteArgs(t.Name.Schema, t.Name.Table, tenantCol)
	if err != nil {
		return "", false
	}
	return "CREATE OR REPLACE TRIGGER " + pgx.Identifier{CaptureUpdateTrigger}.Sanitize() +
		" BEFORE UPDATE OF " + strings.Join(ids, ", ") + " ON " + t.Name.Sanitize() +
		" FOR EACH ROW WHEN (" + strings.Join(conds, " OR ") + ")" +
		" EXECUTE FUNCTION purgeguard.capture_update(" + args + ")", true
}

// quoteArgs renders trigger arguments as string literals.
func quoteArgs(args ...string) (string, error) {
	q := make([]string, len(args))
	for i, a := range args {
		var err error
		if q[i], err = quoteLiteral(a); err != nil {
			return "", err
		}
	}
	return strings.Join(q, ", "), nil
}

// dropStale removes the fence's triggers Install would not create now: those on
// tables that left the graph, those of the other mode, and the DELETE trigger of a
// former root.
func dropStale(ctx context.Context, tx pgx.Tx, tables []catalog.Name, want []planned) error {
	recorded, err := fencedTables(ctx, tx)
	if err != nil {
		return err
	}
	existing, err := fenceTriggers(ctx, tx, append(recorded, tables...))
	if err != nil {
		return err
	}
	keep := map[trigger]bool{}
	for _, p := range want {
		keep[p.trigger] = true
	}
	for _, tr := range existing {
		if keep[tr] {
			continue
		}
		if err := tr.drop(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}
