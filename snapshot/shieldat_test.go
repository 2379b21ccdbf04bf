package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/shield"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// realShield is the shield's Lookup as purgeguard hands it to a snapshot, counting
// its answers.
type realShield struct {
	*shield.Lookup
	byFD, byName, vouchedByName atomic.Int64
}

func (r *realShield) Stored(fd int, fi fs.FileInfo) ([32]byte, int64, bool) {
	r.byFD.Add(1)
	return r.Lookup.Stored(fd, fi)
}

func (r *realShield) StoredAt(dirfd int, name string, fi fs.FileInfo) ([32]byte, int64, bool) {
	r.byName.Add(1)
	sum, stored, ok := r.Lookup.StoredAt(dirfd, name, fi)
	if ok {
		r.vouchedByName.Add(1)
	}
	return sum, stored, ok
}

func (r *realShield) Lost(ctx context.Context, path string) (snapshot.ShieldCopy, bool, error) {
	c, ok, err := r.Lookup.Lost(ctx, path)
	if err != nil || !ok {
		return snapshot.ShieldCopy{}, ok, err
	}
	return snapshot.ShieldCopy{SHA256: c.Sum, Size: c.Size, StoredBytes: c.StoredBytes, Mode: c.Mode,
		ModTime: c.ModTime, UID: c.UID, GID: c.GID, HasOwner: true, Link: c.Link}, true, nil
}

// shieldRoots are the roots, each with its default shield directory.
func shieldRoots(roots ...string) []shield.Root {
	rs := make([]shield.Root, len(roots))
	for i, root := range roots {
		rs[i] = shield.Root{Dir: root, Shield: shield.DefaultShieldDir(root)}
	}
	return rs
}

// shieldOnce runs passes of a real shield over the roots, storing into s, until
// every path given carries the shield's xattr (uploaded).
func shieldOnce(t *testing.T, roots []string, s storage.Store, paths ...string) *realShield {
	t.Helper()
	rs := shieldRoots(roots...)
	sh, err := shield.Open(shield.Options{Roots: rs, Index: filepath.Join(t.TempDir(), "index.db"),
		Store: s, Settle: time.Millisecond, Rescan: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	ctx := testenv.Context(t)
	for {
		if err := sh.Once(ctx); err != nil {
			t.Fatal(err)
		}
		left := 0
		var buf [160]byte
		for _, p := range paths {
			if _, err := unix.Lgetxattr(p, shield.XattrBlob, buf[:]); err != nil {
				left++
			}
		}
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d files still without the shield's xattr", left)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return lookupOf(t, s, rs)
}

// lookupOf is the shield's Lookup of store s, as purgeguard hands it to a snapshot
// into s: it knows s's identity.
func lookupOf(t *testing.T, s storage.Store, rs []shield.Root) *realShield {
	t.Helper()
	l := shield.NewLookup(s, rs, time.Hour)
	if err := l.ReadStore(testenv.Context(t)); err != nil {
		t.Fatal(err)
	}
	return &realShield{Lookup: l}
}

// regularFiles lists the regular files on disk under dir.
func regularFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A real shield's uploads are taken by name: every recording of the tenant on disk
// is recorded with the digest of its content from the shield's xattr read by name
// (no open, no read, no HEAD, no upload), and each missing one is missing.
func TestRun_ShieldVouchesByName(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	s := &countingStore{Store: fileStore(t)}
	onDisk := regularFiles(t, filepath.Join(e.recordings, tenant.String()))
	if len(onDisk) == 0 {
		t.Fatal("the tenant has no recordings on disk")
	}
	sh := shieldOnce(t, []string{e.recordings, e.exports}, s.Store, append(regularFiles(t, e.exports), onDisk...)...)
	o := e.options(tenant)
	o.Shield = sh
	m := e.run(t, s, o)[0]
	var saved, missing, recordings int64
	for _, f := range m.Files {
		if f.OutsideRoot {
			continue
		}
		if filepath.Dir(filepath.Dir(f.Path)) == filepath.Join(e.recordings, tenant.String()) && !f.Missing {
			recordings++
		}
		b, err := os.ReadFile(f.Path)
		if f.Missing {
			missing++
			if err == nil {
				t.Errorf("%s: on disk, recorded missing", f.Path)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: recorded saved: %v", f.Path, err)
		}
		saved++
		if sum := sha256.Sum256(b); f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(b)) {
			t.Errorf("%s: digest %s size %d, want its content's %x, %d", f.Path, f.SHA256, f.Size, sum, len(b))
		}
	}
	if recordings != int64(len(onDisk)) || missing == 0 {
		t.Fatalf("%d recordings saved, %d files missing; %d recordings on disk: the test needs both", recordings, missing, len(onDisk))
	}
	if n := sh.vouchedByName.Load(); n != saved {
		t.Errorf("%d files vouched for by name, want all %d saved (asked %d by name, %d by descriptor)", n, saved, sh.byName.Load(), sh.byFD.Load())
	}
	if n, p := s.stats.Load(), s.puts.Load(); n != 0 || p != 0 {
		t.Errorf("blob HEADs %d, uploads %d for recordings the shield stored: want none", n, p)
	}
}

// A snapshot into another store than the one the shield uploads to (a copy to a
// directory, a new bucket) takes none of the shield's blobs for stored: the
// xattrs name the shield's store, and every blob the snapshot names is in its own
// store, which verify reads back whole. The same snapshot into the shield's own
// store takes them all. A store no shield ever used has no identity to match.
func TestRun_ShieldOfAnotherStore(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	ctx := testenv.Context(t)
	onDisk := regularFiles(t, filepath.Join(e.recordings, tenant.String()))
	shielded := fileStore(t)
	shieldOnce(t, []string{e.recordings, e.exports}, shielded, append(regularFiles(t, e.exports), onDisk...)...)
	named := fileStore(t) // has an identity of its own
	if _, err := repository.EnsureStoreID(ctx, named); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		store   storage.Store
		vouched bool
	}{
		{"the shield's store", shielded, true},
		{"another store", named, false},
		{"a store without identity", fileStore(t), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sh := lookupOf(t, c.store, shieldRoots(e.recordings, e.exports))
			o := e.options(tenant)
			o.Shield = sh
			m := e.run(t, c.store, o)[0]
			var saved int64
			for _, f := range m.Files {
				if !f.Missing && !f.OutsideRoot {
					saved++
				}
			}
			if saved == 0 {
				t.Fatal("no file saved: the test needs some")
			}
			if n := sh.vouchedByName.Load(); c.vouched && n != saved || !c.vouched && n != 0 {
				t.Errorf("%d of %d files vouched for by name, want %v", n, saved, map[bool]string{true: "all", false: "none"}[c.vouched])
			}
			chk, err := repository.NewChecker(c.store)
			if err != nil {
				t.Fatal(err)
			}
			defer chk.Close()
			probs, err := chk.Verify(ctx, m, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range probs {
				t.Errorf("verify: %v", p)
			}
		})
	}
}

// A recording the shield uploaded, then replaced by another inode (its content
// changed, same size and mtime, the shield's xattr copied onto it, or renamed over
// it between the snapshot's stat and its xattr read by another file the shield
// uploaded, since changed), is saved from disk: its content's digest, never the
// blob the xattr names. The xattr names its inode, and the stat's must be it.
func TestRun_ShieldReplacedFileSavedFromDisk(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	ctx := testenv.Context(t)
	mon := filepath.Join(e.recordings, tenant.String(), "monitor")
	if err := os.MkdirAll(mon, 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.UTC)
	write := func(p string, b []byte, mt time.Time) {
		t.Helper()
		if err := os.WriteFile(p, b, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// Same size, same mtime: only the inode tells them apart.
	copied := filepath.Join(mon, "copied.wav")   // replaced before the run, xattr copied
	raced := filepath.Join(mon, "raced.wav")     // replaced between stat and xattr read
	other := filepath.Join(mon, "other.wav.tmp") // not named by a row: renamed over raced
	write(copied, bytes.Repeat([]byte("a"), 4000), mtime)
	write(raced, bytes.Repeat([]byte("b"), 4000), mtime)
	write(other, bytes.Repeat([]byte("c"), 4000), mtime)
	for _, p := range []string{copied, raced} {
		_, err := e.conn.Exec(ctx, `INSERT INTO call_logd_recording (uuid, start_time, end_time, path, call_log_id)
			SELECT gen_random_uuid(), now(), now(), $1, min(id) FROM call_logd_call_log WHERE tenant_uuid = $2`, p, tenant)
		if err != nil {
			t.Fatal(err)
		}
	}
	s := fileStore(t)
	sh := shieldOnce(t, []string{e.recordings, e.exports}, s, copied, raced, other)
	staleCopied, staleOther := sha256.Sum256(bytes.Repeat([]byte("a"), 4000)), sha256.Sum256(bytes.Repeat([]byte("c"), 4000))

	// copied: a new inode, other content, the old one's xattr and mtime.
	var val [160]byte
	n, err := unix.Lgetxattr(copied, shield.XattrBlob, val[:])
	if err != nil {
		t.Fatal(err)
	}
	newCopied := bytes.Repeat([]byte("A"), 4000)
	tmp := copied + ".new"
	write(tmp, newCopied, mtime)
	if err := unix.Lsetxattr(tmp, shield.XattrBlob, val[:n], 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, copied); err != nil {
		t.Fatal(err)
	}
	// other: changed since its upload (a later mtime: its xattr no longer vouches
	// for it), renamed over raced once the snapshot has stat'ed raced.
	newOther := bytes.Repeat([]byte("C"), 4000)
	write(other, newOther, mtime.Add(time.Second))
	var renamed atomic.Bool
	defer snapshot.SetAfterStatHook(func(path string) {
		if path == raced && !renamed.Swap(true) {
			if err := os.Rename(other, raced); err != nil {
				t.Error(err)
			}
		}
	})()

	o := e.options(tenant)
	o.Shield = sh
	m := e.run(t, s, o)[0]
	if !renamed.Load() {
		t.Fatal("the snapshot never looked at raced.wav by name")
	}
	for _, c := range []struct {
		path       string
		want       []byte
		stale      [32]byte
		whoseStale string
	}{
		{copied, newCopied, staleCopied, "the file it replaced"},
		{raced, newOther, staleOther, "the file renamed over it, as uploaded"},
	} {
		var f *archive.File
		for i := range m.Files {
			if m.Files[i].Path == c.path {
				f = &m.Files[i]
			}
		}
		if f == nil {
			t.Fatalf("%s not in the manifest", c.path)
		}
		want := sha256.Sum256(c.want)
		switch f.SHA256 {
		case hex.EncodeToString(want[:]):
		case hex.EncodeToString(c.stale[:]):
			t.Errorf("%s: recorded with the blob of %s (%s), not its content", c.path, c.whoseStale, f.SHA256)
		default:
			t.Errorf("%s: digest %s, want its content's %x", c.path, f.SHA256, want)
		}
	}
}

// A file the shield does not vouch for is asked about once by descriptor, not once
// more when its content is read: each question is a system call of every file.
func TestRun_ShieldAskedOncePerFile(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	s := fileStore(t)
	sh := lookupOf(t, s, shieldRoots(e.recordings, e.exports)) // no shield ran: it vouches for nothing
	o := e.options(tenant)
	o.Shield = sh
	m := e.run(t, s, o)[0]
	var saved int64
	for _, f := range m.Files {
		if !f.Missing && !f.OutsideRoot {
			saved++
		}
	}
	if saved == 0 {
		t.Fatal("no file saved from disk: the test needs some")
	}
	if n := sh.byFD.Load(); n != saved {
		t.Errorf("shield asked %d times by descriptor for %d files read from disk, want once each", n, saved)
	}
}

// A small file that grows past SmallBlob between its stat and its reading is saved
// whole: its recorded digest and size are those of its content as it is read, from
// its first byte.
func TestRun_SmallFileGrowsAfterStat(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	ctx := testenv.Context(t)
	mon := filepath.Join(e.recordings, tenant.String(), "monitor")
	if err := os.MkdirAll(mon, 0o755); err != nil {
		t.Fatal(err)
	}
	growing := filepath.Join(mon, "growing.wav")
	if err := os.WriteFile(growing, bytes.Repeat([]byte("g"), 100), 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := e.conn.Exec(ctx, `INSERT INTO call_logd_recording (uuid, start_time, end_time, path, call_log_id)
		SELECT gen_random_uuid(), now(), now(), $1, min(id) FROM call_logd_call_log WHERE tenant_uuid = $2`, growing, tenant)
	if err != nil {
		t.Fatal(err)
	}
	full := append(bytes.Repeat([]byte("g"), 100), bytes.Repeat([]byte("h"), snapshot.SmallBlob+900)...) // read past SmallBlob, less than twice
	var grown atomic.Bool
	defer snapshot.SetAfterFstatHook(func(path string) {
		if path == growing && !grown.Swap(true) {
			if err := os.WriteFile(growing, full, 0o640); err != nil { // the same inode, rewritten
				t.Error(err)
			}
		}
	})()
	s := fileStore(t)
	rs := shieldRoots(e.recordings, e.exports)
	o := e.options(tenant)
	o.Shield = lookupOf(t, s, rs)
	m := e.run(t, s, o)[0]
	if !grown.Load() {
		t.Fatal("growing.wav was never read after its stat by descriptor")
	}
	want := sha256.Sum256(full)
	for _, f := range m.Files {
		if f.Path == growing {
			if f.SHA256 != hex.EncodeToString(want[:]) || f.Size != int64(len(full)) {
				t.Errorf("%s: digest %s size %d, want its content's %x, %d", f.Path, f.SHA256, f.Size, want, len(full))
			}
			return
		}
	}
	t.Fatalf("%s not in the manifest", growing)
}

// A shield that vouches for none of a column's first files (none ran) is asked about
// that column's files no more: each question would cost three system calls for no
// answer. Every file is still read and recorded with its content's digest.
func TestRun_ShieldSilentAskedNoMore(t *testing.T) {
	defer snapshot.SetShieldTrials(3)()
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	s := fileStore(t)
	sh := lookupOf(t, s, shieldRoots(e.recordings, e.exports))
	o := e.options(tenant)
	o.Shield = sh
	m := e.run(t, s, o)[0]
	var saved int64
	for _, f := range m.Files {
		if f.Missing || f.OutsideRoot {
			continue
		}
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(b); f.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: digest %s, want its content's %x", f.Path, f.SHA256, sum)
		}
		saved++
	}
	// Workers that checked the count together may each ask once more.
	most := 2 * (3 + int64(o.Jobs)*snapshot.FileWorkersPerJob)
	if saved <= most {
		t.Fatalf("%d files saved, the test needs more than %d", saved, most)
	}
	if n := sh.byFD.Load(); n == 0 || n > most {
		t.Errorf("shield asked about %d of %d files by descriptor, want 1 to %d: asked no more once it vouched for none of a column's first 3", n, saved, most)
	}
}

// A column whose files the shield vouches for is asked about every one of them, even
// when another column's files are ones it never stored and are asked about no more.
func TestRun_ShieldAskedPerColumn(t *testing.T) {
	defer snapshot.SetShieldTrials(2)()
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	s := fileStore(t)
	onDisk := regularFiles(t, filepath.Join(e.recordings, tenant.String()))
	shieldOnce(t, []string{e.recordings}, s, onDisk...) // the exports are not shielded
	sh := lookupOf(t, s, shieldRoots(e.recordings, e.exports))
	o := e.options(tenant)
	o.Shield = sh
	m := e.run(t, s, o)[0]
	var recordings int64
	for _, f := range m.Files {
		if !f.Missing && !f.OutsideRoot && archive.Within(e.recordings, f.Path) {
			recordings++
		}
	}
	if recordings != int64(len(onDisk)) || recordings <= 2 {
		t.Fatalf("%d recordings saved, %d on disk: the test needs more than 2, all saved", recordings, len(onDisk))
	}
	if n := sh.vouchedByName.Load(); n != recordings {
		t.Errorf("%d recordings vouched for by name, want all %d (asked %d by name, %d by descriptor)", n, recordings, sh.byName.Load(), sh.byFD.Load())
	}
}
