package storage

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// createTempFile is os.CreateTemp(dir, prefix+"*") at a third of its system calls:
// os.OpenFile tries to register a file with the poller (two fcntl to set O_NONBLOCK,
// an epoll_ctl that fails for a regular file, two fcntl to clear it again), os.NewFile
// on a blocking descriptor asks one fcntl. A file:// snapshot creates a temporary
// file per blob.
func createTempFile(dir, prefix string) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(rand.Uint64(), 36))
		fd, err := syscall.Open(name, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL|syscall.O_CLOEXEC, 0o600)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), name), nil
		case errors.Is(err, syscall.EEXIST):
			continue
		case errors.Is(err, syscall.EINTR):
			continue
		}
		return nil, &os.PathError{Op: "createtemp", Path: name, Err: err}
	}
	return nil, &os.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: os.ErrExist}
}

// copyBufs are io.Copy's buffers, kept: io.Copy allocates 32 KiB per call, and a
// snapshot of small files copied three times per file spent a tenth of its CPU
// zeroing and collecting them. 256 KiB, not io.Copy's 32: a sealed object reads as
// age chunks of 64 KiB and a 16-byte tag, which a 32 KiB buffer wrote in three
// writes each (the last of 16 bytes), and a pack's 1 MiB flushes took 32.
const copyBuf = 256 << 10

var copyBufs = sync.Pool{New: func() any { return new([copyBuf]byte) }}

// copyCtx copies r to the file f, stopping once ctx ends, with a kept buffer.
func copyCtx(ctx context.Context, f *os.File, r io.Reader) (int64, error) {
	buf := copyBufs.Get().(*[copyBuf]byte)
	defer copyBufs.Put(buf)
	// writerOnly hides os.File's ReadFrom, which would allocate its own buffer.
	return io.CopyBuffer(writerOnly{f}, ctxReader{ctx, r}, buf[:])
}

type writerOnly struct{ io.Writer }

// openRead is os.Open(name) for a regular file at a fifth of the system calls
// (createTempFile says why): a file:// restore opens a blob per file twice.
func openRead(name string) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}
