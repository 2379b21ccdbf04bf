package snapshot_test

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// tableGate is a store whose first table object is held back until a file of the
// run has been saved (fileSaved closed), or until guard passes: a run that saves
// its files only after every table is stored would wait forever.
type tableGate struct {
	storage.Store
	fileSaved chan struct{}
	fail      error // returned for the held table instead of storing it, if set
	guard     time.Duration

	once     sync.Once
	released bool // by a saved file, not by the guard
}

func (g *tableGate) Put(ctx context.Context, key string, r io.Reader) error {
	if !strings.Contains(key, "/tables/") {
		return g.Store.Put(ctx, key, r)
	}
	held := false
	g.once.Do(func() { held = true })
	if !held {
		return g.Store.Put(ctx, key, r)
	}
	select {
	case <-g.fileSaved:
		g.released = true
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(g.guard):
	}
	if g.fail != nil {
		_, _ = io.Copy(io.Discard, r)
		return g.fail
	}
	return g.Store.Put(ctx, key, r)
}

// fileSavedSignal is a Progress closing the returned channel at the first file saved.
func fileSavedSignal() (func(snapshot.Event), chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	return func(ev snapshot.Event) {
		if ev.File != "" {
			once.Do(func() { close(ch) })
		}
	}, ch
}

// A tenant's files are saved while its tables are still being copied (the copy
// leaves this process's CPU idle while PostgreSQL formats rows): a table object
// held back until a file is saved is released by one, and the snapshot is whole.
func TestRun_FilesSavedWhileTablesCopied(t *testing.T) {
	e := newEnv(t)
	progress, saved := fileSavedSignal()
	g := &tableGate{Store: fileStore(t), fileSaved: saved, guard: time.Minute}
	o := e.options(e.res.Tenants[0])
	o.Progress = progress
	m := e.run(t, g, o)[0]
	if !g.released {
		t.Error("no file was saved while a table was held back: files wait for every table")
	}
	if tot := m.Totals(); tot.Files == 0 || len(m.Tables) == 0 {
		t.Fatalf("snapshot totals %+v, %d tables: want files and tables", tot, len(m.Tables))
	}
}

// Files and tables are saved at the same time, but a failure of either still
// commits nothing, and the run returns that failure: a file that cannot be read
// while a table is being copied, and a table that cannot be stored while files are
// being saved.
func TestRun_EitherPhaseFailingCommitsNothing(t *testing.T) {
	errTable := errors.New("table object refused")
	for _, tc := range []struct {
		name  string
		fifo  bool  // a FIFO where a recording of the tenant is: not a regular file
		fail  error // the held table's Put fails with it
		wants string
	}{
		{name: "file", fifo: true, wants: "not a regular file"},
		{name: "table", fail: errTable, wants: errTable.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := testenv.Context(t)
			tenant := e.res.Tenants[0]
			var fifo string
			if tc.fifo {
				if err := e.conn.QueryRow(ctx, `SELECT r.path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id
					WHERE c.tenant_uuid = $1 ORDER BY r.path LIMIT 1`, tenant).Scan(&fifo); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(fifo); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mkfifo(fifo, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			progress, saved := fileSavedSignal()
			s := fileStore(t)
			// The table is held until the run is cancelled (by the file's error) or a
			// file is saved (then it fails with tc.fail).
			g := &tableGate{Store: s, fileSaved: saved, fail: tc.fail, guard: time.Minute}
			if tc.fifo {
				g.fileSaved = make(chan struct{}) // never: held until the file's error cancels the run
			}
			o := e.options(tenant)
			o.Progress = progress
			cfg, err := pgx.ParseConfig(e.dsn)
			if err != nil {
				t.Fatal(err)
			}
			_, err = snapshot.Run(ctx, cfg, g, o)
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("snapshot: %v, want an error saying %q", err, tc.wants)
			}
			if tc.fail != nil && !errors.Is(err, tc.fail) {
				t.Errorf("snapshot: %v, want it to wrap %v", err, tc.fail)
			}
			if tc.fifo && !strings.Contains(err.Error(), fifo) {
				t.Errorf("snapshot: %v, want it to name %s", err, fifo)
			}
			if ms, err := repository.List(ctx, s, uuid.Nil); err != nil || len(ms) != 0 {
				t.Errorf("after a failed run: %d snapshots listed (%v), want none", len(ms), err)
			}
		})
	}
}
