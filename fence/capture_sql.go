package fence

// createCaptureSQL creates what the capturing mode needs beside the approvals: the
// trash, the retention approvals, the journal of trash saves, and the fence's mode.
// Installing refuse mode creates them too, so switching modes keeps them.
//
// The trash's main index is a BRIN index on the capturing transaction (xn: its
// number, as a bigint, for which BRIN has an operator class) and the graph table:
// the capture is in the service's own DELETE, and a B-tree costs an index insert
// per row kept (0.7-1.3 s for a million rows in an INSERT ... SELECT, against
// 0.2-0.45 s for this BRIN index: a BRIN index does nothing for a row landing in a
// page range it has not summarized yet). A transaction id only grows and one
// statement keeps one table's rows together, so a summarized page range holds few
// transactions and tables, and a scan for one transaction's rows of one table
// reads those ranges and every range not summarized yet: trash save summarizes the
// new ranges first (trash.Summarize), and VACUUM does too. Readers select by
// transaction and table (trash save, table by table; a child's capture looking up
// its parent's kept rows), by transaction (removing saved rows) or read the whole
// trash, each with its transactions' numbers bounding xn (trash.xnRange) beside the
// exact xid. Earlier versions had a B-tree on (xid, table_name); install drops it.
// Partial indexes list the few rows
// deleted from a partition, the emptied rows (kept row by row anyway) and the rows
// not attributed to a tenant yet (trash save looks for them first). ref is, for a table whose children cannot tell their
// tenant, the key they reference (see captureFunctions). id is not a row's own: it
// orders the copies of a row kept more than once, earliest first, and every row one
// capture function's call keeps shares one (a statement deleting from a partitioned
// table and a partition calls two; an emptied row, kept row by row, has its own);
// readers that pick out single trash rows go by ctid.
//
// trash_shape records, per capturing transaction and relation, the columns its kept
// rows hold (the relation's OID, its columns' attribute numbers and names, in the
// record's order): a row is kept as its relation's record text at the time, and a
// migration may add or drop columns before trash save reads it back
// (trash.Reshape). One row per statement that kept rows, not per row kept; rows
// kept before shapes were recorded get one at install, with their relation's
// columns then. A transaction whose statements kept rows of one relation with other
// columns (it ran a migration between them) marks its shape mixed: the first
// statement's columns are recorded, and Reshape tells the others' rows by their
// number of fields, or refuses to guess. A second statement keeping rows of the
// relation in the transaction marks it several: the transaction may then hold a row
// twice (trash.Selector keeps the first; it also does where a transaction kept a
// table's rows through the table and a partition, two shapes, and where rows were
// emptied). Shapes recorded before statements were counted are taken for several.
// The emptying update's capture records a relation's shape once per transaction
// and marks nothing.
const createCaptureSQL = `
CREATE TABLE IF NOT EXISTS purgeguard.setting (
	name text PRIMARY KEY,
	value text NOT NULL
);
CREATE TABLE IF NOT EXISTS purgeguard.trash (
	id bigint GENERATED ALWAYS AS IDENTITY,
	table_schema text NOT NULL,
	table_name text NOT NULL,
	rel_schema text,
	rel_name text,
	op text NOT NULL,
	tenant text,
	xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
	at timestamptz NOT NULL DEFAULT statement_timestamp(),
	row text NOT NULL,
	ref text
);
ALTER TABLE purgeguard.trash ADD COLUMN IF NOT EXISTS ref text;
-- The capture functions draw ids from the identity's sequence by name.
DO $seq$ BEGIN
	IF pg_catalog.pg_get_serial_sequence('purgeguard.trash', 'id') IS DISTINCT FROM 'purgeguard.trash_id_seq' THEN
		RAISE EXCEPTION 'purgeguard.trash.id draws from %, not purgeguard.trash_id_seq: rename that sequence',
			pg_catalog.pg_get_serial_sequence('purgeguard.trash', 'id');
	END IF;
END $seq$;
DROP INDEX IF EXISTS purgeguard.trash_table_tenant;
DROP INDEX IF EXISTS purgeguard.trash_xid;
ALTER TABLE purgeguard.trash ADD COLUMN IF NOT EXISTS xn bigint;
-- Numbered once, on the install that adds xn (a later install finds it NOT NULL
-- and reads no row). Every writer sets xn with xid: the capture functions both
-- from one variable, capture_update both by default, in the same transaction.
DO $xn$ BEGIN
	IF NOT (SELECT attnotnull FROM pg_catalog.pg_attribute WHERE attrelid = 'purgeguard.trash'::regclass AND attname = 'xn') THEN
		UPDATE purgeguard.trash SET xn = xid::text::bigint WHERE xn IS NULL;
	END IF;
END $xn$;
ALTER TABLE purgeguard.trash ALTER COLUMN xn SET DEFAULT pg_catalog.pg_current_xact_id()::text::bigint, ALTER COLUMN xn SET NOT NULL;
DROP INDEX IF EXISTS purgeguard.trash_xid_table;
-- autosummarize: autovacuum summarizes each page range soon after it fills, so a
-- child's lookup among its parent's kept rows reads few ranges not summarized yet;
-- 512 pages a range keep a million rows kept at once under the 256 requests
-- autovacuum queues.
CREATE INDEX IF NOT EXISTS trash_xn_table ON purgeguard.trash USING brin (xn, table_name)
	WITH (pages_per_range = 512, autosummarize = on);
ALTER INDEX purgeguard.trash_xn_table SET (autosummarize = on);
CREATE INDEX IF NOT EXISTS trash_update ON purgeguard.trash (table_schema, table_name) WHERE op = 'update';
CREATE INDEX IF NOT EXISTS trash_unattributed ON purgeguard.trash (table_schema, table_name) WHERE tenant IS NULL;
CREATE INDEX IF NOT EXISTS trash_partition ON purgeguard.trash (table_schema, table_name, rel_schema, rel_name)
	WHERE rel_name IS NOT NULL;
CREATE TABLE IF NOT EXISTS purgeguard.retention_approval (
	run uuid NOT NULL,
	tenant text NOT NULL,
	table_schema text NOT NULL,
	table_name text NOT NULL,
	time_column text NOT NULL,
	cutoff timestamptz NOT NULL,
	-- for a rule that empties columns of another table: that table, and its key
	-- column referencing table_name's ref_column
	null_schema text,
	null_table text,
	fk_column text,
	ref_column text,
	tenant_column text,
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS retention_approval_tenant ON purgeguard.retention_approval (tenant, table_schema, table_name);
CREATE TABLE IF NOT EXISTS purgeguard.trash_shape (
	xid xid8 NOT NULL,
	rel_schema text NOT NULL,
	rel_name text NOT NULL,
	attnums int2[] NOT NULL,
	PRIMARY KEY (xid, rel_schema, rel_name)
);
ALTER TABLE purgeguard.trash_shape ADD COLUMN IF NOT EXISTS relid oid, ADD COLUMN IF NOT EXISTS attnames text[],
	ADD COLUMN IF NOT EXISTS mixed boolean NOT NULL DEFAULT false, ADD COLUMN IF NOT EXISTS several boolean NOT NULL DEFAULT true;
-- Shapes recorded before statements were counted may hide a second statement.
ALTER TABLE purgeguard.trash_shape ALTER COLUMN several SET DEFAULT false;
-- Rows kept before shapes were recorded were kept with the columns their relation
-- has now, unless a migration ran since: recorded as such, as they were read before.
INSERT INTO purgeguard.trash_shape (xid, rel_schema, rel_name, relid, attnums, attnames, several)
SELECT k.xid, k.s, k.n, c.relid, c.nums, c.names, true
FROM (SELECT DISTINCT xid, coalesce(rel_schema, table_schema) AS s, coalesce(rel_name, table_name) AS n FROM purgeguard.trash) k
CROSS JOIN LATERAL (SELECT a.attrelid AS relid, array_agg(a.attnum ORDER BY a.attnum) AS nums,
		array_agg(a.attname::text ORDER BY a.attnum) AS names
	FROM pg_catalog.pg_attribute a
	WHERE a.attrelid = to_regclass(quote_ident(k.s) || '.' || quote_ident(k.n)) AND a.attnum > 0 AND NOT a.attisdropped
	GROUP BY a.attrelid) c
ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS purgeguard.trash_save (
	snapshot uuid PRIMARY KEY,
	tenant text NOT NULL,
	xids xid8[] NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);`

// createCaptureFunctionsSQL: the capturing triggers' functions. As with the refuse
// trigger, column and table names arrive as trigger arguments and reach SQL only
// through format('%I') or as values, never spliced into a body.
//
// row_text writes a record's text form under fixed output settings, so that it reads
// back the same whatever the deleting session set (a DateStyle of SQL, DMY, a
// sql_standard IntervalStyle or a lowered extra_float_digits would otherwise change
// what is kept). capture_update calls it only when the session's settings differ
// from those: setting five parameters for every row is most of a row capture's
// cost. The others (TimeZone: a timestamptz's text carries its offset;
// bytea_output: both forms read back) never change the value read back. The
// generated delete functions set them once per statement instead.
//
// The deletes themselves are kept by statement triggers calling a function
// generated per table (capture_stmt.go). mark_delete, BEFORE DELETE FOR EACH ROW on
// the root only (TG_ARGV[0] its key column), marks the transaction before any
// cascade runs: purgeguard.approved when it deletes an approved tenant,
// purgeguard.captured when it deletes one that is not (its row will be kept). The
// cascades' SET NULL updates run before any statement trigger fires, and
// capture_update reads those marks. The settings are the transaction's own
// (set_config local): a statement of the service could set them too — the fence
// guards against mistakes, not against the service's own SQL.
//
// The row triggers' functions (mark_delete, capture_update) are executable by every
// role: PostgreSQL clones a partitioned table's row triggers onto each partition
// created later, and refuses the CREATE TABLE … PARTITION OF of a role without
// EXECUTE on their function. No role but the installer has USAGE on schema
// purgeguard, so none can name them to put them on a table of its own (and a trigger
// function cannot be called otherwise).
//
// mark_statement, BEFORE DELETE FOR EACH STATEMENT on every table without a tenant
// column, marks the transaction purgeguard.captured when the transaction issues
// the DELETE itself (trigger depth 1; a cascade's statement runs inside the
// referential action, deeper). Such a table's deleted rows are let go unkept only in
// a transaction marked approved and not captured, which says that they went with
// an approved tenant's; a statement of its own may delete any tenant's. (Statement
// triggers AFTER a cascade fire at depth 1 too, at the end of the outer statement:
// only the BEFORE one tells a cascade from a statement.) Given the name of the
// table's capture function, it also records the statement as that table's own, for
// the function's attribution (capture_stmt.go).
//
// capture_update, BEFORE UPDATE OF the watched columns FOR EACH ROW, WHEN one of them
// is emptied: the old row is kept, unless a cascade of an approved purge empties it,
// its tenant is approved, or a retention approval for this table covers its parent.
const createCaptureFunctionsSQL = `
CREATE OR REPLACE FUNCTION purgeguard.row_text(r anyelement) RETURNS text
LANGUAGE sql STABLE
SET datestyle = 'ISO, MDY' SET intervalstyle = 'postgres' SET timezone = 'UTC'
SET extra_float_digits = 1 SET bytea_output = 'hex'
AS $fence$ SELECT r::text $fence$;
REVOKE ALL ON FUNCTION purgeguard.row_text(anyelement) FROM PUBLIC;

CREATE OR REPLACE FUNCTION purgeguard.mark_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fence$
DECLARE
	key_text text;
BEGIN
	EXECUTE format('SELECT ($1).%I::text', TG_ARGV[0]) INTO key_text USING OLD;
	IF key_text IS NOT NULL AND EXISTS (
		SELECT 1 FROM purgeguard.approval a WHERE a.tenant = key_text AND a.expires_at > now()) THEN
		IF current_setting('purgeguard.approved', true) IS DISTINCT FROM 'on' THEN
			PERFORM set_config('purgeguard.approved', 'on', true);
		END IF;
	ELSIF current_setting('purgeguard.captured', true) IS DISTINCT FROM 'on' THEN
		PERFORM set_config('purgeguard.captured', 'on', true);
	END IF;
	RETURN OLD;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.mark_delete() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purgeguard.mark_delete() TO PUBLIC;

CREATE OR REPLACE FUNCTION purgeguard.mark_statement() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fence$
BEGIN
	IF pg_trigger_depth() = 1 THEN
		IF current_setting('purgeguard.captured', true) IS DISTINCT FROM 'on' THEN
			PERFORM set_config('purgeguard.captured', 'on', true);
		END IF;
		IF TG_NARGS > 0 THEN
			PERFORM set_config('purgeguard.direct_' || TG_ARGV[0], extract(epoch FROM statement_timestamp())::text, true);
		END IF;
	END IF;
	RETURN NULL;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.mark_statement() FROM PUBLIC;

CREATE OR REPLACE FUNCTION purgeguard.capture_update() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fence$
DECLARE
	tenant_text text;
	r record;
	parent_tenant text;
	parent_time timestamptz;
BEGIN
	IF pg_trigger_depth() > 1 AND current_setting('purgeguard.approved', true) = 'on'
		AND current_setting('purgeguard.captured', true) IS DISTINCT FROM 'on' THEN
		RETURN NEW;
	END IF;
	IF TG_ARGV[2] <> '' THEN
		tenant_text := row_to_json(OLD) ->> TG_ARGV[2];
		IF tenant_text IS NOT NULL AND EXISTS (
			SELECT 1 FROM purgeguard.approval a WHERE a.tenant = tenant_text AND a.expires_at > now()) THEN
			RETURN NEW;
		END IF;
	END IF;
	FOR r IN SELECT * FROM purgeguard.retention_approval a
		WHERE a.null_schema = TG_ARGV[0] AND a.null_table = TG_ARGV[1] AND a.expires_at > now()
	LOOP
		EXECUTE format('SELECT p.%I::text, p.%I::timestamptz FROM %I.%I p WHERE p.%I = ($1).%I',
			r.tenant_column, r.time_column, r.table_schema, r.table_name, r.ref_column, r.fk_column)
			INTO parent_tenant, parent_time USING OLD;
		IF parent_tenant = r.tenant AND parent_time < r.cutoff THEN
			RETURN NEW;
		END IF;
	END LOOP;
	INSERT INTO purgeguard.trash (table_schema, table_name, rel_schema, rel_name, op, row)
	VALUES (TG_ARGV[0], TG_ARGV[1],
		CASE WHEN TG_TABLE_SCHEMA <> TG_ARGV[0] OR TG_TABLE_NAME <> TG_ARGV[1] THEN TG_TABLE_SCHEMA END,
		CASE WHEN TG_TABLE_SCHEMA <> TG_ARGV[0] OR TG_TABLE_NAME <> TG_ARGV[1] THEN TG_TABLE_NAME END,
		'update', CASE WHEN current_setting('DateStyle') LIKE 'ISO%' AND current_setting('IntervalStyle') = 'postgres'
			AND current_setting('extra_float_digits')::int >= 1 THEN OLD::text ELSE purgeguard.row_text(OLD) END);
	IF current_setting('purgeguard.shape_' || TG_RELID, true) IS DISTINCT FROM 'on' THEN
		INSERT INTO purgeguard.trash_shape (xid, rel_schema, rel_name, relid, attnums, attnames)
		SELECT pg_current_xact_id(), TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_RELID, array_agg(a.attnum ORDER BY a.attnum),
			array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
		ON CONFLICT DO NOTHING;
		PERFORM set_config('purgeguard.shape_' || TG_RELID, 'on', true);
	END IF;
	IF current_setting('purgeguard.captured', true) IS DISTINCT FROM 'on' THEN
		PERFORM set_config('purgeguard.captured', 'on', true);
	END IF;
	RETURN NEW;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.capture_update() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION purgeguard.capture_update() TO PUBLIC;`

// dropCaptureSQL drops what createCaptureSQL and createCaptureFunctionsSQL create.
const dropCaptureSQL = `
DROP FUNCTION IF EXISTS purgeguard.capture_delete(), purgeguard.mark_delete(), purgeguard.mark_statement(), purgeguard.capture_update(), purgeguard.row_text(anyelement);
DROP TABLE IF EXISTS purgeguard.trash, purgeguard.trash_shape, purgeguard.retention_approval, purgeguard.trash_save, purgeguard.setting;`
