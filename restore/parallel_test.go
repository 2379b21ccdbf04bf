package restore_test

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// inFlight is a real store that counts the blob reads open at once. Each blob read
// is held a little (a slow link), so that reads that may overlap do.
type inFlight struct {
	storage.Store
	now, peak atomic.Int64
	hold      time.Duration
	mu        sync.Mutex
	reads     int
}

func (s *inFlight) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if !strings.HasPrefix(key, archive.BlobsPrefix) {
		return s.Store.Get(ctx, key)
	}
	n := s.now.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	time.Sleep(s.hold)
	rc, err := s.Store.Get(ctx, key)
	if err != nil {
		s.now.Add(-1)
		return nil, err
	}
	return &countedBody{ReadCloser: rc, done: func() { s.now.Add(-1) }}, nil
}

type countedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *countedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

// Files are fetched and staged FileJobs at a time, never more; one at a time
// with 1. Whatever the number, the tenant comes back byte for byte.
func TestRun_FilesStagedInParallel(t *testing.T) {
	for _, jobs := range []int{1, 3} {
		t.Run(map[int]string{1: "one job", 3: "three jobs"}[jobs], func(t *testing.T) {
			w := callLogd(t, fileStore(t))
			w.packMax = -1 // blob reads counted: packed files' are one read per pack
			tenant := w.tenants[0]
			filesBefore := w.fileState(t)
			m := w.snapshot(t, tenant)
			w.purgeTenant(t, tenant)
			for _, f := range m.Files {
				if !f.Missing {
					if err := os.Remove(f.Path); err != nil {
						t.Fatal(err)
					}
				}
			}
			s := &inFlight{Store: w.store, hold: 5 * time.Millisecond}
			w.store = s
			o := w.options(tenant)
			o.FileJobs = jobs
			rep := w.mustRestore(t, o)
			if rep.Totals.FilesWritten < 10 {
				t.Fatalf("files written: %d, want the tenant's recordings", rep.Totals.FilesWritten)
			}
			if got := s.peak.Load(); got > int64(jobs) || jobs > 1 && got < 2 {
				t.Errorf("blob reads at once: at most %d, want %d (and more than one with several jobs)", got, jobs)
			}
			after := w.fileState(t)
			for p, h := range filesBefore {
				if after[p] != h {
					t.Errorf("file %s: %q after restore, want %q", p, after[p], h)
				}
			}
		})
	}
}

// A restore reads each blob it needs once (its content is checked as it is staged,
// not read a first time beforehand), and none for a file already on disk with its
// content: the file is kept, and its blob is not needed.
func TestRun_BlobsReadOnceNoneForPresentFiles(t *testing.T) {
	for _, tc := range []struct {
		name        string
		removeFiles bool
	}{
		{"files removed: each blob read once", true},
		{"files present: no blob read", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := callLogd(t, fileStore(t))
			w.packMax = -1 // loose blobs, counted by inFlight
			tenant := w.tenants[0]
			filesBefore := w.fileState(t)
			m := w.snapshot(t, tenant)
			w.purgeTenant(t, tenant)
			saved := 0
			for _, f := range m.Files {
				if f.Missing {
					continue
				}
				saved++
				if tc.removeFiles {
					if err := os.Remove(f.Path); err != nil {
						t.Fatal(err)
					}
				}
			}
			s := &inFlight{Store: w.store}
			w.store = s
			rep := w.mustRestore(t, w.options(tenant))
			want, gotFiles := 0, rep.Totals.FilesPresent
			if tc.removeFiles {
				want, gotFiles = saved, rep.Totals.FilesWritten
			}
			if gotFiles != saved {
				t.Errorf("files written or present: %d, want the %d saved", gotFiles, saved)
			}
			if s.reads != want {
				t.Errorf("blob reads: %d, want %d (%d files saved, distinct contents)", s.reads, want, saved)
			}
			after := w.fileState(t)
			for p, h := range filesBefore {
				if after[p] != h {
					t.Errorf("file %s: %q after restore, want %q", p, after[p], h)
				}
			}
		})
	}
}
