package shield

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/internal/repository"
)

// bMeta holds what the index says about itself: metaStore, the identity of the
// store its digests were uploaded to.
var (
	bMeta     = []byte("meta")
	metaStore = []byte("store")
)

// followStore makes the index's digests those of blobs in the store identified by
// id. An index that recorded another store (the configuration moved the shield to
// a new bucket or directory) holds digests of blobs that store may not have: every
// entry with one is queued again, its blob uploaded unless the new store has it
// and its xattr rewritten with the new store's tag, and the losses recorded in the
// old store are recorded again in the new one. Until then the new store's snapshots
// hash those files themselves (the old tag is not theirs), and no lost file's link
// is swept (its blob must verify in the new store first). The entries go in
// batches of their own transactions, the new identity recorded last: a kill in
// between leaves the rest to the next start. An index that recorded no store
// (written before identities, or new) takes this one as it is: its files' xattrs,
// which name no store, are rewritten naming this one (retagAll), so that a
// snapshot into another store stops taking them for its own.
func (s *Shield) followStore(ctx context.Context, id repository.StoreID) error {
	var was []byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bMeta); b != nil {
			was = bytes.Clone(b.Get(metaStore))
		}
		return nil
	}); err != nil {
		return err
	}
	if bytes.Equal(was, id[:]) {
		return nil
	}
	if was != nil {
		n, err := s.requeueAll(ctx)
		if err != nil {
			return fmt.Errorf("shield: queue files again for store %s: %w", id, err)
		}
		s.o.Log.Warn("shield: the store changed since the index was written: files queued to upload again",
			"store", id.String(), "was", fmt.Sprintf("%x", was), "files", n)
	} else {
		n, err := s.retagAll(ctx, tagOf(id))
		if err != nil {
			return fmt.Errorf("shield: name store %s in the files' xattrs: %w", id, err)
		}
		if n > 0 {
			s.o.Log.Info("shield: files' xattrs now name the store", "store", id.String(), "files", n)
		}
	}
	return s.update1(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bMeta)
		if err != nil {
			return err
		}
		return b.Put(metaStore, id[:])
	})
}

// eachUploaded calls fn for every entry of the index with a digest (its blob
// uploaded), batchSize entries to a write transaction of their own.
func (s *Shield) eachUploaded(ctx context.Context, fn func(tx *bolt.Tx, key []byte, e *entry) error) error {
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var last []byte
		err := s.update1(func(tx *bolt.Tx) error {
			// The batch's keys first: a cursor is not to be trusted over writes to
			// its bucket.
			var keys [][]byte
			c := tx.Bucket(bEntries).Cursor()
			k, _ := c.First()
			if after != nil {
				k, _ = c.Seek(after)
				if bytes.Equal(k, after) {
					k, _ = c.Next()
				}
			}
			for ; k != nil && len(keys) < batchSize; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			if len(keys) == 0 {
				return nil
			}
			last = keys[len(keys)-1]
			for _, k := range keys {
				e, err := getEntry(tx, k)
				if err != nil {
					return err
				}
				if e == nil || e.Digest == "" {
					continue
				}
				if err := fn(tx, k, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || last == nil {
			return err
		}
		after = last
		s.dropPages()
	}
}

// retagAll rewrites the xattr of every entry with a digest whose value names no
// store (version 2 and older) to name the store tagged tag, through the entry's
// link, when the link's inode is still the one uploaded (same inode number, size,
// mtime, digest). A file whose xattr cannot be rewritten keeps its value.
func (s *Shield) retagAll(ctx context.Context, tag storeTag) (int, error) {
	n := 0
	err := s.eachUploaded(ctx, func(_ *bolt.Tx, _ []byte, e *entry) error {
		if retag(e, tag) {
			n++
		}
		return nil
	})
	return n, err
}

// retag rewrites e's xattr (retagAll); it reports whether it did.
func retag(e *entry, tag storeTag) bool {
	f, err := os.OpenFile(e.Link, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || statOf(fi).Ino != e.Ino || fi.Size() != e.Size || fi.ModTime().UnixNano() != e.MTime {
		return false
	}
	var buf [160]byte
	v, err := unix.Fgetxattr(int(f.Fd()), XattrBlob, buf[:])
	if err != nil {
		return false
	}
	w, ok := parseVouch(buf[:v])
	if !ok || w.hasTag || fmt.Sprintf("%x", w.sum) != e.Digest {
		return false
	}
	return unix.Fsetxattr(int(f.Fd()), XattrBlob, xattrValue(w.sum, e.Size, e.MTime, w.stored, e.Ino, tag), 0) == nil
}

// requeueAll queues every entry with a digest again (followStore).
func (s *Shield) requeueAll(ctx context.Context) (int, error) {
	n := 0
	err := s.eachUploaded(ctx, func(tx *bolt.Tx, k []byte, e *entry) error {
		if err := unref(tx, e); err != nil {
			return err
		}
		e.Digest, e.Stored, e.Tries, e.Next = "", 0, 0, 0
		if e.LostAt != 0 && e.Recorded {
			e.Recorded = false
			if err := tx.Bucket(bUnrecorded).Put(k, nil); err != nil {
				return err
			}
		}
		if err := putEntry(tx, k, e); err != nil {
			return err
		}
		if tx.Bucket(bQueue).Get(k) == nil {
			if err := tx.Bucket(bQueue).Put(k, nil); err != nil {
				return err
			}
			s.stats.queue.Add(1)
		}
		n++
		return nil
	})
	return n, err
}
