package shield

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// The index's buckets. Every write that changes more than one of them is one
// transaction, so a kill -9 leaves them consistent.
var (
	bLinks      = []byte("links")      // link path → entry
	bPaths      = []byte("paths")      // shielded path → link path, live files only
	bQueue      = []byte("queue")      // link path → nothing: blob not uploaded yet
	bLost       = []byte("lost")       // lost-at (8 bytes, ns) + link path → nothing
	bUnrecorded = []byte("unrecorded") // link path → nothing: loss not in storage yet
	bBlobs      = []byte("blobs")      // sha256 (32 bytes) → stored size, entries naming it (8 bytes each)
	bDirs       = []byte("dirs")       // directory path → dirMeta
	allBuckets  = [][]byte{bLinks, bPaths, bQueue, bLost, bUnrecorded, bBlobs, bDirs}
)

// entry is one shielded inode at one path. Short JSON names: a million of them.
type entry struct {
	Path     string `json:"p"`
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
		return nil
	})
}

func getEntry(tx *bolt.Tx, link []byte) (*entry, error) {
	v := tx.Bucket(bLinks).Get(link)
	if v == nil {
		return nil, nil
	}
	var e entry
	if err := json.Unmarshal(v, &e); err != nil {
		return nil, fmt.Errorf("shield: index entry %s: %w", link, err)
	}
	return &e, nil
}

func putEntry(tx *bolt.Tx, link []byte, e *entry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return tx.Bucket(bLinks).Put(link, v)
}

func lostKey(at int64, link []byte) []byte {
	k := make([]byte, 8, 8+len(link))
	binary.BigEndian.PutUint64(k, uint64(at))
	return append(k, link...)
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

// loadStats counts what the index holds, once at open.
func (s *Shield) loadStats() error {
	return s.db.View(func(tx *bolt.Tx) error {
		s.stats.files.Store(int64(tx.Bucket(bPaths).Stats().KeyN))
		s.stats.queue.Store(int64(tx.Bucket(bQueue).Stats().KeyN))
		var n, bytes int64
		err := tx.Bucket(bLost).ForEach(func(k, _ []byte) error {
			e, err := getEntry(tx, k[8:])
			if err != nil || e == nil {
				return err
			}
			n++
			bytes += e.Size
			return nil
		})
		s.stats.lost.Store(n)
		s.stats.lostBytes.Store(bytes)
		return err
	})
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
