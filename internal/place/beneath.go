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
// per component of both.
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
	for rel != "." {
		fd, err := openUnder(rootFD, rel)
		switch {
		case err == nil:
			_ = unix.Close(fd)
			return true
		case errors.Is(err, unix.ENOENT):
			rel = filepath.Dir(rel) // not made yet: its parent decides
			continue
		}
		return false
	}
	return true
}

// openBeneath opens dir (clean, within the root) with openat2 from the root,
// never resolving above it. Any failure (missing, refused, no openat2) is
// returned for OpenDir to settle in user space.
func (r Root) openBeneath(dir string) (int, error) {
	if noOpenat2.Load() {
		return -1, unix.ENOSYS
	}
	rel, err := filepath.Rel(r.dir, dir)
	if err != nil {
		return -1, err
	}
	rootFD, err := unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rootFD)
	return openUnder(rootFD, rel)
}

// openUnder opens the directory rel from rootFD with openat2 (dirHow), retried on
// EINTR; a kernel or policy without openat2 is remembered (noOpenat2).
func openUnder(rootFD int, rel string) (int, error) {
	how := dirHow
	for {
		fd, err := openat2(rootFD, rel, &how)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.E2BIG), errors.Is(err, unix.EINVAL):
			noOpenat2.Store(true)
		}
		return fd, err
	}
}
