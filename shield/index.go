package shield

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// The index's buckets. Every write that changes more than one of them is one
// transaction, so a kill -9 leaves them consistent.
//
// Entries are keyed by path, then inode (entryKey), so that a scan, which walks the
// roots in path order, inserts them in key order: each batch of a thousand files
// appends to a few neighbouring pages of the B+tree instead of dirtying a thousand
// pages spread over all of it (the first layout keyed them by link name, a hash:
// the scan of 100,000 files peaked at 108.7 MiB RSS). The queue and the paths
// follow the same order.
var (
	bEntries    = []byte("entries")    // entry key → entry
	bPaths      = []byte("paths")      // shielded path → entry key, live files only
	bQueue      = []byte("queue")      // entry key → nothing: blob not uploaded yet
	bLost       = []byte("lost")       // lost-at (8 bytes, ns) + entry key → nothing
	bUnrecorded = []byte("unrecorded") // entry key → nothing: loss not in storage yet
	bBlobs      = []byte("blobs")      // sha256 (32 bytes) → stored size, entries naming it (8 bytes each)
	bDirs       = []byte("dirs")       // directory path → dirMeta
	allBuckets  = [][]byte{bEntries, bPaths, bQueue, bLost, bUnrecorded, bBlobs, bDirs}

	// bOldLinks held the entries of the first layout, keyed by link path; an index
	// that still has it is converted at open (migrateLinks).
	bOldLinks = []byte("links")
)

// entryKey is the key of one inode shielded at one path: the path, a NUL (no path
// holds one), the inode number. The shield's link holds the inode, so the number
// cannot be reused while the entry exists.
func entryKey(path string, ino uint64) []byte {
	k := make([]byte, 0, len(path)+9)
	k = append(k, path...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, ino)
}

// entry is one shielded inode at one path. Short JSON names: a million of them.
type entry struct {
	Path     string `json:"p"`
	Link     string `json:"k"` // the link's path in the shield directory
	Root     string `json:"r"`
	Ino      uint64 `json:"i"`
	Size     int64  `json:"s"`
	MTime    int64  `json:"m"` // ns
	Mode     uint32 `json:"o"` // permission bits (and setuid/setgid/sticky)
	UID      uint32 `json:"u"`
	GID      uint32 `json:"g"`
	Digest   string `json:"d,omitempty"` // sha256 hex, once the blob is in storage
	Stored   int64  `json:"b,omitempty"` // the blob's stored size
	Changed  int64  `json:"c"`           // ns: when the shield last saw it change
	LostAt   int64  `json:"l,omitempty"` // ns; 0 while the path holds it
	Why      string `json:"w,omitempty"` // why it is lost: removed, replaced
	Recorded bool   `json:"a,omitempty"` // its loss record is in storage
	Tries    int    `json:"t,omitempty"` // failed uploads in a row
	Next     int64  `json:"n,omitempty"` // ns: no upload before
}

// dirMeta is a directory's owner and mode, to recreate it as it was.
type dirMeta struct {
	Mode uint32 `json:"o"`
	UID  uint32 `json:"u"`
	GID  uint32 `json:"g"`
}

func initIndex(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("shield: index bucket %s: %w", b, err)
			}
		}
		if tx.Bucket(bOldLinks) != nil {
			return migrateLinks(tx)
		}
		return nil
	})
}

// migrateLinks converts an index of the first layout (entries keyed by link path)
// to entry keys, in the one transaction that opens it: a kill -9 leaves it as it
// was, and the next open converts it again. It runs once per index, and holds the
// index's changed pages until it commits (tens of MiB at a million files).
func migrateLinks(tx *bolt.Tx) error {
	old := tx.Bucket(bOldLinks)
	keyOf := func(link []byte) ([]byte, error) {
		v := old.Get(link)
		if v == nil {
			return nil, nil
		}
		var e entry
		if err := json.Unmarshal(v, &e); err != nil {
			return nil, fmt.Errorf("shield: index entry %s: %w", link, err)
		}
		return entryKey(e.Path, e.Ino), nil
	}
	// Every bucket naming a link is rewritten with the entry's key, then the entries.
	rekey := func(name []byte, prefix int, value bool) error {
		b := tx.Bucket(name)
		var ks, vs [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			ks, vs = append(ks, bytes.Clone(k)), append(vs, bytes.Clone(v))
			return nil
		}); err != nil {
			return err
		}
		for i, k := range ks {
			link := k[prefix:]
			if value {
				link = vs[i]
			}
			nk, err := keyOf(link)
			if err != nil {
				return err
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			if nk == nil {
				continue // names no entry: nothing to keep
			}
			if value {
				err = b.Put(k, nk)
			} else {
				err = b.Put(append(bytes.Clone(k[:prefix]), nk...), vs[i])
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	for _, r := range []struct {
		name   []byte
		prefix int
		value  bool
	}{{bPaths, 0, true}, {bQueue, 0, false}, {bLost, 8, false}, {bUnrecorded, 0, false}} {
		if err := rekey(r.name, r.prefix, r.value); err != nil {
			return fmt.Errorf("shield: index conversion, bucket %s: %w", r.name, err)
		}
	}
	entries := tx.Bucket(bEntries)
	if err := old.ForEach(func(k, v []byte) error {
		var e entry
		if err := json.Unmarshal(v, &e); err != nil {
			return fmt.Errorf("shield: index entry %s: %w", k, err)
		}
		e.Link = string(k)
		nv, err := json.Marshal(&e)
		if err != nil {
			return err
		}
		return entries.Put(entryKey(e.Path, e.Ino), nv)
	}); err != nil {
		return fmt.Errorf("shield: index conversion: %w", err)
	}
	return tx.DeleteBucket(bOldLinks)
}

func getEntry(tx *bolt.Tx, key []byte) (*entry, error) {
	v := tx.Bucket(bEntries).Get(key)
	if v == nil {
		return nil, nil
	}
	var e entry
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, fmt.Errorf("shield: index entry %q: %w", key, err)
	}
	return &e, nil
}

func putEntry(tx *bolt.Tx, key []byte, e *entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bEntries).Put(key, v)
}

func lostKey(at int64, key []byte) []byte {
	k := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(k, uint64(at))
	return append(k, key...)
}

// stats are the shield's gauges, kept current by the code that changes them.
type stats struct {
	files        atomic.Int64 // live shielded files
	queue        atomic.Int64 // links whose blob is not uploaded yet
	lost         atomic.Int64 // lost files whose link is kept
	lostBytes    atomic.Int64 // bytes those links hold
	losses       atomic.Int64 // losses recorded since start
	uploaded     atomic.Int64 // blobs uploaded since start
	swept        atomic.Int64 // expired links removed since start
	vouched      atomic.Int64 // digests recorded since start (uploaded or found stored)
	oldestQueued atomic.Int64 // ns: the oldest change among queued files, 0 when none
}

// Stats is a moment's view of the shield, for metrics.
type Stats struct {
	Files         int64         // shielded files present at their path
	Queue         int64         // files whose blob is not in storage yet
	OldestQueued  time.Duration // age of the oldest of them (since it last changed)
	Lost          int64         // lost files still held by a link
	LostBytes     int64         // bytes those links hold on disk
	Losses        int64         // losses recorded since the shield started
	BlobsUploaded int64         // blobs uploaded since the shield started
}

// Stats returns the current figures.
func (s *Shield) Stats() Stats {
	st := Stats{Files: s.stats.files.Load(), Queue: s.stats.queue.Load(), Lost: s.stats.lost.Load(),
		LostBytes: s.stats.lostBytes.Load(), Losses: s.stats.losses.Load(), BlobsUploaded: s.stats.uploaded.Load()}
	if o := s.stats.oldestQueued.Load(); o > 0 && st.Queue > 0 {
		st.OldestQueued = s.o.Now().Sub(time.Unix(0, o))
	}
	return st
}

// loadStats counts what the index holds, once at open. The keys are walked with
// cursors, the map's pages dropped every batch: bbolt's bucket Stats touch every
// page of a bucket in one go, and a restart over a million files' index held them
// all (a rescan of 100,000 files peaked at 84 MiB, the index's pages).
func (s *Shield) loadStats() error {
	count := func(name []byte, each func(tx *bolt.Tx, k []byte) error) error {
		return s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(name).Cursor()
			n := 0
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if err := each(tx, k); err != nil {
					return err
				}
				if n++; n%batchSize == 0 {
					s.dropPages() // within a read transaction: bbolt cannot remap meanwhile
				}
			}
			return nil
		})
	}
	var files, queue, lost, lostBytes int64
	err := errors.Join(
		count(bPaths, func(*bolt.Tx, []byte) error { files++; return nil }),
		count(bQueue, func(*bolt.Tx, []byte) error { queue++; return nil }),
		count(bLost, func(tx *bolt.Tx, k []byte) error {
			e, err := getEntry(tx, k[8:])
			if err != nil || e == nil {
				return err
			}
			lost++
			lostBytes += e.Size
			return nil
		}))
	s.dropPages()
	s.stats.files.Store(files)
	s.stats.queue.Store(queue)
	s.stats.lost.Store(lost)
	s.stats.lostBytes.Store(lostBytes)
	return err
}

// entryBatch calls fn with up to batchSize keys of bucket b after after (nil: from
// the first) and the entry each names (nil when it names none), for a walk resumed
// batch after batch in transactions of their own. It returns the last key read:
// the next batch's after, nil past the end.
func entryBatch(tx *bolt.Tx, b, after []byte, fn func(k []byte, e *entry)) ([]byte, error) {
	c := tx.Bucket(b).Cursor()
	var k []byte
	if after == nil {
		k, _ = c.First()
	} else if k, _ = c.Seek(after); bytes.Equal(k, after) {
		k, _ = c.Next()
	}
	var last []byte
	for n := 0; k != nil && n < batchSize; k, _ = c.Next() {
		n++
		last = bytes.Clone(k)
		e, err := getEntry(tx, k)
		if err != nil {
			return nil, err
		}
		fn(last, e)
	}
	return last, nil
}

// blobRef returns a blob's stored size and the number of entries naming it.
func blobRef(tx *bolt.Tx, sum [32]byte) (stored, refs int64) {
	v := tx.Bucket(bBlobs).Get(sum[:])
	if len(v) < 16 {
		return 0, 0
	}
	return int64(binary.BigEndian.Uint64(v[:8])), int64(binary.BigEndian.Uint64(v[8:16]))
}

// refBlob adds delta to the entries naming a blob; at none, the shield no longer
// vouches for it (its live list drops it, and prune may sweep it).
func refBlob(tx *bolt.Tx, sum [32]byte, stored, delta int64) error {
	old, refs := blobRef(tx, sum)
	if stored == 0 {
		stored = old
	}
	refs += delta
	if refs <= 0 {
		return tx.Bucket(bBlobs).Delete(sum[:])
	}
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v[:8], uint64(stored))
	binary.BigEndian.PutUint64(v[8:], uint64(refs))
	return tx.Bucket(bBlobs).Put(sum[:], v)
}

// unref drops an entry's claim on its blob.
func unref(tx *bolt.Tx, e *entry) error {
	if e.Digest == "" {
		return nil
	}
	sum, err := archive.ParseDigestHex(e.Digest)
	if err != nil {
		return err
	}
	return refBlob(tx, sum, 0, -1)
}
