package guard_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/trash"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/restore"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/testdata"
)

// trashWorld is a database with the capturing fence, a service session deleting
// outside guard, and a store.
type trashWorld struct {
	ctx   context.Context
	dsn   string
	cfg   *pgx.ConnConfig
	admin *pgx.Conn
	svc   *pgx.Conn
	co    catalog.Options
	store storage.Store
	files []profile.FileColumn
}

func newTrashWorld(t *testing.T, co catalog.Options, scripts ...string) *trashWorld {
	t.Helper()
	w := &trashWorld{ctx: testenv.Context(t), dsn: testenv.Postgres(t), co: co}
	w.admin, w.svc = testenv.Connect(t, w.dsn), testenv.Connect(t, w.dsn)
	for _, s := range scripts {
		w.exec(t, s)
	}
	var err error
	if w.cfg, err = pgx.ParseConfig(w.dsn); err != nil {
		t.Fatal(err)
	}
	if w.store, err = storage.NewFile(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *trashWorld) capture(t *testing.T, watch ...fence.Column) {
	t.Helper()
	if err := fence.InstallCapture(w.ctx, w.admin, w.co, watch); err != nil {
		t.Fatalf("InstallCapture: %v", err)
	}
}

func (w *trashWorld) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := w.admin.Exec(w.ctx, sql, args...); err != nil {
		t.Fatalf("%.200s: %v", sql, err)
	}
}

// service runs sql as the service would, outside guard: it must succeed.
func (w *trashWorld) service(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	tag, err := w.svc.Exec(w.ctx, sql, args...)
	if err != nil {
		t.Fatalf("service: %.200s: %v", sql, err)
	}
	return tag.RowsAffected()
}

func (w *trashWorld) trashRows(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := w.admin.QueryRow(w.ctx, "SELECT count(*) FROM purgeguard.trash").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (w *trashWorld) save(t *testing.T) *guard.TrashResult {
	t.Helper()
	res, err := guard.SaveTrash(w.ctx, w.cfg, w.store, guard.TrashOptions{
		Snapshot: snapshot.Options{Graph: w.co, Files: w.files, ToolVersion: "test"}})
	if err != nil {
		t.Fatalf("SaveTrash: %v", err)
	}
	return res
}

func (w *trashWorld) restore(t *testing.T, tenant, id uuid.UUID, onConflict string) *restore.Report {
	t.Helper()
	rep, err := restore.Run(w.ctx, w.cfg, w.store, restore.Options{Tenant: tenant, Snapshot: id, Graph: w.co,
		Files: w.files, OnConflict: onConflict})
	if err != nil {
		t.Fatalf("restore %s of %s: %v", id, tenant, err)
	}
	return rep
}

// contents digests every table of the database (partitions, not their parents),
// ordered by the row's text: equal digests mean equal rows, byte for byte.
func (w *trashWorld) contents(t *testing.T) map[string]string {
	t.Helper()
	rows, err := w.admin.Query(w.ctx, `
		SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'purgeguard')
			AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var s string
		if err := w.admin.QueryRow(w.ctx, "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM "+tb+" t").Scan(&s); err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		out[tb] = s
	}
	return out
}

func diffContents(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if maps.Equal(before, after) {
		return
	}
	var diff []string
	for k, v := range before {
		if after[k] != v {
			diff = append(diff, k+": "+v+" -> "+after[k])
		}
	}
	t.Errorf("%s: tables differ:\n%s", what, strings.Join(diff, "\n"))
}

var graphCatalog = catalog.Options{Root: catalog.Name{Schema: "app", Table: "org"}, Key: "id",
	ExtraTables: []catalog.Extra{{Table: catalog.Name{Schema: "app", Table: "usage"}, Column: "org_id"}}}

const orgA = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"

// The graph schema: a raw DELETE of one org outside guard goes through; trash save
// and restore bring every table back exactly, including the rows of other orgs the
// purge emptied (set null, composite set null), the tasks of other orgs under the
// org's tasks (self reference) and the rows of the partitioned audit log.
func TestTrash_GraphRawDeleteRoundTrip(t *testing.T) {
	w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
	w.capture(t)
	before := w.contents(t)
	a := uuid.MustParse(orgA)

	w.service(t, "DELETE FROM app.usage WHERE org_id = $1", a)
	if n := w.service(t, "DELETE FROM app.org WHERE id = $1", a); n != 1 {
		t.Fatalf("delete of org A: %d rows, want 1", n)
	}
	if w.trashRows(t) == 0 {
		t.Fatal("nothing captured")
	}
	if maps.Equal(before, w.contents(t)) {
		t.Fatal("the delete changed nothing: the test proves nothing")
	}
	res := w.save(t)
	if len(res.Saved) != 1 || res.Saved[0].Tenant != a || res.Unresolved != 0 {
		t.Fatalf("save: %+v, want one snapshot of org A and nothing unattributed", res)
	}
	if n := w.trashRows(t); n != 0 {
		t.Fatalf("trash after save: %d rows, want 0", n)
	}
	w.restore(t, a, res.Saved[0].Snapshot, restore.ConflictSkip)
	diffContents(t, "after trash save and restore", before, w.contents(t))
}

// A migration between the capture and trash save: rows kept before columns were
// added (with a constant default, which the live rows got, an array's too; without
// one; with one the table's rewrite since has forgotten) and dropped, in a plain
// table and a partitioned one, are saved and restored as the rows they would be
// had they never been deleted: the database ends as one where the same migration
// ran and nothing was deleted.
func TestTrash_ColumnsChangedAfterCapture(t *testing.T) {
	migration := []string{
		`ALTER TABLE app.org ADD COLUMN tier text NOT NULL DEFAULT 'free (plan), "v1"'`,
		`ALTER TABLE app.member ADD COLUMN nick text`,
		`ALTER TABLE app.member ADD COLUMN tags text[] NOT NULL DEFAULT '{"a b",c}'`,
		`ALTER TABLE app."attachment ""v2"".files" DROP COLUMN "Size ""bytes"""`,
		`ALTER TABLE app.audit_log ADD COLUMN level integer DEFAULT 3`,
		// A rewrite forgets the value the org's rows got when tier was added: its
		// default tells it.
		`VACUUM FULL app.org`,
	}
	for _, c := range []struct {
		name string
		// older: the rows were kept by a fence that recorded no shapes; the fence
		// installed again (the upgrade) records them, before the migration.
		older bool
	}{{"shapes recorded at capture", false}, {"rows kept before shapes, recorded at install", true}} {
		t.Run(c.name, func(t *testing.T) {
			w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
			w.capture(t)
			want := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
			for _, sql := range migration {
				want.exec(t, sql)
			}
			a := uuid.MustParse(orgA)
			w.service(t, "DELETE FROM app.usage WHERE org_id = $1", a)
			if n := w.service(t, "DELETE FROM app.org WHERE id = $1", a); n != 1 {
				t.Fatalf("delete of org A: %d rows, want 1", n)
			}
			if c.older {
				w.exec(t, "DELETE FROM purgeguard.trash_shape")
				w.capture(t)
			}
			for _, sql := range migration {
				w.exec(t, sql)
			}
			if maps.Equal(want.contents(t), w.contents(t)) {
				t.Fatal("the delete changed nothing: the test proves nothing")
			}
			res := w.save(t)
			if len(res.Saved) != 1 || res.Saved[0].Tenant != a || res.Unresolved != 0 {
				t.Fatalf("save: %+v, want one snapshot of org A and nothing unattributed", res)
			}
			w.restore(t, a, res.Saved[0].Snapshot, restore.ConflictSkip)
			diffContents(t, "after the migration, trash save and restore", want.contents(t), w.contents(t))
		})
	}
}

// One transaction keeps an org's rows, runs a migration adding a column to the org
// table, then keeps another org's rows: its shape of the org table is marked mixed,
// and trash save gives both orgs back, the first reshaped, the second as kept.
func TestTrash_MigrationInsideTheCapturingTransaction(t *testing.T) {
	const orgD = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	migration := `ALTER TABLE app.org ADD COLUMN tier text NOT NULL DEFAULT 'free'`
	w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
	w.capture(t)
	want := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
	want.exec(t, migration)
	a, d := uuid.MustParse(orgA), uuid.MustParse(orgD)
	err := pgx.BeginFunc(w.ctx, w.admin, func(tx pgx.Tx) error {
		for _, q := range []string{"DELETE FROM app.usage WHERE org_id = '" + orgA + "'", "DELETE FROM app.org WHERE id = '" + orgA + "'",
			migration, "DELETE FROM app.usage WHERE org_id = '" + orgD + "'", "DELETE FROM app.org WHERE id = '" + orgD + "'"} {
			if _, err := tx.Exec(w.ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var mixed bool
	if err := w.admin.QueryRow(w.ctx, "SELECT bool_or(mixed) FROM purgeguard.trash_shape WHERE rel_schema = 'app' AND rel_name = 'org'").Scan(&mixed); err != nil || !mixed {
		t.Fatalf("the org table's shape: mixed %v, %v; want marked mixed", mixed, err)
	}
	res := w.save(t)
	if len(res.Saved) != 2 || res.Unresolved != 0 {
		t.Fatalf("save: %+v, want two snapshots (orgs A and D) and nothing unattributed", res)
	}
	for _, sv := range res.Saved {
		if sv.Tenant != a && sv.Tenant != d {
			t.Fatalf("save: snapshot of %s, want orgs A and D", sv.Tenant)
		}
		w.restore(t, sv.Tenant, sv.Snapshot, restore.ConflictSkip)
	}
	diffContents(t, "after trash save and restore of both orgs", want.contents(t), w.contents(t))
}

// A row deleted, put back with other values and deleted again is kept twice; trash
// save keeps its earliest copy, the row before anything deleted it, once, whether
// the two deletes ran in one transaction or in two.
func TestTrash_RowKeptTwiceSavedOnce(t *testing.T) {
	const orgD = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	deleteD, putBackD := "DELETE FROM app.org WHERE id = '"+orgD+"'", "INSERT INTO app.org (id, name) VALUES ('"+orgD+"', 'put back')"
	for _, tc := range []struct {
		name   string
		txs    [][]string
		tenant string
		table  string
		trash  int64  // rows kept
		older  string // run before the fence is installed again: what an older fence left
	}{
		{"one transaction", [][]string{{deleteD, putBackD, deleteD}}, orgD, "app.org", 2, ""},
		{"two transactions", [][]string{{deleteD, putBackD}, {deleteD}}, orgD, "app.org", 2, ""},
		{"one transaction, kept before statements were counted", [][]string{{deleteD, putBackD, deleteD}}, orgD, "app.org", 2,
			"ALTER TABLE purgeguard.trash_shape DROP COLUMN several"},
		{"one transaction, kept before shapes were recorded", [][]string{{deleteD, putBackD, deleteD}}, orgD, "app.org", 2,
			"DELETE FROM purgeguard.trash_shape; ALTER TABLE purgeguard.trash_shape DROP COLUMN several"},
		// the partition's capture, then the partitioned table's: two relations' shapes
		{"a partition, then its table", [][]string{{"DELETE FROM app.audit_log_2025 WHERE id = 1",
			"INSERT INTO app.audit_log (id, at, org_id, project_id, message) OVERRIDING SYSTEM VALUE VALUES (1, '2025-03-01 10:00:00+00', '" + orgA + "', 10, 'put back')",
			"DELETE FROM app.audit_log WHERE id = 1"}}, orgA, "app.audit_log", 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
			w.capture(t)
			before := w.contents(t)
			for _, q := range tc.txs {
				err := pgx.BeginFunc(w.ctx, w.svc, func(tx pgx.Tx) error {
					for _, s := range q {
						if _, err := tx.Exec(w.ctx, s); err != nil {
							return fmt.Errorf("%s: %w", s, err)
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if n := w.trashRows(t); n != tc.trash {
				t.Fatalf("trash: %d rows, want %d", n, tc.trash)
			}
			if tc.older != "" {
				w.exec(t, tc.older)
				w.capture(t)
			}
			res := w.save(t)
			if len(res.Saved) != 1 || res.Saved[0].Tenant != uuid.MustParse(tc.tenant) {
				t.Fatalf("save: %+v, want one snapshot of %s", res, tc.tenant)
			}
			rep := w.restore(t, res.Saved[0].Tenant, res.Saved[0].Snapshot, restore.ConflictFail)
			held := int64(-1)
			for _, tr := range rep.Tables {
				if tr.Table == tc.table {
					held = tr.InSnapshot
				}
			}
			if held != 1 {
				t.Errorf("the snapshot holds %d rows of %s, want the row once", held, tc.table)
			}
			diffContents(t, "after trash save and restore", before, w.contents(t))
		})
	}
}

// A trash kept by an earlier fence (no transaction numbers, a B-tree on xid and
// table) is saved by this version as it is, and after fence install numbers its
// rows and replaces the index: either way, trash save and restore bring back both
// orgs exactly, and the trash ends empty.
func TestTrash_TrashOfAnEarlierFence(t *testing.T) {
	const orgD = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
	for _, again := range []bool{false, true} {
		name := "read as it is"
		if again {
			name = "fence installed again"
		}
		t.Run(name, func(t *testing.T) {
			w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
			w.capture(t)
			before := w.contents(t)
			w.service(t, "DELETE FROM app.usage WHERE org_id = $1", uuid.MustParse(orgA))
			w.service(t, "DELETE FROM app.org WHERE id = $1", uuid.MustParse(orgA))
			w.service(t, "DELETE FROM app.org WHERE id = $1", uuid.MustParse(orgD))
			w.exec(t, `ALTER TABLE purgeguard.trash DROP COLUMN xn;
				CREATE INDEX trash_xid_table ON purgeguard.trash (xid, table_name)`)
			if again {
				w.capture(t)
				var indexes string
				var unnumbered int64
				if err := w.admin.QueryRow(w.ctx, `SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY 1) FROM pg_index
					WHERE indrelid = 'purgeguard.trash'::regclass`).Scan(&indexes); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(indexes, "trash_xid_table") || !strings.Contains(indexes, "trash_xn_table") {
					t.Errorf("indexes of the trash after install: %s, want trash_xn_table and not trash_xid_table", indexes)
				}
				if err := w.admin.QueryRow(w.ctx, "SELECT count(*) FROM purgeguard.trash WHERE xn IS DISTINCT FROM xid::text::bigint").Scan(&unnumbered); err != nil || unnumbered != 0 {
					t.Errorf("after install: %d rows without their transaction's number (%v)", unnumbered, err)
				}
			}
			res := w.save(t)
			if len(res.Saved) != 2 || res.Unresolved != 0 {
				t.Fatalf("save: %+v, want snapshots of orgs A and D, nothing unattributed", res)
			}
			if n := w.trashRows(t); n != 0 {
				t.Fatalf("trash after save: %d rows, want 0", n)
			}
			for _, sv := range res.Saved {
				w.restore(t, sv.Tenant, sv.Snapshot, restore.ConflictSkip) // B's and C's emptied rows survived
			}
			diffContents(t, "after trash save and restore of both orgs", before, w.contents(t))
		})
	}
}

// Remove in a transaction that took its snapshot before its lock was granted
// (REPEATABLE READ) does not truncate: a row a capture committed while it waited
// would be neither seen by its check nor spared. It deletes the tenant's rows.
func TestRemove_RepeatableReadDeletes(t *testing.T) {
	w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
	w.capture(t)
	a := uuid.MustParse("dddddddd-dddd-4ddd-8ddd-dddddddddddd") // the root row alone: all the trash holds
	w.service(t, "DELETE FROM app.org WHERE id = $1", a)
	txs, err := trash.Transactions(w.ctx, w.admin)
	if err != nil || len(txs[a]) == 0 {
		t.Fatalf("transactions: %v, %v", txs, err)
	}
	var xids []uint64
	var rows int64
	for _, x := range txs[a] {
		xids = append(xids, x.Xid)
		rows += x.Rows
	}
	node := w.filenode(t)
	var n int64
	var truncated bool
	err = pgx.BeginTxFunc(w.ctx, w.admin, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) (err error) {
		n, truncated, err = trash.Remove(w.ctx, tx, a, xids, &trash.Sole{Rows: rows})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if truncated || w.filenode(t) != node || n != rows || w.trashRows(t) != 0 {
		t.Errorf("Remove under REPEATABLE READ: truncated %v (filenode changed: %v), %d rows removed of %d, %d left; want deleted, none left",
			truncated, w.filenode(t) != node, n, rows, w.trashRows(t))
	}
}

// typesSchema has a column of each type whose text form could go wrong on the way
// through the trash, under a service session whose output settings differ from the
// defaults in every way that changes a value's text.
const typesSchema = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'a "quoted", odd one');
CREATE TABLE tenant (id uuid PRIMARY KEY);
CREATE TABLE thing (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
	doc jsonb, raw bytea, amount numeric(30, 10), big numeric, moods mood[], f8 double precision, f4 real,
	span interval, at timestamptz, local_at timestamp, day date, t time, tz timetz, words text[], ids int[],
	doc_text text GENERATED ALWAYS AS (doc ->> 'k') STORED
);
CREATE TABLE part (
	tenant_id uuid NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
	at timestamptz NOT NULL, note text, PRIMARY KEY (tenant_id, at)
) PARTITION BY RANGE (at);
CREATE TABLE part_old PARTITION OF part FOR VALUES FROM (MINVALUE) TO ('2026-01-01');
-- a partition whose columns are in another order than its parent's
CREATE TABLE part_new (note text, at timestamptz NOT NULL, tenant_id uuid NOT NULL);
ALTER TABLE part ATTACH PARTITION part_new FOR VALUES FROM ('2026-01-01') TO (MAXVALUE);
INSERT INTO tenant VALUES ('11111111-1111-4111-8111-111111111111'), ('22222222-2222-4222-8222-222222222222');
INSERT INTO thing (tenant_id, doc, raw, amount, big, moods, f8, f4, span, at, local_at, day, t, tz, words, ids)
SELECT tn, '{"k": "v\u00e9", "n": 1.50, "a": [1, {"b": null}]}', '\x00ff5c0a27'::bytea, 12345678901234567890.0123456789,
	1e-40 + 3, '{happy,"a \"quoted\", odd one",NULL}', 0.1 + 0.2, 1.1, '-1 day +02:03:04.5', '2026-03-01 12:34:56.789012+05:30',
	'2026-03-01 01:02:03', '2026-12-31', '23:59:59.999999', '10:00+02', '{"a,b","c\"d",NULL,"\\"}', '{1,NULL,-3}'
FROM (VALUES ('11111111-1111-4111-8111-111111111111'::uuid), ('22222222-2222-4222-8222-222222222222')) v(tn);
INSERT INTO part VALUES ('11111111-1111-4111-8111-111111111111', '2025-06-01', E'old\tone'),
	('11111111-1111-4111-8111-111111111111', '2026-06-01', 'new'), ('22222222-2222-4222-8222-222222222222', '2026-06-02', 'other');`

// Every type round-trips byte for byte through the trash, whatever the deleting
// session's DateStyle, IntervalStyle, TimeZone, extra_float_digits and
// bytea_output, including rows of a partition whose columns are in another order
// than its parent's, deleted from the partition itself, and rows a cascade deleted
// through the partitioned table.
func TestTrash_TypesRoundTrip(t *testing.T) {
	co := catalog.Options{Root: catalog.Name{Schema: "public", Table: "tenant"}, Key: "id"}
	w := newTrashWorld(t, co, typesSchema)
	w.capture(t)
	before := w.contents(t)
	w.service(t, "SET DateStyle = 'SQL, DMY'; SET IntervalStyle = 'sql_standard'; SET TimeZone = 'Pacific/Chatham'; SET extra_float_digits = -3; SET bytea_output = 'escape'")
	tn := uuid.MustParse("11111111-1111-4111-8111-111111111111")
	if n := w.service(t, "DELETE FROM part_new WHERE tenant_id = $1", tn); n != 1 {
		t.Fatalf("delete from the partition: %d rows, want 1", n)
	}
	w.service(t, "DELETE FROM tenant WHERE id = $1", tn)
	// The row deleted from part_new itself is kept as a row of part_new (its column
	// order); the one the cascade deleted through part, as a row of part.
	var parts, fromPartition int
	if err := w.admin.QueryRow(w.ctx, "SELECT count(*), count(*) FILTER (WHERE rel_name = 'part_new') FROM purgeguard.trash WHERE table_name = 'part'").
		Scan(&parts, &fromPartition); err != nil || parts != 2 || fromPartition != 1 {
		t.Fatalf("trash rows of the partitioned table: %d, %d from part_new (%v); want 2, 1", parts, fromPartition, err)
	}
	res := w.save(t)
	if len(res.Saved) != 1 || res.Saved[0].Tenant != tn {
		t.Fatalf("save: %+v, want one snapshot of %s", res, tn)
	}
	w.restore(t, tn, res.Saved[0].Snapshot, restore.ConflictSkip)
	diffContents(t, "after trash save and restore", before, w.contents(t))
}

// A guarded run whose command also deletes a tenant it did not approve, with the
// capturing fence: the approved tenant goes without a copy in the trash (its
// snapshot has it), the other is kept; the guard still exits with a blast-radius
// error saying so, and trash save gives that tenant back.
func TestRun_CaptureFenceKeepsCollateral(t *testing.T) {
	w := newWorld(t)
	a, b := w.tenants[2], w.tenants[3]
	if err := fence.InstallCapture(testenv.Context(t), w.conn, g2opts(), nil); err != nil {
		t.Fatal(err)
	}
	res, err := w.run(t, []uuid.UUID{a}, del+`"DELETE FROM call_logd_tenant WHERE uuid IN ('`+a.String()+`', '`+b.String()+`')"`)
	var blast *guard.BlastRadiusError
	if !errors.As(err, &blast) {
		t.Fatalf("guard: %v, want a blast-radius error", err)
	}
	if res.Trashed == 0 || !strings.Contains(err.Error(), "kept") || !strings.Contains(err.Error(), "trash save") {
		t.Errorf("guard: %d rows kept, error %q; want the kept rows and how to restore them named", res.Trashed, err)
	}
	var tenants []string
	rows, err := w.conn.Query(testenv.Context(t), "SELECT DISTINCT tenant FROM purgeguard.trash WHERE tenant IS NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	if tenants, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(tenants) != 1 || tenants[0] != b.String() {
		t.Errorf("tenants in the trash: %v (%v), want only %s: the approved one has its snapshot", tenants, err, b)
	}
	cfg, _ := pgx.ParseConfig(w.dsn)
	saved, err := guard.SaveTrash(testenv.Context(t), cfg, w.store, guard.TrashOptions{
		Snapshot: snapshot.Options{Graph: g2opts(), ToolVersion: "test"}})
	// One statement deleted both tenants: the cascade below the approved tenant's
	// call logs could not tell whose its rows were and kept them too; with their
	// parents gone uncaptured, they stay in the trash unattributed (README: limits).
	if err != nil || len(saved.Saved) != 1 || saved.Saved[0].Tenant != b {
		t.Fatalf("SaveTrash: %+v, %v; want one snapshot of %s", saved, err, b)
	}
}

func g2opts() catalog.Options {
	return catalog.Options{Root: catalog.Name{Schema: "public", Table: "call_logd_tenant"}, Key: "uuid"}
}

// A save stopped right after its snapshot is committed, before its rows leave the
// trash (the one window where a row is in both): the next save finishes it, removes
// those rows and makes no second snapshot of them.
func TestSaveTrash_FinishesAnInterruptedSave(t *testing.T) {
	w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
	w.capture(t)
	before := w.contents(t)
	a := uuid.MustParse(orgA)
	w.service(t, "DELETE FROM app.usage WHERE org_id = $1", a)
	w.service(t, "DELETE FROM app.org WHERE id = $1", a)
	kept := w.trashRows(t)

	ctx, cancel := context.WithCancel(w.ctx)
	defer guard.SetAfterTrashCommitHook(cancel)()
	_, err := guard.SaveTrash(ctx, w.cfg, w.store, guard.TrashOptions{Snapshot: snapshot.Options{Graph: w.co, ToolVersion: "test"}})
	if err == nil {
		t.Fatal("SaveTrash stopped after its commit: no error")
	}
	if n := w.trashRows(t); n != kept {
		t.Fatalf("trash after the interrupted save: %d rows, want the %d kept", n, kept)
	}
	guard.SetAfterTrashCommitHook(nil)

	res := w.save(t)
	if len(res.Recovered) != 1 || res.Recovered[0].Tenant != a || res.Recovered[0].Rows != kept || len(res.Saved) != 0 {
		t.Fatalf("second save: %+v, want the interrupted save of %s finished (%d rows) and nothing saved again", res, a, kept)
	}
	if n := w.trashRows(t); n != 0 {
		t.Fatalf("trash after the second save: %d rows, want 0", n)
	}
	w.restore(t, a, res.Recovered[0].Snapshot, restore.ConflictSkip)
	diffContents(t, "after the interrupted save, the second save and restore", before, w.contents(t))
}

// filenode is the trash's file: TRUNCATE gives it a new one, a DELETE keeps it.
func (w *trashWorld) filenode(t *testing.T) uint32 {
	t.Helper()
	var n uint32
	if err := w.admin.QueryRow(w.ctx, "SELECT pg_relation_filenode('purgeguard.trash')::oid").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A save that empties the trash truncates it; one that would leave rows behind (of
// a transaction that ended after the save read the trash, or of a tenant not
// attributed), or that cannot have the trash's lock at once (a capturing
// transaction still open), deletes its own rows only. Either way the rows it did
// not save stay, and the saved ones go.
func TestSaveTrash_TruncatesOnlyWhatItSaved(t *testing.T) {
	a, b := uuid.MustParse(orgA), uuid.MustParse("bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb")
	tests := []struct {
		name string
		// during runs between the commit of the save's snapshot and the removal of
		// its rows; it returns what runs once the save returned.
		during    func(t *testing.T, w *trashWorld) (after func())
		truncated bool
		left      int64  // rows not of org A left in the trash
		setup     string // run before the save
	}{
		{name: "only the saved rows", truncated: true},
		// the removal's transaction is READ COMMITTED whatever the server's default
		{name: "repeatable read by default", truncated: true, setup: `DO $$BEGIN
			EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = ''repeatable read''', current_database()); END$$`},
		{name: "rows kept after the save read the trash", left: 1, during: func(t *testing.T, w *trashWorld) func() {
			w.service(t, "DELETE FROM app.usage WHERE org_id = $1 AND ctid = (SELECT min(ctid) FROM app.usage WHERE org_id = $1)", b)
			return nil
		}},
		{name: "a row without a tenant in the saved transaction", left: 1, during: func(t *testing.T, w *trashWorld) func() {
			// as an attribution left it: the save's read of the trash did not see it
			if _, err := w.admin.Exec(w.ctx, `INSERT INTO purgeguard.trash (table_schema, table_name, op, xid, row)
				SELECT table_schema, table_name, op, xid, row FROM purgeguard.trash WHERE tenant = $1 LIMIT 1`, a.String()); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{name: "a capturing transaction still open", left: 1, during: func(t *testing.T, w *trashWorld) func() {
			tx, err := w.svc.Begin(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(w.ctx, "DELETE FROM app.usage WHERE org_id = $1 AND ctid = (SELECT min(ctid) FROM app.usage WHERE org_id = $1)", b); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := tx.Commit(w.ctx); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newTrashWorld(t, graphCatalog, testdata.MustSQL("graph/schema.sql"), testdata.MustSQL("graph/data.sql"))
			w.capture(t)
			w.service(t, "DELETE FROM app.usage WHERE org_id = $1", a)
			w.service(t, "DELETE FROM app.org WHERE id = $1", a)
			kept, node := w.trashRows(t), w.filenode(t)
			if tc.setup != "" {
				w.exec(t, tc.setup)
			}

			var after func()
			if tc.during != nil {
				defer guard.SetAfterTrashCommitHook(func() { after = tc.during(t, w) })()
			}
			// A save that waited for the open transaction instead of deleting would
			// wait for ever: the deadline makes that a failure, not a hang.
			ctx, cancel := context.WithTimeout(w.ctx, 2*time.Minute)
			defer cancel()
			res, err := guard.SaveTrash(ctx, w.cfg, w.store, guard.TrashOptions{Snapshot: snapshot.Options{Graph: w.co, ToolVersion: "test"}})
			if after != nil {
				after()
			}
			if err != nil {
				t.Fatalf("SaveTrash: %v", err)
			}
			if len(res.Saved) != 1 || res.Saved[0].Tenant != a || res.Saved[0].Rows != kept {
				t.Fatalf("save: %+v, want the %d rows of org A saved and removed", res, kept)
			}
			var ofA, ofB int64
			if err := w.admin.QueryRow(w.ctx, "SELECT count(*) FILTER (WHERE tenant = $1), count(*) FILTER (WHERE tenant IS DISTINCT FROM $1) FROM purgeguard.trash",
				a.String()).Scan(&ofA, &ofB); err != nil {
				t.Fatal(err)
			}
			if ofA != 0 || ofB != tc.left {
				t.Fatalf("trash after the save: %d rows of org A, %d others; want 0 and %d", ofA, ofB, tc.left)
			}
			if got := w.filenode(t) != node; got != tc.truncated {
				t.Fatalf("trash truncated: %v, want %v", got, tc.truncated)
			}
		})
	}
}
