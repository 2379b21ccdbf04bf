package restore_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/restore"
	"github.com/purgeguard/purgeguard/storage"
)

// rootState lists every entry under the roots, directories and temp files
// included: a file's SHA-256, mode, owner and mtime, a directory's mode and owner,
// a link's target.
func (w *world) rootState(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range w.roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			desc := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				desc += " -> " + target
			case fi.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				dg := archive.NewDigest()
				dg.Write(b)
				desc += " " + dg.Hex() + " " + fi.ModTime().UTC().String()
			}
			out[p] = desc
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// nothingWritten checks that the database and the roots are as they were, and
// that no temp file or journal is left anywhere under the roots.
func (w *world) nothingWritten(t *testing.T, rows, files map[string]string) {
	t.Helper()
	sameState(t, "after a failed restore", rows, w.state(t))
	got := w.rootState(t)
	for p, h := range got {
		if files[p] != h && !strings.HasPrefix(filepath.Base(p), ".purgeguard-") {
			t.Errorf("after a failed restore: %s is %q, was %q", p, h, files[p])
		}
	}
	for p := range files {
		if _, ok := got[p]; !ok {
			t.Errorf("after a failed restore: %s is gone", p)
		}
	}
	w.noTemps(t)
}

// noTemps fails on any temp file or journal under the roots.
func (w *world) noTemps(t *testing.T) {
	t.Helper()
	for p := range w.rootState(t) {
		if strings.HasPrefix(filepath.Base(p), ".purgeguard-") {
			t.Errorf("left behind: %s", p)
		}
	}
}

// removeFiles deletes the saved files of a snapshot, as a purge does.
func removeFiles(t *testing.T, m *archive.Manifest) {
	t.Helper()
	for _, f := range m.Files {
		if !f.Missing && !f.OutsideRoot {
			if err := os.Remove(f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
	}
}

// rewriteManifest replaces the stored manifest of m (a file store in dir) by m.
func rewriteManifest(t *testing.T, dir string, m *archive.Manifest) {
	t.Helper()
	var buf bytes.Buffer
	if err := archive.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(archive.ManifestKey(m.Tenant, m.ID))), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// savedFiles counts the files a snapshot holds.
func savedFiles(m *archive.Manifest) int {
	n := 0
	for _, f := range m.Files {
		if !f.Missing && !f.OutsideRoot {
			n++
		}
	}
	return n
}

// A file with other content at the last path the restore writes: the restore
// fails, and neither the rows nor any of the files before it stay.
func TestRun_ConflictAtLastPathLeavesNothing(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	var last string
	for _, f := range m.Files {
		if !f.Missing && !f.OutsideRoot {
			last = f.Path
		}
	}
	if savedFiles(m) < 2 {
		t.Fatalf("snapshot holds %d files, want several", savedFiles(m))
	}
	if err := os.WriteFile(last, []byte("someone else's"), 0o640); err != nil {
		t.Fatal(err)
	}
	purged, files := w.state(t), w.rootState(t)
	_, err := w.restore(t, w.options(tenant))
	if !errors.Is(err, restore.ErrFileDiffers) || !strings.Contains(err.Error(), last) {
		t.Fatalf("restore with a conflict at %s: %v, want ErrFileDiffers naming it", last, err)
	}
	w.nothingWritten(t, purged, files)

	// Once the conflict is gone, the same restore completes, and sweeps the temp
	// file an older purgeguard (without a journal) left beside a target.
	if err := os.Remove(last); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(last), ".purgeguard-123456789"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	rep := w.mustRestore(t, w.options(tenant))
	if rep.Totals.FilesWritten != savedFiles(m) {
		t.Errorf("rerun wrote %d files, want %d", rep.Totals.FilesWritten, savedFiles(m))
	}
	w.noTemps(t)
}

// PostgreSQL terminates the restore's backend while its files are being fetched:
// the restore fails and no file of it stays.
func TestRun_PostgresTerminatedDuringFiles(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	purged, files := w.state(t), w.rootState(t)
	ctx := testenv.Context(t)
	o := w.options(tenant)
	terminated := 0
	o.Progress = func(ev restore.Event) {
		if ev.File == "" || terminated > 0 {
			return
		}
		// The restore's is the one client in a transaction, whether idle between
		// statements or running one: the rows load while the files are staged.
		err := w.conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
			AND xact_start IS NOT NULL`).Scan(&terminated)
		if err != nil {
			t.Error(err)
		}
	}
	_, err := w.restore(t, o)
	if terminated != 1 {
		t.Fatalf("terminated %d backends, want the restore's one", terminated)
	}
	if err == nil {
		t.Fatal("restore whose backend was terminated: no error")
	}
	w.nothingWritten(t, purged, files)
}

// The storage dies while the files are fetched: the restore ends with an error
// after its retries, its transaction closed, and no file of it stays.
func TestRun_StorageStoppedDuringFiles(t *testing.T) {
	srv := testenv.StartMinIO(t)
	ctx := testenv.Context(t)
	raw, err := storage.NewS3(ctx, srv.Bucket, "r", storage.S3Options{Endpoint: srv.Endpoint, Region: srv.Region,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, Insecure: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	bounds := storage.Bounds{Timeout: 2 * time.Second, Retries: 1}
	w := callLogd(t, storage.Bound(raw, bounds))
	// Loose blobs, one read per file: a pack is read ahead of the files staged
	// from it, and would be read whole before the first file's event kills the
	// storage.
	w.packMax = -1
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	purged, files := w.state(t), w.rootState(t)
	o := w.options(tenant)
	killed := false
	o.Progress = func(ev restore.Event) {
		if ev.File != "" && !killed {
			killed = true
			srv.Kill()
		}
	}
	_, err = w.restore(t, o)
	// Three ends are right, depending on where the kill lands: a request that fails
	// is retried, then given up (GiveUpError after every attempt); an object whose
	// body was already streaming stalls, and a half-read body is not retried
	// (ErrStalled); or the dying server's closed connection cuts a body short
	// (io.ErrUnexpectedEOF: a half-read body is not retried either). Either way the
	// restore ends within the bounds, and so does a kill that lands while a table's
	// object streams into COPY (the rows load while the files are staged): its error
	// is the storage's, not the server's "COPY from stdin failed".
	var gu *storage.GiveUpError
	switch {
	case !killed:
		t.Fatal("the storage was never killed: the test proves nothing")
	case errors.As(err, &gu):
		if gu.Attempts != bounds.Retries+1 {
			t.Fatalf("restore with the storage killed: %v, want a GiveUpError after %d attempts", err, bounds.Retries+1)
		}
	case !errors.Is(err, storage.ErrStalled) && !errors.Is(err, io.ErrUnexpectedEOF):
		t.Fatalf("restore with the storage killed: %v, want a GiveUpError after %d attempts, a stall or a body cut short", err, bounds.Retries+1)
	}
	// The restore's connection is closed: no transaction of it is left open (the
	// server may take a moment to see the client go).
	deadline := time.Now().Add(30 * time.Second)
	for {
		var open int
		if err := w.conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d other sessions still open on the database after the restore ended", open)
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.nothingWritten(t, purged, files)
}

// A manifest edited to name a path no row of the tenant names (checksums are not
// involved: the manifest is the index): an integrity error, nothing written, and
// nothing appears there. Two ways in: a recording put in another tenant's directory
// (refused by the per-tenant root before anything is read), and an export zip under
// a root shared by every tenant, which only the check that a row names each path
// catches.
func TestRun_ManifestPathIntoAnotherTenant(t *testing.T) {
	for _, c := range []struct {
		name, table string
		path        func(w *world, other uuid.UUID) string
		want        string
	}{
		{"another tenant's directory", "public.call_logd_recording",
			func(w *world, other uuid.UUID) string {
				return filepath.Join(w.roots[0], other.String(), "monitor", "INJECTED.wav")
			}, "outside"},
		{"a path no row names", "public.call_logd_export",
			func(w *world, _ uuid.UUID) string { return filepath.Join(w.roots[1], "INJECTED.zip") },
			"no row of the tenant names it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			store, err := storage.NewFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			w := callLogd(t, store)
			tenant, other := w.tenants[0], w.tenants[1]
			m := w.snapshot(t, tenant)
			injected := c.path(w, other)
			edited := false
			for i := range m.Files {
				if f := &m.Files[i]; f.Table == c.table && !f.Missing {
					f.Path, edited = injected, true
					break
				}
			}
			if !edited {
				t.Fatalf("fixture: no file of %s in the snapshot", c.table)
			}
			rewriteManifest(t, dir, m)
			w.purgeTenant(t, tenant)
			removeFiles(t, m)
			purged, files := w.state(t), w.rootState(t)
			_, err = w.restore(t, w.options(tenant))
			var ie *restore.IntegrityError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), injected) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore of a manifest naming %s: %v, want an IntegrityError naming it (%q)", injected, err, c.want)
			}
			if _, err := os.Lstat(injected); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s was written: %v", injected, err)
			}
			w.nothingWritten(t, purged, files)
		})
	}
}

// A recording row of the tenant forged to name a file in another tenant's directory,
// its file added to the manifest (a blob of the tenant's own, checksums recomputed):
// the row belongs to the tenant and names the path, so only the per-tenant directory
// says it is not the tenant's. An integrity error, nothing written anywhere.
func TestRun_ForgedRowIntoAnotherTenantsDirectory(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := callLogd(t, store)
	w.packMax = -1 // the forged entry shares a blob: a pack's frame is one entry's
	tenant, other := w.tenants[0], w.tenants[1]
	m := w.snapshot(t, tenant)
	injected := filepath.Join(w.roots[0], other.String(), "monitor", "FORGED.wav")
	var file *archive.File
	for i := range m.Files {
		if f := m.Files[i]; f.Table == "public.call_logd_recording" && !f.Missing {
			file = &f
			break
		}
	}
	if file == nil {
		t.Fatal("no recording file in the snapshot")
	}
	forged := *file
	forged.Path = injected
	m.Files = append(m.Files, forged)
	for i, tb := range m.Tables {
		if tb.Name == "call_logd_recording" {
			appendRow(t, dir, &m.Tables[i], func(cols []archive.Column, line []string) {
				set(cols, line, "uuid", uuid.New().String())
				set(cols, line, "path", injected)
			})
		}
	}
	rewriteManifest(t, dir, m)
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	purged, files := w.state(t), w.rootState(t)
	_, err = w.restore(t, w.options(tenant))
	var ie *restore.IntegrityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), injected) || !strings.Contains(err.Error(), "outside the tenant's directory") {
		t.Fatalf("restore of a row naming %s: %v, want an IntegrityError saying it is outside the tenant's directory", injected, err)
	}
	if _, err := os.Lstat(injected); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s was written: %v", injected, err)
	}
	w.nothingWritten(t, purged, files)
}

// A table object rewritten to carry a row of another tenant, with the manifest's
// checksums and counts recomputed so that verification passes: an integrity error
// naming the table, nothing written.
func TestRun_TableObjectWithAnotherTenantsRows(t *testing.T) {
	otherCallLog := func(w *world, tenant uuid.UUID, cols []archive.Column, line []string) {
		set(cols, line, "id", "987654")
		set(cols, line, "tenant_uuid", w.tenants[1].String())
	}
	for _, tc := range []struct {
		name, table string
		edit        func(w *world, tenant uuid.UUID, cols []archive.Column, line []string)
		partial     bool // only the call logs were deleted: rows go through staging, not straight COPY
	}{
		{"call log of another tenant", "call_logd_call_log", otherCallLog, false},
		{"call log of another tenant, staged", "call_logd_call_log", otherCallLog, true},
		{"a new tenant row", "call_logd_tenant", func(w *world, tenant uuid.UUID, cols []archive.Column, line []string) {
			set(cols, line, "uuid", uuid.New().String())
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store, err := storage.NewFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			w := callLogd(t, store)
			tenant := w.tenants[0]
			m := w.snapshot(t, tenant)
			i := -1
			for j, tb := range m.Tables {
				if tb.Name == tc.table {
					i = j
				}
			}
			if i < 0 {
				t.Fatalf("no table %s in the snapshot", tc.table)
			}
			appendRow(t, dir, &m.Tables[i], func(cols []archive.Column, line []string) { tc.edit(w, tenant, cols, line) })
			rewriteManifest(t, dir, m)
			if tc.partial {
				if _, err := w.conn.Exec(testenv.Context(t), "DELETE FROM call_logd_call_log WHERE tenant_uuid = $1", tenant); err != nil {
					t.Fatal(err)
				}
			} else {
				w.purgeTenant(t, tenant)
			}
			removeFiles(t, m)
			purged, files := w.state(t), w.rootState(t)
			rep, err := w.restore(t, w.options(tenant))
			var ie *restore.IntegrityError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), "public."+tc.table) {
				t.Fatalf("restore of a table object with a foreign row: %v (%+v), want an IntegrityError naming public.%s", err, rep, tc.table)
			}
			w.nothingWritten(t, purged, files)
		})
	}
}

func set(cols []archive.Column, line []string, col, v string) {
	for i, c := range cols {
		if c.Name == col {
			line[i] = v
			return
		}
	}
	panic("no column " + col)
}

// appendRow rewrites a stored table object with one more row, a copy of its last
// row edited, and updates the table's entry (rows, sizes, SHA-256) to match.
func appendRow(t *testing.T, dir string, tb *archive.Table, edit func([]archive.Column, []string)) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(tb.Key))
	stored, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(bytes.NewReader(stored))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(dec)
	dec.Close()
	if err != nil {
		t.Fatal(err)
	}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		last = sc.Text()
	}
	if last == "" {
		t.Fatalf("table %s: no row to copy", tb.Name)
	}
	line := strings.Split(last, "\t")
	edit(tb.Columns, line)
	raw = append(raw, []byte(strings.Join(line, "\t")+"\n")...)
	var out bytes.Buffer
	enc, err := zstd.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := archive.NewDigest()
	sum.Write(out.Bytes())
	tb.SHA256, tb.StoredBytes, tb.RawBytes, tb.Rows = sum.Hex(), int64(out.Len()), int64(len(raw)), tb.Rows+1
}

// A recording owned by another user and group, mode 0640, in 0750 directories of
// that owner: snapshot → delete → restore gives back the same owner, group and
// modes; --files-owner gives them to someone else instead.
func TestRun_Owners(t *testing.T) {
	if os.Geteuid() != 0 {
		if testenv.Required() {
			t.Fatal("owners are restored as root: make test runs as root")
		}
		t.Skip("needs root")
	}
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	const uid, gid = 1234, 2345
	tdir := filepath.Join(w.roots[0], tenant.String())
	err := filepath.WalkDir(tdir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := fs.FileMode(0o640)
		if d.IsDir() {
			mode = 0o750
		}
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := w.rootState(t)
	m := w.snapshot(t, tenant)
	if len(m.Dirs) == 0 {
		t.Fatalf("snapshot recorded no directory")
	}
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	if err := os.RemoveAll(tdir); err != nil {
		t.Fatal(err)
	}
	w.mustRestore(t, w.options(tenant))
	after := w.rootState(t)
	n := 0
	for p, h := range before {
		if !strings.HasPrefix(p, tdir) {
			continue
		}
		n++
		if after[p] != h {
			t.Errorf("%s: %q after restore, want %q", p, after[p], h)
		}
	}
	if n < 3 {
		t.Fatalf("only %d entries under %s to compare", n, tdir)
	}

	// Elsewhere, for someone else: every file and directory written is theirs.
	scratch := t.TempDir()
	o := w.options(tenant)
	o.FilesRoot, o.FilesOwner = scratch, "33:44"
	if _, err := w.restore(t, o); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(filepath.Join(scratch, tenant.String()), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		want := fs.FileMode(0o640)
		if d.IsDir() {
			want = 0o750
		}
		if st.Uid != 33 || st.Gid != 44 || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %d:%d, want %v 33:44", p, fi.Mode().Perm(), st.Uid, st.Gid, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A file another process puts, while the restore runs, at a target in a directory
// the restore made is never replaced: the restore says so, and the other file keeps
// its bytes (the look before staging finds it, or the commit's no-replace rename
// refuses it).
func TestRun_ForeignFileInMadeDirectoryKept(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	dir := filepath.Join(w.roots[0], tenant.String())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, f := range m.Files {
		if !f.Missing && strings.HasPrefix(f.Path, dir+string(filepath.Separator)) {
			targets = append(targets, f.Path)
		}
	}
	if len(targets) < 3 {
		t.Fatalf("%d recordings of %s under %s: too few to test", len(targets), tenant, dir)
	}
	foreign := []byte("written by another process")
	var put []string
	o := w.options(tenant)
	o.FileJobs = 1
	o.Progress = func(ev restore.Event) {
		if ev.File == "" || put != nil {
			return
		}
		// The first file is staged: every target of the restore that is not on disk
		// yet gets another process's file, in the directory it makes if the restore
		// has not made it in place (it makes a missing one whole, renamed at the
		// commit).
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Error(err)
		}
		for _, p := range targets {
			if p == ev.File {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Error(err)
			}
			if err := os.WriteFile(p, foreign, 0o600); err == nil {
				put = append(put, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Error(err)
			}
		}
	}
	_, err := w.restore(t, o)
	if len(put) == 0 {
		t.Fatal("no foreign file was put: the test proves nothing")
	}
	if err == nil {
		t.Errorf("restore with %d foreign files at its targets: no error", len(put))
	}
	for _, p := range put {
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, foreign) {
			t.Errorf("%s: %d bytes, %v after the restore; want the other process's %d kept", p, len(b), err, len(foreign))
		}
	}
}

// Files are staged in the run's staging directory in their root, not beside their
// targets (the target's directory sees one entry per file, as tar's does), and the
// staging directory goes with the run.
func TestRun_FilesStagedInStagingDirectory(t *testing.T) {
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	removeFiles(t, m)
	o := w.options(tenant)
	o.FileJobs = 1
	checked := 0
	o.Progress = func(ev restore.Event) {
		if ev.File == "" {
			return
		}
		checked++
		var staged, beside []string
		for p := range w.rootState(t) {
			if !strings.HasPrefix(filepath.Base(p), ".purgeguard-restore-") || strings.HasSuffix(p, ".journal") {
				continue
			}
			if strings.HasSuffix(filepath.Base(filepath.Dir(p)), ".stage") {
				staged = append(staged, p)
			} else if !strings.HasSuffix(p, ".stage") {
				beside = append(beside, p)
			}
		}
		if len(staged) == 0 || len(beside) > 0 {
			t.Errorf("after staging %s: %d temps in a staging directory, %d elsewhere (%v); want some, none",
				ev.File, len(staged), len(beside), beside[:min(len(beside), 2)])
		}
	}
	if _, err := w.restore(t, o); err != nil {
		t.Fatal(err)
	}
	if checked < 2 {
		t.Fatalf("%d files staged: too few to test", checked)
	}
	w.noTemps(t)
}

// A tenant's directory removed by the purge is made whole in the run's staging
// directory and renamed into place at the commit: nothing of it is in place before,
// and every file and directory is there after, with its recorded mode.
func TestRun_MissingDirectoryPlacedWhole(t *testing.T) {
	w, tenant, files, m, dir := purgedWithDirectory(t)
	if savedFiles(m) < 3 {
		t.Fatalf("%d files saved: too few to test", savedFiles(m))
	}
	o := w.options(tenant)
	staged := 0
	o.Progress = func(ev restore.Event) {
		if !strings.HasPrefix(ev.File, dir+string(filepath.Separator)) {
			return
		}
		staged++
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after staging %s: %s is in place (%v) before the commit", ev.File, dir, err)
		}
	}
	if _, err := w.restore(t, o); err != nil {
		t.Fatal(err)
	}
	if staged < 3 {
		t.Fatalf("%d files staged under %s: too few to test", staged, dir)
	}
	got := w.rootState(t)
	for p, h := range files {
		if got[p] != h {
			t.Errorf("%s after the restore: %q, want %q", p, got[p], h)
		}
	}
	w.noTemps(t)
}

// Something made at a missing directory's place while the restore stages its copy
// (another process, the service itself) stays: the copy is not renamed over it,
// its files are placed one by one beside what is there.
func TestRun_DirectoryMadeMeanwhileKept(t *testing.T) {
	w, tenant, files, m, dir := purgedWithDirectory(t)
	other := filepath.Join(dir, "monitor", "written-meanwhile.wav")
	o := w.options(tenant)
	o.Progress = func(ev restore.Event) {
		if !strings.HasPrefix(ev.File, dir+string(filepath.Separator)) {
			return
		}
		if _, err := os.Lstat(other); err == nil {
			return
		}
		if err := os.MkdirAll(filepath.Dir(other), 0o750); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(other, []byte("another process's"), 0o600); err != nil {
			t.Error(err)
		}
	}
	if _, err := w.restore(t, o); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(other); err != nil || string(b) != "another process's" {
		t.Errorf("%s after the restore: %q, %v; want the other process's file kept", other, b, err)
	}
	got := w.rootState(t)
	n := 0
	for p, h := range files {
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) || !strings.HasSuffix(p, ".wav") {
			continue
		}
		n++
		if got[p] != h {
			t.Errorf("%s after the restore: %q, want %q", p, got[p], h)
		}
	}
	if n == 0 || savedFiles(m) == 0 {
		t.Fatalf("no recording of %s under %s: the test proves nothing", tenant, dir)
	}
	w.noTemps(t)
}

// purgedWithDirectory snapshots the first tenant of a call-logd world, then purges
// it and removes its directory, as remove_tenant() and the purgers do: the world,
// the tenant, the roots' state before, the snapshot and the directory.
func purgedWithDirectory(t *testing.T) (*world, uuid.UUID, map[string]string, *archive.Manifest, string) {
	t.Helper()
	w := callLogd(t, fileStore(t))
	tenant := w.tenants[0]
	files := w.rootState(t)
	m := w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	dir := filepath.Join(w.roots[0], tenant.String())
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	return w, tenant, files, m, dir
}

// A file whose name holds what COPY's text format escapes (a tab, a backslash, a
// newline, a carriage return) is checked by its exact path: the files check copies
// the paths as COPY text, and a wrong escape would name another path, which no row
// names (an integrity error), or break the COPY.
func TestRun_FileNameWithCopyEscapes(t *testing.T) {
	w := callLogd(t, fileStore(t))
	ctx := testenv.Context(t)
	tenant := w.tenants[0]
	var old string
	if err := w.conn.QueryRow(ctx, "SELECT path FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id WHERE c.tenant_uuid = $1 AND path IS NOT NULL ORDER BY r.uuid LIMIT 1", tenant).Scan(&old); err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(filepath.Dir(old), "a\tb\\c\nd\re.wav")
	if err := os.Rename(old, odd); err != nil {
		t.Fatal(err)
	}
	if _, err := w.conn.Exec(ctx, "UPDATE call_logd_recording SET path = $1 WHERE path = $2", odd, old); err != nil {
		t.Fatal(err)
	}
	files := w.rootState(t)
	w.snapshot(t, tenant)
	w.purgeTenant(t, tenant)
	if err := os.Remove(odd); err != nil {
		t.Fatal(err)
	}
	if _, err := w.restore(t, w.options(tenant)); err != nil {
		t.Fatal(err)
	}
	got := w.rootState(t)
	if got[odd] == "" || got[odd] != files[odd] {
		t.Fatalf("%q after the restore: %q, want %q", odd, got[odd], files[odd])
	}
}
