package shield

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dropPages tells the kernel that the index's memory map need not stay resident.
// bbolt reads the index through a read-only shared mapping of its file; a scan of a
// million files touches every page of it, and each touched page counts in the
// process's RSS for as long as it stays mapped, so the index's size (hundreds of
// MiB at a million files) would become the shield's RSS. MADV_DONTNEED on a
// file-backed shared mapping only drops the process's page-table entries: the data
// stays in the page cache and the next read faults it back in. bbolt writes through
// the file, never through the mapping, so nothing is lost.
//
// The range is the mapping's own, as the kernel lists it, never the file's length:
// bbolt grows the file in 16 MiB steps ahead of its mapping, and the addresses past
// the mapping's end may belong to anything else of the process — MADV_DONTNEED there
// would zero the Go heap's own anonymous pages.
//
// It holds the shield's write lock: bbolt remaps only within a write transaction,
// and every write of the shield goes through update1, so the address is current.
func (s *Shield) dropPages() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr, n, ok := s.mapped(); ok {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, addr, n, unix.MADV_DONTNEED)
	}
}

// mapped is the index's mapping: its address and length as the kernel lists it.
func (s *Shield) mapped() (addr, n uintptr, ok bool) {
	info := s.db.Info()
	if info == nil || info.Data == 0 {
		return 0, 0, false
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	n, ok = mappedLen(f, info.Data)
	return info.Data, n, ok
}

// mappedLen reads a /proc/PID/maps listing for the mapping that starts at addr and
// returns its length.
func mappedLen(maps io.Reader, addr uintptr) (uintptr, bool) {
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		span, _, _ := strings.Cut(sc.Text(), " ")
		lo, hi, ok := strings.Cut(span, "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || uintptr(start) != addr || end <= start {
			continue
		}
		return uintptr(end - start), true
	}
	return 0, false
}
