package snapshot_test

import (
	"context"
	"io"
	"path"
	"slices"
	"sync"
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// commitWatch is a file:// store (its batches included) that lists, when the first
// manifest is put, the blobs then stored under their keys.
type commitWatch struct {
	*storage.FileStore
	mu      sync.Mutex
	atFirst []string // blob and snapshot object keys visible when the first manifest was put; nil before
}

func (w *commitWatch) Put(ctx context.Context, key string, r io.Reader) error {
	w.mu.Lock()
	if w.atFirst == nil && path.Base(key) == "manifest.json" {
		w.atFirst = []string{}
		var err error
		for _, prefix := range []string{archive.BlobsPrefix, archive.SnapshotsPrefix} { // blobs, and packs
			if err == nil {
				err = w.FileStore.List(ctx, prefix, func(i storage.Info) error {
					w.atFirst = append(w.atFirst, i.Key)
					return nil
				})
			}
		}
		if err != nil {
			w.mu.Unlock()
			return err
		}
	}
	w.mu.Unlock()
	return w.FileStore.Put(ctx, key, r)
}

// The blobs a file:// snapshot writes are batched (their syncs shared), and the
// batch is flushed before the commit: when the manifest is written, every blob it
// names is already stored under its key (a batch renames a blob only once its
// content is synced). A manifest must never name a blob that is not there.
func TestRun_BlobsStoredBeforeManifest(t *testing.T) {
	e := newEnv(t)
	ctx := testenv.Context(t)
	fs, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if storage.BatchOf(fs) == nil {
		t.Fatal("a file:// store cannot batch: this test checks nothing")
	}
	w := &commitWatch{FileStore: fs}
	m := e.run(t, w, e.options(e.res.Tenants[0]))[0]
	if w.atFirst == nil {
		t.Fatal("no manifest was put")
	}
	named, packed := 0, 0
	err = repository.Files(ctx, w, m, func(f archive.File) error {
		if f.Missing || f.OutsideRoot {
			return nil
		}
		named++
		if f.Pack != nil {
			packed++
			if key := m.Packs[f.Pack.Index].Key; !slices.Contains(w.atFirst, key) {
				t.Errorf("file %s: pack %s not stored when the manifest was written", f.Path, key)
			}
			return nil
		}
		key, err := archive.BlobKeyHex(f.SHA256)
		if err != nil {
			return err
		}
		if !slices.Contains(w.atFirst, key) {
			t.Errorf("file %s: blob %s not stored when the manifest was written", f.Path, key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if named == 0 || packed == 0 {
		t.Fatalf("the snapshot saved %d files, %d of them packed: this test checks nothing", named, packed)
	}
	// Nothing of the batch is left behind as a temporary file.
	err = fs.ListLeftovers(ctx, func(i storage.Info) error {
		t.Errorf("temporary file left: %s", i.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
