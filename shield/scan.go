package shield

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/internal/place"
)

// batchSize bounds the files observed per index transaction: one fsync per batch
// instead of per file during a scan of a million files.
const batchSize = 1000

// scanFill is how full a scan's batches fill the index's pages before splitting
// them (bbolt's default, 0.5, suits random inserts).
const scanFill = 0.9

// linkPath names the link of one inode at one path: the fan-out directory and the
// name start with the path's hash (so the links a path had are found from the path
// alone, by LinksOf), the inode number keeps the inodes a path held over time apart.
func linkPath(r Root, path string, ino uint64) string {
	h := pathHash(path)
	return filepath.Join(r.Shield, fmt.Sprintf("%02x", h&0xff), strconv.FormatUint(h, 16)+"-"+strconv.FormatUint(ino, 10))
}

func pathHash(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()
}

func statOf(fi fs.FileInfo) *syscall.Stat_t { return fi.Sys().(*syscall.Stat_t) }

func modeBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// errReplaced says the path changed inode between its stat and its link.
var errReplaced = errors.New("replaced while being linked")

// observe records one regular file seen at path: a new one is linked and queued for
// upload; a known one whose size or mtime changed is queued again; one whose inode
// changed is the loss of the old inode and the shielding of the new.
func (s *Shield) observe(tx *bolt.Tx, r Root, path string, fi fs.FileInfo) error {
	st := statOf(fi)
	now := s.o.Now().UnixNano()
	if cur := tx.Bucket(bPaths).Get([]byte(path)); cur != nil {
		cur = bytes.Clone(cur)
		e, err := getEntry(tx, cur)
		if err != nil {
			return err
		}
		if e != nil && e.Ino == st.Ino {
			return s.update(tx, cur, e, fi)
		}
		if e != nil {
			if err := s.lose(tx, cur, e, "replaced"); err != nil {
				return err
			}
		}
	}
	link := linkPath(r, path, st.Ino)
	if err := makeLink(path, link, st.Ino); err != nil {
		return err
	}
	// Settling counts from the file's last write (its mtime; a recording being
	// written keeps it current), never from a time in the future.
	e := &entry{Path: path, Link: link, Root: r.Dir, Ino: st.Ino, Size: fi.Size(), MTime: fi.ModTime().UnixNano(),
		Mode: modeBits(fi.Mode()), UID: st.Uid, GID: st.Gid, Changed: min(now, fi.ModTime().UnixNano())}
	key := entryKey(path, st.Ino)
	if err := putEntry(tx, key, e); err != nil {
		return err
	}
	if err := tx.Bucket(bPaths).Put([]byte(path), key); err != nil {
		return err
	}
	if err := tx.Bucket(bQueue).Put(key, nil); err != nil {
		return err
	}
	s.stats.files.Add(1)
	s.stats.queue.Add(1)
	s.stats.oldestQueued.CompareAndSwap(0, now)
	if s.o.OnLinked != nil {
		s.o.OnLinked(path)
	}
	return nil
}

// update refreshes a known inode's attributes; a change of size or mtime means new
// content: its digest is dropped and it is queued again.
func (s *Shield) update(tx *bolt.Tx, key []byte, e *entry, fi fs.FileInfo) error {
	st := statOf(fi)
	size, mtime, mode := fi.Size(), fi.ModTime().UnixNano(), modeBits(fi.Mode())
	content := size != e.Size || mtime != e.MTime
	if !content && mode == e.Mode && st.Uid == e.UID && st.Gid == e.GID {
		return nil
	}
	e.Size, e.MTime, e.Mode, e.UID, e.GID = size, mtime, mode, st.Uid, st.Gid
	if content {
		// Seen changed now, written last at its mtime: settling counts from the
		// write (a file linked when created empty must not wait two settles).
		e.Changed = min(s.o.Now().UnixNano(), mtime)
		if e.Digest != "" {
			if err := unref(tx, e); err != nil {
				return err
			}
			e.Digest, e.Stored = "", 0
			if err := tx.Bucket(bQueue).Put(key, nil); err != nil {
				return err
			}
			s.stats.queue.Add(1)
		}
	}
	return putEntry(tx, key, e)
}

// makeLink links path at link and checks that the link holds inode ino: a path
// replaced in between is retried by the caller. A link left by a run killed before
// its index write is found in place and kept.
func makeLink(path, link string, ino uint64) error {
	err := os.Link(path, link)
	if errors.Is(err, fs.ErrNotExist) {
		if merr := os.MkdirAll(filepath.Dir(link), 0o700); merr != nil {
			return &linkError{path, merr}
		}
		err = os.Link(path, link)
	}
	created := err == nil
	if err != nil && !errors.Is(err, fs.ErrExist) {
		if isNotExist(err) {
			return err
		}
		return &linkError{path, err}
	}
	li, err := os.Lstat(link)
	if err != nil {
		return &linkError{path, err}
	}
	if statOf(li).Ino != ino {
		if created {
			_ = os.Remove(link) // another inode took the path after its stat
		}
		return errReplaced
	}
	return nil
}

// lose records that the entry's path no longer holds its inode. The link stays;
// the loss goes to storage (recordLosses) and the blob is still uploaded if it was
// not.
func (s *Shield) lose(tx *bolt.Tx, key []byte, e *entry, why string) error {
	now := s.o.Now().UnixNano()
	if cur := tx.Bucket(bPaths).Get([]byte(e.Path)); bytes.Equal(cur, key) {
		if err := tx.Bucket(bPaths).Delete([]byte(e.Path)); err != nil {
			return err
		}
	}
	e.LostAt, e.Why = now, why
	if err := putEntry(tx, key, e); err != nil {
		return err
	}
	if err := tx.Bucket(bLost).Put(lostKey(now, key), nil); err != nil {
		return err
	}
	if err := tx.Bucket(bUnrecorded).Put(key, nil); err != nil {
		return err
	}
	s.stats.files.Add(-1)
	s.stats.lost.Add(1)
	s.stats.lostBytes.Add(e.Size)
	s.stats.losses.Add(1)
	s.o.Log.Warn("shield: file lost; its link keeps it", "path", e.Path, "why", why, "size", e.Size,
		"sha256", e.Digest, "link", e.Link)
	return nil
}

// check looks at path again (an event, or an index entry the scan did not meet)
// and records what it finds: the file, its loss, or the loss of everything the
// index holds under it (a directory removed or moved away).
func (s *Shield) check(tx *bolt.Tx, path string) error {
	r, ok := s.rootOf(path)
	if !ok {
		return nil
	}
	fi, err := os.Lstat(path)
	switch {
	case err == nil && fi.Mode().IsRegular():
		return s.observeRetry(tx, r, path, fi)
	case err == nil && fi.IsDir():
		return nil // its files are checked one by one
	case err != nil && !isNotExist(err):
		return fmt.Errorf("shield: %s: %w", path, err)
	}
	// Gone (or no longer a regular file): the file at path, and anything under it.
	if err := s.loseAt(tx, path); err != nil {
		return err
	}
	return s.loseUnder(tx, path+string(filepath.Separator))
}

func (s *Shield) loseAt(tx *bolt.Tx, path string) error {
	cur := tx.Bucket(bPaths).Get([]byte(path))
	if cur == nil {
		return nil
	}
	cur = bytes.Clone(cur)
	e, err := getEntry(tx, cur)
	if err != nil || e == nil {
		return err
	}
	return s.lose(tx, cur, e, "removed")
}

// loseUnder records the loss of every indexed path under prefix that is gone.
func (s *Shield) loseUnder(tx *bolt.Tx, prefix string) error {
	var gone []string
	c := tx.Bucket(bPaths).Cursor()
	for k, _ := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
		if _, err := os.Lstat(string(k)); isNotExist(err) {
			gone = append(gone, string(k))
		}
	}
	for _, p := range gone {
		if err := s.loseAt(tx, p); err != nil {
			return err
		}
	}
	return nil
}

// observeRetry observes a file, once more if it was replaced while being linked.
func (s *Shield) observeRetry(tx *bolt.Tx, r Root, path string, fi fs.FileInfo) error {
	err := s.observe(tx, r, path, fi)
	if errors.Is(err, errReplaced) {
		if fi, err = os.Lstat(path); err != nil {
			if isNotExist(err) {
				return nil // created and gone before its link: the window no shield closes
			}
			return err
		}
		err = s.observe(tx, r, path, fi)
	}
	if isNotExist(err) {
		s.o.Log.Debug("shield: file gone before it could be linked", "path", path)
		return nil
	}
	var le *linkError
	if errors.As(err, &le) {
		// One file that cannot be linked does not stop the others; the next scan
		// tries again.
		s.o.Log.Error("shield: file not linked", "path", path, "err", le.err)
		return nil
	}
	return err
}

// linkError is a failure to link one file.
type linkError struct {
	path string
	err  error
}

func (e *linkError) Error() string { return fmt.Sprintf("shield: link %s: %v", e.path, e.err) }
func (e *linkError) Unwrap() error { return e.err }

// noteDir records a directory's owner and mode (to recreate it on restore).
func noteDir(tx *bolt.Tx, path string, fi fs.FileInfo) error {
	st := statOf(fi)
	m := dirMeta{Mode: modeBits(fi.Mode()), UID: st.Uid, GID: st.Gid}
	v := fmt.Appendf(nil, `{"o":%d,"u":%d,"g":%d}`, m.Mode, m.UID, m.GID)
	if old := tx.Bucket(bDirs).Get([]byte(path)); bytes.Equal(old, v) {
		return nil
	}
	return tx.Bucket(bDirs).Put([]byte(path), v)
}

// scan walks a root: every directory is noted (and watched, with w), every regular
// file observed; then every indexed path of the root the walk did not find on disk
// is checked again, and recorded lost if gone. The walk streams; index writes go in
// batches.
func (s *Shield) scan(ctx context.Context, r Root, w *watcher) error {
	return s.scanDir(ctx, r, r.Dir, w, true)
}

func (s *Shield) scanDir(ctx context.Context, r Root, dir string, w *watcher, sweep bool) error {
	b := s.newBatch()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // removed while walking: the sweep or an event sees it
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && ignored(path) {
				// A restore's staging directory: what is in it is renamed into place in
				// a moment, and seen there.
				return fs.SkipDir
			}
			if w != nil {
				if err := w.add(path); err != nil {
					return err
				}
			}
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			return b.do(func(tx *bolt.Tx) error { return noteDir(tx, path, fi) })
		}
		if !d.Type().IsRegular() || ignored(path) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		return b.do(func(tx *bolt.Tx) error { return s.observeRetry(tx, r, path, fi) })
	})
	if err = b.flush(err); err != nil {
		return fmt.Errorf("shield: scan %s: %w", dir, err)
	}
	if !sweep {
		return nil
	}
	return s.sweepMissing(ctx, r)
}

// sweepMissing checks every indexed path of the root against the disk, a chunk of
// keys at a time (no read transaction stays open across the stats).
func (s *Shield) sweepMissing(ctx context.Context, r Root) error {
	prefix := []byte(r.Dir + string(filepath.Separator))
	next := prefix
	chunks := 0
	for {
		var paths []string
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bPaths).Cursor()
			for k, _ := c.Seek(next); k != nil && bytes.HasPrefix(k, prefix) && len(paths) < batchSize; k, _ = c.Next() {
				if len(paths) == 0 && bytes.Equal(k, next) && !bytes.Equal(next, prefix) {
					continue
				}
				paths = append(paths, string(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(paths) == 0 {
			return nil
		}
		if chunks++; chunks > 0 {
			s.dropPages()
		}
		next = []byte(paths[len(paths)-1])
		var gone []string
		for _, p := range paths {
			if err := ctx.Err(); err != nil {
				return err
			}
			if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
				gone = append(gone, p)
			}
		}
		if len(gone) > 0 {
			if err := s.update1(func(tx *bolt.Tx) error {
				for _, p := range gone {
					if err := s.check(tx, p); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				return err
			}
		}
	}
}

// update1 is one index write transaction under the shield's lock.
func (s *Shield) update1(fn func(tx *bolt.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(fn)
}

// batch groups index writes: up to batchSize per transaction.
type batch struct {
	s   *Shield
	ops []func(*bolt.Tx) error
	n   int // transactions committed
}

func (s *Shield) newBatch() *batch { return &batch{s: s} }

func (b *batch) do(op func(*bolt.Tx) error) error {
	b.ops = append(b.ops, op)
	if len(b.ops) >= batchSize {
		return b.flush(nil)
	}
	return nil
}

// flush commits what is pending; with a non-nil err it still commits (what was
// linked is recorded) and returns err.
func (b *batch) flush(err error) error {
	if len(b.ops) == 0 {
		return err
	}
	ops := b.ops
	b.ops = b.ops[:0]
	if b.n++; b.n > 0 {
		defer b.s.dropPages()
	}
	ferr := b.s.update1(func(tx *bolt.Tx) error {
		// A scan inserts in key order (see bEntries): pages filled before they
		// split, not half, keep the index file near half the size.
		for _, name := range [][]byte{bEntries, bPaths, bQueue, bDirs} {
			tx.Bucket(name).FillPercent = scanFill
		}
		for _, op := range ops {
			if err := op(tx); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(err, ferr)
}

// ignored says whether a path is a temporary file or directory of purgeguard's own
// placing (files restore, restore): it is renamed into its real name in a moment,
// and shielding it would record a loss at the rename.
func ignored(path string) bool { return strings.HasPrefix(filepath.Base(path), place.TempPrefix) }
