package fence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/trash"
)

// The capturing DELETE triggers are statement triggers with a transition table
// (AFTER DELETE ... REFERENCING OLD TABLE), one function per graph table generated
// at install: per row, the executor only adds the deleted row to the transition
// table; per statement, the function decides once which tenants are approved and
// keeps the others' rows with one INSERT ... SELECT. A row trigger called a
// PL/pgSQL function per row (9× the DELETE in the bench) and, BEFORE, made the
// executor lock every deleted row even when approved (1.5×).
//
// A cascade fires each table's statement trigger once, with every row the cascade
// deleted from it, parents' before children's: PostgreSQL runs the referential
// actions of a statement within it (their AFTER triggers queued behind theirs),
// which is what lets a child's function read what its parent's decided.
//
// The function of a table that cannot tell its rows' tenant (a participant of a call
// log) looks the tenant up in the trash rows its parent's function just kept in the
// same transaction (their ref column: the key the child references), so that trash
// save has nothing to attribute for a plain cascade.
//
// Most deletes are one tenant's (remove_tenant, a purge): then the parent's function
// keeps every row it was given, all of one tenant, and records that tenant in a
// transaction-local setting (purgeguard.single_<its function>), and the child's
// function files its rows under it without the lookup (the bench's unapproved
// DELETE took 9.0-9.1 s with it, 10.0 s without). The shortcut must never file a row under a tenant the
// lookup would not give. The setting is stamped with statement_timestamp(), the
// time of the client's message: an older message's value is ignored, and within one
// message (several statements, a function's) a second invocation that was given
// other rows empties it. The child uses it only for a cascade, in which its parent's
// function ran just before its own: its statement trigger fires at trigger depth 1
// (a cascade's queued statement triggers fire at the end of the outer statement; a
// DELETE inside a trigger fires deeper), and no DELETE of the child's own ran in this
// message (mark_statement stamps one in purgeguard.direct_<its function>).
// Anything else takes the lookup. TestCapture_ChildFiledUnderItsOwnTenant fails
// without either condition, TestCapture_PartitionAndParentInOneStatement without
// the emptying.

// captureFunctionPrefix begins the name of each generated function; Install drops
// those it no longer wants, Uninstall all.
const captureFunctionPrefix = "capture_delete_"

// captureFunction is one generated function and the relations whose statement
// trigger calls it: the graph table and, for a partitioned one, each partition (a
// delete addressed to a partition fires the partition's statement triggers only).
type captureFunction struct {
	table catalog.Name
	name  string
	sql   string
	rels  []catalog.Name
	// attributed: the table's rows find their tenant through their parent's (see
	// attribution); its mark_statement trigger then also marks its own DELETEs.
	attributed bool
}

func (f captureFunction) create(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, f.sql); err != nil {
		return fmt.Errorf("create capture function of %s: %w", f.table, err)
	}
	return nil
}

// captureFunctionName is the generated function's name for graph table t: a hash of
// its name, so that any table name fits and the same table keeps its function.
func captureFunctionName(t catalog.Name) string {
	sum := sha256.Sum256([]byte(t.Schema + "\x00" + t.Table))
	return captureFunctionPrefix + hex.EncodeToString(sum[:8])
}

// attribution is how a table that cannot tell its rows' tenant finds it at capture:
// through its one cascade key to parent, whose kept rows record the referenced
// columns as ref.
type attribution struct {
	parent *catalog.Table
	fk     catalog.FK
}

// attributions finds, for each table of g whose rows do not tell their tenant and
// that has exactly one cascade key (to another table), that key; refs are the
// columns each such parent records. A second child referencing a parent through
// other columns is left to trash save's attribution.
func attributions(g *catalog.Graph) (map[catalog.Name]attribution, map[catalog.Name][]string) {
	attrs := map[catalog.Name]attribution{}
	refs := map[catalog.Name][]string{}
	for _, t := range g.Tables {
		if col, _ := trash.TenantColumn(g, t); col != "" {
			continue
		}
		var cascades []catalog.FK
		for _, fk := range t.Via {
			if fk.OnDelete == catalog.OnDeleteCascade {
				cascades = append(cascades, fk)
			}
		}
		if len(cascades) != 1 || cascades[0].Parent == t.Name {
			continue
		}
		p := g.Table(cascades[0].Parent)
		if p == nil {
			continue
		}
		if have, ok := refs[p.Name]; ok && !slices.Equal(have, cascades[0].RefColumns) {
			continue
		}
		refs[p.Name] = cascades[0].RefColumns
		attrs[t.Name] = attribution{parent: p, fk: cascades[0]}
	}
	return attrs, refs
}

// textOf renders columns of the row alias o as one text value, the same for a key
// and the columns referencing it.
func textOf(alias string, cols []string) string {
	if len(cols) == 1 {
		return alias + "." + pgx.Identifier{cols[0]}.Sanitize() + "::text"
	}
	ids := make([]string, len(cols))
	for i, c := range cols {
		ids[i] = alias + "." + pgx.Identifier{c}.Sanitize()
	}
	return "ROW(" + strings.Join(ids, ", ") + ")::text"
}

// captureFunctions renders the capture function of every table of g.
func captureFunctions(g *catalog.Graph, partitions map[catalog.Name][]catalog.Name) ([]captureFunction, error) {
	attrs, refs := attributions(g)
	var out []captureFunction
	for _, t := range g.Tables {
		sql, err := renderCaptureFunction(g, t, attrs, refs)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.Name, err)
		}
		_, attributed := attrs[t.Name]
		out = append(out, captureFunction{table: t.Name, name: captureFunctionName(t.Name), sql: sql,
			rels: append([]catalog.Name{t.Name}, partitions[t.Name]...), attributed: attributed})
	}
	return out, nil
}

// setting is the literal name of the transaction-local setting kind of graph table
// t's capture function (its name is generated: letters, digits and underscores).
func setting(kind string, t catalog.Name) string {
	return "'purgeguard." + kind + "_" + captureFunctionName(t) + "'"
}

// captureTransition names the transition table in every capture trigger.
const captureTransition = "purgeguard_old"

func renderCaptureFunction(g *catalog.Graph, t *catalog.Table, attrs map[catalog.Name]attribution, refs map[catalog.Name][]string) (string, error) {
	schema, err := quoteLiteral(t.Name.Schema)
	if err != nil {
		return "", err
	}
	table, err := quoteLiteral(t.Name.Table)
	if err != nil {
		return "", err
	}
	col, own := trash.TenantColumn(g, t)
	tenant, ref, join := "NULL::text", "NULL::text", ""
	if col != "" && own {
		tenant = textOf("o", []string{col})
	}
	if r, ok := refs[t.Name]; ok {
		ref = textOf("o", r)
	}
	if a, ok := attrs[t.Name]; ok {
		ps, err := quoteLiteral(a.parent.Name.Schema)
		if err != nil {
			return "", err
		}
		pt, err := quoteLiteral(a.parent.Name.Table)
		if err != nil {
			return "", err
		}
		tenant = "p.tenant"
		join = " LEFT JOIN (SELECT k.ref, min(k.tenant) AS tenant FROM purgeguard.trash k" +
			" WHERE k.xn = v_xn AND k.xid = v_xid AND k.table_schema = " + ps + " AND k.table_name = " + pt +
			" AND k.op = 'delete' AND k.ref IS NOT NULL AND k.tenant IS NOT NULL GROUP BY k.ref) p ON p.ref = " + textOf("o", a.fk.Columns)
	}
	// Every row one call keeps shares one id, drawn when it keeps them: a statement
	// deletes a row once, so the id still orders a row's copies (see
	// trash.Selector), with one nextval per call instead of one per row kept (the
	// identity's default).
	keep := func(tenant, join string) string {
		return "v_id := nextval('purgeguard.trash_id_seq'::regclass);\n\t\t" +
			"INSERT INTO purgeguard.trash (id, xid, xn, table_schema, table_name, rel_schema, rel_name, op, tenant, ref, row) OVERRIDING SYSTEM VALUE" +
			" SELECT v_id, v_xid, v_xn, " + schema + ", " + table + ", v_rel_schema, v_rel_name, 'delete', " + tenant + ", " + ref + ", o::text" +
			" FROM " + captureTransition + " o" + join
	}
	insert := keep(tenant, join)
	if a, ok := attrs[t.Name]; ok {
		// The parent's tenant of this statement, when it recorded one (see above).
		single := setting("single", a.parent.Name)
		direct := setting("direct", t.Name)
		insertSingle := keep("v_single", "")
		insert = `v_stmt := extract(epoch FROM statement_timestamp())::text;
	IF pg_trigger_depth() = 1 AND current_setting(` + direct + `, true) IS DISTINCT FROM v_stmt THEN
		v_prev := current_setting(` + single + `, true);
		IF starts_with(v_prev, v_stmt || ' ') THEN
			v_single := nullif(substr(v_prev, length(v_stmt) + 2), '');
		END IF;
	END IF;
	IF v_single IS NOT NULL THEN
		` + insertSingle + `;
	ELSE
		-- The lookup reads the parent's rows through the trash's BRIN index, which
		-- a planner without fresh statistics on the trash would pass by for a scan
		-- of the whole trash. Assignments leave FOUND to the INSERT.
		v_seqscan := current_setting('enable_seqscan');
		v_seqscan_set := set_config('enable_seqscan', 'off', true);
		` + insert + `;
		v_seqscan_set := set_config('enable_seqscan', v_seqscan, true);
	END IF`
	}
	// record is what the function of a parent that attributes its children's rows
	// records for them: the one tenant whose rows it was given and kept, all of them.
	record := ""
	if _, ok := refs[t.Name]; ok && col != "" && own {
		record = `
	IF v_unapproved IS NOT NULL AND NOT v_approved AND NOT v_retention AND array_length(v_unapproved, 1) = 1
		AND v_unapproved[1] IS NOT NULL AND v_rel_name IS NULL AND pg_trigger_depth() = 1 THEN
		v_single := v_unapproved[1];
	END IF;
	v_stmt := extract(epoch FROM statement_timestamp())::text;
	v_prev := current_setting(` + setting("single", t.Name) + `, true);
	IF starts_with(v_prev, v_stmt || ' ') AND substr(v_prev, length(v_stmt) + 2) IS DISTINCT FROM coalesce(v_single, '') THEN
		v_single := NULL; -- another invocation of this statement was given other rows
	END IF;
	PERFORM set_config(` + setting("single", t.Name) + `, v_stmt || ' ' || coalesce(v_single, ''), true);`
	}
	var body string
	if col == "" {
		// No tenant to check: inside a transaction that has let approved rows go and
		// kept none, these went with them (statement triggers fire parents first). A
		// DELETE the transaction issues on this table itself marks it captured
		// (mark_statement): its rows may be any tenant's.
		body = `
	IF current_setting('purgeguard.approved', true) = 'on' AND current_setting('purgeguard.captured', true) IS DISTINCT FROM 'on' THEN
		RETURN NULL;
	END IF;
	` + insert + `;`
	} else {
		c := textOf("o", []string{col})
		isNull := "o." + pgx.Identifier{col}.Sanitize() + " IS NULL"
		retention := "NOT EXISTS (SELECT 1 FROM purgeguard.retention_approval r WHERE r.table_schema = " + schema +
			" AND r.table_name = " + table + " AND r.null_table IS NULL AND r.expires_at > now() AND r.tenant = " + c +
			" AND (row_to_json(o) ->> r.time_column)::timestamptz < r.cutoff)"
		body = `
	SELECT array_agg(d.t) FILTER (WHERE NOT d.ok), coalesce(bool_or(d.ok), false) INTO v_unapproved, v_approved
	FROM (SELECT s.t, s.t IS NOT NULL AND EXISTS (
			SELECT 1 FROM purgeguard.approval a WHERE a.tenant = s.t AND a.expires_at > now()) AS ok
		FROM (SELECT ` + textOf("x", []string{col}) + ` AS t FROM (SELECT DISTINCT ` + "o." + pgx.Identifier{col}.Sanitize() + ` FROM ` + captureTransition + ` o) x) s) d;
	v_retention := EXISTS (SELECT 1 FROM purgeguard.retention_approval r WHERE r.table_schema = ` + schema + `
		AND r.table_name = ` + table + ` AND r.null_table IS NULL AND r.expires_at > now());
	IF v_retention AND NOT v_approved THEN
		-- rows a guarded retention run saved (older than its cut-off) are let go too
		v_approved := EXISTS (SELECT 1 FROM ` + captureTransition + ` o WHERE NOT ` + retention + `);
	END IF;
	IF v_approved AND current_setting('purgeguard.approved', true) IS DISTINCT FROM 'on' THEN
		PERFORM set_config('purgeguard.approved', 'on', true);
	END IF;` + record + `
	IF v_unapproved IS NULL THEN
		RETURN NULL;
	ELSIF v_retention THEN
		` + insert + ` WHERE (` + c + ` = ANY (v_unapproved) OR ` + isNull + `) AND ` + retention + `;
	ELSIF v_approved THEN
		` + insert + ` WHERE ` + c + ` = ANY (v_unapproved) OR ` + isNull + `;
	ELSE
		` + insert + `;
	END IF;`
	}
	return `CREATE OR REPLACE FUNCTION purgeguard.` + pgx.Identifier{captureFunctionName(t.Name)}.Sanitize() + `() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
SET datestyle = 'ISO, MDY' SET intervalstyle = 'postgres' SET timezone = 'UTC'
SET extra_float_digits = 1 SET bytea_output = 'hex' AS $fence$
#variable_conflict use_variable
DECLARE
	v_xid xid8 := pg_current_xact_id();
	v_xn bigint := v_xid::text::bigint;
	v_rel_schema text;
	v_rel_name text;
	v_unapproved text[];
	v_approved boolean := false;
	v_retention boolean := false;
	v_stmt text;
	v_prev text;
	v_single text;
	v_id bigint;
	v_seqscan text;
	v_seqscan_set text;
BEGIN
	IF TG_TABLE_SCHEMA <> ` + schema + ` OR TG_TABLE_NAME <> ` + table + ` THEN
		v_rel_schema := TG_TABLE_SCHEMA;
		v_rel_name := TG_TABLE_NAME;
	END IF;` + body + `
	IF FOUND THEN
		INSERT INTO purgeguard.trash_shape (xid, rel_schema, rel_name, relid, attnums, attnames)
		SELECT v_xid, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_RELID, array_agg(a.attnum ORDER BY a.attnum),
			array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
		ON CONFLICT (xid, rel_schema, rel_name) DO UPDATE SET several = true,
			mixed = purgeguard.trash_shape.mixed OR purgeguard.trash_shape.attnums IS DISTINCT FROM excluded.attnums
		WHERE NOT purgeguard.trash_shape.several
			OR (purgeguard.trash_shape.attnums IS DISTINCT FROM excluded.attnums AND NOT purgeguard.trash_shape.mixed);
		IF current_setting('purgeguard.captured', true) IS DISTINCT FROM 'on' THEN
			PERFORM set_config('purgeguard.captured', 'on', true);
		END IF;
	END IF;
	RETURN NULL;
END
$fence$;
REVOKE ALL ON FUNCTION purgeguard.` + pgx.Identifier{captureFunctionName(t.Name)}.Sanitize() + `() FROM PUBLIC;`, nil
}

// captureTrigger renders the statement trigger of rel calling f.
func captureTrigger(rel catalog.Name, f captureFunction) planned {
	return planned{trigger{rel, CaptureTrigger}, "CREATE OR REPLACE TRIGGER " + pgx.Identifier{CaptureTrigger}.Sanitize() +
		" AFTER DELETE ON " + rel.Sanitize() + " REFERENCING OLD TABLE AS " + captureTransition +
		" FOR EACH STATEMENT EXECUTE FUNCTION purgeguard." + pgx.Identifier{f.name}.Sanitize() + "()"}
}

// markStatementTrigger renders the trigger marking rel's DELETEs that are not a
// cascade's (mark_statement); for an attributed table's, with f's name, so that they
// are also marked as its own.
func markStatementTrigger(rel catalog.Name, f captureFunction) planned {
	arg := ""
	if f.attributed {
		arg = "'" + f.name + "'" // a generated name: letters, digits, underscores
	}
	return planned{trigger{rel, MarkStatementTrigger}, "CREATE OR REPLACE TRIGGER " + pgx.Identifier{MarkStatementTrigger}.Sanitize() +
		" BEFORE DELETE ON " + rel.Sanitize() + " FOR EACH STATEMENT EXECUTE FUNCTION purgeguard.mark_statement(" + arg + ")"}
}

// dropCaptureFunctions drops the generated functions not in keep (nil: all). Their
// triggers must be gone first.
func dropCaptureFunctions(ctx context.Context, tx pgx.Tx, keep []captureFunction) error {
	names := make([]string, len(keep))
	for i, f := range keep {
		names[i] = f.name
	}
	rows, err := tx.Query(ctx, `SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'purgeguard' AND starts_with(p.proname, $1) AND NOT p.proname = ANY ($2::text[]) ORDER BY 1`,
		captureFunctionPrefix, names)
	if err != nil {
		return fmt.Errorf("list capture functions: %w", err)
	}
	stale, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list capture functions: %w", err)
	}
	for _, name := range stale {
		if _, err := tx.Exec(ctx, "DROP FUNCTION IF EXISTS purgeguard."+pgx.Identifier{name}.Sanitize()+"()"); err != nil {
			return fmt.Errorf("drop capture function %s: %w", name, err)
		}
	}
	return nil
}
