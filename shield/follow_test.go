package shield

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/storage"
)

// An index written before store identities, its files' xattrs naming no store: at
// its first pass the shield looks their blobs up in its store and rewrites the
// xattr of each it finds there to name it, without uploading again; a blob the
// store lacks (the shield had been moved to it before) is uploaded again. A value
// naming no store vouches for nothing (a snapshot into another store would take
// its blob for stored); once rewritten, it vouches in the shield's store and in no
// other.
func TestFollowStore_OldIndexRetagged(t *testing.T) {
	ctx := testenv.Context(t)
	root := filepath.Join(t.TempDir(), "tenants")
	paths := []string{filepath.Join(root, "a", "1.wav"), filepath.Join(root, "b", "2.wav")}
	for i, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte{byte(i), 1, 2, 3}, 0o640); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	roots := []Root{{Dir: root, Shield: DefaultShieldDir(root)}}
	index := filepath.Join(t.TempDir(), "index.db")
	store, other := testenv.FileStore(t), testenv.FileStore(t)
	var uploads atomic.Int64
	pass := func() {
		t.Helper()
		s, err := Open(Options{Roots: roots, Index: index, Store: store, Settle: time.Millisecond, Rescan: time.Hour,
			OnUploaded: func(string, string) { uploads.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Once(ctx); err != nil {
			t.Fatal(err)
		}
		if q := s.Stats().Queue; q != 0 {
			t.Fatalf("queue %d after a pass, want 0", q)
		}
	}
	pass()
	// Make it an index and values of before: no store recorded, version 2 values.
	db, err := bolt.Open(index, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bMeta) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var buf [160]byte
	for i, p := range paths {
		n, err := unix.Lgetxattr(p, XattrBlob, buf[:])
		if err != nil {
			t.Fatal(err)
		}
		w, ok := parseVouch(buf[:n])
		if !ok {
			t.Fatalf("%s: no value", p)
		}
		v := xattrValue(w.sum, w.size, w.mtime, w.stored, w.ino, storeTag{})
		v[0] = xattrVersion2
		if err := unix.Lsetxattr(p, XattrBlob, v[:len(v)-len(storeTag{})], 0); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if err := store.Delete(ctx, archive.BlobKey(w.sum)); err != nil {
				t.Fatal(err)
			}
		}
	}
	vouched := func(s storage.Store) int {
		t.Helper()
		l := NewLookup(s, roots, time.Hour)
		if err := l.ReadStore(ctx); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range paths {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, ok := l.Stored(int(f.Fd()), fi); ok {
				n++
			}
			f.Close()
		}
		return n
	}
	if n := vouched(store); n != 0 {
		t.Errorf("values naming no store: %d files vouched for, want none", n)
	}
	before := uploads.Load()
	pass()
	if n := vouched(store); n != len(paths) {
		t.Errorf("after the old index's first pass: %d of %d files vouched for in the shield's store", n, len(paths))
	}
	if n := vouched(other); n != 0 {
		t.Errorf("after the old index's first pass: %d files vouched for in another store, want none", n)
	}
	if n := uploads.Load() - before; n != 1 {
		t.Errorf("%d uploads, want 1: the file whose blob the store lacks", n)
	}
}
