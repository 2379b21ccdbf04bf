package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/storage/storagetest"
)

func TestFileStore(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.NewFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A cancelled upload leaves no temporary file behind either.
func TestFileStore_NoTempLeft(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testenv.Context(t))
	cancel()
	if err := s.Put(ctx, "a/b/c", bytes.NewReader(make([]byte, 1<<20))); err == nil {
		t.Fatal("Put with a cancelled context: got nil error")
	}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			t.Errorf("file left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		url, wantErr string
	}{
		{"file://" + dir, ""},
		{"file://relative/path", "absolute"},
		{"file:relative", "absolute"},
		{"s3://", "bucket"},
		{"ftp://x/y", "scheme"},
		{"::", "URL"},
	}
	for _, tt := range tests {
		_, err := storage.Open(context.Background(), tt.url, storage.Options{})
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Open(%q): got %v, want error containing %q", tt.url, err, tt.wantErr)
		}
	}
	// A directory cannot keep the promise of immutability: refused, not ignored.
	lock := storage.Options{S3: storage.S3Options{ObjectLock: storage.ObjectLock{Mode: "COMPLIANCE", Days: 7}}}
	if _, err := storage.Open(context.Background(), "file://"+dir, lock); err == nil || !strings.Contains(err.Error(), "object lock") {
		t.Errorf("Open(file://) with object lock: got %v, want a refusal naming object lock", err)
	}
}

// A Put killed between creating its temporary file and renaming it leaves the file:
// List never shows it, ListLeftovers does, and RemoveLeftover takes it away.
func TestFileStore_Leftovers(t *testing.T) {
	root := t.TempDir()
	s, err := storage.NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "snapshots/x/obj", strings.NewReader("whole")); err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(root, "snapshots", "x", ".tmp-123456")
	if err := os.WriteFile(killed, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	var listed, left []string
	_ = s.List(ctx, "", func(i storage.Info) error { listed = append(listed, i.Key); return nil })
	_ = s.ListLeftovers(ctx, func(i storage.Info) error { left = append(left, i.Key); return nil })
	if !slices.Equal(listed, []string{"snapshots/x/obj"}) || !slices.Equal(left, []string{"snapshots/x/.tmp-123456"}) {
		t.Fatalf("List %v, ListLeftovers %v", listed, left)
	}
	if err := s.RemoveLeftover(ctx, "snapshots/x/../x/.tmp-123456"); err == nil {
		t.Error("RemoveLeftover took a key with ..")
	}
	if err := s.RemoveLeftover(ctx, left[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(killed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover still there: %v", err)
	}
}

// A batch's objects appear under their keys only when flushed (or when the batch,
// full, flushes itself), whole; until then a crash or a Close leaves at most
// temporary files, which Close removes. A failed Put leaves nothing.
func TestFileStore_Batch(t *testing.T) {
	ctx := testenv.Context(t)
	dir := t.TempDir()
	s, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	visible := func() []string {
		var keys []string
		if err := s.List(ctx, "", func(i storage.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	leftovers := func() int {
		n := 0
		if err := s.ListLeftovers(ctx, func(storage.Info) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	b := storage.BatchOf(s)
	if b == nil {
		t.Fatal("a file:// store cannot batch")
	}
	if err := b.Put(ctx, "blobs/aa/one", strings.NewReader("one")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "blobs/bb/two", strings.NewReader("two")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "blobs/bb/bad", iotest.ErrReader(errors.New("read fails"))); err == nil {
		t.Error("Put of a failing reader: got nil error")
	}
	if got := visible(); len(got) != 0 {
		t.Errorf("before Flush: %v visible, want none", got)
	}
	if _, err := s.Stat(ctx, "blobs/aa/one"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat before Flush: %v, want not found", err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := visible(), []string{"blobs/aa/one", "blobs/bb/two"}; !slices.Equal(got, want) {
		t.Errorf("after Flush: %v, want %v", got, want)
	}
	for key, want := range map[string]string{"blobs/aa/one": "one", "blobs/bb/two": "two"} {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
		if err != nil || string(data) != want {
			t.Errorf("%s: %q (%v), want %q", key, data, err, want)
		}
	}
	if n := leftovers(); n != 0 {
		t.Errorf("%d temporary files left after Flush", n)
	}

	// Put past the batch's bound: the full batch flushes itself, the rest waits.
	b = storage.BatchOf(s)
	const n = storage.BatchSize + 76
	for i := range n {
		if err := b.Put(ctx, fmt.Sprintf("many/%03d", i), strings.NewReader(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	shown := 0
	for _, k := range visible() {
		if strings.HasPrefix(k, "many/") {
			shown++
		}
	}
	if shown == 0 || shown == n {
		t.Errorf("%d of %d objects visible before Flush: want the full batches flushed, the rest waiting", shown, n)
	}
	// Close drops what was not flushed: it never appears, no temporary file stays.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	after := 0
	for _, k := range visible() {
		if strings.HasPrefix(k, "many/") {
			after++
		}
	}
	if after != shown || leftovers() != 0 {
		t.Errorf("after Close: %d visible (was %d), %d temporary files; want the same, and none", after, shown, leftovers())
	}
}

// A bounded store batches when the store it wraps does.
func TestBound_Batch(t *testing.T) {
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if storage.BatchOf(storage.Bound(s, storage.Bounds{})) == nil {
		t.Error("Bound(file store): no batch")
	}
	if storage.BatchOf(storage.Bound(storage.Bound(s, storage.Bounds{}), storage.Bounds{})) == nil {
		t.Error("Bound(Bound(file store)): no batch")
	}
	if storage.BatchOf(storage.Bound(struct{ storage.Store }{s}, storage.Bounds{})) != nil {
		t.Error("Bound of a store without batches: a batch")
	}
}

// List calls fn as it walks, not after reading every directory: an object put
// in a later directory while the first is being listed is seen, and objects
// deleted by fn as they come (prune's sweep) cost nothing to the rest of the walk.
func TestFileStore_ListStreams(t *testing.T) {
	ctx := testenv.Context(t)
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"blobs/00/a", "blobs/00/b", "blobs/7f/c", "blobs/ff/e"} {
		if err := s.Put(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err = s.List(ctx, "blobs/", func(i storage.Info) error {
		if len(got) == 0 {
			if err := s.Put(ctx, "blobs/ff/late", strings.NewReader("late")); err != nil {
				return err
			}
		}
		got = append(got, i.Key)
		return s.Delete(ctx, i.Key)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"blobs/00/a", "blobs/00/b", "blobs/7f/c", "blobs/ff/e", "blobs/ff/late"}
	if !slices.Equal(got, want) {
		t.Fatalf("List: got %v, want %v (the object put while listing, in key order)", got, want)
	}
}
