package snapshot

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// A sealed view's ledger of a tenant's blobs: 200,000 objects added from several
// goroutines in no order, a tenth noted as well (their key alone), come back once
// each in key order, as stored, with their sizes and digests; the live heap once they are added stays far below what they
// would hold in memory (about 300 bytes each: 57 MiB); close leaves no file.
func TestObjectSpill_SortedOnceFlat(t *testing.T) {
	const n = 200_000
	dir := t.TempDir()
	s := &objectSpill{dir: dir}
	tenant := uuid.New()
	object := func(i int) archive.SealedObject {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		addr := sha256.Sum256(b[:])
		sum := sha256.Sum256(addr[:])
		return archive.SealedObject{Key: archive.SealedBlobKey(tenant, hex.EncodeToString(addr[:])), Size: int64(i), SHA256: hex.EncodeToString(sum[:])}
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	perm := rand.Perm(n)
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for j := w; j < n; j += workers {
				if err := s.Add(object(perm[j])); err != nil {
					t.Error(err)
					return
				}
				if perm[j]%10 == 0 { // noted too (found stored): listed as stored
					if err := s.Add(archive.SealedObject{Key: object(perm[j]).Key}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if held := int64(after.HeapAlloc) - int64(before.HeapAlloc); held > 16<<20 {
		t.Errorf("%d objects added hold %d KiB of heap: want them spilled (under 16 MiB)", n, held>>10)
	}
	if len(s.runs) < n/objectRunLen {
		t.Errorf("%d runs spilled for %d objects, want at least %d", len(s.runs), n, n/objectRunLen)
	}
	for pass := range 2 { // the envelope reads it twice: to count, to write
		got, prev := 0, ""
		err := s.Each(func(o archive.SealedObject) error {
			if got > 0 && o.Key <= prev {
				return fmt.Errorf("%s after %s", o.Key, prev)
			}
			if want := object(int(o.Size)); o != want {
				return fmt.Errorf("object %+v, want %+v", o, want)
			}
			prev = o.Key
			got++
			return nil
		})
		if err != nil || got != n {
			t.Fatalf("pass %d: %d objects, %v; want %d once each, in key order", pass, got, err, n)
		}
	}
	s.close()
	left, err := os.ReadDir(dir)
	if err != nil || len(left) != 0 {
		t.Errorf("temporary files left: %v %v", left, err)
	}
}
