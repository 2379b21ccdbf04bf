package snapshot

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// Rows naming the same content at the same time store it once: one caller stores
// and reports the upload, the others wait and share its size; later callers get it
// from the stored set; a failure reaches every waiter.
func TestBlobSetStoresOnce(t *testing.T) {
	b := newBlobSet()
	sum := "blobs/sha256/01/01.zst"
	var calls, uploads atomic.Int32
	release := make(chan struct{})
	store := func() (int64, bool, error) {
		calls.Add(1)
		<-release
		return 42, true, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			size, up, err := b.ensure(sum, store)
			if size != 42 || err != nil {
				t.Errorf("ensure: %d, %v; want 42, nil", size, err)
			}
			if up {
				uploads.Add(1)
			}
		})
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 || uploads.Load() != 1 {
		t.Errorf("store ran %d times, %d callers uploaded; want 1 and 1", calls.Load(), uploads.Load())
	}
	if size, up, err := b.ensure(sum, store); size != 42 || up || err != nil || calls.Load() != 1 {
		t.Errorf("again: %d, %v, %v after %d stores; want 42 from the set", size, up, err, calls.Load())
	}
	if len(b.pending) != 0 || len(b.stored) != 1 {
		t.Errorf("pending %d, stored %d; want 0 and 1", len(b.pending), len(b.stored))
	}

	boom := errors.New("boom")
	bad := "blobs/sha256/02/02.zst"
	fail := make(chan struct{})
	var got sync.WaitGroup
	for range 3 {
		got.Go(func() {
			if _, _, err := b.ensure(bad, func() (int64, bool, error) { <-fail; return 0, false, boom }); !errors.Is(err, boom) {
				t.Errorf("failed store: got %v, want %v", err, boom)
			}
		})
	}
	close(fail)
	got.Wait()
}
