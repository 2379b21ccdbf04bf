package shield

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/archive"
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
// is swept (its blob must verify in the new store first). An index that recorded
// no store (written before identities, or new) has its entries' blobs looked up in
// this store: those there have their files' xattrs, which named no store,
// rewritten to name this one (retagAll); the others are queued again. The entries
// go in batches, each written in a transaction of its own, the new identity
// recorded last: a kill in between leaves the rest to the next start. No upload,
// loss record or sweep runs before this returns (each waits for storeTag).
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
	var queued, retagged int
	err := s.uploadedBatches(ctx, func(batch []keyed) error {
		again := batch
		if was == nil {
			var err error
			if again, err = s.retagStored(ctx, batch, tagOf(id)); err != nil {
				return err
			}
			retagged += len(batch) - len(again)
		}
		n, err := s.requeue(again)
		queued += n
		return err
	})
	if err != nil {
		return fmt.Errorf("shield: follow store %s: %w", id, err)
	}
	if was != nil || queued > 0 {
		s.o.Log.Warn("shield: files uploaded before are not in the store: queued to upload again",
			"store", id.String(), "was", fmt.Sprintf("%x", was), "files", queued)
	}
	if retagged > 0 {
		s.o.Log.Info("shield: files' xattrs now name the store", "store", id.String(), "files", retagged)
	}
	return s.update1(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bMeta)
		if err != nil {
			return err
		}
		return b.Put(metaStore, id[:])
	})
}

// keyed is an index entry and its key.
type keyed struct {
	key []byte
	e   *entry
}

// uploadedBatches calls fn with the index's entries that have a digest (their blob
// uploaded), batchSize entries at a time, each batch read in a transaction of its
// own that fn runs outside of: fn may take its time (storage, files) without
// holding the index.
func (s *Shield) uploadedBatches(ctx context.Context, fn func([]keyed) error) error {
	var after []byte
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []keyed
		var last []byte
		err := s.db.View(func(tx *bolt.Tx) (err error) {
			last, err = entryBatch(tx, bEntries, after, func(k []byte, e *entry) {
				if e != nil && e.Digest != "" {
					batch = append(batch, keyed{key: k, e: e})
				}
			})
			return err
		})
		if err != nil {
			return err
		}
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if last == nil {
			return nil
		}
		after = last
		s.dropPages()
	}
}

// retagStored looks each entry's blob up in the store, a few at a time, and
// rewrites the xattr of those it holds to name it (retag); it returns the others.
func (s *Shield) retagStored(ctx context.Context, batch []keyed, tag storeTag) ([]keyed, error) {
	absent := make([]bool, len(batch))
	errs := make([]error, len(batch))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(4*s.o.Jobs, len(batch)) {
		wg.Go(func() {
			for i := range next {
				key, err := archive.BlobKeyHex(batch[i].e.Digest)
				if err == nil {
					_, err = s.o.Store.Stat(ctx, key)
				}
				switch {
				case errors.Is(err, fs.ErrNotExist):
					absent[i] = true
				case err != nil:
					errs[i] = err
				default:
					retag(batch[i].e, tag)
				}
			}
		})
	}
	for i := range batch {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var out []keyed
	for i, k := range batch {
		if absent[i] {
			out = append(out, k)
		}
	}
	return out, nil
}

// retag rewrites the xattr of e's inode, through its link, to name the store tagged
// tag, when it names no store and the inode is still the one uploaded (same inode
// number, size, mtime and digest). A file whose xattr cannot be rewritten keeps its
// value, which vouches for nothing: a snapshot reads the file.
func retag(e *entry, tag storeTag) {
	f, err := os.OpenFile(e.Link, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || statOf(fi).Ino != e.Ino || fi.Size() != e.Size || fi.ModTime().UnixNano() != e.MTime {
		return
	}
	var buf [160]byte
	n, err := unix.Fgetxattr(int(f.Fd()), XattrBlob, buf[:])
	if err != nil {
		return
	}
	w, ok := parseVouch(buf[:n])
	if !ok || w.hasTag || hex.EncodeToString(w.sum[:]) != e.Digest {
		return
	}
	_ = unix.Fsetxattr(int(f.Fd()), XattrBlob, xattrValue(w.sum, e.Size, e.MTime, w.stored, e.Ino, tag), 0)
}

// requeue queues the entries again to be uploaded, and their losses to be recorded
// again, unless an entry changed since it was read (the scan queued it already) or
// its link is gone (nothing left to upload: it keeps the digest it had). It returns
// how many it queued.
func (s *Shield) requeue(batch []keyed) (int, error) {
	var live []keyed
	for _, k := range batch {
		if _, err := os.Lstat(k.e.Link); err == nil {
			live = append(live, k)
		}
	}
	if len(live) == 0 {
		return 0, nil
	}
	n, queued := 0, 0
	err := s.update1(func(tx *bolt.Tx) error {
		for _, k := range live {
			e, err := getEntry(tx, k.key)
			if err != nil {
				return err
			}
			if e == nil || e.Digest != k.e.Digest {
				continue
			}
			if err := unref(tx, e); err != nil {
				return err
			}
			e.Digest, e.Stored, e.Tries, e.Next = "", 0, 0, 0
			if e.LostAt != 0 && e.Recorded {
				e.Recorded = false
				if err := tx.Bucket(bUnrecorded).Put(k.key, nil); err != nil {
					return err
				}
			}
			if err := putEntry(tx, k.key, e); err != nil {
				return err
			}
			if tx.Bucket(bQueue).Get(k.key) == nil {
				if err := tx.Bucket(bQueue).Put(k.key, nil); err != nil {
					return err
				}
				queued++
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.stats.queue.Add(int64(queued))
	return n, nil
}
