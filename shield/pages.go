package shield

import (
	"os"

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
// It holds the shield's write lock: bbolt remaps only within a write transaction,
// and every write of the shield goes through update1, so the address is current.
func (s *Shield) dropPages() {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := s.db.Info()
	fi, err := os.Stat(s.o.Index)
	if err != nil || info == nil || info.Data == 0 || fi.Size() == 0 {
		return
	}
	// The file may run ahead of the mapping (bbolt grows it by 16 MiB steps): the
	// mapping's end is found as the first chunk the kernel refuses (ENOMEM).
	const chunk = 4 << 20
	size := uintptr(fi.Size()) &^ uintptr(os.Getpagesize()-1)
	for off := uintptr(0); off < size; off += chunk {
		n := min(chunk, size-off)
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, info.Data+off, n, unix.MADV_DONTNEED); e != 0 {
			return
		}
	}
}
