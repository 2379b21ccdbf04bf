package repository_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// heapWatch samples the heap in use above what it was when made.
type heapWatch struct{ base, peak uint64 }

func newHeapWatch() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapWatch{base: ms.HeapInuse}
}

func (h *heapWatch) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapInuse > h.base && ms.HeapInuse-h.base > h.peak {
		h.peak = ms.HeapInuse - h.base
	}
}

// A snapshot naming hundreds of thousands of files is walked, verified and marked
// by prune without its list ever in memory: the heap in use stays within a bound
// (generous: a few MiB are needed) that the entries held whole would pass (about
// 250 bytes each: 37 MiB for these 150,000; checked by collecting them in Files). Memory, not time,
// is asserted.
func TestFiles_ManyEntriesHeapBounded(t *testing.T) {
	const entries, blobs, bound = 150_000, 500, 20 << 20
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t)
	tenant := uuid.New()
	m := writeSnapshot(t, s, tenant, time.Now().Add(-time.Hour), nil)
	// The blobs, shared by the entries in turn: verify reads each once.
	sums := make([]string, blobs)
	for i := range sums {
		b := []byte(fmt.Sprintf("recording %d", i))
		raw := archive.NewDigest()
		raw.Write(b)
		put(t, s, archive.BlobKey(raw.Sum()), compress(t, b))
		sums[i] = raw.Hex()
	}
	spill, err := os.CreateTemp(t.TempDir(), "list")
	if err != nil {
		t.Fatal(err)
	}
	w, err := archive.NewFileListWriter(spill, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		f := archive.File{Table: "public.t", Column: "p", Path: fmt.Sprintf("/r/%s/monitor/%08d.wav", tenant, i),
			Size: int64(len(fmt.Sprintf("recording %d", i%blobs))), Mode: 0o640, ModTime: time.Unix(int64(i), 0).UTC(), SHA256: sums[i%blobs]}
		if i%1000 == 999 {
			f = archive.File{Table: "public.t", Column: "p", Path: fmt.Sprintf("/r/gone/%d.wav", i), Missing: true}
		}
		if err := w.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	l, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	l.Key = archive.FileListKey(m.Tenant, m.ID)
	if _, err := spill.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, l.Key, spill); err != nil {
		t.Fatal(err)
	}
	m.Files, m.FileList = []archive.File{}, &l
	if err := repository.PutManifest(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	w, spill, sums = nil, nil, nil // the writing side's memory is not the reading side's
	m, err = repository.Manifest(ctx, s, m.Ref())
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Totals(); got.Files != entries-entries/1000 || got.Missing != entries/1000 {
		t.Errorf("totals from the manifest alone: got %+v", got)
	}

	t.Run("walk", func(t *testing.T) {
		h := newHeapWatch()
		n := 0
		err := repository.Files(ctx, s, m, func(f archive.File) error {
			if n++; n%10_000 == 0 {
				h.sample()
			}
			return nil
		})
		if err != nil || n != entries {
			t.Fatalf("Files: %d entries, %v; want %d, nil", n, err, entries)
		}
		if h.peak > bound {
			t.Errorf("heap in use while walking %d entries: %d MiB above the start, want at most %d MiB", entries, h.peak>>20, bound>>20)
		}
		t.Logf("walk: heap in use at most %.1f MiB above the start", float64(h.peak)/(1<<20))
	})
	t.Run("verify", func(t *testing.T) {
		chk, err := repository.NewChecker(s)
		if err != nil {
			t.Fatal(err)
		}
		defer chk.Close()
		h := newHeapWatch()
		read := 0
		probs, err := chk.Verify(ctx, m, func(string, int64) {
			if read++; read%10 == 0 {
				h.sample()
			}
		})
		h.sample()
		if err != nil || len(probs) > 0 {
			t.Fatalf("Verify: %v, %v", probs, err)
		}
		if read != 1+blobs {
			t.Errorf("objects verified: got %d, want %d (the table and each blob once)", read, 1+blobs)
		}
		if h.peak > bound {
			t.Errorf("heap in use while verifying %d entries: %d MiB above the start, want at most %d MiB", entries, h.peak>>20, bound>>20)
		}
		t.Logf("verify: heap in use at most %.1f MiB above the start", float64(h.peak)/(1<<20))
	})
	t.Run("prune keeps every blob named", func(t *testing.T) {
		plan, err := repository.PlanPrune(ctx, s, repository.PruneOptions{KeepLast: 1, Grace: time.Nanosecond, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := plan.Execute(ctx, s)
		if err != nil || rep.Blobs != 0 {
			t.Fatalf("prune removed %d blobs (%v), want none", rep.Blobs, err)
		}
	})
	t.Run("a changed list fails verification", func(t *testing.T) {
		c := *m
		l := *m.FileList
		l.Totals.Bytes++
		c.FileList = &l
		chk, _ := repository.NewChecker(s)
		defer chk.Close()
		probs, err := chk.Verify(context.Background(), &c, nil)
		if err != nil || len(probs) != 1 {
			t.Fatalf("Verify: got %v, %v; want one problem", probs, err)
		}
	})
}
