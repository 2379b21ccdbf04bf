package fence

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/trash"
	"github.com/purgeguard/purgeguard/profile"
)

// Install fences g in refuse mode, in one transaction: the schema purgeguard with its
// approval table and trigger functions, a BEFORE DELETE row trigger on the root, and a
// BEFORE TRUNCATE trigger on every table of g and every partition below a partitioned
// one. Running it again brings the fence in line with g: tables that joined the graph
// gain the trigger, tables that left it (or a former root) lose theirs. Approvals and
// the trash are kept, so switching from capture mode loses nothing.
//
// Run by a superuser, Install (in either mode) also creates the DDL guard: event
// triggers refusing, to every other role, a DISABLE TRIGGER or DROP TRIGGER of the
// fence's triggers (see DDLEndTrigger), and one giving the partitions created or
// attached later below a fenced table the triggers its partitions have
// (DDLPartitionTrigger). State.DDLGuard and State.NewPartitions say whether they
// are there. Without the latter, such partitions are fenced neither against a
// TRUNCATE nor (capture mode) a DELETE aimed at them until Install runs again:
// statement triggers on the parent do not fire for them.
func Install(ctx context.Context, conn *pgx.Conn, tenants profile.Tenants) error {
	g, err := catalog.Load(ctx, conn, tenants)
	if err != nil {
		return fmt.Errorf("fence: install: %w", err)
	}
	return installGraph(ctx, conn, g)
}

func installGraph(ctx context.Context, conn *pgx.Conn, g *catalog.Graph) error {
	return install(ctx, conn, g, ModeRefuse, nil)
}

// InstallCapture fences the tenant graph in capture mode, in one transaction:
// instead of refusing, an AFTER DELETE statement trigger on every table of the graph
// and every partition below a partitioned one (see capture_stmt.go; partitions
// created later get theirs from the event trigger, see DDLPartitionTrigger) keeps
// every row a statement deletes without an approval in purgeguard.trash, and a BEFORE UPDATE
// row trigger keeps the old row when a statement empties one of watch, or a column a
// purge sets to NULL or DEFAULT through a foreign key. TRUNCATE stays refused.
// Approvals and the trash are kept, so switching from refuse mode loses nothing.
func InstallCapture(ctx context.Context, conn *pgx.Conn, tenants profile.Tenants, watch []Column) error {
	g, err := catalog.Load(ctx, conn, tenants)
	if err != nil {
		return fmt.Errorf("fence: install: %w", err)
	}
	return installCaptureGraph(ctx, conn, g, watch)
}

func installCaptureGraph(ctx context.Context, conn *pgx.Conn, g *catalog.Graph, watch []Column) error {
	for _, w := range watch {
		t := g.Table(w.Table)
		if t == nil {
			return fmt.Errorf("fence: install: watched column %s.%s: the table is not in the tenant graph", w.Table, w.Column)
		}
		if t.Column(w.Column) == nil {
			return fmt.Errorf("fence: install: watched column %s.%s: %w", w.Table, w.Column, catalog.ErrNotFound)
		}
	}
	return install(ctx, conn, g, ModeCapture, watch)
}

func install(ctx context.Context, conn *pgx.Conn, g *catalog.Graph, mode string, watch []Column) error {
	if g == nil || g.Key == "" {
		return errors.New("fence: install: no graph or no key column")
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := begin(ctx, tx, true); err != nil {
			return err
		}
		if err := checkKey(ctx, tx, g.Root, g.Key); err != nil {
			return err
		}
		tables, partitions, err := graphRelations(ctx, tx, g)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createSchemaSQL); err != nil {
			return fmt.Errorf("create schema %s: %w", Schema, err)
		}
		if _, err := tx.Exec(ctx, createCaptureSQL); err != nil {
			return fmt.Errorf("create the trash: %w", err)
		}
		if _, err := tx.Exec(ctx, createFunctionsSQL+createCaptureFunctionsSQL); err != nil {
			return fmt.Errorf("create trigger functions: %w", err)
		}
		if err := installDDLGuard(ctx, tx); err != nil {
			return err
		}
		want, funcs, err := wanted(g, mode, tables, partitions, watch)
		if err != nil {
			return err
		}
		for _, f := range funcs {
			if err := f.create(ctx, tx); err != nil {
				return err
			}
		}
		if err := dropStale(ctx, tx, tables, want); err != nil {
			return err
		}
		for _, tr := range want {
			if err := tr.create(ctx, tx); err != nil {
				return err
			}
		}
		if err := dropCaptureFunctions(ctx, tx, funcs); err != nil {
			return err
		}
		// Earlier versions' row capture function, its triggers gone with dropStale.
		if _, err := tx.Exec(ctx, "DROP FUNCTION IF EXISTS purgeguard.capture_delete()"); err != nil {
			return fmt.Errorf("drop the former capture function: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO purgeguard.setting (name, value) VALUES ('mode', $1)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, mode); err != nil {
			return fmt.Errorf("record the mode: %w", err)
		}
		return record(ctx, tx, tables)
	})
	if err != nil {
		return fmt.Errorf("fence: install on %s: %w", g.Root, err)
	}
	return nil
}

// Uninstall removes the fence in one transaction: the triggers of every table recorded
// in purgeguard.fenced or in g (nil is fine), any other trigger calling the fence's
// functions (a fenced table renamed since), then the schema purgeguard with its
// approvals. The service's tables are left as they were before Install. Uninstalling
// an absent fence does nothing. A schema holding objects the fence did not create is
// an error, and the fence stays: see dropSchema.
//
// With tenants nil, or a tenant graph that can no longer be read (its root dropped),
// the fence's triggers are found through its own trigger functions instead.
//
// A DDL guard installed by a superuser can be removed by a superuser only: Uninstall
// by another role fails first, naming that, and changes nothing.
//
// While the trash holds rows, Uninstall refuses with ErrTrashNotEmpty unless force:
// dropping it would lose them (run `purgeguard trash save` first).
func Uninstall(ctx context.Context, conn *pgx.Conn, tenants *profile.Tenants, force bool) error {
	var g *catalog.Graph
	if tenants != nil {
		var err error
		if g, err = catalog.Load(ctx, conn, *tenants); err != nil {
			return &GraphError{Err: err}
		}
	}
	return uninstallGraph(ctx, conn, g, force)
}

func uninstallGraph(ctx context.Context, conn *pgx.Conn, g *catalog.Graph, force bool) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := begin(ctx, tx, true); err != nil {
			return err
		}
		if !force {
			if err := checkTrashEmpty(ctx, tx); err != nil {
				return err
			}
		}
		// First, so that a role that may not drop it learns why before anything else.
		if err := dropDDLGuard(ctx, tx); err != nil {
			return err
		}
		var tables []catalog.Name
		if g != nil {
			var err error
			if tables, err = graphTables(ctx, tx, g); err != nil {
				return err
			}
		}
		recorded, err := fencedTables(ctx, tx)
		if err != nil {
			return err
		}
		triggers, err := fenceTriggers(ctx, tx, append(tables, recorded...))
		if err != nil {
			return err
		}
		for _, tr := range triggers {
			if err := tr.drop(ctx, tx); err != nil {
				return err
			}
		}
		return dropSchema(ctx, tx)
	})
	if err != nil {
		if g != nil {
			return fmt.Errorf("fence: uninstall from %s: %w", g.Root, err)
		}
		return fmt.Errorf("fence: uninstall: %w", err)
	}
	return nil
}

// dropSchema drops the fence's objects by name, then the schema without CASCADE. A
// role named purgeguard has the schema first on its default search_path ("$user"),
// so its unqualified CREATE TABLE lands there: CASCADE would drop that table too.
func dropSchema(ctx context.Context, tx pgx.Tx) error {
	if err := dropCaptureFunctions(ctx, tx, nil); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, dropCaptureSQL+dropObjectsSQL); err != nil {
		return fmt.Errorf("drop the fence's functions and tables: %w", err)
	}
	if _, err := tx.Exec(ctx, "DROP SCHEMA IF EXISTS purgeguard"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == dependentObjectsStillExist {
			return fmt.Errorf("drop schema %s: it holds objects the fence did not create; move them elsewhere first: %w", Schema, err)
		}
		return fmt.Errorf("drop schema %s: %w", Schema, err)
	}
	return nil
}

// begin prepares a fence transaction: bounded lock waits, the server version, and the
// advisory lock (exclusive for Install/Uninstall, shared for Arm/Disarm).
func begin(ctx context.Context, tx pgx.Tx, exclusive bool) error {
	var version int
	if err := tx.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	if version < minVersion {
		return fmt.Errorf("postgresql %d: version 14 or later is needed: %w", version/10000, catalog.ErrUnsupported)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '"+lockTimeout+"'"); err != nil {
		return fmt.Errorf("set lock_timeout: %w", err)
	}
	lock := "SELECT pg_advisory_xact_lock_shared($1)"
	if exclusive {
		lock = "SELECT pg_advisory_xact_lock($1)"
	}
	if _, err := tx.Exec(ctx, lock, lockKey); err != nil {
		return fmt.Errorf("advisory lock: %w", err)
	}
	return nil
}

// checkKey fails unless the root has the key column: with a wrong name every DELETE
// would fail, approved or not, with an error that is not the fence's.
func checkKey(ctx context.Context, tx pgx.Tx, root catalog.Name, key string) error {
	var ok bool
	err := tx.QueryRow(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM pg_attribute a
			JOIN pg_class c ON c.oid = a.attrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3
				AND a.attnum > 0 AND NOT a.attisdropped)`,
		root.Schema, root.Table, key).Scan(&ok)
	if err != nil {
		return fmt.Errorf("key column %q: %w", key, err)
	}
	if !ok {
		return fmt.Errorf("key column %q: %w", key, catalog.ErrNotFound)
	}
	return nil
}

// checkTrashEmpty fails with ErrTrashNotEmpty while the trash holds rows.
func checkTrashEmpty(ctx context.Context, tx pgx.Tx) error {
	exists, err := trash.Exists(ctx, tx)
	if err != nil || !exists {
		return err
	}
	var rows bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM purgeguard.trash)").Scan(&rows); err != nil {
		return fmt.Errorf("look into %s.trash: %w", Schema, err)
	}
	if rows {
		return ErrTrashNotEmpty
	}
	return nil
}
