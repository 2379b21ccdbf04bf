package place

import "golang.org/x/sys/unix"

// WithoutOpenat2 plays a kernel without openat2 until the returned func runs.
func WithoutOpenat2() (restore func()) {
	old := openat2
	openat2 = func(int, string, *unix.OpenHow) (int, error) { return -1, unix.ENOSYS }
	noOpenat2.Store(false)
	return func() { openat2 = old; noOpenat2.Store(false) }
}

// WithoutGetxattrat plays a kernel without getxattrat (before 6.13) until the
// returned func runs.
func WithoutGetxattrat() (restore func()) {
	noGetxattrat.Store(true)
	return func() { noGetxattrat.Store(false) }
}
