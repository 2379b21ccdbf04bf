package snapshot

import (
	"errors"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
)

// openat2 is unix.Openat2; a test replaces it to play a kernel, or a seccomp
// policy, without it.
var openat2 = unix.Openat2

// errResolveSlow says openBeneath did not settle a path: resolve it in user space
// (saveFile's EvalSymlinks), which gives the answer a run without openat2 gives.
var errResolveSlow = errors.New("snapshot: path left to user-space resolution")

// beneathHow opens a file for reading, resolved under the directory given, never
// above it: a `..` or a symbolic link that leads out, and an absolute symbolic
// link, fail with EXDEV; /proc's magic links fail with ELOOP. O_NONBLOCK: a FIFO
// named by a row must not block the open (saveOpen refuses it as not regular).
var beneathHow = unix.OpenHow{
	Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
}

// openRoots opens each file column's resolved root once per run (O_PATH: a handle
// to resolve from, not a read), by column index; -1 where it cannot be opened (no
// root yet), whose files then take the user-space path.
func openRoots(cols []fileColumn) []int {
	fds := make([]int, len(cols))
	for i, c := range cols {
		fd, err := unix.Open(c.realRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			fd = -1
		}
		fds[i] = fd
	}
	return fds
}

func closeRoots(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
}

// openBeneath opens clean (absolute, clean, within its column's root) with one
// openat2 from the root's directory: the kernel resolves and opens in one call,
// race-free, where EvalSymlinks costs an lstat per component and leaves a window
// between its check and the open. It returns an error that is fs.ErrNotExist for a
// missing file, and errResolveSlow for anything else openat2 refuses (a symbolic
// link leading out of the root or absolute, a magic link, a component that is not a
// directory, no permission) or cannot do (no openat2: ENOSYS on a kernel before
// 5.6, ENOSYS or EPERM under a seccomp policy that does not know it): saveFile then
// resolves as it would without openat2, so every refusal and every report is the
// one it was, and a kernel without openat2 costs one failed call per run.
func (e *exporter) openBeneath(c *fileColumn, clean string) (int, error) {
	if c.idx >= len(e.rootFDs) || e.rootFDs[c.idx] < 0 || e.noOpenat2.Load() {
		return -1, errResolveSlow
	}
	rel := relOf(c, clean)
	how := beneathHow
	for {
		fd, err := openat2(e.rootFDs[c.idx], rel, &how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOENT):
			return -1, err
		case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.E2BIG), errors.Is(err, unix.EINVAL):
			if !e.noOpenat2.Swap(true) {
				e.o.Log.Debug("snapshot: openat2 unavailable, paths resolved in user space", "error", err)
			}
		}
		return -1, errResolveSlow
	}
}

// relOf is clean (absolute, clean, within its column's root) relative to the root.
func relOf(c *fileColumn, clean string) string {
	switch {
	case clean == c.Root:
		return "."
	case c.Root == string(filepath.Separator):
		return clean[1:]
	default:
		return clean[len(c.Root)+1:]
	}
}

// testHookAfterStat, when set by a test, runs between shieldStoredAt's stat of a
// file and the shield's look at it by name: where a rename over it can race.
var testHookAfterStat func(path string)

// dirHow opens a file's directory as a handle to look at its files by name:
// resolved under the root, through no symbolic link at all (a path through a link,
// even one that stays inside, is left to openBeneath, which follows it or refuses
// it as it always did).
var dirHow = unix.OpenHow{
	Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
}

// dirHandle is a file worker's open directory, kept while the paths it saves are
// in it (a snapshot's paths come sorted: a tenant's recordings, one directory after
// the other), closed when they leave it and when the worker ends. fd is -1 when
// none is open, or when the directory could not be opened (failed set).
type dirHandle struct {
	col    int
	rel    string
	fd     int
	failed bool
}

func (d *dirHandle) close() {
	if d.fd >= 0 {
		_ = unix.Close(d.fd)
	}
	d.fd, d.rel, d.failed = -1, "", false
}

// open returns the directory rel (relative to column c's root) open as a handle,
// opening it only when it is not the one d holds; -1 when it cannot be opened.
func (d *dirHandle) open(rootFD int, c *fileColumn, rel string) int {
	if (d.fd >= 0 || d.failed) && d.col == c.idx && d.rel == rel {
		return d.fd
	}
	d.close()
	d.col, d.rel = c.idx, rel
	how := dirHow
	for {
		fd, err := openat2(rootFD, rel, &how)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			d.failed = true
			return -1
		}
		d.fd = fd
		return fd
	}
}

// shieldStoredAt records the file at clean from the shield's word, when the shield
// stored its blob as the file is now, with two system calls: fstatat of its name
// in its directory (held open in dh, see dirHandle) and the read of the shield's
// xattr by that name (ShieldAt). Opening the file, fstat, fgetxattr and close cost
// four, most of what a shielded file costs a snapshot (a tenant's thousands of
// recordings, each only looked at). ok is false, nothing done, whenever the answer is not that simple
// (no ShieldAt, a symbolic link anywhere on the way, a directory that cannot be
// opened, a file that is missing or not regular, a shield that cannot vouch by
// name): saveFile then opens the file as it always did, so every refusal, every
// missing file and every link followed is decided there, as before.
//
// What may happen between the two calls is ShieldAt's to answer (its inode check).
// The directory handle is resolved once beneath the root, without links; were the
// directory moved out of the root while it is held, nothing would be read from it
// but an xattr: the content recorded is a blob the shield already stored, from
// under its roots.
//
// A shield that says no by name to files it then vouches for by descriptor (one
// that cannot tell by name what it tells by descriptor) is asked by name no more once that
// happened byNameTrials times more often than not: its files cost two system
// calls more each until then, not for the whole run. asked says the shield was
// asked by name.
func (e *exporter) shieldStoredAt(fw *fileWorker, c *fileColumn, clean string, f archive.File, ev Event) (_ archive.File, _ Event, ok, asked bool, _ error) {
	dh := fw.dh
	sh, ok := e.o.Shield.(ShieldAt)
	if !ok || dh == nil || e.o.Sealer != nil || c.idx >= len(e.rootFDs) || e.rootFDs[c.idx] < 0 || e.noOpenat2.Load() {
		return f, ev, false, false, nil
	}
	if missed := e.byNameMissed.Load(); missed >= byNameTrials && missed > e.byNameVouched.Load() {
		return f, ev, false, false, nil
	}
	rel := relOf(c, clean)
	if rel == "." {
		return f, ev, false, false, nil
	}
	dir, name := ".", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, name = rel[:i], rel[i+1:]
	}
	dirfd := dh.open(e.rootFDs[c.idx], c, dir)
	if dirfd < 0 {
		return f, ev, false, false, nil
	}
	st := &fw.st
	st.Reset(clean)
	if err := place.Fstatat(dirfd, name, st); err != nil {
		return f, ev, false, false, nil
	}
	if !st.Mode().IsRegular() {
		return f, ev, false, false, nil
	}
	if testHookAfterStat != nil {
		testHookAfterStat(clean)
	}
	sum, stored, ok := sh.StoredAt(dirfd, name, st)
	if !ok {
		return f, ev, false, true, nil
	}
	e.byNameVouched.Add(1)
	rf, rev, ok, err := e.recordVouched(f, ev, st, sum, stored)
	return rf, rev, ok, true, err
}

// byNameTrials is how many files a shield may vouch for by descriptor after saying
// no by name before shieldStoredAt stops asking it by name (see there).
var byNameTrials int64 = 256
