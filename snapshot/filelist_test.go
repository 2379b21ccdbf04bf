package snapshot_test

import (
	"io"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/snapshot"
)

// A tenant's files are written to its file list as they are saved, never gathered
// first: the committed manifest holds none of them (its size does not grow with
// them), the list holds every one in the order the run saved them (the order of its
// progress events, which are reported in the same step), and the run's temporary
// files (paths, list, reused blobs) are gone once it returns.
func TestRun_FilesListedAsSaved(t *testing.T) {
	const recordings = 2000
	ctx := testenv.Context(t)
	e := &env{dsn: testenv.Postgres(t), recordings: t.TempDir(), exports: t.TempDir()}
	e.conn = testenv.Connect(t, e.dsn)
	if err := fixture.CreateSchema(ctx, e.conn); err != nil {
		t.Fatal(err)
	}
	res, err := fixture.Generate(ctx, e.conn, fixture.Options{Seed: 3, Tenants: 2, CallLogsPerTenant: 4,
		BigTenantCallLogs: recordings, RecordingEvery: 1, FileSize: 64, FileTenants: 1,
		RecordingsRoot: e.recordings, ExportsRoot: e.exports})
	if err != nil {
		t.Fatal(err)
	}
	e.res = res
	s := fileStore(t)
	tmp := t.TempDir()
	o := e.options(res.Tenants[0])
	o.TempDir = tmp
	var mu sync.Mutex
	var saved []string
	o.Progress = func(ev snapshot.Event) {
		if ev.File != "" {
			mu.Lock()
			saved = append(saved, ev.File)
			mu.Unlock()
		}
	}
	cfg, err := pgx.ParseConfig(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := snapshot.Run(ctx, cfg, s, o)
	if err != nil {
		t.Fatal(err)
	}
	m, err := repository.Manifest(ctx, s, archive.SnapshotRef{Tenant: ss[0].Tenant, ID: ss[0].ID})
	if err != nil {
		t.Fatal(err)
	}
	if m.FormatVersion != archive.FormatVersion || m.FileList == nil || len(m.Files) != 0 {
		t.Fatalf("manifest: format %d, file list %v, %d files inline; want %d, a list, none", m.FormatVersion, m.FileList, len(m.Files), archive.FormatVersion)
	}
	rc, err := s.Get(ctx, archive.ManifestKey(m.Tenant, m.ID))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n > 32<<10 {
		t.Errorf("manifest object: %d bytes for %d files, want the files out of it (at most 32 KiB)", n, len(saved))
	}
	var listed []string
	err = repository.Files(ctx, s, m, func(f archive.File) error {
		listed = append(listed, f.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The fixture names a recording for most of its call logs, not all.
	if len(listed) < recordings/2 || len(listed) != len(saved) {
		t.Fatalf("file list: %d entries, %d files saved; want the same, at least %d", len(listed), len(saved), recordings/2)
	}
	for i := range listed {
		if listed[i] != saved[i] {
			t.Fatalf("file list entry %d: %s, saved %s: want the order the run saved them", i, listed[i], saved[i])
		}
	}
	if tot := m.Totals(); tot.Files+tot.Missing+tot.OutsideRoot != len(listed) || tot.Files < recordings/2 {
		t.Errorf("totals %+v for %d entries", tot, len(listed))
	}
	left, err := os.ReadDir(tmp)
	if err != nil || len(left) != 0 {
		t.Errorf("temporary files left after the run: %v (%v)", left, err)
	}
}
