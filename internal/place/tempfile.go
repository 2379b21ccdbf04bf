package place

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// tempFile is a temporary file being staged, held by its bare descriptor: an
// *os.File costs system calls that buy nothing for a regular file written once
// (os.OpenFile registers it with the poller: two fcntl to set O_NONBLOCK, an
// epoll_ctl that fails, two fcntl to clear it; os.NewFile asks one fcntl). A
// restore stages a file per recording. (storage's createTempFile does the same for
// a blob: storage sits below this package.)
type tempFile struct {
	fd   int
	name string // its path
}

// createTemp creates a file named prefix and a random suffix, exclusively, in the
// directory dirfd, whose path is dir. It returns the file (named by its path) and
// its name.
func createTemp(dirfd int, dir, prefix string, perm uint32) (*tempFile, string, error) {
	for range 10000 {
		name := prefix + strconv.FormatUint(rand.Uint64(), 36)
		f, err := createExact(dirfd, dir, name, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, name, err
	}
	return nil, "", &os.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: os.ErrExist}
}

// createExact creates name, exclusively, in the directory dirfd, whose path is dir,
// with perm (less the umask).
func createExact(dirfd int, dir, name string, perm uint32) (*tempFile, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, perm)
		switch {
		case err == nil:
			return &tempFile{fd: fd, name: joinName(dir, name)}, nil
		case errors.Is(err, unix.EINTR):
			continue
		}
		return nil, &os.PathError{Op: "create", Path: filepath.Join(dir, name), Err: err}
	}
}

// Name returns the file's path.
func (f *tempFile) Name() string { return f.name }

// Write writes all of p, as *os.File's Write does for a regular file.
func (f *tempFile) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(f.fd, p[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, &os.PathError{Op: "write", Path: f.name, Err: err}
		}
		if m == 0 {
			return n, &os.PathError{Op: "write", Path: f.name, Err: io.ErrShortWrite}
		}
		n += m
	}
	return n, nil
}

func (f *tempFile) Chown(uid, gid int) error {
	return f.wrap("chown", unix.Fchown(f.fd, uid, gid))
}

func (f *tempFile) Chmod(mode fs.FileMode) error {
	return f.wrap("chmod", unix.Fchmod(f.fd, uint32(mode.Perm())))
}

func (f *tempFile) Sync() error { return f.wrap("sync", unix.Fsync(f.fd)) }

// Close closes the descriptor; closing again does nothing.
func (f *tempFile) Close() error {
	if f.fd < 0 {
		return nil
	}
	err := unix.Close(f.fd)
	f.fd = -1
	return f.wrap("close", err)
}

func (f *tempFile) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &os.PathError{Op: op, Path: f.name, Err: err}
}

// copyBufs are copyCtx's buffers, kept: a copy per file staged would allocate
// 32 KiB each.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyCtx copies r to w, stopping once ctx ends, with a kept buffer.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(struct{ io.Writer }{w}, ctxReader{ctx, r}, buf[:])
}

// createPerm is the mode a staged file is created with, and whether fill must
// still set a's: 0600, then a fchmod to a's mode, unless the file is created where
// no one else can reach it (private) and the umask leaves a's mode whole, when it
// is created with a's mode and the fchmod is spared (a system call per file of a
// million-file restore). Set-id bits are never given (Attr's mode is Perm), so
// the chown that follows has none to clear.
func createPerm(a Attr, private bool) (perm uint32, chmod bool) {
	m := a.Mode.Perm()
	if !private || m == 0 {
		return 0o600, true
	}
	if u, ok := processUmask(); !ok || m&^u != m {
		return 0o600, true
	}
	return uint32(m), false
}

// processUmask is the process's umask, read once from /proc/self/status (Linux
// 4.7 and later; umask(2) cannot read it without setting it, which would race
// with other threads creating files). Nothing in this process changes it.
var processUmask = sync.OnceValues(func() (fs.FileMode, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			u, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil || u > 0o777 {
				return 0, false
			}
			return fs.FileMode(u), true
		}
	}
	return 0, false
})
