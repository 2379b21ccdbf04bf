package restore

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/purgeguard/purgeguard/internal/place"
)

// stagedFile is one file staged by a run, as its spill holds it.
type stagedFile struct {
	place.Staged
	Path    string // as the snapshot names it
	Replace bool   // it replaces a file with other content (--overwrite-files)
	Root    string // the directory it must stay under
}

// stagedSpill lists a run's staged files in a temporary file, in the order staged:
// committing or aborting a million files reads them back one by one. A record is
// its five strings, each a uvarint length and its bytes, then one byte for
// Replace: the list is this run's own, read back by this process, and the commit
// reads it after the rows commit, where a JSON decoding per file was the slowest
// part of renaming them.
type stagedSpill struct {
	f   *os.File
	w   *bufio.Writer
	n   int64
	buf []byte
}

func newStagedSpill(dir string) (*stagedSpill, error) {
	f, err := createSpill(dir, "purgeguard-restore-staged-*")
	if err != nil {
		return nil, fmt.Errorf("restore: list of staged files: %w", err)
	}
	return &stagedSpill{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (s *stagedSpill) add(f stagedFile) error {
	b := s.buf[:0]
	for _, str := range []string{f.Temp, f.Target, f.Path, f.Root} {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	if f.Replace {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("restore: list of staged files: %w", err)
	}
	s.n++
	return nil
}

// each calls fn with every staged file, in the order added.
func (s *stagedSpill) each(fn func(stagedFile) error) error {
	r, err := rewind(s.w, s.f)
	if err != nil {
		return fmt.Errorf("restore: list of staged files: %w", err)
	}
	var b []byte
	str := func() (string, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return "", err
		}
		if n > maxSpillString {
			return "", fmt.Errorf("a string of %d bytes: not written by this run", n)
		}
		if uint64(cap(b)) < n {
			b = make([]byte, n)
		}
		if _, err := io.ReadFull(r, b[:n]); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	for range s.n {
		var f stagedFile
		var err error
		for _, dst := range []*string{&f.Temp, &f.Target, &f.Path, &f.Root} {
			if *dst, err = str(); err != nil {
				return fmt.Errorf("restore: list of staged files: %w", err)
			}
		}
		c, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("restore: list of staged files: %w", err)
		}
		f.Replace = c == 1
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// maxSpillString bounds a string read back from the spill: paths (PATH_MAX is 4096
// on Linux) with room to spare.
const maxSpillString = 1 << 16

func (s *stagedSpill) close() { s.f.Close() }

// rewind flushes what w buffered into the spill f and returns a reader of f from
// its first byte (both spills are written once, then read back).
func rewind(w *bufio.Writer, f *os.File) (*bufio.Reader, error) {
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return bufio.NewReaderSize(f, 64<<10), nil
}

// createSpill creates a temporary file in dir and removes its name at once: the
// run reads it back through its descriptor, and a run killed outright (kill -9)
// leaves nothing behind in dir.
func createSpill(dir, pattern string) (*os.File, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// pathSpill holds the paths of a step's saved files, written by the staging walk
// as rows of COPY's text format (the index of the path's column, then the path):
// the files check (trust.go) copies them as they are, and reads no file list
// again after the rows are loaded (a walk of a million files' list is seconds of
// decoding, while the restore waits).
type pathSpill struct {
	f     *os.File
	w     *bufio.Writer
	n     int64
	cols  []fileColumn
	index map[fileColumn]int
	buf   []byte
}

// fileColumn is a column of a table that names files.
type fileColumn struct{ table, column string }

func newPathSpill(dir string) (*pathSpill, error) {
	f, err := createSpill(dir, "purgeguard-restore-paths-*")
	if err != nil {
		return nil, fmt.Errorf("restore: list of the files' paths: %w", err)
	}
	return &pathSpill{f: f, w: bufio.NewWriterSize(f, 64<<10), index: map[fileColumn]int{}}, nil
}

func (s *pathSpill) add(table, column, path string) error {
	c := fileColumn{table, column}
	i, ok := s.index[c]
	if !ok {
		i = len(s.cols)
		s.index[c] = i
		s.cols = append(s.cols, c)
	}
	b := strconv.AppendInt(s.buf[:0], int64(i), 10)
	b = append(b, '\t')
	b = appendCopyText(b, path)
	b = append(b, '\n')
	s.buf = b
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("restore: list of the files' paths: %w", err)
	}
	s.n++
	return nil
}

// appendCopyText appends v as a value of COPY's text format: a backslash and the
// characters that end a value or a row are escaped.
func appendCopyText(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, c)
		}
	}
	return b
}

// reader returns the rows written, from the first.
func (s *pathSpill) reader() (io.Reader, error) {
	r, err := rewind(s.w, s.f)
	if err != nil {
		return nil, fmt.Errorf("restore: list of the files' paths: %w", err)
	}
	return r, nil
}

func (s *pathSpill) close() { s.f.Close() }
