//go:build linux && (amd64 || arm64)

package storage

import (
	"fmt"
	"os"
	"syscall"
)

// syncFS flushes everything written to the filesystem holding dir (syncfs(2)): one
// call for a batch's files, where an fsync each paid a journal commit each. It
// reports whether it could.
func syncFS(dir string) (bool, error) {
	d, err := os.Open(dir)
	if err != nil {
		return true, fmt.Errorf("file: syncfs %s: %w", dir, err)
	}
	defer d.Close()
	if _, _, e := syscall.Syscall(sysSyncfs, d.Fd(), 0, 0); e != 0 {
		if e == syscall.ENOSYS {
			return false, nil
		}
		return true, fmt.Errorf("file: syncfs %s: %w", dir, e)
	}
	return true, nil
}
