package place

import (
	"errors"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// openat2 is unix.Openat2; a test replaces it to play a kernel, or a seccomp
// policy, without it.
var openat2 = unix.Openat2

// noOpenat2 is set once openat2 proved unavailable: every later check takes the
// user-space path at once.
var noOpenat2 atomic.Bool

// dirHow opens a directory as a handle (O_PATH), resolved under the directory
// given, never above it: a `..` or a symbolic link that leads out, and an absolute
// symbolic link, fail with EXDEV; /proc's magic links with ELOOP.
var dirHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
}

// beneath reports whether the kernel resolves dir (clean, absolute, within the root)
// under the root's directory: its deepest existing ancestor, as escapes decides.
// true is certain (openat2 resolved every link and stayed under the root, which the
// root's own open resolved as EvalSymlinks does); false says only "not settled here"
// (an absolute link that may still lead inside, a missing root, no openat2): escapes
// then resolves in user space as it did before, so every answer is the one it gave.
// Four system calls where EvalSymlinks of the root and the directory cost an lstat
// per component of both: a restore checks each file's directory three times.
func (r Root) beneath(dir string) bool {
	if noOpenat2.Load() {
		return false
	}
	rel, err := filepath.Rel(r.dir, dir)
	if err != nil || !within(r.dir, dir) {
		return false
	}
	rootFD, err := unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(rootFD)
	how := dirHow
	for rel != "." {
		fd, err := openat2(rootFD, rel, &how)
		switch {
		case err == nil:
			_ = unix.Close(fd)
			return true
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOENT):
			rel = filepath.Dir(rel) // not made yet: its parent decides
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.E2BIG), errors.Is(err, unix.EINVAL):
			noOpenat2.Store(true)
		}
		return false
	}
	return true
}
