package snapshot

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/storage"
)

// Per-file state goes to temporary files, not the heap: a tenant with a million
// recordings would otherwise cost a path, an entry and a digest each (670 bytes a
// file was measured: 650 MiB for a million). Each spill holds records in the order
// they came and is read back once, in that order.

// spill is an append-only temporary file of records, without a name (newSpill);
// close frees it.
type spill struct {
	f *os.File
	w *bufio.Writer
}

// newSpill makes a spill in dir. The file loses its name as soon as it is made and
// is read back through its descriptor: a snapshot killed outright (a signal, a pipe closed under its log)
// leaves nothing in dir, where it left its paths, file list and blob digests
// (a 5 MB paths spill of a 42k-file snapshot killed by SIGPIPE, 2026-11-29), as
// restore's spills already did.
func newSpill(dir, what string) (*spill, error) {
	f, err := os.CreateTemp(dir, "purgeguard-"+what+"-*")
	if err != nil {
		return nil, fmt.Errorf("snapshot: spill %s: %w", what, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("snapshot: spill %s: %w", what, err)
	}
	return &spill{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// rewind ends the writing and returns a reader from the start.
func (s *spill) rewind() (*bufio.Reader, error) {
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return bufio.NewReaderSize(s.f, 64<<10), nil
}

func (s *spill) close() {
	if s == nil {
		return
	}
	s.f.Close()
}

// pathSpill holds the paths a tenant's rows name: its column's index, then the path,
// each length-prefixed (a path may hold any byte).
type pathSpill struct {
	*spill
	n int64
}

func (s *pathSpill) add(col int, path []byte) error {
	s.head(col, len(path))
	_, err := s.w.Write(path)
	return err
}

func (s *pathSpill) addString(col int, path string) error {
	s.head(col, len(path))
	_, err := s.w.WriteString(path)
	return err
}

// head writes an entry's column and length, and counts it.
func (s *pathSpill) head(col, n int) {
	var b [2 * binary.MaxVarintLen64]byte
	k := binary.PutUvarint(b[:], uint64(col))
	k += binary.PutUvarint(b[k:], uint64(n))
	s.w.Write(b[:k])
	s.n++
}

// each calls fn with every path in the order they were added.
func (s *pathSpill) each(fn func(col int, path string) error) error {
	r, err := s.rewind()
	if err != nil {
		return fmt.Errorf("snapshot: read spilled paths: %w", err)
	}
	var buf []byte // read into again for each path: only the string is kept
	for range s.n {
		col, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("snapshot: read spilled paths: %w", err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("snapshot: read spilled paths: %w", err)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("snapshot: read spilled paths: %w", err)
		}
		if err := fn(int(col), string(b)); err != nil {
			return err
		}
	}
	return nil
}

// digestSpill holds blob digests, 32 bytes each.
type digestSpill struct {
	*spill
	n int64
}

func (s *digestSpill) add(sum [32]byte) error {
	_, err := s.w.Write(sum[:])
	s.n++
	return err
}

func (s *digestSpill) each(fn func(sum [32]byte) error) error {
	if s.spill == nil {
		return nil
	}
	r, err := s.rewind()
	if err != nil {
		return fmt.Errorf("snapshot: read spilled digests: %w", err)
	}
	for range s.n {
		var sum [32]byte
		if _, err := io.ReadFull(r, sum[:]); err != nil {
			return fmt.Errorf("snapshot: read spilled digests: %w", err)
		}
		if err := fn(sum); err != nil {
			return err
		}
	}
	return nil
}

// listSpill is a snapshot's file list being written (archive.FileListWriter), in
// the order the files were saved, uploaded once complete.
type listSpill struct {
	*spill
	w *archive.FileListWriter
}

func newListSpill(dir string, level int) (*listSpill, error) {
	s, err := newSpill(dir, "files")
	if err != nil {
		return nil, err
	}
	w, err := archive.NewFileListWriter(s.w, level)
	if err != nil {
		s.close()
		return nil, err
	}
	return &listSpill{spill: s, w: w}, nil
}

// put ends the list and stores it under m's file list key, recording it in m.
func (s *listSpill) put(ctx context.Context, store storage.Store, m *archive.Manifest) error {
	l, err := s.w.Close()
	if err != nil {
		return err
	}
	if _, err := s.rewind(); err != nil {
		return fmt.Errorf("snapshot: file list of tenant %s: %w", m.Tenant, err)
	}
	l.Key = archive.FileListKey(m.Tenant, m.ID)
	if err := store.Put(ctx, l.Key, s.f); err != nil {
		return fmt.Errorf("snapshot: file list of tenant %s: %w", m.Tenant, err)
	}
	m.FileList = &l
	return nil
}

func (s *listSpill) close() {
	if s == nil {
		return
	}
	s.w.Close() // the encoder, if put did not close it
	s.spill.close()
}

// objectSpill is a seal.Ledger: the objects a tenant's sealed view stored, which
// its envelope lists once each in key order. A million blobs would cost a few
// hundred MiB held in memory; here they are sorted in runs of objectRunLen, each
// run written to a spill, and the runs merged as they are read back.
type objectSpill struct {
	dir  string
	mu   sync.Mutex
	run  []archive.SealedObject // not yet spilled
	runs []*objectRun
}

// objectRunLen bounds what one run holds in memory (about 4 MiB of blob entries);
// a million objects make 62 runs, merged with a 64 KiB reader each.
const objectRunLen = 16384

type objectRun struct {
	*spill
	n int
}

var _ seal.Ledger = (*objectSpill)(nil)

// Add is seal.Ledger's.
func (s *objectSpill) Add(o archive.SealedObject) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run = append(s.run, o)
	if len(s.run) < objectRunLen {
		return nil
	}
	slices.SortFunc(s.run, bySealedKey)
	sp, err := newSpill(s.dir, "sealed-objects")
	if err != nil {
		return err
	}
	s.runs = append(s.runs, &objectRun{spill: sp, n: len(s.run)})
	var b [2*binary.MaxVarintLen64 + 32]byte
	for _, o := range s.run {
		// The size plus one, then the digest; 0 and no digest for an object noted
		// (already stored: described when the envelope is written).
		n := binary.PutUvarint(b[:], uint64(len(o.Key)))
		var sum []byte
		if o.SHA256 == "" {
			n += binary.PutUvarint(b[n:], 0)
		} else {
			var err error
			if sum, err = hex.DecodeString(o.SHA256); err != nil || len(sum) != 32 || o.Size < 0 {
				return fmt.Errorf("snapshot: object %s: sha256 %q, size %d", o.Key, o.SHA256, o.Size)
			}
			n += binary.PutUvarint(b[n:], uint64(o.Size)+1)
		}
		clear(b[n : n+32])
		copy(b[n:n+32], sum)
		n += 32
		sp.w.Write(b[:n])
		if _, err := sp.w.WriteString(o.Key); err != nil {
			return fmt.Errorf("snapshot: spill sealed objects: %w", err)
		}
	}
	s.run = s.run[:0]
	return nil
}

func bySealedKey(a, b archive.SealedObject) int { return strings.Compare(a.Key, b.Key) }

// Each is seal.Ledger's: a merge of the sorted runs, a key met again skipped (a
// blob noted twice in a run longer than the blob set remembers).
func (s *objectSpill) Each(fn func(archive.SealedObject) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.SortFunc(s.run, bySealedKey)
	h := &objectHeap{}
	if len(s.run) > 0 {
		h.cs = append(h.cs, &objectCursor{tail: s.run})
	}
	for _, r := range s.runs {
		br, err := r.rewind()
		if err != nil {
			return fmt.Errorf("snapshot: read spilled sealed objects: %w", err)
		}
		h.cs = append(h.cs, &objectCursor{r: br, left: r.n})
	}
	live := h.cs[:0]
	for _, c := range h.cs {
		if ok, err := c.next(); err != nil {
			return err
		} else if ok {
			live = append(live, c)
		}
	}
	h.cs = live
	heap.Init(h)
	// A key met again is one object: the one stored (with its digest) rather
	// than the one noted, if both.
	var pending archive.SealedObject
	held := false
	for h.Len() > 0 {
		c := h.cs[0]
		switch o := c.cur; {
		case !held:
			pending, held = o, true
		case o.Key != pending.Key:
			if err := fn(pending); err != nil {
				return err
			}
			pending = o
		case pending.SHA256 == "":
			pending = o
		}
		if ok, err := c.next(); err != nil {
			return err
		} else if ok {
			heap.Fix(h, 0)
		} else {
			heap.Pop(h)
		}
	}
	if held {
		return fn(pending)
	}
	return nil
}

func (s *objectSpill) close() {
	for _, r := range s.runs {
		r.spill.close()
	}
}

// objectCursor reads one sorted run: from its spill, or the tail in memory.
type objectCursor struct {
	cur  archive.SealedObject
	r    *bufio.Reader
	left int
	tail []archive.SealedObject
}

func (c *objectCursor) next() (bool, error) {
	if c.r == nil {
		if len(c.tail) == 0 {
			return false, nil
		}
		c.cur, c.tail = c.tail[0], c.tail[1:]
		return true, nil
	}
	if c.left == 0 {
		return false, nil
	}
	c.left--
	kn, err := binary.ReadUvarint(c.r)
	if err != nil {
		return false, fmt.Errorf("snapshot: read spilled sealed objects: %w", err)
	}
	size, err := binary.ReadUvarint(c.r)
	if err != nil {
		return false, fmt.Errorf("snapshot: read spilled sealed objects: %w", err)
	}
	b := make([]byte, 32+kn)
	if _, err := io.ReadFull(c.r, b); err != nil {
		return false, fmt.Errorf("snapshot: read spilled sealed objects: %w", err)
	}
	c.cur = archive.SealedObject{Key: string(b[32:])}
	if size > 0 {
		c.cur.Size, c.cur.SHA256 = int64(size-1), hex.EncodeToString(b[:32])
	}
	return true, nil
}

// objectHeap orders the cursors by their current key (container/heap).
type objectHeap struct{ cs []*objectCursor }

func (h *objectHeap) Len() int           { return len(h.cs) }
func (h *objectHeap) Less(i, j int) bool { return h.cs[i].cur.Key < h.cs[j].cur.Key }
func (h *objectHeap) Swap(i, j int)      { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *objectHeap) Push(x any)         { h.cs = append(h.cs, x.(*objectCursor)) }
func (h *objectHeap) Pop() any {
	c := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return c
}
