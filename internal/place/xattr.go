package place

import (
	"errors"
	"runtime"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// noGetxattrat is set once getxattrat(2) proved unavailable (ENOSYS: a kernel
// before 6.13, or a seccomp policy that does not know it).
var noGetxattrat atomic.Bool

// xattrArgs is the kernel's struct xattr_args.
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

// LgetxattrAt reads the extended attribute attr of name (one path component, never
// followed when it is a symbolic link) in the directory open as dirfd, into dest:
// one getxattrat(2), which resolves name from dirfd alone, where an open of the
// file, its fgetxattr and its close cost three system calls. Where the kernel has
// no getxattrat it is lgetxattr(2) of /proc/self/fd/<dirfd>/<name>: the magic link
// is exactly the directory dirfd holds, whatever was renamed since it was opened,
// so the name is looked up there and nowhere else; without /proc it fails and the
// caller opens the file instead.
func LgetxattrAt(dirfd int, name, attr string, dest []byte) (int, error) {
	if !noGetxattrat.Load() {
		n, err := getxattrat(dirfd, name, attr, dest)
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return n, err
		}
		// EPERM: a seccomp policy refusing the call it does not know (an xattr
		// read the user may not make is EACCES or ENODATA, never EPERM).
		noGetxattrat.Store(true)
	}
	return unix.Lgetxattr("/proc/self/fd/"+strconv.Itoa(dirfd)+"/"+name, attr, dest)
}

func getxattrat(dirfd int, name, attr string, dest []byte) (int, error) {
	var nameBuf, attrBuf [cstringMax]byte
	p, err := cstring(&nameBuf, name)
	if err != nil {
		return 0, err
	}
	a, err := cstring(&attrBuf, attr)
	if err != nil {
		return 0, err
	}
	args := xattrArgs{size: uint32(len(dest))}
	if len(dest) > 0 {
		args.value = uint64(uintptr(unsafe.Pointer(&dest[0])))
	}
	for {
		r, _, errno := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
			unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(a)), uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
		// args holds dest's address as an integer: dest must live through the call.
		runtime.KeepAlive(dest)
		switch errno {
		case 0:
			return int(r), nil
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}

// cstringMax is the longest name, with its NUL, that cstring copies into its
// caller's buffer.
const cstringMax = 256

// cstring is s NUL-terminated for a system call, in buf when it fits: the
// caller's stack, not one allocation per call (unix.BytePtrFromString), which was
// two per file looked at by a snapshot of shield-stored files. Like
// BytePtrFromString, it refuses a NUL inside s.
func cstring(buf *[cstringMax]byte, s string) (*byte, error) {
	if len(s) >= len(buf) {
		return unix.BytePtrFromString(s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, unix.EINVAL
		}
	}
	copy(buf[:], s)
	buf[len(s)] = 0
	return &buf[0], nil
}
