package place

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// createTemp is os.CreateTemp(dir, prefix+"*") at a third of its system calls:
// os.OpenFile tries to register a file with the poller (two fcntl to set
// O_NONBLOCK, an epoll_ctl that fails for a regular file, two fcntl to clear it),
// os.NewFile on a blocking descriptor asks one fcntl. A restore stages a file per
// recording. (storage's createTempFile does the same for a blob: storage sits
// below this package.)
func createTemp(dir, prefix string) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), name), nil
		case errors.Is(err, unix.EEXIST), errors.Is(err, unix.EINTR):
			continue
		}
		return nil, &os.PathError{Op: "createtemp", Path: name, Err: err}
	}
	return nil, &os.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: os.ErrExist}
}

// copyBufs are copyCtx's buffers, kept: io.Copy into an *os.File allocates 32 KiB
// per call (its ReadFrom's), per file staged.
var copyBufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// copyCtx copies r to f, stopping once ctx ends, with a kept buffer.
func copyCtx(ctx context.Context, f *os.File, r io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[32 << 10]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(struct{ io.Writer }{f}, ctxReader{ctx, r}, buf[:])
}
