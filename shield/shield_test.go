package shield_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/shield"
	"github.com/purgeguard/purgeguard/storage"
)

func s3Store(t *testing.T, b testenv.S3) storage.Store {
	t.Helper()
	s, err := storage.NewS3(testenv.Context(t), b.Bucket, "shield", storage.S3Options{Endpoint: b.Endpoint, Region: b.Region,
		AccessKeyID: b.AccessKey, SecretAccessKey: b.SecretKey, Insecure: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type world struct {
	root, shieldDir string
	store           storage.Store
	s               *shield.Shield
	cancel          context.CancelFunc
	done            chan error
}

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func openShield(t *testing.T, root string, store storage.Store) *world {
	t.Helper()
	w := &world{root: root, shieldDir: shield.DefaultShieldDir(root), store: store}
	s, err := shield.Open(shield.Options{Roots: []shield.Root{{Dir: root, Shield: w.shieldDir}},
		Index: filepath.Join(t.TempDir(), "index.db"), Store: store, Settle: 300 * time.Millisecond,
		Rescan: time.Hour, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	w.s = s
	t.Cleanup(func() { s.Close() })
	return w
}

func (w *world) start(t *testing.T) {
	ctx, cancel := context.WithCancel(testenv.Context(t))
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- w.s.Run(ctx) }()
	t.Cleanup(w.stop)
}

func (w *world) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.cancel = nil
	}
}

// waitFor polls cond until it holds; the test's own deadline bounds it.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := testenv.Context(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

type file struct {
	rel      string
	data     []byte
	mode     os.FileMode
	uid, gid int
	mtime    time.Time
}

func writeFile(t *testing.T, root string, f file) {
	t.Helper()
	p := filepath.Join(root, f.rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, f.data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, f.uid, f.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, f.mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
		t.Fatal(err)
	}
}

func someFiles(n int, prefix string) []file {
	var out []file
	for i := range n {
		out = append(out, file{
			rel:  fmt.Sprintf("%s/monitor/rec-%03d.wav", prefix, i),
			data: bytes.Repeat([]byte(fmt.Sprintf("%s %d|", prefix, i)), 100+i*37),
			mode: 0o640, uid: 1000 + i, gid: 33,
			mtime: time.Date(2026, 1, 2, 3, 4, 5, i*1000, time.UTC),
		})
	}
	return out
}

// blob reads a blob back whole (test sizes only).
func blob(t *testing.T, s storage.Store, digest string) []byte {
	t.Helper()
	key, err := archive.BlobKeyHex(digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(testenv.Context(t), key)
	if err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
	defer rc.Close()
	dec, err := zstd.NewReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	b, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
	return b
}

func losses(t *testing.T, s storage.Store) map[string]shield.Loss {
	t.Helper()
	out := map[string]shield.Loss{}
	err := s.List(testenv.Context(t), archive.AuditPrefix, func(i storage.Info) error {
		rc, err := s.Get(testenv.Context(t), i.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		var a archive.Audit
		if err := json.NewDecoder(rc).Decode(&a); err != nil {
			return err
		}
		if a.Kind != archive.AuditLoss {
			return nil
		}
		var l shield.Loss
		if err := json.Unmarshal(a.Detail, &l); err != nil {
			return err
		}
		if _, dup := out[l.Path]; dup {
			return fmt.Errorf("two loss records for %s", l.Path)
		}
		out[l.Path] = l
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Files present at start, files created later in a tenant directory that appears
// later, are linked and uploaded; removing some (one by one, and a whole tenant
// directory) records each loss with its owner, mode, mtime and blob, and the link
// still holds the content.
func TestShield_LinksUploadsLosses(t *testing.T) {
	store := s3Store(t, testenv.MinIO(t))
	root := filepath.Join(t.TempDir(), "tenants")
	before := someFiles(5, "11111111-1111-4111-8111-111111111111")
	for _, f := range before {
		writeFile(t, root, f)
	}
	w := openShield(t, root, store)
	w.start(t)
	later := someFiles(4, "22222222-2222-4222-8222-222222222222")
	for _, f := range later {
		writeFile(t, root, f)
	}
	all := append(before, later...)
	waitFor(t, "every file uploaded", func() bool { st := w.s.Stats(); return st.Files == int64(len(all)) && st.Queue == 0 })

	// Remove two files of the first tenant and the whole second tenant.
	gone := []file{before[1], before[3]}
	for _, f := range gone {
		if err := os.Remove(filepath.Join(root, f.rel)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(root, "22222222-2222-4222-8222-222222222222")); err != nil {
		t.Fatal(err)
	}
	gone = append(gone, later...)
	waitFor(t, "every loss recorded in storage", func() bool { return len(losses(t, store)) == len(gone) })
	ls := losses(t, store)
	for _, f := range gone {
		p := filepath.Join(root, f.rel)
		l, ok := ls[p]
		if !ok {
			t.Errorf("%s: no loss record", p)
			continue
		}
		if l.Mode != uint32(f.mode) || l.UID != uint32(f.uid) || l.GID != uint32(f.gid) || !l.ModTime.Equal(f.mtime) || l.Size != int64(len(f.data)) {
			t.Errorf("%s: loss %+v, want mode %o uid %d gid %d mtime %v size %d", p, l, f.mode, f.uid, f.gid, f.mtime, len(f.data))
		}
		if got := blob(t, store, l.SHA256); !bytes.Equal(got, f.data) {
			t.Errorf("%s: blob content differs", p)
		}
		if got, err := os.ReadFile(l.Link); err != nil || !bytes.Equal(got, f.data) {
			t.Errorf("%s: link %s does not hold the content (%v)", p, l.Link, err)
		}
		if len(l.Dirs) != 2 || l.Dirs[0].Path != filepath.Join(root, strings.Split(f.rel, "/")[0]) || l.Dirs[1].Mode != 0o750 {
			t.Errorf("%s: dirs %+v, want the tenant and monitor directories, 0750", p, l.Dirs)
		}
	}
	if st := w.s.Stats(); st.Lost != int64(len(gone)) || st.Files != int64(len(all)-len(gone)) {
		t.Errorf("stats %+v: want %d lost, %d files", st, len(gone), len(all)-len(gone))
	}
}

// A shield directory on another filesystem is refused, naming both paths.
func TestOpen_OtherFilesystem(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "shield-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	var a, b syscall.Stat_t
	root := t.TempDir()
	if syscall.Stat(shm, &a) != nil || syscall.Stat(root, &b) != nil || a.Dev == b.Dev {
		t.Fatalf("/dev/shm and %s are one filesystem here: the test needs two", root)
	}
	shieldDir := filepath.Join(shm, "shield")
	_, err = shield.Open(shield.Options{Roots: []shield.Root{{Dir: root, Shield: shieldDir}},
		Index: filepath.Join(t.TempDir(), "i.db")})
	var fe *shield.FilesystemError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), shieldDir) {
		t.Fatalf("got %v, want a FilesystemError naming %s and %s", err, root, shieldDir)
	}
}

// Storage down: files are still linked as they appear; once it is back, every
// upload catches up.
func TestShield_StorageDown(t *testing.T) {
	srv := testenv.StartMinIO(t)
	store := s3Store(t, srv.S3)
	root := filepath.Join(t.TempDir(), "tenants")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	w := openShield(t, root, store)
	srv.Kill()
	w.start(t)
	var mu sync.Mutex
	fs := someFiles(6, "33333333-3333-4333-8333-333333333333")
	for _, f := range fs {
		writeFile(t, root, f)
	}
	waitFor(t, "every file linked", func() bool { return w.s.Stats().Files == int64(len(fs)) })
	mu.Lock()
	defer mu.Unlock()
	if n := countLinks(t, w.shieldDir); n != len(fs) {
		t.Errorf("links with storage down: got %d, want %d", n, len(fs))
	}
	time.Sleep(time.Second) // a few failed tries
	if q := w.s.Stats().Queue; q != int64(len(fs)) {
		t.Errorf("queue with storage down: got %d, want %d", q, len(fs))
	}
	srv.Restart()
	waitFor(t, "uploads caught up", func() bool { return w.s.Stats().Queue == 0 })
	n := 0
	err := store.List(testenv.Context(t), archive.BlobsPrefix, func(storage.Info) error { n++; return nil })
	if err != nil || n != len(fs) {
		t.Errorf("blobs after storage came back: got %d (%v), want %d", n, err, len(fs))
	}
}

func countLinks(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Restore takes the content from the blob once the link is gone, checks it against
// the recorded digest, and refuses a path that leads out of the root through a
// symbolic link put in place of a directory.
func TestRestore_FromBlobAndSymlinkRefused(t *testing.T) {
	store := s3Store(t, testenv.MinIO(t))
	root := filepath.Join(t.TempDir(), "tenants")
	fs := append(someFiles(2, "55555555-5555-4555-8555-555555555555"), someFiles(1, "66666666-6666-4666-8666-666666666666")...)
	for _, f := range fs {
		writeFile(t, root, f)
	}
	w := openShield(t, root, store)
	w.start(t)
	waitFor(t, "every file uploaded", func() bool { st := w.s.Stats(); return st.Files == 3 && st.Queue == 0 })
	for _, f := range fs {
		if err := os.Remove(filepath.Join(root, f.rel)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every loss recorded", func() bool { return len(losses(t, store)) == 3 })
	w.stop()
	for _, l := range losses(t, store) {
		if err := os.Remove(l.Link); err != nil {
			t.Fatal(err)
		}
	}
	// The second tenant's directory becomes a link to elsewhere.
	outside := t.TempDir()
	other := filepath.Join(root, "66666666-6666-4666-8666-666666666666")
	if err := os.RemoveAll(other); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, other); err != nil {
		t.Fatal(err)
	}
	q := shield.LossQuery{Roots: []shield.Root{{Dir: root, Shield: w.shieldDir}}, Under: root}
	out, err := shield.Restore(testenv.Context(t), store, shield.RestoreOptions{LossQuery: q})
	var re *shield.RestoreError
	if !errors.As(err, &re) || re.Failed != 1 {
		t.Fatalf("got %v, want one file refused", err)
	}
	for _, r := range out {
		escaping := strings.HasPrefix(r.Path, other)
		switch {
		case escaping && r.Outcome != shield.Unrecoverable:
			t.Errorf("%s through a symlink out of the root: %s, want refused", r.Path, r.Outcome)
		case !escaping && (r.Outcome != shield.Restored || r.From != "blob"):
			t.Errorf("%s: %s from %q, want restored from blob", r.Path, r.Outcome, r.From)
		}
	}
	for _, f := range fs[:2] {
		if got, err := os.ReadFile(filepath.Join(root, f.rel)); err != nil || !bytes.Equal(got, f.data) {
			t.Errorf("%s: not restored byte-identical (%v)", f.rel, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside the root: %v", ents)
	}
	// Outside every root: refused before anything is read.
	q.Under = t.TempDir()
	if _, err := shield.Restore(testenv.Context(t), store, shield.RestoreOptions{LossQuery: q}); err == nil || !strings.Contains(err.Error(), "not under a files root") {
		t.Errorf("--under outside the roots: got %v", err)
	}
}

// What a restore stages in its staging directory under a root (files under their
// final names, renamed into place at its commit) is not shielded, and its going
// is no loss: the rename puts it where the shield sees it.
func TestShield_RestoreStagingDirectoryIgnored(t *testing.T) {
	store, err := storage.Open(testenv.Context(t), "file://"+t.TempDir(), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "tenants")
	kept := someFiles(2, "11111111-1111-4111-8111-111111111111")
	staged := file{rel: ".purgeguard-restore-0b9c2a34-5f7e-4d21-9c3a-1e2f3a4b5c6d.stage/d1/monitor/rec.wav",
		data: []byte("staged by a restore"), mode: 0o640, uid: 1000, gid: 33, mtime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, f := range append(kept, staged) {
		writeFile(t, root, f)
	}
	w := openShield(t, root, store)
	ctx := testenv.Context(t)
	if err := w.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if st := w.s.Stats(); st.Files != int64(len(kept)) {
		t.Errorf("after a pass: %d files shielded, want %d (the staged one left alone)", st.Files, len(kept))
	}
	if err := os.RemoveAll(filepath.Join(root, filepath.Dir(filepath.Dir(filepath.Dir(staged.rel))))); err != nil {
		t.Fatal(err)
	}
	if err := w.s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if st := w.s.Stats(); st.Lost != 0 {
		t.Errorf("after the staging directory went: %d losses, want none", st.Lost)
	}
}

// A shield moved to another store (a new bucket in its configuration) uploads again
// what the new store lacks, files present and lost: its index's digests are those
// of blobs in the old store. Afterwards every file's xattr vouches for the new
// store's blob, not the old one's, and the loss is recorded in the new store too.
func TestShield_FollowsItsStore(t *testing.T) {
	ctx := testenv.Context(t)
	root := filepath.Join(t.TempDir(), "tenants")
	files := someFiles(4, "33333333-3333-4333-8333-333333333333")
	for _, f := range files {
		writeFile(t, root, f)
	}
	index := filepath.Join(t.TempDir(), "index.db")
	roots := []shield.Root{{Dir: root, Shield: shield.DefaultShieldDir(root)}}
	pass := func(store storage.Store, done func() bool) {
		t.Helper()
		s, err := shield.Open(shield.Options{Roots: roots, Index: index, Store: store, Settle: time.Millisecond,
			Rescan: time.Hour, Log: testLog(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for range 20 {
			if err := s.Once(ctx); err != nil {
				t.Fatal(err)
			}
			if s.Stats().Queue == 0 && done() {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("20 passes of the shield, and still: queue %d, or the store's loss records missing", s.Stats().Queue)
	}
	old, moved := testenv.FileStore(t), testenv.FileStore(t)
	lost := filepath.Join(root, files[0].rel)
	pass(old, func() bool { return true })
	if err := os.Remove(lost); err != nil {
		t.Fatal(err)
	}
	pass(old, func() bool { return len(losses(t, old)) == 1 })

	pass(moved, func() bool { return len(losses(t, moved)) == 1 })
	l, ok := losses(t, moved)[lost]
	if !ok {
		t.Fatalf("no loss record of %s in the new store", lost)
	}
	if got := blob(t, moved, l.SHA256); !bytes.Equal(got, files[0].data) {
		t.Errorf("%s: the new store's blob of the lost file differs", lost)
	}
	lookup := func(store storage.Store) *shield.Lookup {
		l := shield.NewLookup(store, roots, time.Hour)
		if err := l.ReadStore(ctx); err != nil {
			t.Fatal(err)
		}
		return l
	}
	inMoved, inOld := lookup(moved), lookup(old)
	for _, f := range files[1:] {
		p := filepath.Join(root, f.rel)
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := fh.Stat()
		if err != nil {
			t.Fatal(err)
		}
		sum, _, ok := inMoved.Stored(int(fh.Fd()), fi)
		if !ok {
			t.Errorf("%s: not vouched for in the new store", p)
		} else if got := blob(t, moved, fmt.Sprintf("%x", sum)); !bytes.Equal(got, f.data) {
			t.Errorf("%s: the new store's blob differs", p)
		}
		if _, _, ok := inOld.Stored(int(fh.Fd()), fi); ok {
			t.Errorf("%s: still vouched for in the old store", p)
		}
		fh.Close()
	}
}
