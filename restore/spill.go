package restore

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/purgeguard/purgeguard/internal/place"
)

// stagedFile is one file staged by a run, as its spill holds it.
type stagedFile struct {
	place.Staged
	Path    string // as the snapshot names it
	Replace bool   // it replaces a file with other content (--overwrite-files)
	Root    string // the directory it must stay under
}

// stagedSpill lists a run's staged files in a temporary file (JSON lines), in the
// order staged: committing or aborting a million files reads them back one by one.
type stagedSpill struct {
	f *os.File
	w *bufio.Writer
	n int64
}

func newStagedSpill(dir string) (*stagedSpill, error) {
	f, err := os.CreateTemp(dir, "purgeguard-restore-staged-*")
	if err != nil {
		return nil, fmt.Errorf("restore: list of staged files: %w", err)
	}
	return &stagedSpill{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (s *stagedSpill) add(f stagedFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("restore: list of staged files: %w", err)
	}
	s.n++
	return nil
}

// each calls fn with every staged file, in the order added.
func (s *stagedSpill) each(fn func(stagedFile) error) error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("restore: list of staged files: %w", err)
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restore: list of staged files: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReaderSize(s.f, 64<<10))
	for range s.n {
		var f stagedFile
		if err := dec.Decode(&f); err != nil {
			return fmt.Errorf("restore: list of staged files: %w", err)
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (s *stagedSpill) close() {
	s.f.Close()
	os.Remove(s.f.Name())
}
