package shield

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
)

// XattrBlob is the extended attribute the shield sets on an inode once its content
// is in storage: its digest, size, mtime, stored size, inode number and a tag of the
// store that holds the blob (xattrVersion's binary layout; the first shields wrote
// "<sha256 hex> <size> <mtime ns> <stored size>", then version 1 without the inode
// number, then version 2 without the store's tag, all still read). Every link of
// the inode shows it, so a snapshot reading the file at its own path knows, from
// one xattr read and the file's own size and mtime, that its blob is stored. The
// inode number lets a snapshot that stats the file and reads its xattr by name (two
// system calls, no open) tell that both calls met the same inode (Lookup.StoredAt).
// The store's tag lets a snapshot into another store tell that the blob is not
// there (Lookup.ReadStore).
const XattrBlob = "user.purgeguard.blob"

// xattrVersion starts the binary value: version, sha256 (32 bytes), size (uvarint),
// mtime (ns, 8 bytes big-endian), stored size (uvarint), inode number (uvarint;
// version 2 on), the store's tag (3 bytes, version 3). It stays within the 56 bytes
// that ext4 keeps inside a 256-byte inode for files under 256 MiB and inode numbers
// under 2^28 (53 bytes before the tag): the text form (about 100 bytes) took an
// xattr block of its own per file, 4 KiB of disk and one more block read for every
// snapshot's look at it. Three bytes of the store's 16-byte identity tell two
// stores apart but for one chance in 16.7 million.
const xattrVersion = 3

// xattrVersion2 is the binary value without the store's tag, xattrVersion1 without
// the inode number either.
const (
	xattrVersion2 = 2
	xattrVersion1 = 1
)

// storeTag is the part of a store's identity a value records.
type storeTag [3]byte

func tagOf(id repository.StoreID) storeTag { return storeTag(id[:3]) }

// uploadTick is how often the queue is looked at.
const uploadTick = time.Second

// maxBackoff bounds the wait between two tries of one file while storage is down.
const maxBackoff = 5 * time.Minute

// liveEvery bounds how often the live list is rewritten while uploads go on.
const liveEvery = 30 * time.Second

func (s *Shield) uploadLoop(ctx context.Context) {
	t := time.NewTicker(uploadTick)
	defer t.Stop()
	var written int64 = -1
	var at time.Time
	for {
		if err := s.uploadSettled(ctx); err != nil && ctx.Err() == nil {
			s.o.Log.Debug("shield: upload pass", "err", err)
		}
		// The live list follows the uploads (and sweeps), well within prune's grace.
		if n := s.stats.vouched.Load() + s.stats.swept.Load(); n != written && time.Since(at) > liveEvery {
			if err := s.writeLive(ctx); err == nil {
				written, at = n, time.Now()
			} else if ctx.Err() == nil {
				s.o.Log.Warn("shield: live list not written", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// candidate is a queued entry whose turn has come.
type candidate struct {
	key []byte
	e   entry
}

// uploadSettled uploads, on Jobs goroutines, every queued file unchanged for Settle
// whose retry time has come. The queue is read a chunk at a time.
func (s *Shield) uploadSettled(ctx context.Context) error {
	tag, err := s.storeTag(ctx)
	if err != nil {
		return err
	}
	now := s.o.Now()
	settled := now.Add(-s.o.Settle).UnixNano()
	var oldest, due int64
	var errs []error
	var mu sync.Mutex
	var after []byte
	for {
		var cands []candidate
		var last []byte
		err := s.db.View(func(tx *bolt.Tx) (err error) {
			last, err = entryBatch(tx, bQueue, after, func(k []byte, e *entry) {
				if e == nil {
					return
				}
				if ch := max(e.Changed, e.MTime); oldest == 0 || ch < oldest {
					oldest = ch
				}
				if e.Next > now.UnixNano() {
					return // failed: retried later
				}
				if e.Changed > settled || e.MTime > settled {
					if d := max(e.Changed, e.MTime) + int64(s.o.Settle); due == 0 || d < due {
						due = d
					}
					return
				}
				cands = append(cands, candidate{key: k, e: *e})
			})
			return err
		})
		if err != nil {
			return err
		}
		if len(cands) > 0 {
			ch := make(chan candidate)
			var wg sync.WaitGroup
			for range min(s.o.Jobs, len(cands)) {
				wg.Go(func() {
					enc, err := archive.NewBlobEncoder(s.o.Level)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						for range ch {
						}
						return
					}
					defer enc.Close()
					for c := range ch {
						if err := s.upload(ctx, enc, c, tag); err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
						}
					}
				})
			}
			for _, c := range cands {
				if ctx.Err() != nil {
					break
				}
				ch <- c
			}
			close(ch)
			wg.Wait()
		}
		if last == nil || ctx.Err() != nil {
			break
		}
		after = last
		s.dropPages()
	}
	s.stats.oldestQueued.Store(oldest)
	s.nextDue.Store(due)
	return errors.Join(append(errs, ctx.Err())...)
}

// upload stores one file's blob unless storage has it, and records its digest.
// A failure is counted and the file retried after a growing wait.
func (s *Shield) upload(ctx context.Context, enc *zstd.Encoder, c candidate, tag storeTag) error {
	sum, stored, err := s.store(ctx, enc, c, tag)
	if errors.Is(err, errChanged) {
		return nil // the entry was updated; it waits for Settle again
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return s.retryLater(c, err)
	}
	hexSum := fmt.Sprintf("%x", sum)
	return s.update1(func(tx *bolt.Tx) error {
		e, err := getEntry(tx, c.key)
		if err != nil || e == nil {
			return err
		}
		if e.Size != c.e.Size || e.MTime != c.e.MTime {
			return nil // changed since: still queued
		}
		if e.Digest != "" {
			return nil // recorded already
		}
		e.Digest, e.Stored, e.Tries, e.Next = hexSum, stored, 0, 0
		if err := putEntry(tx, c.key, e); err != nil {
			return err
		}
		if err := refBlob(tx, sum, stored, 1); err != nil {
			return err
		}
		s.stats.vouched.Add(1)
		if tx.Bucket(bQueue).Get(c.key) != nil {
			s.stats.queue.Add(-1)
		}
		return tx.Bucket(bQueue).Delete(c.key)
	})
}

var errChanged = errors.New("changed since it was seen")

// tagWarnEvery bounds how often storeTag's failure is logged.
const tagWarnEvery = 10 * time.Minute

// storeTag is the tag of the store the shield uploads to, read (or made, for a store
// no shield used before) at the first upload pass and kept: the store a running
// shield uploads to does not change under it. The index follows it first
// (followStore): no upload runs before, so none finds a digest of another store's
// blob in the index and takes it for stored.
func (s *Shield) storeTag(ctx context.Context) (storeTag, error) {
	s.tagMu.Lock()
	defer s.tagMu.Unlock()
	if s.tagged {
		return s.tag, nil
	}
	id, err := repository.EnsureStoreID(ctx, s.o.Store)
	if err == nil {
		err = s.followStore(ctx, id)
	}
	if err != nil {
		// Nothing is uploaded, no loss recorded, no link swept meanwhile: worth a
		// warning (a pass's own error is logged at Debug), once in a while.
		if now := s.o.Now(); ctx.Err() == nil && now.Sub(s.tagWarned) > tagWarnEvery {
			s.tagWarned = now
			s.o.Log.Warn("shield: no uploads until the store's identity is known", "err", err)
		}
		return storeTag{}, fmt.Errorf("shield: %w", err)
	}
	s.tag, s.tagged = tagOf(id), true
	return s.tag, nil
}

// store hashes the link's content, and uploads it unless the index or storage
// already holds the blob. It reads through the link: a file removed meanwhile is
// still there. Upload is hash-then-put, the put hashing again: a file changed in
// between is caught and its object deleted (Put is atomic: a killed upload leaves
// no object at all).
func (s *Shield) store(ctx context.Context, enc *zstd.Encoder, c candidate, tag storeTag) (sum [32]byte, stored int64, err error) {
	f, err := os.OpenFile(c.e.Link, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return sum, 0, fmt.Errorf("shield: open link of %s: %w", c.e.Path, err)
	}
	defer f.Close()
	same := func() error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if statOf(fi).Ino != c.e.Ino || fi.Size() != c.e.Size || fi.ModTime().UnixNano() != c.e.MTime {
			if uerr := s.update1(func(tx *bolt.Tx) error {
				e, err := getEntry(tx, c.key)
				if err != nil || e == nil {
					return err
				}
				return s.update(tx, c.key, e, fi)
			}); uerr != nil {
				return uerr
			}
			return errChanged
		}
		return nil
	}
	if err := same(); err != nil {
		return sum, 0, err
	}
	d := archive.NewDigest()
	if _, err := io.Copy(d, f); err != nil {
		return sum, 0, fmt.Errorf("shield: read %s: %w", c.e.Path, err)
	}
	if err := same(); err != nil {
		return sum, 0, err
	}
	sum = d.Sum()
	key := archive.BlobKey(sum)
	defer func() {
		if err == nil {
			setXattr(f, sum, c.e, stored, tag)
		}
	}()
	if err := s.db.View(func(tx *bolt.Tx) error {
		stored, _ = blobRef(tx, sum)
		return nil
	}); err != nil {
		return sum, 0, err
	}
	if stored > 0 {
		return sum, stored, nil
	}
	if info, err := s.o.Store.Stat(ctx, key); err == nil {
		return sum, info.Size, nil // a blob is immutable: once stored, done
	} else if !errors.Is(err, fs.ErrNotExist) {
		return sum, 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return sum, 0, err
	}
	again := archive.NewDigest()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		enc.Reset(pw)
		_, err := io.Copy(io.MultiWriter(enc, again), f)
		pw.CloseWithError(errors.Join(err, enc.Close()))
	}()
	cr := &countReader{r: pr}
	err = s.o.Store.Put(ctx, key, cr)
	pr.CloseWithError(err) // unblocks the producer if the upload stopped
	<-done
	if err != nil {
		return sum, 0, fmt.Errorf("shield: upload %s: %w", c.e.Path, err)
	}
	if err := again.Check(c.e.Path, d.Hex(), d.Size()); err != nil {
		_ = s.o.Store.Delete(ctx, key)
		return sum, 0, fmt.Errorf("shield: %s changed while uploaded: %w", c.e.Path, err)
	}
	s.stats.uploaded.Add(1)
	s.o.Log.Debug("shield: blob uploaded", "path", c.e.Path, "sha256", d.Hex(), "size", d.Size(), "stored", cr.n)
	if s.o.OnUploaded != nil {
		s.o.OnUploaded(c.e.Path, d.Hex())
	}
	return sum, cr.n, nil
}

func beUint64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// setXattr marks the inode as stored in the store tagged tag; a filesystem without
// user xattrs only loses the snapshot's shortcut.
func setXattr(f *os.File, sum [32]byte, e entry, stored int64, tag storeTag) {
	_ = unix.Fsetxattr(int(f.Fd()), XattrBlob, xattrValue(sum, e.Size, e.MTime, stored, e.Ino, tag), 0)
}

func xattrValue(sum [32]byte, size, mtime, stored int64, ino uint64, tag storeTag) []byte {
	v := make([]byte, 0, 1+32+binary.MaxVarintLen64*3+8+len(tag))
	v = append(v, xattrVersion)
	v = append(v, sum[:]...)
	v = binary.AppendUvarint(v, uint64(size))
	v = binary.BigEndian.AppendUint64(v, uint64(mtime))
	v = binary.AppendUvarint(v, uint64(stored))
	v = binary.AppendUvarint(v, ino)
	return append(v, tag[:]...)
}

// vouch is what an XattrBlob value says: the inode's content had digest sum when it
// had size and mtime, and its blob is in the store tagged tag; ino is its inode
// number (hasIno false for the values written before version 2, hasTag for those
// before version 3).
type vouch struct {
	sum                 [32]byte
	size, mtime, stored int64
	ino                 uint64
	hasIno              bool
	tag                 storeTag
	hasTag              bool
}

// ParseXattr reads an XattrBlob value, binary or text, whatever store it names.
func ParseXattr(v []byte) (sum [32]byte, size, mtime, stored int64, ok bool) {
	w, ok := parseVouch(v)
	return w.sum, w.size, w.mtime, w.stored, ok
}

func parseVouch(v []byte) (vouch, bool) {
	if len(v) > 0 && v[0] >= xattrVersion1 && v[0] <= xattrVersion {
		return parseXattrBinary(v[1:], v[0])
	}
	// Fields of a copy: fields of v itself would make every caller's buffer for
	// the value escape to the heap, a snapshot's 160 bytes per file looked at.
	parts := bytes.Fields(bytes.Clone(v))
	if len(parts) != 4 {
		return vouch{}, false
	}
	sum, err := archive.ParseDigestHex(string(parts[0]))
	if err != nil {
		return vouch{}, false
	}
	var nums [3]int64
	for i, p := range parts[1:] {
		if nums[i], err = strconv.ParseInt(string(p), 10, 64); err != nil {
			return vouch{}, false
		}
	}
	return vouch{sum: sum, size: nums[0], mtime: nums[1], stored: nums[2]}, true
}

func parseXattrBinary(v []byte, version byte) (vouch, bool) {
	var w vouch
	if len(v) < 32 {
		return w, false
	}
	copy(w.sum[:], v)
	v = v[32:]
	sz, n := binary.Uvarint(v)
	if n <= 0 || len(v) < n+8 || sz > math.MaxInt64 {
		return w, false
	}
	mt := binary.BigEndian.Uint64(v[n:])
	v = v[n+8:]
	st, m := binary.Uvarint(v)
	if m <= 0 || st > math.MaxInt64 {
		return w, false
	}
	v = v[m:]
	if version >= xattrVersion2 {
		if w.ino, m = binary.Uvarint(v); m <= 0 {
			return w, false
		}
		v, w.hasIno = v[m:], true
	}
	if version >= xattrVersion {
		if len(v) < len(w.tag) {
			return w, false
		}
		copy(w.tag[:], v)
		v, w.hasTag = v[len(w.tag):], true
	}
	if len(v) != 0 {
		return w, false
	}
	w.size, w.mtime, w.stored = int64(sz), int64(mt), int64(st)
	return w, true
}

// retryLater records a failed upload and when to try again: 2^tries seconds, at
// most maxBackoff. Links keep being made meanwhile.
func (s *Shield) retryLater(c candidate, cause error) error {
	err := s.update1(func(tx *bolt.Tx) error {
		e, err := getEntry(tx, c.key)
		if err != nil || e == nil {
			return err
		}
		e.Tries++
		wait := min(time.Duration(1)<<min(e.Tries, 20)*time.Second, maxBackoff)
		e.Next = s.o.Now().Add(wait).UnixNano()
		if e.Tries <= 3 || e.Tries%10 == 0 {
			s.o.Log.Warn("shield: upload failed; retrying", "path", e.Path, "tries", e.Tries, "in", wait, "err", cause)
		}
		return putEntry(tx, c.key, e)
	})
	return errors.Join(cause, err)
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
