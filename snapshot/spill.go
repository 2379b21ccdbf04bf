package snapshot

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// Per-file state goes to temporary files, not the heap: a tenant with a million
// recordings would otherwise cost a path, an entry and a digest each (670 bytes a
// file was measured: 650 MiB for a million). Each spill holds records in the order
// they came and is read back once, in that order.

// spill is an append-only temporary file of records, removed by close.
type spill struct {
	f *os.File
	w *bufio.Writer
}

func newSpill(dir, what string) (*spill, error) {
	f, err := os.CreateTemp(dir, "purgeguard-"+what+"-*")
	if err != nil {
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
	os.Remove(s.f.Name())
}

// pathSpill holds the paths a tenant's rows name: its column's index, then the path,
// each length-prefixed (a path may hold any byte).
type pathSpill struct {
	*spill
	n int64
}

func (s *pathSpill) add(col int, path string) error {
	var b [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(b[:], uint64(col))
	n += binary.PutUvarint(b[n:], uint64(len(path)))
	s.w.Write(b[:n])
	_, err := s.w.WriteString(path)
	s.n++
	return err
}

// each calls fn with every path in the order they were added.
func (s *pathSpill) each(fn func(col int, path string) error) error {
	r, err := s.rewind()
	if err != nil {
		return fmt.Errorf("snapshot: read spilled paths: %w", err)
	}
	for range s.n {
		col, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("snapshot: read spilled paths: %w", err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("snapshot: read spilled paths: %w", err)
		}
		b := make([]byte, n)
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
