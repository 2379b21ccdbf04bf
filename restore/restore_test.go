package restore_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/restore"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/testdata"
)

// world is a database with its files and a store, and the options to snapshot and
// restore it.
type world struct {
	dsn     string
	conn    *pgx.Conn
	store   storage.Store
	catalog catalog.Options
	snapF   []profile.FileColumn
	restF   []profile.FileColumn
	tenants []uuid.UUID
	roots   []string
	// purge deletes a tenant as the service would.
	purge string
	extra []string // extra-table deletes the purge also runs ($1 = tenant)
	// packMax is the snapshots' PackMax: -1 for tests of loose blobs (every test
	// file is small enough for a pack).
	packMax int64
}

func name(s string) catalog.Name {
	n, err := catalog.ParseName(s)
	if err != nil {
		panic(err)
	}
	return n
}

func callLogd(t *testing.T, store storage.Store) *world {
	t.Helper()
	ctx := testenv.Context(t)
	w := &world{dsn: testenv.Postgres(t), store: store, roots: []string{t.TempDir(), t.TempDir()}}
	w.conn = testenv.Connect(t, w.dsn)
	if err := fixture.CreateSchema(ctx, w.conn); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(ctx, w.conn, fixture.Options{Seed: 11, Tenants: 3, CallLogsPerTenant: 80,
		BigTenantCallLogs: 150, RecordingsRoot: w.roots[0], ExportsRoot: w.roots[1]})
	if err != nil {
		t.Fatal(err)
	}
	w.tenants = res.Tenants
	w.catalog = catalog.Options{Root: name("public.call_logd_tenant"), Key: "uuid"}
	for i, tc := range []string{"public.call_logd_recording", "public.call_logd_export"} {
		// Recordings lie under root/<tenant>/, as call-logd's do (profile.CallLogd).
		fc := profile.FileColumn{Table: name(tc), Column: "path", Root: w.roots[i], PerTenant: i == 0}
		w.snapF, w.restF = append(w.snapF, fc), append(w.restF, fc)
	}
	w.purge = "DELETE FROM call_logd_tenant WHERE uuid = $1"
	return w
}

func graph(t *testing.T, store storage.Store) *world {
	t.Helper()
	ctx := testenv.Context(t)
	w := &world{dsn: testenv.Postgres(t), store: store}
	w.conn = testenv.Connect(t, w.dsn)
	for _, f := range []string{"graph/schema.sql", "graph/data.sql"} {
		if _, err := w.conn.Exec(ctx, testdata.MustSQL(f)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	for _, id := range []string{"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb",
		"cccccccc-cccc-4ccc-8ccc-cccccccccccc", "dddddddd-dddd-4ddd-8ddd-dddddddddddd"} {
		w.tenants = append(w.tenants, uuid.MustParse(id))
	}
	w.catalog = catalog.Options{Root: name("app.org"), Key: "id",
		ExtraTables: []catalog.Extra{{Table: name("app.usage"), Column: "org_id"}}}
	w.purge = "DELETE FROM app.org WHERE id = $1"
	w.extra = []string{"DELETE FROM app.usage WHERE org_id = $1"}
	return w
}

func fileStore(t *testing.T) storage.Store { return testenv.FileStore(t) }

func s3Store(t *testing.T) storage.Store { return testenv.S3Store(t, "r") }

func (w *world) snapshot(t *testing.T, tenant uuid.UUID) *archive.Manifest {
	t.Helper()
	cfg, _ := pgx.ParseConfig(w.dsn)
	ms, err := snapshot.Run(testenv.Context(t), cfg, w.store, snapshot.Options{Tenants: []uuid.UUID{tenant},
		Graph: w.catalog, Files: w.snapF, ToolVersion: "test", PackMax: w.packMax})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return manifests(t, w.store, ms)[0]
}

func (w *world) options(tenant uuid.UUID) restore.Options {
	return restore.Options{Tenant: tenant, Graph: w.catalog, Files: w.restF}
}

func (w *world) restore(t *testing.T, o restore.Options) (*restore.Report, error) {
	t.Helper()
	cfg, _ := pgx.ParseConfig(w.dsn)
	return restore.Run(testenv.Context(t), cfg, w.store, o)
}

func (w *world) mustRestore(t *testing.T, o restore.Options) *restore.Report {
	t.Helper()
	rep, err := w.restore(t, o)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return rep
}

func (w *world) purgeTenant(t *testing.T, tenant uuid.UUID) {
	t.Helper()
	ctx := testenv.Context(t)
	for _, q := range append([]string{w.purge}, w.extra...) {
		if _, err := w.conn.Exec(ctx, q, tenant); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// state is the md5 of every table of the database's user schemas, ordered row text:
// equal states mean identical contents, whoever's rows they are.
func (w *world) state(t *testing.T) map[string]string {
	t.Helper()
	ctx := testenv.Context(t)
	rows, err := w.conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var h string
		if err := w.conn.QueryRow(ctx, "SELECT coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), '') || ':' || count(*) FROM "+tb+" x").Scan(&h); err != nil {
			t.Fatal(err)
		}
		out[tb] = h
	}
	return out
}

func sameState(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for tb, h := range want {
		if got[tb] != h {
			t.Errorf("%s: table %s differs: md5:rows %s, want %s", what, tb, got[tb], h)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d tables, want %d", what, len(got), len(want))
	}
}

// fileState hashes every file under the roots.
func (w *world) fileState(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range w.roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, _ := d.Info()
			d2 := archive.NewDigest()
			d2.Write(b)
			out[p] = d2.Hex() + " " + fi.Mode().String() + " " + fi.ModTime().UTC().String()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The round trip: snapshot, purge (cascades, files removed), restore: every table is
// identical to before, files byte-identical with their mode and mtime, other tenants
// untouched, and new inserts get ids above the restored ones.
func TestRun_RoundTripCallLogd(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(*testing.T) storage.Store
	}{{"file", fileStore}, {"s3", s3Store}} {
		t.Run(b.name, func(t *testing.T) {
			w := callLogd(t, b.open(t))
			tenant := w.tenants[0]
			before, filesBefore := w.state(t), w.fileState(t)
			m := w.snapshot(t, tenant)
			w.purgeTenant(t, tenant)
			for _, f := range m.Files {
				if !f.Missing {
					if err := os.Remove(f.Path); err != nil {
						t.Fatal(err)
					}
				}
			}
			// As in a scratch database built from the schema: the sequence is behind.
			if _, err := w.conn.Exec(testenv.Context(t), "SELECT setval(pg_get_serial_sequence('call_logd_call_log', 'id'), 1)"); err != nil {
				t.Fatal(err)
			}
			rep := w.mustRestore(t, w.options(tenant))
			sameState(t, "after restore", before, w.state(t))
			filesAfter := w.fileState(t)
			for p, h := range filesBefore {
				if filesAfter[p] != h {
					t.Errorf("file %s: %q after restore, want %q", p, filesAfter[p], h)
				}
			}
			if rep.Totals.Inserted != rep.Totals.Rows || rep.Totals.Rows == 0 || rep.Totals.FilesWritten == 0 {
				t.Errorf("report totals %+v: want every row inserted and files written", rep.Totals)
			}
			ctx := testenv.Context(t)
			var newID, maxRestored int64
			if err := w.conn.QueryRow(ctx, "SELECT max(id) FROM call_logd_call_log").Scan(&maxRestored); err != nil {
				t.Fatal(err)
			}
			if err := w.conn.QueryRow(ctx, "INSERT INTO call_logd_call_log (date, tenant_uuid) VALUES (now(), $1) RETURNING id", tenant).Scan(&newID); err != nil {
				t.Fatalf("insert after restore: %v", err)
			}
			if newID <= maxRestored {
				t.Errorf("new call log id %d, want above the restored and existing %d", newID, maxRestored)
			}
		})
	}
}

// The graph schema: composite keys, self references, a cycle, SET NULL and SET
// DEFAULT across tenants, identity columns, a partitioned table, an extra table.
func TestRun_RoundTripGraph(t *testing.T) {
	w := graph(t, fileStore(t))
	before := w.state(t)
	for _, tenant := range w.tenants {
		m := w.snapshot(t, tenant)
		w.purgeTenant(t, tenant)
		rep := w.mustRestore(t, w.options(tenant))
		sameState(t, "org "+tenant.String(), before, w.state(t))
		var rows int64
		for _, tb := range m.Tables {
			rows += tb.Rows
		}
		if rep.Totals.Rows != rows {
			t.Errorf("org %s: report says %d rows in the snapshot, manifest %d", tenant, rep.Totals.Rows, rows)
		}
	}
}

// Twice: the second run inserts nothing and says so.
func TestRun_Twice(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[1]
	w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	first := w.mustRestore(t, w.options(tenant))
	after := w.state(t)
	second := w.mustRestore(t, w.options(tenant))
	if second.Totals.Inserted != 0 || second.Totals.Updated != 0 || second.Totals.FilesWritten != 0 {
		t.Errorf("second restore: %+v, want nothing inserted, updated or written", second.Totals)
	}
	if second.Totals.Present != first.Totals.Inserted {
		t.Errorf("second restore found %d rows present, want the %d the first inserted", second.Totals.Present, first.Totals.Inserted)
	}
	sameState(t, "after the second restore", after, w.state(t))
}

// A retention-style partial delete: exactly the missing rows come back.
func TestRun_PartialDelete(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	before := w.state(t)
	w.snapshot(t, tenant)
	ctx := testenv.Context(t)
	var cutoff any
	if err := w.conn.QueryRow(ctx, "SELECT percentile_disc(0.3) WITHIN GROUP (ORDER BY date) FROM call_logd_call_log WHERE tenant_uuid = $1", tenant).Scan(&cutoff); err != nil {
		t.Fatal(err)
	}
	tag, err := w.conn.Exec(ctx, "DELETE FROM call_logd_call_log WHERE tenant_uuid = $1 AND date < $2", tenant, cutoff)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("partial delete: %v, %d rows", err, tag.RowsAffected())
	}
	rep := w.mustRestore(t, w.options(tenant))
	sameState(t, "after restoring a partial delete", before, w.state(t))
	for _, tr := range rep.Tables {
		if tr.Table == "public.call_logd_call_log" && tr.Inserted != tag.RowsAffected() {
			t.Errorf("call logs inserted: %d, want the %d deleted", tr.Inserted, tag.RowsAffected())
		}
	}
}

// --dry-run says what would happen and changes nothing.
func TestRun_DryRun(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[2]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	purged, files := w.state(t), w.fileState(t)
	o := w.options(tenant)
	o.DryRun = true
	rep := w.mustRestore(t, o)
	sameState(t, "after a dry run", purged, w.state(t))
	if len(w.fileState(t)) != len(files) {
		t.Errorf("a dry run wrote files")
	}
	if rep.Totals.Inserted != rep.Totals.Rows || rep.Totals.Present != 0 {
		t.Errorf("dry run after a purge: %+v, want every row to insert", rep.Totals)
	}
	var want int
	for _, f := range m.Files {
		if !f.Missing && !f.OutsideRoot {
			want++
		}
	}
	if rep.Totals.FilesPresent != want || rep.Totals.FilesWritten != 0 {
		t.Errorf("dry run files: %+v, want %d present (the purge left them on disk)", rep.Totals, want)
	}
}

// A corrupted object: refused before anything is written, as a verification error.
func TestRun_CorruptObjectWritesNothing(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := callLogd(t, store)
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	purged := w.state(t)
	last := m.Tables[len(m.Tables)-1]
	p := filepath.Join(dir, filepath.FromSlash(last.Key))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-5] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = w.restore(t, w.options(tenant))
	var ve *archive.VerifyError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), last.Key) {
		t.Fatalf("restore of a corrupted snapshot: got %v, want a VerifyError naming %s", err, last.Key)
	}
	sameState(t, "after a refused restore", purged, w.state(t))
	// The objects are verified while the connection is made: a database that
	// cannot be reached does not hide the snapshot's fault, which comes first.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg, err := pgx.ParseConfig(w.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Port, cfg.Fallbacks = "127.0.0.1", uint16(closed), nil
	_, err = restore.Run(testenv.Context(t), cfg, w.store, w.options(tenant))
	if !errors.As(err, &ve) {
		t.Errorf("restore of a corrupted snapshot into an unreachable database: got %v, want its VerifyError", err)
	}
}

// cutBody is a real store whose reads of one key after the first (restore checks
// each table object before its transaction, then streams it into COPY) fail with
// cause once all but the object's last byte has been read.
type cutBody struct {
	storage.Store
	key   string
	cause error
	mu    sync.Mutex
	gets  int
}

func (s *cutBody) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key)
	if err != nil || key != s.key {
		return rc, err
	}
	s.mu.Lock()
	s.gets++
	n := s.gets
	s.mu.Unlock()
	if n < 2 {
		return rc, nil
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)-1]), iotest.ErrReader(s.cause))), nil
}

// A table object whose body fails while COPY reads it: the restore's error is the
// storage's (a caller branches on a stalled or given-up store), not the server's
// "COPY from stdin failed" that carries it as text, and nothing is written.
func TestRun_TableBodyFailsDuringCopy(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	purged := w.state(t)
	var big archive.Table
	for _, tb := range m.Tables {
		if tb.Rows > big.Rows {
			big = tb
		}
	}
	cause := errors.New("the body was cut")
	s := &cutBody{Store: w.store, key: big.Key, cause: cause}
	w.store = s
	_, err := w.restore(t, w.options(tenant))
	if !errors.Is(err, cause) {
		t.Fatalf("restore whose table body fails in COPY: %v, want the body's error in the chain", err)
	}
	if s.gets < 2 {
		t.Fatalf("table object read %d times, want the check and the COPY", s.gets)
	}
	sameState(t, "after a failed restore", purged, w.state(t))
}

// A failure in the last table rolls every table back.
func TestRun_FailureRollsBack(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	ctx := testenv.Context(t)
	last := m.Tables[len(m.Tables)-1]
	if last.Rows == 0 {
		t.Fatalf("last table %s holds no row to violate", last.Name)
	}
	// A constraint the snapshot's rows violate, added after the purge.
	if _, err := w.conn.Exec(ctx, "ALTER TABLE "+pgx.Identifier{last.Schema, last.Name}.Sanitize()+" ADD CONSTRAINT refuse_all CHECK (false) NOT VALID"); err != nil {
		t.Fatal(err)
	}
	purged := w.state(t)
	if _, err := w.restore(t, w.options(tenant)); err == nil || !strings.Contains(err.Error(), "refuse_all") {
		t.Fatalf("restore into a table refusing every row: got %v, want the constraint violation", err)
	}
	sameState(t, "after a failed restore", purged, w.state(t))
}

// A snapshot taken before a column was added restores into the migrated schema;
// a dropped column is refused unless allowed.
func TestRun_SchemaChanges(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[1]
	w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	ctx := testenv.Context(t)
	if _, err := w.conn.Exec(ctx, "ALTER TABLE call_logd_call_log ADD COLUMN mos real DEFAULT 4.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.conn.Exec(ctx, "ALTER TABLE call_logd_recording DROP COLUMN end_time"); err != nil {
		t.Fatal(err)
	}
	_, err := w.restore(t, w.options(tenant))
	if err == nil || !strings.Contains(err.Error(), "call_logd_recording") || !strings.Contains(err.Error(), `"end_time"`) {
		t.Fatalf("restore with a dropped column: got %v, want an error naming table and column", err)
	}
	o := w.options(tenant)
	o.AllowDropColumns = true
	rep := w.mustRestore(t, o)
	var n, withDefault int64
	if err := w.conn.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE mos = 4.2::real) FROM call_logd_call_log WHERE tenant_uuid = $1", tenant).Scan(&n, &withDefault); err != nil {
		t.Fatal(err)
	}
	if n == 0 || withDefault != n || rep.Totals.Inserted != rep.Totals.Rows {
		t.Errorf("restored %d call logs, %d with the new column's default; report %+v", n, withDefault, rep.Totals)
	}
}

// A manifest naming ../../etc/x (and an absolute path elsewhere): an integrity
// error naming both, nothing written, inside or outside the root.
func TestRun_PathEscapesRoot(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := callLogd(t, store)
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	outside := t.TempDir()
	evil := []string{w.roots[0] + "/../../" + filepath.Base(outside) + "/x", filepath.Join(outside, "y")}
	var n int
	for i := range m.Files {
		if f := &m.Files[i]; !f.Missing && n < len(evil) {
			f.Path = evil[n]
			n++
		}
	}
	rewriteManifest(t, dir, m)
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	purged, files := w.state(t), w.rootState(t)
	_, err = w.restore(t, w.options(tenant))
	var ie *restore.IntegrityError
	if !errors.As(err, &ie) {
		t.Fatalf("restore of a manifest with paths out of the root: %v, want an IntegrityError", err)
	}
	for _, e := range evil {
		if !strings.Contains(err.Error(), e) {
			t.Errorf("error does not name %s: %v", e, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("restore wrote outside the root: %v", entries)
	}
	w.nothingWritten(t, purged, files)
}

// A symbolic link inside the root pointing outside is not followed: the restore is
// refused whole, rows included, and nothing is written on either side of the link.
func TestRun_SymlinkEscapesRoot(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	outside := t.TempDir()
	dir := filepath.Join(w.roots[0], tenant.String())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	purged, files := w.state(t), w.rootState(t)
	_, err := w.restore(t, w.options(tenant))
	if !errors.Is(err, restore.ErrFileRefused) || !strings.Contains(err.Error(), dir) {
		t.Errorf("restore through a link out of the root: %v, want ErrFileRefused naming %s", err, dir)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("restore followed a link out of the root: %v", entries)
	}
	w.nothingWritten(t, purged, files)
}

func TestRun_OnConflictFail(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	w.snapshot(t, tenant)
	o := w.options(tenant)
	o.OnConflict = restore.ConflictFail
	before := w.state(t)
	if _, err := w.restore(t, o); !errors.Is(err, restore.ErrConflict) {
		t.Errorf("restore over present rows with fail: got %v, want ErrConflict", err)
	}
	sameState(t, "after a refused restore", before, w.state(t))
}

// A restore into emptied tables leaves the planner knowing the rows it put back:
// its own checks join each table with those loaded before it, and on tables the
// planner still believed empty they ran as nested loops (5.4 s of a 10 s restore of
// 105k rows in BENCH_PART=layouts). reltuples is what ANALYZE sets; without the
// restore's ANALYZE it stays at the 0 of the emptied tables.
func TestRun_PlannerKnowsRestoredRows(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	w.snapshot(t, tenant)
	ctx := testenv.Context(t)
	if _, err := w.conn.Exec(ctx, "TRUNCATE call_logd_tenant CASCADE"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.conn.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	w.mustRestore(t, w.options(tenant))
	for _, tb := range []string{"call_logd_call_log", "call_logd_call_log_participant"} {
		var rows int64
		var known float64
		if err := w.conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+tb+"), reltuples FROM pg_class WHERE oid = $1::regclass", tb).Scan(&rows, &known); err != nil {
			t.Fatal(err)
		}
		if rows == 0 || int64(known) != rows {
			t.Errorf("%s: the planner knows %.0f rows after the restore, the table has %d", tb, known, rows)
		}
	}
}
