package snapshot

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// openat2 is unix.Openat2; a test replaces it to play a kernel, or a seccomp
// policy, without it.
var openat2 = unix.Openat2

// errResolveSlow says openBeneath did not settle a path: resolve it in user space
// (saveFile's EvalSymlinks), which gives the answer a run without openat2 gives.
var errResolveSlow = errors.New("snapshot: path left to user-space resolution")

// beneathHow opens a file for reading, resolved under the directory given, never
// above it: a `..` or a symbolic link that leads out, and an absolute symbolic
// link, fail with EXDEV; /proc's magic links fail with ELOOP. O_NONBLOCK: a FIFO
// named by a row must not block the open (saveOpen refuses it as not regular).
var beneathHow = unix.OpenHow{
	Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
}

// openRoots opens each file column's resolved root once per run (O_PATH: a handle
// to resolve from, not a read), by column index; -1 where it cannot be opened (no
// root yet), whose files then take the user-space path.
func openRoots(cols []fileColumn) []int {
	fds := make([]int, len(cols))
	for i, c := range cols {
		fd, err := unix.Open(c.realRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fd = -1
		}
		fds[i] = fd
	}
	return fds
}

func closeRoots(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

// openBeneath opens clean (absolute, clean, within its column's root) with one
// openat2 from the root's directory: the kernel resolves and opens in one call,
// race-free, where EvalSymlinks costs an lstat per component and leaves a window
// between its check and the open. It returns an error that is fs.ErrNotExist for a
// missing file, and errResolveSlow for anything else openat2 refuses (a symbolic
// link leading out of the root or absolute, a magic link, a component that is not a
// directory, no permission) or cannot do (no openat2: ENOSYS on a kernel before
// 5.6, ENOSYS or EPERM under a seccomp policy that does not know it): saveFile then
// resolves as it would without openat2, so every refusal and every report is the
// one it was, and a kernel without openat2 costs one failed call per run.
func (e *exporter) openBeneath(c *fileColumn, clean string) (int, error) {
	if c.idx >= len(e.rootFDs) || e.rootFDs[c.idx] < 0 || e.noOpenat2.Load() {
		return -1, errResolveSlow
	}
	rel := "."
	switch {
	case clean == c.Root:
	case c.Root == string(filepath.Separator):
		rel = clean[1:]
	default:
		rel = clean[len(c.Root)+1:]
	}
	how := beneathHow
	for {
		fd, err := openat2(e.rootFDs[c.idx], rel, &how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOENT):
			return -1, err
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.E2BIG), errors.Is(err, unix.EINVAL):
			if !e.noOpenat2.Swap(true) {
				e.o.Log.Debug("snapshot: openat2 unavailable, paths resolved in user space", "error", err)
			}
		}
		return -1, errResolveSlow
	}
}

// statInfo is an fs.FileInfo from fstat(2), as os.File.Stat makes it: saveFD
// stats a descriptor it has not made an *os.File of. Sys is the *syscall.Stat_t
// (owner, group, inode).
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (s *statInfo) Name() string       { return filepath.Base(s.name) }
func (s *statInfo) Size() int64        { return s.st.Size }
func (s *statInfo) ModTime() time.Time { return time.Unix(s.st.Mtim.Unix()) }
func (s *statInfo) IsDir() bool        { return s.Mode().IsDir() }
func (s *statInfo) Sys() any           { return &s.st }

// Mode is os's conversion of st_mode (os/stat_linux.go).
func (s *statInfo) Mode() fs.FileMode {
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
