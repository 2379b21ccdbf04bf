package shield

// Internal tests: the index's layouts and the xattr's encoding are not visible from
// outside the package, and an index of the first layout can only be made by hand.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/storage"
)

// toFirstLayout rewrites an index into the first layout: entries keyed by their
// link path, and every bucket naming an entry by it.
func toFirstLayout(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		links, err := tx.CreateBucket(bOldLinks)
		if err != nil {
			return err
		}
		linkOf := map[string][]byte{}
		if err := tx.Bucket(bEntries).ForEach(func(k, v []byte) error {
			var e entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			linkOf[string(k)] = []byte(e.Link)
			e.Link = ""
			nv, _ := json.Marshal(&e)
			return links.Put([]byte(linkOf[string(k)]), nv)
		}); err != nil {
			return err
		}
		for _, r := range []struct {
			name   []byte
			prefix int
			value  bool
		}{{bPaths, 0, true}, {bQueue, 0, false}, {bLost, 8, false}, {bUnrecorded, 0, false}} {
			b := tx.Bucket(r.name)
			var ks, vs [][]byte
			_ = b.ForEach(func(k, v []byte) error {
				ks, vs = append(ks, bytes.Clone(k)), append(vs, bytes.Clone(v))
				return nil
			})
			for i, k := range ks {
				_ = b.Delete(k)
				if r.value {
					_ = b.Put(k, linkOf[string(vs[i])])
				} else {
					_ = b.Put(append(bytes.Clone(k[:r.prefix]), linkOf[string(k[r.prefix:])]...), vs[i])
				}
			}
		}
		return tx.DeleteBucket(bEntries)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An index of the first layout (keyed by link path) is converted at open: the files
// it knows stay known (no loss, no second link, no upload again), its queue and its
// losses carry over, and a file removed afterwards is a loss naming its link.
func TestOpen_ConvertsFirstLayout(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "tenants")
	store, err := storage.NewFile(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(rel, data string, mtime time.Time) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := time.Now().Add(-time.Hour)
	kept := write("t1/monitor/kept.wav", "kept", old)
	gone := write("t1/monitor/gone.wav", "gone", old)
	later := write("t2/monitor/later.wav", "later", old)
	index := filepath.Join(dir, "state", "index.db")
	var uploads atomic.Int64 // OnUploaded runs on the upload goroutines
	open := func() *Shield {
		s, err := Open(Options{Roots: []Root{{Dir: root, Shield: DefaultShieldDir(root)}}, Index: index, Store: store,
			Settle: time.Millisecond, OnUploaded: func(string, string) { uploads.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A first pass links and uploads all three; then the second is removed (a
	// loss, recorded) and the third written again (queued until it settles).
	s := open()
	if err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(later, []byte("later, longer"), 0o640); err != nil {
		t.Fatal(err)
	}
	s.o.Settle = time.Hour
	if err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	s.Close()
	if before.Files != 2 || before.Lost != 1 || before.Queue != 1 || uploads.Load() != 3 {
		t.Fatalf("before the conversion: %+v, %d uploads; want 2 files, 1 lost, 1 queued, 3 uploads", before, uploads.Load())
	}
	linksBefore := countLinks(t, DefaultShieldDir(root))

	toFirstLayout(t, index)
	s = open()
	defer s.Close()
	if got := s.Stats(); got.Files != before.Files || got.Lost != before.Lost || got.Queue != before.Queue || got.LostBytes != before.LostBytes {
		t.Errorf("after the conversion: %+v, want %+v", got, before)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bOldLinks) != nil {
			t.Error("the first layout's bucket is still there")
		}
		return tx.Bucket(bEntries).ForEach(func(k, v []byte) error {
			var e entry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if !bytes.Equal(k, entryKey(e.Path, e.Ino)) || e.Link == "" {
				t.Errorf("entry %q: path %s, link %q", k, e.Path, e.Link)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats(); got.Losses != 0 || got.Files != 2 || countLinks(t, DefaultShieldDir(root)) != linksBefore {
		t.Errorf("a pass after the conversion: %+v, %d links (want %d): it took known files for new ones", got, countLinks(t, DefaultShieldDir(root)), linksBefore)
	}
	// The queue carried over: the third file goes up once settled.
	s.o.Settle = time.Millisecond
	if err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats(); got.Queue != 0 || uploads.Load() != 4 {
		t.Errorf("queue after the conversion: %+v, %d uploads; want none queued, 4 uploads", got, uploads.Load())
	}
	if err := os.Remove(kept); err != nil {
		t.Fatal(err)
	}
	if err := s.Once(ctx); err != nil {
		t.Fatal(err)
	}
	var lost []Loss
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bLost).ForEach(func(k, _ []byte) error {
			e, err := getEntry(tx, k[8:])
			if err != nil || e == nil {
				t.Errorf("lost key %q names no entry (%v)", k, err)
				return nil
			}
			lost = append(lost, s.lossOf(tx, e))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 2 {
		t.Fatalf("losses: %+v, want gone.wav and kept.wav", lost)
	}
	for _, l := range lost {
		b, err := os.ReadFile(l.Link)
		if err != nil || string(b) != filepath.Base(l.Path[:len(l.Path)-len(".wav")]) {
			t.Errorf("loss of %s: link %s holds %q (%v)", l.Path, l.Link, b, err)
		}
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

// The xattr's binary value reads back, stays within what ext4 keeps inside a
// 256-byte inode (56 bytes: no xattr block per file) for a recording (under 256 MiB,
// inode number under 2^28), and the values of the first shields (text, binary
// version 1 without the inode number, version 2 without the store's tag) still
// read.
func TestXattr_Value(t *testing.T) {
	var sum [32]byte
	for i := range sum {
		sum[i] = byte(i * 7)
	}
	tag := storeTag{0xfe, 0x00, 0x7a}
	for _, c := range []struct {
		size, mtime, stored int64
		ino                 uint64
		inInode             bool
	}{
		{0, 0, 0, 0, true},
		{4096, 1767323045000000000, 4110, 12, true},
		{256<<20 - 1, 1767323045123456789, 256<<20 - 1, 1<<28 - 1, true},
		{3 << 30, 1767323045123456789, 3 << 30, 1<<32 - 1, false},
	} {
		v := xattrValue(sum, c.size, c.mtime, c.stored, c.ino, tag)
		if c.inInode && len(v) > 56 {
			t.Errorf("%+v: value of %d bytes, want at most 56", c, len(v))
		}
		w, ok := parseVouch(v)
		if !ok || w.sum != sum || w.size != c.size || w.mtime != c.mtime || w.stored != c.stored || !w.hasIno || w.ino != c.ino || !w.hasTag || w.tag != tag {
			t.Errorf("%+v: read back %+v %v", c, w, ok)
		}
		if _, ok := parseVouch(v[:len(v)-1]); ok {
			t.Errorf("%+v: a truncated value reads", c)
		}
		if _, ok := parseVouch(append(v, 0)); ok {
			t.Errorf("%+v: a value with a byte too many reads", c)
		}
	}
	v1 := append([]byte{xattrVersion1}, sum[:]...)
	v1 = append(v1, 0x80, 0x20) // 4096
	v1 = append(v1, 0x18, 0x87, 0x4c, 0xb3, 0x3c, 0x63, 0x2a, 0x00)
	v1 = append(v1, 0x8e, 0x20) // 4110
	if w, ok := parseVouch(v1); !ok || w.sum != sum || w.size != 4096 || w.mtime != 0x18874cb33c632a00 || w.stored != 4110 || w.hasIno {
		t.Errorf("version 1 value: %+v %v", w, ok)
	}
	v2 := append([]byte{xattrVersion2}, v1[1:]...)
	v2 = append(v2, 12)
	if w, ok := parseVouch(v2); !ok || w.sum != sum || w.size != 4096 || w.stored != 4110 || !w.hasIno || w.ino != 12 || w.hasTag {
		t.Errorf("version 2 value: %+v %v", w, ok)
	}
	text := []byte("12d76c02c8566fb057cda7bd3471a0dfd78e5d40fb077c18055bcff3930d3683 4096 1767323045000000000 4110")
	if _, size, mtime, stored, ok := ParseXattr(text); !ok || size != 4096 || mtime != 1767323045000000000 || stored != 4110 {
		t.Errorf("text value: %d %d %d %v", size, mtime, stored, ok)
	}
}
