package shield

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// Lookup tells another process (a snapshot, a guard) what the shield holds, without
// its index (which the running shield keeps open): whether an open file's blob is
// in the lookup's store (the inode's XattrBlob naming it), and the copy of a lost path (its loss record, else
// its link found by the path's hash while the loss is not yet recorded).
type Lookup struct {
	store storage.Store
	roots []Root
	keep  time.Duration

	// tag is store's (ReadStore); until it is known, no value that names a store
	// vouches.
	tag    storeTag
	tagged bool

	once   sync.Once
	byPath map[string]Loss
	err    error

	fanMu sync.Mutex
	fans  map[string]fanList // fan-out directory → its last listing (linkOf)
}

// fanList is what a listing of a fan-out directory says: the hashes of the paths it
// holds links of (sorted), and the directory's mtime when it was listed.
type fanList struct {
	mtime  time.Time
	hashes []uint64
}

// fanSettled is how long a fan-out directory must have been left unchanged before
// its listing is trusted while its mtime stays the same: a link made within the
// file system's timestamp granularity (a clock tick) of the listing could leave
// the mtime as it was.
const fanSettled = time.Second

// NewLookup reads the losses of the last keep (once, at the first Lost).
func NewLookup(s storage.Store, roots []Root, keep time.Duration) *Lookup {
	return &Lookup{store: s, roots: roots, keep: keep}
}

// ReadStore reads the identity of the lookup's store, so that Stored and StoredAt
// vouch for the blobs a shield stored there, and for no other store's. Without it
// (or for a store no shield has used: it has no identity) they vouch for nothing.
// Nor do values older than version 3, which name no store: a shield rewrites its
// own at its first pass (retagAll), and until then the snapshot reads the files.
func (l *Lookup) ReadStore(ctx context.Context) error {
	id, ok, err := repository.ReadStoreID(ctx, l.store)
	if err != nil {
		return fmt.Errorf("shield: %w", err)
	}
	l.tag, l.tagged = tagOf(id), ok
	return nil
}

// ours says whether w names the lookup's store.
func (l *Lookup) ours(w vouch) bool {
	return w.hasTag && l.tagged && w.tag == l.tag
}

// Copy is what the shield has of a lost path.
type Copy struct {
	Loss
	Sum      [32]byte // zero when the loss is not recorded yet (then Link is set)
	Recorded bool
}

// Stored reports the digest and stored size of the content of the file open as fd
// (fi its stat) when the shield stored its blob in the lookup's store (ReadStore)
// and the file's size and mtime are those it uploaded.
func (l *Lookup) Stored(fd int, fi fs.FileInfo) (sum [32]byte, stored int64, ok bool) {
	var buf [160]byte
	n, err := unix.Fgetxattr(fd, XattrBlob, buf[:])
	if err != nil {
		return sum, 0, false
	}
	w, ok := parseVouch(buf[:n])
	// fd is one inode for both calls: the inode number only refuses a value
	// copied from another inode (cp --preserve=xattr).
	if !ok || !l.ours(w) || !w.matches(fi) {
		return sum, 0, false
	}
	return w.sum, w.stored, true
}

// StoredAt is Stored for the file name (one component) in the directory open as
// dirfd, fi its stat by name (fstatat, not following a symbolic link): no open,
// no close. The stat and the xattr read are two lookups of the name, and the name
// may have been given to another inode in between (a rename over it): the value
// must then name the inode the stat saw, or the answer is no. Two inodes of one
// filesystem share a number only when one was freed before the other was made, and
// the vouched inode holds a hard link in the shield's directory from before its
// value was set until long after its path is gone: the stat's inode and the
// xattr's, alive at the stat and at the read, differ under one number only if a new
// inode was made, linked, left unchanged for the shield's settle and uploaded
// between the two calls. Values that name no store (written before version 3) say
// no, here as in Stored.
func (l *Lookup) StoredAt(dirfd int, name string, fi fs.FileInfo) (sum [32]byte, stored int64, ok bool) {
	var buf [160]byte
	n, err := place.LgetxattrAt(dirfd, name, XattrBlob, buf[:])
	if err != nil {
		return sum, 0, false
	}
	w, ok := parseVouch(buf[:n])
	if !ok || !l.ours(w) || !w.matches(fi) {
		return sum, 0, false
	}
	return w.sum, w.stored, true
}

// matches says whether w vouches for the file fi stats now: same size, mtime and
// inode number.
func (w vouch) matches(fi fs.FileInfo) bool {
	if w.size != fi.Size() || w.mtime != fi.ModTime().UnixNano() || !w.hasIno {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Ino == w.ino
}

// Lost returns the shield's copy of path.
func (l *Lookup) Lost(ctx context.Context, path string) (Copy, bool, error) {
	r, ok := rootFor(l.roots, path)
	if !ok {
		return Copy{}, false, nil
	}
	l.once.Do(func() {
		var ls []Loss
		// A record that cannot be read or trusted is skipped: it must not stop a
		// snapshot, which then reports the file missing as it would without a shield.
		ls, l.err = Losses(ctx, l.store, LossQuery{Roots: l.roots, Since: time.Now().Add(-l.keep), Bad: func(string, error) {}})
		l.byPath = make(map[string]Loss, len(ls))
		for _, x := range ls {
			l.byPath[x.Path] = x
		}
	})
	if l.err != nil {
		return Copy{}, false, l.err
	}
	if x, ok := l.byPath[path]; ok {
		sum, err := archive.ParseDigestHex(x.SHA256)
		if err != nil {
			return Copy{}, false, err
		}
		return Copy{Loss: x, Sum: sum, Recorded: true}, true, nil
	}
	link, fi, err := l.linkOf(r, path)
	if err != nil || link == "" {
		return Copy{}, false, err
	}
	st := statOf(fi)
	return Copy{Loss: Loss{Path: path, Root: r.Dir, Link: link, Size: fi.Size(), Mode: modeBits(fi.Mode()),
		ModTime: fi.ModTime().UTC(), UID: st.Uid, GID: st.Gid}}, true, nil
}

// linkOf is newestLink, with each fan-out directory listed once while it does not
// change: a snapshot asks for every file a row names that the disk does not have,
// and a tenant's thousands of missing recordings would each read a directory of
// the shield's links (about a 256th of them). A path the last listing has no link
// for costs a stat of its directory; memory is 8 bytes per link in the directories
// listed.
func (l *Lookup) linkOf(r Root, path string) (string, fs.FileInfo, error) {
	h := pathHash(path)
	dir := fanDir(r, h)
	st, err := os.Stat(dir)
	if isNotExist(err) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, err
	}
	l.fanMu.Lock()
	c, ok := l.fans[dir]
	l.fanMu.Unlock()
	if ok && c.mtime.Equal(st.ModTime()) {
		if _, found := slices.BinarySearch(c.hashes, h); !found {
			return "", nil, nil
		}
		return newestLink(r, path) // a link for path: read it as it is now
	}
	listed := time.Now()
	names, err := readNames(dir)
	if err != nil || names == nil {
		return "", nil, err
	}
	if st.ModTime().Before(listed.Add(-fanSettled)) {
		hashes := make([]uint64, 0, len(names))
		for _, n := range names {
			pre, _, _ := strings.Cut(n, "-")
			if v, err := strconv.ParseUint(pre, 16, 64); err == nil {
				hashes = append(hashes, v)
			}
		}
		slices.Sort(hashes)
		l.fanMu.Lock()
		if l.fans == nil {
			l.fans = map[string]fanList{}
		}
		l.fans[dir] = fanList{mtime: st.ModTime(), hashes: hashes}
		l.fanMu.Unlock()
	}
	return newestIn(dir, names, h)
}

func fanDir(r Root, h uint64) string {
	return filepath.Join(r.Shield, fmt.Sprintf("%02x", h&0xff))
}

// readNames lists a fan-out directory, unsorted; nil when there is none.
func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if isNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// newestLink finds, among the links made for path, the most recently modified.
// The fan-out directory's names are read unsorted and without their types: a
// snapshot asks this for every file a row names that the disk does not have.
func newestLink(r Root, path string) (string, fs.FileInfo, error) {
	h := pathHash(path)
	dir := fanDir(r, h)
	names, err := readNames(dir)
	if err != nil || names == nil {
		return "", nil, err
	}
	return newestIn(dir, names, h)
}

// newestIn is newestLink over the names of the fan-out directory dir.
func newestIn(dir string, names []string, h uint64) (string, fs.FileInfo, error) {
	prefix := strconv.FormatUint(h, 16) + "-"
	var best string
	var bestFi fs.FileInfo
	for _, name := range names {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if bestFi == nil || fi.ModTime().After(bestFi.ModTime()) {
			best, bestFi = p, fi
		}
	}
	return best, bestFi, nil
}
