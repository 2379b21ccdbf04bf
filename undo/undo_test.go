package undo_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/undo"
)

type world struct {
	cfg     *pgx.ConnConfig
	conn    *pgx.Conn
	store   storage.Store
	prof    profile.Profile
	roots   []string
	tenants []uuid.UUID
}

func newWorld(t *testing.T, tenants int) *world {
	t.Helper()
	ctx := testenv.Context(t)
	dsn := testenv.Postgres(t)
	w := &world{conn: testenv.Connect(t, dsn), store: testenv.FileStore(t), prof: profile.CallLogd(), roots: []string{t.TempDir(), t.TempDir()}}
	w.cfg, _ = pgx.ParseConfig(dsn)
	if err := fixture.CreateSchema(ctx, w.conn); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(ctx, w.conn, fixture.Options{Seed: 21, Tenants: tenants, CallLogsPerTenant: 60,
		RecordingsRoot: w.roots[0], ExportsRoot: w.roots[1], RecordingEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	w.tenants = res.Tenants
	for i := range w.prof.Files {
		w.prof.Files[i].Root = w.roots[i]
	}
	return w
}

func (w *world) snapshot(t *testing.T, o snapshot.Options) {
	t.Helper()
	o.Graph, o.Files, o.ToolVersion = w.prof.Tenants, w.prof.Files, "test"
	if _, err := snapshot.Run(testenv.Context(t), w.cfg, w.store, o); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
}

// purge deletes tenants and their files, files first.
func (w *world) purge(t *testing.T, tenants ...uuid.UUID) {
	t.Helper()
	ctx := testenv.Context(t)
	rows, err := w.conn.Query(ctx, `SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
		WHERE c.tenant_uuid = ANY ($1) AND r.path IS NOT NULL
		UNION ALL SELECT path FROM call_logd_export WHERE tenant_uuid = ANY ($1) AND path IS NOT NULL`, tenants)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if _, err := w.conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = ANY ($1)", tenants); err != nil {
		t.Fatal(err)
	}
}

// state is every table's md5 (rows ordered) and every file's bytes, mode, owner and
// mtime.
func (w *world) state(t *testing.T) map[string]string {
	t.Helper()
	out := testenv.TableState(t, w.conn)
	maps.Copy(out, testenv.FileState(t, w.roots...))
	return out
}

// A bad night undone by its window: the retention purge (snapshotted), then a
// purge of two tenants (snapshotted), one of which had an older snapshot taken in
// the window and a row changed since. Undo --since restores each tenant from all its
// snapshots, newest first, the retention one last completing NULLs: the database
// and the files are as they were before the night, the changed row in its newest
// version.
func TestExecute_Window(t *testing.T) {
	w := newWorld(t, 3)
	ctx := testenv.Context(t)
	since := time.Now().Add(-time.Second)
	t0, t1 := w.tenants[0], w.tenants[1]
	w.snapshot(t, snapshot.Options{Tenants: []uuid.UUID{t1}, Reason: "an older snapshot"})
	tag, err := w.conn.Exec(ctx, `UPDATE call_logd_call_log SET destination_name = 'changed since' WHERE id =
		(SELECT max(id) FROM call_logd_call_log WHERE tenant_uuid = $1 AND date > now() - interval '300 days')`, t1)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("change a recent row: %v (%d rows)", err, tag.RowsAffected())
	}
	before := w.state(t)

	w.snapshot(t, snapshot.Options{Retention: fixture.Retention(365), Reason: "nightly"})
	if n, err := fixture.RetentionPurge(ctx, w.conn, 365); err != nil || n == 0 {
		t.Fatalf("retention purge: %v (%d files removed: want some)", err, n)
	}
	w.snapshot(t, snapshot.Options{Tenants: []uuid.UUID{t0, t1}, Reason: "guard run"})
	w.purge(t, t0, t1)

	plan, err := undo.NewPlan(ctx, w.store, undo.Selection{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Tenants) != 3 {
		t.Fatalf("plan: %d tenants, want 3: %+v", len(plan.Tenants), plan.Tenants)
	}
	for _, tp := range plan.Tenants {
		var want []string // scope/on-conflict, newest first
		switch tp.Tenant {
		case t0:
			want = []string{"tenant/skip", "retention/fill-nulls"}
		case t1:
			want = []string{"tenant/skip", "tenant/skip", "retention/fill-nulls"}
		default:
			want = []string{"retention/fill-nulls"}
		}
		var got []string
		for i, s := range tp.Snapshots {
			got = append(got, s.Scope+"/"+s.OnConflict)
			if i > 0 && s.Scope == tp.Snapshots[i-1].Scope && s.CreatedAt.After(tp.Snapshots[i-1].CreatedAt) {
				t.Errorf("tenant %s: snapshot %d is newer than the one before it", tp.Tenant, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("tenant %s: steps %v, want %v", tp.Tenant, got, want)
		}
	}

	res, err := plan.Execute(ctx, w.cfg, w.store, undo.Options{Jobs: 3, Graph: w.prof.Tenants, Files: w.prof.Files, Lock: guard.LockTenantTx})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil || res.Restored != 3 {
		t.Fatalf("undo: %v, %d restored (want 3): %+v", err, res.Restored, res.Tenants)
	}
	testenv.SameState(t, "after undo", before, w.state(t))
}

// A tenant comes back from all its snapshots or from none: an unreadable object in
// its older snapshot fails it whole although its newer one is sound, and the other
// tenants come back.
func TestExecute_TenantWholeOrNothing(t *testing.T) {
	w := newWorld(t, 3)
	ctx := testenv.Context(t)
	since := time.Now().Add(-time.Second)
	bad := w.tenants[0]
	w.snapshot(t, snapshot.Options{Tenants: []uuid.UUID{bad}})
	var older archive.SnapshotRef
	err := w.store.List(ctx, archive.TenantPrefix(bad), func(i storage.Info) error {
		if ref, _, ok := archive.ParseSnapshotKey(i.Key); ok {
			older = ref
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w.snapshot(t, snapshot.Options{Tenants: w.tenants})
	w.purge(t, w.tenants...)
	// Flip a byte of a table object of the older snapshot.
	var key string
	_ = w.store.List(ctx, archive.SnapshotPrefix(older.Tenant, older.ID), func(i storage.Info) error {
		if _, rest, ok := archive.ParseSnapshotKey(i.Key); ok && !archive.IsManifest(rest) && key == "" {
			key = i.Key
		}
		return nil
	})
	if key == "" {
		t.Fatal("no table object in the older snapshot")
	}
	corrupt(t, w.store, key)

	plan, err := undo.NewPlan(ctx, w.store, undo.Selection{Since: since})
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Execute(ctx, w.cfg, w.store, undo.Options{Jobs: 2, Graph: w.prof.Tenants, Files: w.prof.Files, Lock: guard.LockTenantTx})
	if err != nil {
		t.Fatal(err)
	}
	var ie *undo.IncompleteError
	if err := res.Err(); !errors.As(err, &ie) || len(ie.Failed) != 1 || ie.Failed[0] != bad || res.Restored != 2 {
		t.Fatalf("undo: %v, %d restored; want %s alone failed and 2 restored", err, res.Restored, bad)
	}
	var n int
	if err := w.conn.QueryRow(ctx, "SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1", bad).Scan(&n); err != nil || n != 0 {
		t.Errorf("the failed tenant has %d call logs (%v), want none: its newer snapshot must not come back alone", n, err)
	}
	for _, tr := range res.Tenants {
		if tr.Tenant == bad && tr.Status != undo.Failed {
			t.Errorf("tenant %s: %s, want failed", bad, tr.Status)
		}
	}
}

// corrupt flips one byte of a stored object.
func corrupt(t *testing.T, s storage.Store, key string) {
	t.Helper()
	ctx := testenv.Context(t)
	rc, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(b) == 0 {
		t.Fatalf("read %s: %v (%d bytes)", key, err, len(b))
	}
	b[len(b)/2] ^= 0xff
	if err := s.Put(ctx, key, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
}
