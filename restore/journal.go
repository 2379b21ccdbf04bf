package restore

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
)

// The file protocol (README, "Restore: all or nothing, files included"):
//
//  1. every file is staged under a temporary name, .purgeguard-restore-<run>-…,
//     in the run's staging directory <root>/.purgeguard-restore-<run>.stage (or
//     beside its target when that is on another mount); before the staging
//     directory is made, or the first temp file goes into a directory, that
//     directory is appended to the run's journal
//     (<root>/.purgeguard-restore-<run>.journal, synced), and so is every
//     directory the run creates; a directory that is missing is made whole in
//     the staging directory instead (tree.go), its files under their own names;
//  2. the database transaction commits;
//  3. every directory made whole is renamed into place, every other staged file
//     onto its target; then the staging directory and the journal go.
//
// Any error before 3 removes the temps, the staging directory, the directories the
// run created (when empty) and the journal, and rolls the transaction back: no file
// of the run survives. A run killed outright leaves its journal: the next restore
// (holding the same lock) sweeps every journal it finds in its roots, removing the
// staging directory, the temps and the empty directories they list, before it
// starts. A run killed during 3 has
// committed its rows: its rerun finds them present and writes the remaining files
// again.

// journalTag starts the name of every temp file and journal of restore runs.
const journalTag = "restore-"

// journal records, in one files root, where a run may leave temp files.
type journal struct {
	path string
	f    *os.File
	dirs map[string]bool
}

func journalPath(root string, run uuid.UUID) string {
	return filepath.Join(root, place.TempPrefix+journalTag+run.String()+".journal")
}

// stagePath is the run's staging directory in root: its files are staged there,
// under the names they would have beside their targets, and renamed across.
func stagePath(root string, run uuid.UUID) string {
	return filepath.Join(root, place.TempPrefix+journalTag+run.String()+".stage")
}

// openJournal creates the run's journal in root (made when missing).
func openJournal(root place.Root, run uuid.UUID) (*journal, error) {
	if _, err := root.MkdirAll(root.Dir(), nil); err != nil {
		return nil, fmt.Errorf("restore: files root %s: %w", root.Dir(), err)
	}
	p := journalPath(root.Dir(), run)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("restore: journal: %w", err)
	}
	// Held while the run lives (the kernel drops it when the process dies): restores
	// of other tenants run beside this one (they share guard's lock), and their
	// sweep must leave a live run's journal and temps alone.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(p)
		return nil, fmt.Errorf("restore: journal %s: lock: %w", p, err)
	}
	return &journal{path: p, f: f, dirs: map[string]bool{}}, nil
}

// add records a line ("dir PATH" or "mkdir PATH") and syncs it.
func (j *journal) add(kind, path string) error {
	if kind == "dir" {
		if j.dirs[path] {
			return nil
		}
		j.dirs[path] = true
	}
	if strings.ContainsAny(path, "\n") {
		return fmt.Errorf("restore: journal: path %q holds a newline", path)
	}
	if _, err := fmt.Fprintf(j.f, "%s %s\n", kind, path); err != nil {
		return fmt.Errorf("restore: journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("restore: journal: %w", err)
	}
	return nil
}

// remove deletes the journal: the run left nothing behind.
func (j *journal) remove() error {
	defer j.f.Close() // its lock held until the journal is gone
	if err := os.Remove(j.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore: journal: %w", err)
	}
	return nil
}

// sweepJournals finishes the cleanup of runs that were killed: for every journal
// in root, the run's staging directory and its temp files in the directories it
// lists are removed, then the directories it created, when empty, then the
// journal. Only paths under
// root are touched, whatever a journal says. It returns the temp files removed.
func sweepJournals(root string, log *slog.Logger) (int, error) {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("restore: files root %s: %w", root, err)
	}
	removed := 0
	for _, e := range ents {
		name := e.Name()
		run, ok := strings.CutPrefix(name, place.TempPrefix+journalTag)
		if !ok || !strings.HasSuffix(run, ".journal") || !e.Type().IsRegular() {
			continue
		}
		run = strings.TrimSuffix(run, ".journal")
		if _, err := uuid.Parse(run); err != nil {
			continue
		}
		p := filepath.Join(root, name)
		live, release, err := journalInUse(p)
		if err != nil {
			return removed, err
		}
		if live {
			continue // a restore of another tenant at work now
		}
		dirs, mkdirs, stages, err := readJournal(p)
		if err != nil {
			release()
			return removed, err
		}
		id, _ := uuid.Parse(run) // parsed above
		for _, s := range stages {
			if s != stagePath(root, id) {
				continue // not one this run could have made
			}
			// The run's own directory (its name holds the run's id): what is in it,
			// temps and copies of missing directories, goes with it.
			gone, err := place.Sweep(s, journalTag+run+"-")
			removed += len(gone)
			if err == nil {
				err = os.RemoveAll(s)
			}
			if err != nil {
				release()
				return removed, fmt.Errorf("restore: sweep %s: %w", s, err)
			}
		}
		for _, d := range dirs {
			if !archive.Within(root, d) {
				continue
			}
			gone, err := place.Sweep(d, journalTag+run+"-")
			removed += len(gone)
			if err != nil {
				release()
				return removed, fmt.Errorf("restore: sweep %s: %w", d, err)
			}
		}
		var inRoot []string
		for _, d := range mkdirs {
			if archive.Within(root, d) && d != root {
				inRoot = append(inRoot, d)
			}
		}
		place.RemoveCreated(inRoot)
		err = os.Remove(p)
		release()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("restore: journal %s: %w", p, err)
		}
		log.Info("swept what an interrupted restore left", "journal", p, "temp_files", removed)
	}
	return removed, nil
}

// journalInUse reports whether a live run holds journal p's lock; when it does
// not, the lock is taken (a second sweep waits its turn) until release.
func journalInUse(p string) (live bool, release func(), err error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return true, func() {}, nil // gone meanwhile: its run ended
	}
	if err != nil {
		return false, nil, fmt.Errorf("restore: journal %s: %w", p, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, func() {}, nil
		}
		return false, nil, fmt.Errorf("restore: journal %s: lock: %w", p, err)
	}
	return false, func() { f.Close() }, nil
}

func readJournal(p string) (dirs, mkdirs, stages []string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("restore: journal %s: %w", p, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kind, path, ok := strings.Cut(sc.Text(), " ")
		if !ok || !filepath.IsAbs(path) {
			continue // a line cut short by a crash
		}
		path = filepath.Clean(path)
		switch kind {
		case "dir":
			dirs = append(dirs, path)
		case "mkdir":
			mkdirs = append(mkdirs, path)
		case "stage":
			stages = append(stages, path)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, nil, fmt.Errorf("restore: journal %s: %w", p, err)
	}
	return dirs, mkdirs, stages, nil
}
