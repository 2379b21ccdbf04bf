package place

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Dir is a directory under a root, held open (O_PATH) for the files placed in it.
// Each file is then examined, created, timed and renamed by its name from the
// descriptor: one lookup where a path costs one per component, and the root
// checked once for the directory where Stage checks it twice per file (a restore
// places a file per recording, most of them in a few directories). The descriptor
// also pins the directory that was checked: a symbolic link swapped into the path
// afterwards cannot redirect what is placed through it.
type Dir struct {
	root Root
	path string // clean, absolute
	fd   int
}

// OpenDir opens dir, an existing directory under the root. A dir that leaves the
// root, literally or through a symbolic link, is an *OutsideError, with the answer
// Check gives for a file in it; a dir not made yet is an error that is
// fs.ErrNotExist (what it would take to make it is Check's to say).
func (r Root) OpenDir(dir string) (*Dir, error) {
	clean := filepath.Clean(dir)
	if !filepath.IsAbs(dir) || !within(r.dir, clean) {
		return nil, &OutsideError{Path: dir, Root: r.dir, Reason: "directory leaves its root " + r.dir}
	}
	fd, err := r.openBeneath(clean)
	if err != nil {
		if why := r.escapes(clean); why != "" {
			return nil, &OutsideError{Path: dir, Root: r.dir, Reason: why}
		}
		// Not settled by the kernel (an absolute link that stays inside, no
		// openat2), and user space resolved it under the root: open it as Check
		// would have let a path through it be used.
		if fd, err = unix.Open(clean, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return nil, &os.PathError{Op: "open", Path: clean, Err: err}
		}
	}
	return &Dir{root: r, path: clean, fd: fd}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// Close releases the directory.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// Lstat is os.Lstat of the directory's entry name (not following a final link).
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	st := &StatInfo{name: filepath.Join(d.path, name)}
	if err := Fstatat(d.fd, name, st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: st.name, Err: err}
	}
	return st, nil
}

// StageUnsynced is Root.StageUnsynced of the directory's entry name: the file is
// created, written, given its attributes and timed through the directory's
// descriptor. Its Staged names the paths, for a Rename from anywhere.
func (d *Dir) StageUnsynced(ctx context.Context, name, tag string, src io.Reader, a Attr, check func() error) (*Staged, error) {
	return d.stage(ctx, d, name, tag, src, a, check, false, false)
}

// StageUnsyncedIn is StageUnsynced with the temporary file made in stage instead of
// beside the target: a directory of the caller's own on the same mount (SameMount),
// from which RenameFrom moves it into d. Placing a million files in one directory,
// a temporary file beside each doubled that directory's entries and made each
// creation and lookup in it contend with the others'; in a directory of its own,
// the target's directory sees one insertion per file, as tar's does. stage must be
// the caller's alone (mode 0700): files are created there with their own mode.
func (d *Dir) StageUnsyncedIn(ctx context.Context, stage *Dir, name, tag string, src io.Reader, a Attr, check func() error) (*Staged, error) {
	return d.stage(ctx, stage, name, tag, src, a, check, false, true)
}

// CreateUnsynced is StageUnsynced without a temporary name: the file is created
// under name itself, which must not exist (an error that is fs.ErrExist), and
// Staged.Temp and Target both name it. For a directory that is not in place yet (a
// restore's copy of a missing directory, renamed into place whole): nothing in it
// is visible before that rename, and one rename places all its files.
func (d *Dir) CreateUnsynced(ctx context.Context, name string, src io.Reader, a Attr, check func() error) (*Staged, error) {
	return d.stage(ctx, d, name, "", src, a, check, false, true)
}

// stage is StageUnsyncedIn, with sync the file's content and attributes made
// durable before it returns; without a tag, CreateUnsynced. private says no one
// else can reach in (createPerm).
func (d *Dir) stage(ctx context.Context, in *Dir, name, tag string, src io.Reader, a Attr, check func() error, sync, private bool) (_ *Staged, err error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return nil, &OutsideError{Path: filepath.Join(d.path, name), Root: d.root.dir, Reason: "not a name in " + d.path}
	}
	var tmp *tempFile
	tmpName := name
	perm, chmod := createPerm(a, private)
	if tag == "" {
		tmp, err = createExact(in.fd, in.path, name, perm)
	} else {
		tmp, tmpName, err = createTemp(in.fd, in.path, TempPrefix+tag+"-", perm)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			_ = unix.Unlinkat(in.fd, tmpName, 0)
		}
	}()
	target := joinName(d.path, name)
	if err := fill(ctx, tmp, target, src, a, check, chmod); err != nil {
		return nil, err
	}
	if !a.ModTime.IsZero() {
		// Written to the end: nothing changes the mtime after this.
		ts := [2]unix.Timespec{{Nsec: unix.UTIME_NOW}, unix.NsecToTimespec(a.ModTime.UnixNano())}
		if err := futimens(tmp.fd, &ts); err != nil {
			return nil, &os.PathError{Op: "chtimes", Path: tmp.Name(), Err: err}
		}
	}
	if sync {
		// After the mtime: the sync makes it durable too.
		if err := tmp.Sync(); err != nil {
			return nil, err
		}
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return &Staged{Temp: tmp.Name(), Target: target}, nil
}

// Rename renames the directory's entry from onto to, as Staged.Rename does by
// path (without replace, an existing to is left alone and the error is ErrExists).
func (d *Dir) Rename(from, to string, replace bool) error {
	return renameAt(d.fd, from, d.fd, to, filepath.Join(d.path, to), replace)
}

// RenameFrom renames src's entry from onto d's entry to: a file staged by
// StageUnsyncedIn with src as its stage. As Rename otherwise.
func (d *Dir) RenameFrom(src *Dir, from, to string, replace bool) error {
	return renameAt(src.fd, from, d.fd, to, filepath.Join(d.path, to), replace)
}

// SameMount reports whether a and b are on one mount, so that a rename from one
// into the other can succeed (rename(2) refuses to cross mounts, even two of one
// filesystem). Where the kernel cannot tell a mount's id (statx without
// STATX_MNT_ID, before Linux 5.8) it reports false: the caller then keeps to one
// directory.
func SameMount(a, b *Dir) (bool, error) {
	var sa, sb unix.Statx_t
	for _, x := range []struct {
		d  *Dir
		st *unix.Statx_t
	}{{a, &sa}, {b, &sb}} {
		if err := unix.Statx(x.d.fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, x.st); err != nil {
			if errors.Is(err, unix.ENOSYS) {
				return false, nil
			}
			return false, &os.PathError{Op: "statx", Path: x.d.path, Err: err}
		}
		if x.st.Mask&unix.STATX_MNT_ID == 0 {
			return false, nil
		}
	}
	return sa.Mnt_id == sb.Mnt_id && sa.Dev_major == sb.Dev_major && sa.Dev_minor == sb.Dev_minor, nil
}

// StatInfo is an fs.FileInfo from fstat(2) or fstatat(2), as os.Lstat makes it,
// for callers that stat by descriptor. Sys is the *syscall.Stat_t (owner, group,
// inode).
type StatInfo struct {
	name string
	st   syscall.Stat_t
}

// NewStatInfo returns an empty StatInfo for path, for Fstat or Fstatat to fill.
func NewStatInfo(path string) *StatInfo { return &StatInfo{name: path} }

// Reset makes s an empty StatInfo for path: a caller stating files one after the
// other reuses one.
func (s *StatInfo) Reset(path string) { *s = StatInfo{name: path} }

// Fstat fills st from the open descriptor fd.
func Fstat(fd int, st *StatInfo) error { return syscall.Fstat(fd, &st.st) }

// Fstatat fills st from dirfd's entry name, not following a final link.
func Fstatat(dirfd int, name string, st *StatInfo) error {
	// syscall.Stat_t and unix.Stat_t are both the kernel's struct stat for GOARCH;
	// the standard library has no fstatat of its own on every architecture.
	return unix.Fstatat(dirfd, name, (*unix.Stat_t)(unsafe.Pointer(&st.st)), unix.AT_SYMLINK_NOFOLLOW)
}

func (s *StatInfo) Name() string       { return filepath.Base(s.name) }
func (s *StatInfo) Size() int64        { return s.st.Size }
func (s *StatInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *StatInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *StatInfo) Sys() any           { return &s.st }

// Mode is os's conversion of st_mode (os/stat_linux.go).
func (s *StatInfo) Mode() fs.FileMode {
	m := fs.FileMode(s.st.Mode & 0o777)
	switch s.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if s.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if s.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if s.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// futimens sets the times of the file open as fd: utimensat(2) with a NULL path,
// as glibc's futimens (x/sys has none). By descriptor, a file's name is neither
// copied for the call nor looked up again in its directory.
func futimens(fd int, ts *[2]unix.Timespec) error {
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

// joinName is filepath.Join(dir, name) for a clean dir and a name without a
// separator, without Join's cleaning pass: once per file staged.
func joinName(dir, name string) string {
	if dir == string(filepath.Separator) {
		return dir + name
	}
	return dir + string(filepath.Separator) + name
}
