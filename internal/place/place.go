// Package place puts files on disk under a root, atomically and with their
// attributes: the content goes to a temporary file beside the target, is synced,
// gets its owner, mode and mtime, and only then is renamed into place (and the
// directory synced). A path that leaves its root, literally or through a symbolic
// link, is refused before anything is written.
//
// Placing is split in two for callers that must make many files appear together or
// not at all: Stage writes the temporary file, Staged.Commit renames it, Staged.Abort
// removes it. Temporary names start with TempPrefix and the caller's tag, so that a
// later run can Sweep what an interrupted one left behind.
package place

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// TempPrefix starts the name of every temporary file this package creates.
const TempPrefix = ".purgeguard-"

// DefaultFileMode is the mode of a placed file whose mode is not known.
const DefaultFileMode fs.FileMode = 0o640

// ErrExists is returned by Commit without replace when the target exists.
var ErrExists = errors.New("target exists")

// OutsideError refuses a path that leaves its root.
type OutsideError struct {
	Path   string
	Root   string
	Reason string // "path leaves its root", or which link resolves where
}

func (e *OutsideError) Error() string {
	return fmt.Sprintf("place: %s: %s", e.Path, e.Reason)
}

// Owner is the owner and group a file or directory is given. UID or GID -1 leaves
// that one as the process creates it. User and Group are names, for information
// only (the ids are what is set).
type Owner struct {
	UID   int
	GID   int
	User  string
	Group string
}

// Keep leaves owner and group as the process creates them.
var Keep = Owner{UID: -1, GID: -1}

// IsKeep reports whether o changes nothing.
func (o Owner) IsKeep() bool { return o.UID < 0 && o.GID < 0 }

// String is "user:group" with names where known, ids otherwise.
func (o Owner) String() string {
	u, g := o.User, o.Group
	if u == "" {
		u = fmt.Sprint(o.UID)
	}
	if g == "" {
		g = fmt.Sprint(o.GID)
	}
	return u + ":" + g
}

// Attr is what a placed file gets besides its content.
type Attr struct {
	Mode    fs.FileMode // permission bits; 0: DefaultFileMode
	ModTime time.Time   // zero: the time of writing
	Owner   Owner       // the zero Owner is root:root; use Keep to leave it
}

// DirAttr is what a directory created by MkdirAll gets.
type DirAttr struct {
	Mode  fs.FileMode // permission bits
	Owner Owner
}

// Root is a directory under which files are placed.
type Root struct{ dir string }

// NewRoot returns the root at dir (cleaned).
func NewRoot(dir string) Root { return Root{dir: filepath.Clean(dir)} }

// Dir returns the root's directory.
func (r Root) Dir() string { return r.dir }

// Check refuses a path that is not absolute, is the root itself, or leaves the root
// lexically (..) or through a symbolic link in an existing directory on its way.
func (r Root) Check(path string) error {
	clean := filepath.Clean(path)
	if !filepath.IsAbs(path) || clean == r.dir || !within(r.dir, clean) {
		return &OutsideError{Path: path, Root: r.dir, Reason: "path leaves its root " + r.dir}
	}
	if why := r.escapes(filepath.Dir(clean)); why != "" {
		return &OutsideError{Path: path, Root: r.dir, Reason: why}
	}
	return nil
}

// escapes says why dir, resolved through any symbolic links, is not under the root.
func (r Root) escapes(dir string) string {
	if r.beneath(dir) {
		return ""
	}
	realRoot, err := filepath.EvalSymlinks(r.dir)
	if err != nil {
		realRoot = r.dir // not created yet: nothing in it can be a link
	}
	// The deepest existing ancestor decides: what is below it does not exist yet.
	d := dir
	for {
		real, err := filepath.EvalSymlinks(d)
		if err == nil {
			if !within(realRoot, real) {
				return fmt.Sprintf("%s resolves to %s, outside %s", d, real, r.dir)
			}
			return ""
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// within reports whether path is root or lies under it (both cleaned).
func within(root, path string) bool {
	if root == path {
		return true
	}
	if root == string(filepath.Separator) {
		return strings.HasPrefix(path, root)
	}
	return strings.HasPrefix(path, root+string(filepath.Separator))
}

// MkdirAll creates dir and its missing parents below the root (the root itself
// included when missing). Each created directory gets the attributes attr returns
// for it, or, when attr is nil or says no, the mode and owner of its parent. It
// returns the directories it created, parents first, so that a caller can remove
// them again.
func (r Root) MkdirAll(dir string, attr func(dir string) (DirAttr, bool)) ([]string, error) {
	dir = filepath.Clean(dir)
	if !within(r.dir, dir) {
		return nil, &OutsideError{Path: dir, Root: r.dir, Reason: "directory leaves its root " + r.dir}
	}
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		parent := filepath.Dir(d)
		pfi, err := os.Stat(parent)
		if err != nil {
			return created, err
		}
		a, ok := DirAttr{}, false
		if attr != nil {
			a, ok = attr(d)
		}
		if !ok {
			a = DirAttr{Mode: pfi.Mode().Perm(), Owner: ownerOf(pfi)}
		}
		if err := os.Mkdir(d, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue // made meanwhile by someone else: theirs
			}
			return created, err
		}
		created = append(created, d)
		if !a.Owner.IsKeep() {
			if err := os.Lchown(d, a.Owner.UID, a.Owner.GID); err != nil {
				return created, fmt.Errorf("place: chown %s to %s: %w", d, a.Owner, err)
			}
		}
		// Chmod after chown: chown may clear set-id bits. The umask does not apply.
		if err := os.Chmod(d, a.Mode.Perm()|a.Mode&(fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return created, err
		}
		if err := syncDir(parent); err != nil {
			return created, err
		}
	}
	return created, nil
}

// RemoveCreated removes the directories MkdirAll created, deepest first, as far as
// they are empty: what someone else put in one meanwhile stays.
func RemoveCreated(created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		_ = os.Remove(created[i]) // fails, harmlessly, when not empty
	}
}

// Staged is a file written under a temporary name beside its target.
type Staged struct {
	Temp   string
	Target string
}

// Stage writes r to a temporary file named TempPrefix+tag+"-…" in the target's
// directory, which must exist; syncs it and gives it a's owner, mode and mtime.
// check, when set, runs after the content is written and before anything else: its
// error (a checksum that does not match) removes the file. On any error nothing is
// left behind.
func (r Root) Stage(ctx context.Context, target, tag string, src io.Reader, a Attr, check func() error) (*Staged, error) {
	return r.stage(ctx, target, tag, src, a, check, true)
}

// StageUnsynced is Stage without the sync of the file: a caller staging many files
// syncs them together (Staged.Sync, concurrently) before anything depends on them,
// and at the latest before Rename, which must never name a file whose content a
// crash can still lose.
func (r Root) StageUnsynced(ctx context.Context, target, tag string, src io.Reader, a Attr, check func() error) (*Staged, error) {
	return r.stage(ctx, target, tag, src, a, check, false)
}

func (r Root) stage(ctx context.Context, target, tag string, src io.Reader, a Attr, check func() error, sync bool) (*Staged, error) {
	// OpenDir of the target's directory refuses what Check refuses of the target
	// (the root itself, as a file, is in the directory above it).
	clean := filepath.Clean(target)
	if !filepath.IsAbs(target) {
		return nil, &OutsideError{Path: target, Root: r.dir, Reason: "path leaves its root " + r.dir}
	}
	d, err := r.OpenDir(filepath.Dir(clean))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	s, err := d.stage(ctx, d, filepath.Base(clean), tag, src, a, check, sync, false)
	if err != nil {
		return nil, err
	}
	// The file is in the directory checked, but Commit renames it by path: a link
	// raced into that path while writing would take the rename through it.
	if err := r.Check(target); err != nil {
		_ = s.Abort()
		return nil, err
	}
	return s, nil
}

// fill writes src to tmp, the temporary file staged for target, runs check (its
// error keeps the file from being placed), and gives tmp a's owner and mode.
func fill(ctx context.Context, tmp *tempFile, target string, src io.Reader, a Attr, check func() error, chmod bool) error {
	if _, err := copyCtx(ctx, tmp, src); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	if !a.Owner.IsKeep() {
		if err := tmp.Chown(a.Owner.UID, a.Owner.GID); err != nil {
			return fmt.Errorf("place: chown %s to %s: %w", target, a.Owner, err)
		}
	}
	if !chmod {
		return nil // created with its mode (createPerm)
	}
	mode := a.Mode.Perm()
	if mode == 0 {
		mode = DefaultFileMode
	}
	// Chmod after chown: chown may clear set-id bits.
	return tmp.Chmod(mode)
}

// Sync makes the staged file's content and attributes durable (a file staged by
// StageUnsynced).
func (s *Staged) Sync() error {
	f, err := os.Open(s.Temp)
	if err != nil {
		return fmt.Errorf("place: sync %s: %w", s.Target, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("place: sync %s: %w", s.Target, err)
	}
	return nil
}

// SyncFS makes everything written to the filesystem holding dir durable
// (syncfs(2)): one call for many staged files, where an fsync each paid a journal
// commit each. It reports false, doing nothing, where the kernel has no syncfs.
func SyncFS(dir string) (bool, error) {
	d, err := os.Open(dir)
	if err != nil {
		return true, fmt.Errorf("place: syncfs %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return false, nil
		}
		return true, fmt.Errorf("place: syncfs %s: %w", dir, err)
	}
	return true, nil
}

// Commit renames the staged file onto its target and syncs the directory. Without
// replace, an existing target is left alone and the error is ErrExists.
func (s *Staged) Commit(replace bool) error {
	if err := s.Rename(replace); err != nil {
		return err
	}
	return syncDir(filepath.Dir(s.Target))
}

// Rename is Commit without the directory's sync: a caller placing many files
// syncs each directory once, after its last rename (SyncDir), before it reports
// them placed.
func (s *Staged) Rename(replace bool) error {
	return renameAt(unix.AT_FDCWD, s.Temp, unix.AT_FDCWD, s.Target, s.Target, replace)
}

// renameAt renames from, resolved from fromfd, onto to, resolved from tofd; target
// names to in errors. Without replace, an existing to is left alone and the error
// is ErrExists.
func renameAt(fromfd int, from string, tofd int, to, target string, replace bool) error {
	var flags uint
	if !replace {
		flags = unix.RENAME_NOREPLACE
	}
	err := unix.Renameat2(fromfd, from, tofd, to, flags)
	if !replace && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) {
		// The filesystem cannot refuse to replace: link then unlink does the same.
		if err = unix.Linkat(fromfd, from, tofd, to, 0); err == nil {
			err = unix.Unlinkat(fromfd, from, 0)
		}
	}
	switch {
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("place: %s: %w", target, ErrExists)
	case err != nil:
		return fmt.Errorf("place: rename %s: %w", target, err)
	}
	return nil
}

// SyncDir syncs a directory, making the renames into it durable.
func SyncDir(dir string) error {
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("place: sync %s: %w", dir, err)
	}
	return nil
}

// Abort removes the staged file.
func (s *Staged) Abort() error {
	if err := os.Remove(s.Temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Write stages src at target and commits it, replacing what is there.
func (r Root) Write(ctx context.Context, target string, src io.Reader, a Attr, check func() error) error {
	s, err := r.Stage(ctx, target, "w", src, a, check)
	if err != nil {
		return err
	}
	if err := s.Commit(true); err != nil {
		_ = s.Abort()
		return err
	}
	return nil
}

// Sweep removes the regular files of dir whose names start with TempPrefix+tag
// (what an interrupted run left there) and returns their paths. A missing dir has
// nothing to sweep.
func Sweep(dir, tag string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), TempPrefix+tag) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, err
		}
		removed = append(removed, p)
	}
	if len(removed) > 0 {
		if err := syncDir(dir); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ctxReader stops a copy once its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
