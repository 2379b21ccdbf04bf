package fence

import (
	"fmt"
	"strings"
)

// lockKey serialises Install and Uninstall (exclusive) against Arm and Disarm (shared)
// within one database: an Arm never inserts into a schema an Uninstall is dropping.
const lockKey int64 = 0x7075726765666e63 // "purgefnc"

// lockTimeout bounds the wait for table locks: CREATE TRIGGER queued behind a long
// transaction would otherwise block every writer of the service's tables meanwhile.
const lockTimeout = "10s"

// minVersion is PostgreSQL 14: CREATE OR REPLACE TRIGGER.
const minVersion = 140000

// dependentObjectsStillExist is the SQLSTATE of a DROP that other objects depend on.
const dependentObjectsStillExist = "2BP01"

const createSchemaSQL = `
CREATE SCHEMA IF NOT EXISTS purgeguard;
CREATE TABLE IF NOT EXISTS purgeguard.approval (
	tenant text NOT NULL,
	snapshot uuid NOT NULL,
	run uuid NOT NULL,
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (tenant, run)
);
CREATE TABLE IF NOT EXISTS purgeguard.fenced (
	schema text NOT NULL,
	table_name text NOT NULL,
	PRIMARY KEY (schema, table_name)
);`

// The trigger functions are static text: the key column arrives as the trigger's
// argument and reaches SQL only through format('%I'), so no configured name is ever
// spliced into a function body.
//
// SECURITY DEFINER lets the service's role, which has no rights on schema purgeguard,
// read the approvals; search_path is pinned as a definer function's must be.
const createFunctionsSQL = `
CREATE OR REPLACE FUNCTION purgeguard.refuse_unapproved_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fence$
DECLARE
	key_text text;
BEGIN
	EXECUTE format('SELECT ($1).%I::text', TG_ARGV[0]) INTO key_text USING OLD;
	IF key_text IS NOT NULL AND EXISTS (
		SELECT 1 FROM purgeguard.approval a
		WHERE a.tenant = key_text AND a.expires_at > now()
	) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION USING
		ERRCODE = '` + SQLState + `',
		MESSAGE = format('purgeguard: delete of tenant %s from %I.%I refused: the tenant has no approval; run the purge through ` + "`purgeguard guard`" + `',
			coalesce(key_text, 'NULL'), TG_TABLE_SCHEMA, TG_TABLE_NAME),
		HINT = 'purgeguard guard snapshots each tenant and approves its deletion for the purge only',
		SCHEMA = TG_TABLE_SCHEMA,
		TABLE = TG_TABLE_NAME;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.refuse_unapproved_delete() FROM PUBLIC;
-- a row trigger, cloned onto the partitions of a partitioned root created later by
-- the service's role (see createCaptureFunctionsSQL)
GRANT EXECUTE ON FUNCTION purgeguard.refuse_unapproved_delete() TO PUBLIC;

CREATE OR REPLACE FUNCTION purgeguard.refuse_truncate() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fence$
BEGIN
	RAISE EXCEPTION USING
		ERRCODE = '` + SQLState + `',
		MESSAGE = format('purgeguard: truncate of %I.%I refused: it would remove every tenant''s rows; purge tenants through ` + "`purgeguard guard`" + `',
			TG_TABLE_SCHEMA, TG_TABLE_NAME),
		HINT = 'uninstall the purgeguard fence first if the table really must be emptied',
		SCHEMA = TG_TABLE_SCHEMA,
		TABLE = TG_TABLE_NAME;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.refuse_truncate() FROM PUBLIC;`

// dropObjectsSQL drops what createSchemaSQL and createFunctionsSQL create, without
// CASCADE: a trigger still calling a function makes it fail rather than vanish unseen.
const dropObjectsSQL = `
DROP FUNCTION IF EXISTS purgeguard.refuse_unapproved_delete(), purgeguard.refuse_truncate();
DROP TABLE IF EXISTS purgeguard.approval, purgeguard.fenced;`

// fenceTriggersSQL lists the triggers to remove: those calling a function of schema
// purgeguard wherever they are (on a table renamed since Install too), and those
// bearing the fence's names ($1) on the tables given as arrays ($2, $3). Clones of
// a row trigger on partitions (tgparentid <> 0) go with their parent's and cannot be
// dropped alone.
const fenceTriggersSQL = `
SELECT n.nspname, c.relname, t.tgname
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND (
	pn.nspname = 'purgeguard'
	OR (t.tgname = ANY ($1::text[])
		AND (n.nspname, c.relname) IN (SELECT * FROM unnest($2::text[], $3::text[]))))
ORDER BY 1, 2, 3`

// partitionsSQL lists every partition below a partitioned table, sub-partitions
// included: a statement trigger on the parent does not fire for `TRUNCATE partition`.
// Foreign-table partitions (relkind f) cannot carry TRUNCATE triggers.
const partitionsSQL = `
SELECT n.nspname, c.relname
FROM pg_class top
JOIN pg_namespace tn ON tn.oid = top.relnamespace
CROSS JOIN LATERAL pg_partition_tree(top.oid) pt
JOIN pg_class c ON c.oid = pt.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE tn.nspname = $1 AND top.relname = $2 AND pt.relid <> top.oid AND c.relkind IN ('r', 'p')
ORDER BY 1, 2`

// quoteLiteral quotes s as a SQL string literal the way PostgreSQL's quote_literal
// does: quotes doubled and, when s has a backslash, the E'...' form with backslashes
// doubled, so the literal means s whatever standard_conforming_strings says.
func quoteLiteral(s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", fmt.Errorf("%q holds a NUL byte", s)
	}
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q, nil
}
