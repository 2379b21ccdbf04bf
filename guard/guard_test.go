package guard_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

type world struct {
	dsn     string
	conn    *pgx.Conn
	tenants []uuid.UUID
	store   storage.Store
	dir     string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := testenv.Context(t)
	w := &world{dsn: testenv.Postgres(t), dir: t.TempDir()}
	w.conn = testenv.Connect(t, w.dsn)
	if err := fixture.CreateSchema(ctx, w.conn); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(ctx, w.conn, fixture.Options{Seed: 4, Tenants: 10, CallLogsPerTenant: 20})
	if err != nil {
		t.Fatal(err)
	}
	w.tenants = res.Tenants
	if w.store, err = storage.NewFile(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return w
}

// run guards a shell command (sh -c script) deleting as told.
func (w *world) run(t *testing.T, targets []uuid.UUID, script string) (*guard.Result, error) {
	t.Helper()
	cfg, _ := pgx.ParseConfig(w.dsn)
	root, _ := catalog.ParseName("public.call_logd_tenant")
	t.Setenv("DATABASE_URL", w.dsn)
	psql := "psql"
	if bin := os.Getenv("PGBIN"); bin != "" {
		psql = filepath.Join(bin, "psql")
	}
	t.Setenv("PSQL", psql)
	return guard.Run(testenv.Context(t), cfg, w.store, guard.Options{
		Input: guard.Input{Targets: targets}, Rules: policy.DefaultRules(),
		Snapshot: snapshot.Options{Graph: catalog.Options{Root: root, Key: "uuid"}, ToolVersion: "test"},
		Command:  []string{"sh", "-c", script}, Stdout: os.Stderr, Stderr: os.Stderr,
	})
}

const del = `"$PSQL" "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -c `

func TestRun_CleanPurge(t *testing.T) {
	w := newWorld(t)
	a := w.tenants[2]
	envFile := filepath.Join(w.dir, "env")
	res, err := w.run(t, []uuid.UUID{a}, `env > `+envFile+` && `+del+`"DELETE FROM call_logd_tenant WHERE uuid = '`+a.String()+`'"`)
	if err != nil {
		t.Fatalf("guard: %v", err)
	}
	if len(res.Snapshots) != 1 || res.Snapshots[0].Tenant != a || len(res.Losses) != 0 || res.ExitCode != 0 {
		t.Errorf("result %+v: want one snapshot of %s, no loss, exit 0", res, a)
	}
	if res.Removed["public.call_logd_call_log"] != 20 {
		t.Errorf("removed call logs: %d, want 20", res.Removed["public.call_logd_call_log"])
	}
	b, _ := os.ReadFile(envFile)
	if want := guard.EnvApproved + "=" + a.String() + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("command environment lacks %q", want)
	}
	if !strings.Contains(string(b), guard.EnvSnapshots+"="+a.String()+":"+res.Snapshots[0].Snapshot.String()) {
		t.Errorf("command environment lacks %s", guard.EnvSnapshots)
	}
}

// The command deletes a tenant it was not approved for: collateral loss, named.
func TestRun_CollateralLoss(t *testing.T) {
	w := newWorld(t)
	a, b := w.tenants[1], w.tenants[5]
	_, err := w.run(t, []uuid.UUID{a}, del+`"DELETE FROM call_logd_tenant WHERE uuid IN ('`+a.String()+`', '`+b.String()+`')"`)
	var br *guard.BlastRadiusError
	if !errors.As(err, &br) {
		t.Fatalf("got %v, want a BlastRadiusError", err)
	}
	var named bool
	for _, l := range br.Losses {
		if l.Tenant == a.String() {
			t.Errorf("approved tenant reported as a loss: %+v", l)
		}
		if l.Kind == guard.LossCollateral && l.Tenant == b.String() && l.Table == "public.call_logd_call_log" && l.Before == 20 && l.After == 0 {
			named = true
		}
	}
	if !named {
		t.Errorf("losses %+v do not name tenant %s's 20 call logs", br.Losses, b)
	}
}

// A row written after the snapshot and purged without a copy is data loss.
func TestRun_UnsavedRows(t *testing.T) {
	w := newWorld(t)
	a := w.tenants[0]
	writer := testenv.Connect(t, w.dsn)
	defer guard.SetBeforeCountHook(func() {
		if _, err := writer.Exec(testenv.Context(t), "INSERT INTO call_logd_call_log (date, tenant_uuid) VALUES (now(), $1)", a); err != nil {
			t.Errorf("late insert: %v", err)
		}
	})()
	res, err := w.run(t, []uuid.UUID{a}, del+`"DELETE FROM call_logd_tenant WHERE uuid = '`+a.String()+`'"`)
	var br *guard.BlastRadiusError
	if !errors.As(err, &br) {
		t.Fatalf("got %v, want a BlastRadiusError", err)
	}
	want := guard.Loss{Kind: guard.LossUnsaved, Tenant: a.String(), Table: "public.call_logd_call_log",
		Before: 21, After: 0, Saved: 20, Snapshot: res.Snapshots[0].Snapshot}
	if len(br.Losses) != 1 || br.Losses[0] != want {
		t.Errorf("losses: got %+v, want [%+v]", br.Losses, want)
	}
}

func TestRun_RefusedNeverRuns(t *testing.T) {
	w := newWorld(t)
	marker := filepath.Join(w.dir, "ran")
	_, err := w.run(t, w.tenants, "touch "+marker)
	var refused *policy.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("deleting every tenant: got %v, want refused", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
}

func TestRun_CommandExitCode(t *testing.T) {
	w := newWorld(t)
	res, err := w.run(t, []uuid.UUID{}, "exit 7")
	var ce *guard.CommandError
	if !errors.As(err, &ce) || ce.ExitCode() != 7 || res.ExitCode != 7 {
		t.Errorf("got %v (%+v), want the command's exit 7", err, res)
	}
}

func TestRun_NoWait(t *testing.T) {
	w := newWorld(t)
	holder := testenv.Connect(t, w.dsn)
	if _, err := holder.Exec(testenv.Context(t), "SELECT pg_advisory_lock($1, $2)", 0x70677264, 1); err != nil {
		t.Fatal(err)
	}
	cfg, _ := pgx.ParseConfig(w.dsn)
	root, _ := catalog.ParseName("public.call_logd_tenant")
	_, err := guard.Run(testenv.Context(t), cfg, w.store, guard.Options{NoWait: true, Input: guard.Input{Targets: []uuid.UUID{}},
		Rules: policy.DefaultRules(), Snapshot: snapshot.Options{Graph: catalog.Options{Root: root, Key: "uuid"}}, Command: []string{"true"}})
	if !errors.Is(err, guard.ErrBusy) {
		t.Errorf("second guard with --no-wait: got %v, want ErrBusy", err)
	}
}

// A restore's transaction lock and a guard's session lock exclude each other: the
// restore gives up at once while a guard runs, a guard without --no-wait would wait.
func TestLockTx(t *testing.T) {
	ctx := testenv.Context(t)
	dsn := testenv.Postgres(t)
	cfg, _ := pgx.ParseConfig(dsn)
	conn := testenv.Connect(t, dsn)
	tryTx := func() error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		return guard.LockTx(ctx, tx)
	}
	unlock, err := guard.Lock(ctx, cfg, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := tryTx(); !errors.Is(err, guard.ErrBusy) {
		t.Errorf("LockTx while a guard holds the lock: got %v, want ErrBusy", err)
	}
	unlock()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := guard.LockTx(ctx, tx); err != nil {
		t.Fatalf("LockTx with the lock free: %v", err)
	}
	if _, err := guard.Lock(ctx, cfg, true); !errors.Is(err, guard.ErrBusy) {
		t.Errorf("guard --no-wait during a restore's transaction: got %v, want ErrBusy", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	unlock, err = guard.Lock(ctx, cfg, true)
	if err != nil {
		t.Errorf("guard after the restore's transaction ended: %v, want the lock", err)
	} else {
		unlock()
	}
}

// syncBuffer is a log sink read while a run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A guard that must wait for the lock says so, naming the session that holds it, and
// goes on once it is released.
func TestRun_SaysItWaitsForTheLock(t *testing.T) {
	w := newWorld(t)
	ctx := testenv.Context(t)
	holder := testenv.Connect(t, w.dsn)
	var pid int
	if err := holder.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", 0x70677264, 1); err != nil {
		t.Fatal(err)
	}
	cfg, _ := pgx.ParseConfig(w.dsn)
	root, _ := catalog.ParseName("public.call_logd_tenant")
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := guard.Run(ctx, cfg, w.store, guard.Options{Input: guard.Input{Targets: []uuid.UUID{}},
			Rules: policy.DefaultRules(), Snapshot: snapshot.Options{Graph: catalog.Options{Root: root, Key: "uuid"}},
			Command: []string{"true"}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		done <- err
	}()
	for !strings.Contains(logs.String(), "waiting for purgeguard's lock") {
		select {
		case err := <-done:
			t.Fatalf("guard ended (%v) while the lock was held; logs:\n%s", err, logs.String())
		case <-ctx.Done():
			t.Fatalf("guard never said it waits; logs:\n%s", logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("holder_pid=%d", pid)) {
		t.Errorf("the wait does not name the holder (pid %d):\n%s", pid, logs.String())
	}
	if _, err := holder.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", 0x70677264, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("guard after the lock was released: %v", err)
	}
}

// Restores of different tenants hold their locks side by side; a guard cannot take
// the lock while any does, and a restore cannot start while a guard holds it; two
// restores of one tenant take turns: the second waits for the first to end.
func TestLockTenantTx(t *testing.T) {
	ctx := testenv.Context(t)
	dsn := testenv.Postgres(t)
	cfg, _ := pgx.ParseConfig(dsn)
	a, b := uuid.MustParse("6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11"), uuid.MustParse("0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7d")
	begin := func() pgx.Tx {
		t.Helper()
		tx, err := testenv.Connect(t, dsn).Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		return tx
	}
	txA, txB := begin(), begin()
	if err := guard.LockTenantTx(ctx, txA, a); err != nil {
		t.Fatalf("restore of tenant A: %v", err)
	}
	if err := guard.LockTenantTx(ctx, txB, b); err != nil {
		t.Fatalf("restore of tenant B beside A's: %v, want the lock", err)
	}
	if _, err := guard.Lock(ctx, cfg, true); !errors.Is(err, guard.ErrBusy) {
		t.Errorf("guard --no-wait during two restores: got %v, want ErrBusy", err)
	}

	// A second restore of tenant A waits for the first.
	txA2 := begin()
	var pid int
	if err := txA2.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- guard.LockTenantTx(ctx, txA2, a) }()
	watcher := testenv.Connect(t, dsn)
	for waiting := false; !waiting; {
		if err := watcher.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted)", pid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("a second restore of tenant A went ahead while the first holds it (err %v)", err)
		default:
		}
	}
	if err := txA.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("the second restore of tenant A once the first ended: %v, want the lock", err)
	}
	_ = txA2.Rollback(ctx)
	_ = txB.Rollback(ctx)

	unlock, err := guard.Lock(ctx, cfg, true)
	if err != nil {
		t.Fatalf("guard after the restores ended: %v, want the lock", err)
	}
	defer unlock()
	if err := guard.LockTenantTx(ctx, begin(), a); !errors.Is(err, guard.ErrBusy) {
		t.Errorf("restore while a guard holds the lock: got %v, want ErrBusy", err)
	}
}
