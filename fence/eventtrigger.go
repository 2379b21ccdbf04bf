package fence

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The DDL guard closes the bypass the triggers leave to a table's owner: the owner of
// a fenced table (often the service's own role, which runs its migrations) may
// `ALTER TABLE … DISABLE TRIGGER` or `DROP TRIGGER` without any right on schema
// purgeguard, then delete freely. Two event triggers refuse that for every role but
// a superuser. Only a superuser may create an event trigger, so a fence installed by
// the owner has no DDL guard: Status says so, and the README names who can bypass.
//
// A superuser still can (session_replication_role, ALTER EVENT TRIGGER … DISABLE);
// the guard is against a mistaken or scripted owner, not against the cluster's admin.
const (
	// DDLEndTrigger refuses an ALTER TABLE that leaves a fence trigger disabled.
	DDLEndTrigger = "purgeguard_ddl_guard"
	// DDLDropTrigger refuses a DROP TRIGGER of a fence trigger.
	DDLDropTrigger = "purgeguard_ddl_guard_drop"
)

// insufficientPrivilege is the SQLSTATE of DROP EVENT TRIGGER by a role that does not
// own it.
const insufficientPrivilege = "42501"

// createDDLGuardSQL is the function both event triggers call. It is not SECURITY
// DEFINER: it must see the role running the DDL as current_user, to let a superuser
// (Uninstall among others) through.
//
// On ddl_command_end it looks only at the tables the command altered, so a fence
// trigger a superuser disabled on purpose does not block the service's unrelated
// migrations. 'D' is disabled, 'R' fires only under session_replication_role =
// replica: both mean the trigger no longer fires for the service. On sql_drop it
// refuses a trigger with one of the fence's names dropped by the statement itself
// (original): dropping the table drops its triggers as a consequence, and is allowed.
const createDDLGuardSQL = `
CREATE OR REPLACE FUNCTION purgeguard.refuse_fence_ddl() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fence$
DECLARE
	found_name text;
	found_table text;
BEGIN
	IF coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user), false) THEN
		RETURN;
	END IF;
	IF TG_EVENT = 'sql_drop' THEN
		SELECT d.address_names[3], d.address_names[1] || '.' || d.address_names[2]
		INTO found_name, found_table
		FROM pg_event_trigger_dropped_objects() d
		WHERE d.original AND d.object_type = 'trigger' AND d.address_names[3] = ANY ({{trigger_names}})
		LIMIT 1;
	ELSE
		SELECT t.tgname, t.tgrelid::regclass::text INTO found_name, found_table
		FROM pg_trigger t
		JOIN pg_proc p ON p.oid = t.tgfoid
		JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'purgeguard' AND t.tgenabled IN ('D', 'R')
			AND t.tgrelid IN (SELECT c.objid FROM pg_event_trigger_ddl_commands() c
				WHERE c.classid = 'pg_class'::regclass)
		LIMIT 1;
	END IF;
	IF found_name IS NOT NULL THEN
		RAISE EXCEPTION USING
			ERRCODE = '` + SQLState + `',
			MESSAGE = format('purgeguard: %s of the fence''s trigger %s on %s refused: the fence protects tenant rows from every code path',
				lower(TG_TAG), found_name, found_table),
			HINT = 'uninstall the fence (purgeguard fence uninstall, as a superuser) if it really must go';
	END IF;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.refuse_fence_ddl() FROM PUBLIC;
DROP EVENT TRIGGER IF EXISTS ` + DDLEndTrigger + `;
DROP EVENT TRIGGER IF EXISTS ` + DDLDropTrigger + `;
CREATE EVENT TRIGGER ` + DDLEndTrigger + ` ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION purgeguard.refuse_fence_ddl();
CREATE EVENT TRIGGER ` + DDLDropTrigger + ` ON sql_drop WHEN TAG IN ('DROP TRIGGER')
	EXECUTE FUNCTION purgeguard.refuse_fence_ddl();`

// DDLPartitionTrigger fences the partitions created (or attached) below a fenced
// table after Install: a statement trigger on a partitioned table does not fire for
// a DELETE or TRUNCATE aimed at one of its partitions, and PostgreSQL clones only
// row triggers onto new partitions.
const DDLPartitionTrigger = "purgeguard_new_partitions"

// createPartitionGuardSQL: on ddl_command_end of CREATE TABLE (… PARTITION OF) and
// ALTER TABLE (… ATTACH PARTITION), for each table the command made or altered, the
// fenced tables at or above it (those carrying the fence's own capture or TRUNCATE
// trigger, not a clone); every relation of their partition trees without that trigger
// gets it, calling the same function (a partition's capture keeps its rows under the
// graph table's function, rel_name naming the partition), and is recorded in
// purgeguard.fenced. The function is SECURITY DEFINER: the service's role creating a
// partition in a migration has no right on the fence's functions. Foreign-table
// partitions can carry neither trigger and are left out, as Install leaves them.
const createPartitionGuardSQL = `
CREATE OR REPLACE FUNCTION purgeguard.fence_new_partitions() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fence$
DECLARE
	r record;
BEGIN
	FOR r IN
		WITH cmd AS (
			SELECT DISTINCT c.objid FROM pg_event_trigger_ddl_commands() c
			WHERE c.classid = 'pg_class'::regclass AND c.objsubid = 0
		), top AS (
			SELECT DISTINCT t.tgrelid, t.tgname, t.tgfoid
			FROM cmd
			CROSS JOIN LATERAL pg_partition_ancestors(cmd.objid) a
			JOIN pg_trigger t ON t.tgrelid = a.relid
			JOIN pg_proc p ON p.oid = t.tgfoid
			JOIN pg_namespace pn ON pn.oid = p.pronamespace
			WHERE pn.nspname = 'purgeguard' AND NOT t.tgisinternal AND t.tgparentid = 0
				AND t.tgname IN ('` + CaptureTrigger + `', '` + TruncateTrigger + `', '` + MarkStatementTrigger + `')
		)
		SELECT DISTINCT ON (pt.relid, top.tgname) pt.relid::regclass::text AS rel, n.nspname, c.relname,
			top.tgname, top.tgfoid::regproc::text AS fn
		FROM top
		CROSS JOIN LATERAL pg_partition_tree(top.tgrelid) pt
		JOIN pg_class c ON c.oid = pt.relid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p')
			AND NOT EXISTS (SELECT 1 FROM pg_trigger x WHERE x.tgrelid = pt.relid AND x.tgname = top.tgname)
		ORDER BY pt.relid, top.tgname, pt.level
	LOOP
		IF r.tgname = '` + CaptureTrigger + `' THEN
			EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS ` + captureTransition + ` FOR EACH STATEMENT EXECUTE FUNCTION %s()',
				r.tgname, r.rel, r.fn);
		ELSIF r.tgname = '` + MarkStatementTrigger + `' THEN
			EXECUTE format('CREATE TRIGGER %I BEFORE DELETE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
				r.tgname, r.rel, r.fn);
		ELSE
			EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
				r.tgname, r.rel, r.fn);
		END IF;
		INSERT INTO purgeguard.fenced (schema, table_name) VALUES (r.nspname, r.relname) ON CONFLICT DO NOTHING;
	END LOOP;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.fence_new_partitions() FROM PUBLIC;
DROP EVENT TRIGGER IF EXISTS ` + DDLPartitionTrigger + `;
CREATE EVENT TRIGGER ` + DDLPartitionTrigger + ` ON ddl_command_end WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
	EXECUTE FUNCTION purgeguard.fence_new_partitions();`

// dropDDLGuardSQL removes the event triggers and their functions.
const dropDDLGuardSQL = `
DROP EVENT TRIGGER IF EXISTS ` + DDLEndTrigger + `;
DROP EVENT TRIGGER IF EXISTS ` + DDLDropTrigger + `;
DROP EVENT TRIGGER IF EXISTS ` + DDLPartitionTrigger + `;
DROP FUNCTION IF EXISTS purgeguard.refuse_fence_ddl(), purgeguard.fence_new_partitions();`

// partitionGuardInstalledSQL is true when the event trigger fencing new partitions
// exists and is enabled.
const partitionGuardInstalledSQL = `SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = '` + DDLPartitionTrigger + `' AND evtenabled <> 'D')`

// ddlGuardInstalledSQL is true when both event triggers exist and are enabled.
const ddlGuardInstalledSQL = `SELECT count(*) = 2 FROM pg_event_trigger WHERE evtname IN ('` + DDLEndTrigger + `', '` + DDLDropTrigger + `') AND evtenabled <> 'D'`

// installDDLGuard creates the event triggers when the installing role is a
// superuser, and leaves things as they are otherwise (a guard a superuser installed
// earlier stays).
func installDDLGuard(ctx context.Context, tx pgx.Tx) error {
	var super bool
	if err := tx.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		return fmt.Errorf("read whether the role is a superuser: %w", err)
	}
	if !super {
		return nil
	}
	names := make([]string, len(triggerNames))
	for i, n := range triggerNames {
		q, err := quoteLiteral(n)
		if err != nil {
			return err
		}
		names[i] = q
	}
	sql := strings.Replace(createDDLGuardSQL, "{{trigger_names}}", "ARRAY["+strings.Join(names, ", ")+"]", 1)
	if _, err := tx.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create the DDL guard (event triggers): %w", err)
	}
	if _, err := tx.Exec(ctx, createPartitionGuardSQL); err != nil {
		return fmt.Errorf("create the event trigger fencing new partitions: %w", err)
	}
	return nil
}

// dropDDLGuard removes the event triggers. They belong to the superuser who made
// them: another role gets an error naming the fix.
func dropDDLGuard(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, dropDDLGuardSQL); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == insufficientPrivilege {
			return fmt.Errorf("drop the DDL guard: a superuser installed it, so only a superuser can uninstall the fence: %w", err)
		}
		return fmt.Errorf("drop the DDL guard: %w", err)
	}
	return nil
}
