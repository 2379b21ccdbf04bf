package snapshot_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// Symbolic links under a files root: those that lead out of it (absolute or
// relative, to a file or through a directory, chained, through /proc) are recorded
// as outside the root and never read; those that stay inside are followed and
// saved; a dangling one is missing. The same whether the kernel resolves the path
// (openat2 RESOLVE_BENEATH), or has no openat2 (ENOSYS: before Linux 5.6) or a
// seccomp policy refuses it (EPERM): then the path is resolved in user space, and
// openat2 is not asked again for every file.
func TestRun_SymlinksUnderRoot(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[2]
	ctx := testenv.Context(t)
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.wav")
	secretContent := []byte("not yours")
	if err := os.WriteFile(secret, secretContent, 0o640); err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(e.recordings, tenant.String())
	mon := filepath.Join(tdir, "monitor")
	if err := os.MkdirAll(mon, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(mon, "target.wav")
	targetContent := []byte("a recording of this tenant")
	if err := os.WriteFile(target, targetContent, 0o640); err != nil {
		t.Fatal(err)
	}
	rel := func(from, to string) string {
		r, err := filepath.Rel(from, to)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	const (
		out     = "outside_root"
		saved   = "saved"
		missing = "missing"
	)
	cases := []struct {
		name  string
		path  string
		links map[string]string // link → its target, made before the run
		want  string
	}{
		{"plain file", target, nil, saved},
		{"absolute link out", filepath.Join(mon, "abs-out.wav"), map[string]string{filepath.Join(mon, "abs-out.wav"): secret}, out},
		{"relative link out", filepath.Join(mon, "rel-out.wav"), map[string]string{filepath.Join(mon, "rel-out.wav"): rel(mon, secret)}, out},
		{"absolute directory link out", filepath.Join(mon, "absdir", "secret.wav"), map[string]string{filepath.Join(mon, "absdir"): outside}, out},
		{"relative directory link out", filepath.Join(mon, "reldir", "secret.wav"), map[string]string{filepath.Join(mon, "reldir"): rel(mon, outside)}, out},
		{"link up past the root", filepath.Join(mon, "up", filepath.Base(outside), "secret.wav"),
			map[string]string{filepath.Join(mon, "up"): rel(mon, filepath.Dir(e.recordings))}, out},
		{"chain of links, the last out", filepath.Join(mon, "chain1.wav"),
			map[string]string{filepath.Join(mon, "chain1.wav"): "chain2.wav", filepath.Join(mon, "chain2.wav"): secret}, out},
		{"magic link out", filepath.Join(mon, "magic.wav"), map[string]string{filepath.Join(mon, "magic.wav"): "/proc/self/root" + secret}, out},
		{"literal .. out", e.recordings + "/../" + filepath.Base(outside) + "/secret.wav", nil, out},
		{"absolute link in", filepath.Join(mon, "abs-in.wav"), map[string]string{filepath.Join(mon, "abs-in.wav"): target}, saved},
		{"relative link in", filepath.Join(mon, "rel-in.wav"), map[string]string{filepath.Join(mon, "rel-in.wav"): "target.wav"}, saved},
		{"relative link up and down, in", filepath.Join(mon, "updown.wav"), map[string]string{filepath.Join(mon, "updown.wav"): "../monitor/target.wav"}, saved},
		{"directory link in", filepath.Join(tdir, "alias", "target.wav"), map[string]string{filepath.Join(tdir, "alias"): "monitor"}, saved},
		{"dangling link", filepath.Join(mon, "dangling.wav"), map[string]string{filepath.Join(mon, "dangling.wav"): "nowhere.wav"}, missing},
		// ENOTDIR: no file can be there, as for any other missing file.
		{"path under a file", filepath.Join(target, "y.wav"), nil, missing},
	}
	for _, c := range cases {
		for link, to := range c.links {
			if err := os.Symlink(to, link); err != nil {
				t.Fatal(err)
			}
		}
		_, err := e.conn.Exec(ctx, `INSERT INTO call_logd_recording (uuid, start_time, end_time, path, call_log_id)
			SELECT gen_random_uuid(), now(), now(), $1, min(id) FROM call_logd_call_log WHERE tenant_uuid = $2`, c.path, tenant)
		if err != nil {
			t.Fatalf("%s: insert its path: %v", c.name, err)
		}
	}
	targetSum := sha256.Sum256(targetContent)
	secretKey := archive.BlobKey(sha256.Sum256(secretContent))

	for _, kernel := range []struct {
		name   string
		refuse error // what openat2 itself returns; nil: the kernel's
		shield bool  // a shield vouching for every file, by name and by descriptor
	}{
		{"openat2", nil, false},
		{"no openat2 (ENOSYS)", unix.ENOSYS, false},
		{"openat2 refused by seccomp (EPERM)", unix.EPERM, false},
		{"openat2, a shield vouching by name", nil, true},
		{"no openat2 (ENOSYS), a shield vouching by name", unix.ENOSYS, true},
	} {
		t.Run(kernel.name, func(t *testing.T) {
			var calls, opened atomic.Int64
			defer snapshot.SetOpenat2(func(dirfd int, path string, how *unix.OpenHow) (int, error) {
				calls.Add(1)
				if kernel.refuse != nil {
					return -1, kernel.refuse
				}
				fd, err := unix.Openat2(dirfd, path, how)
				if err == nil {
					opened.Add(1)
				}
				return fd, err
			})()
			s := fileStore(t)
			o := e.options(tenant)
			// The shield vouches for the target's own digest: a file saved on its word
			// reads as saved, and one outside the root as vouched for (not outside).
			sh := &vouchingShield{sum: targetSum}
			if kernel.shield {
				o.Shield = sh
			}
			m := e.run(t, s, o)[0]
			for _, c := range cases {
				i := slices.IndexFunc(m.Files, func(f archive.File) bool { return f.Path == c.path })
				if i < 0 {
					t.Errorf("%s: %s not in the manifest", c.name, c.path)
					continue
				}
				f := m.Files[i]
				switch c.want {
				case out:
					if !f.OutsideRoot || f.SHA256 != "" || f.Missing {
						t.Errorf("%s: got %+v, want outside_root and not read", c.name, f)
					}
				case saved:
					if f.OutsideRoot || f.Missing || f.SHA256 != hex.EncodeToString(targetSum[:]) || f.Size != int64(len(targetContent)) {
						t.Errorf("%s: got %+v, want the target's content saved", c.name, f)
					}
				case missing:
					if !f.Missing || f.OutsideRoot || f.SHA256 != "" {
						t.Errorf("%s: got %+v, want missing", c.name, f)
					}
				}
			}
			if _, err := s.Stat(ctx, secretKey); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the file outside the root is in storage (%s): %v", secretKey, err)
			}
			files := int64(len(m.Files))
			var inRoot int64
			for _, f := range m.Files {
				if !f.Missing && !f.OutsideRoot {
					inRoot++
				}
			}
			if kernel.shield {
				// Asked by name only for plain files (the target, the fixture's): every
				// other path has a link on its way (or is missing), and is opened as
				// without a shield.
				got := sh.names()
				if kernel.refuse != nil && len(got) != 0 {
					t.Errorf("without openat2, the shield was asked by name about %q", got)
				}
				if kernel.refuse == nil && !slices.Contains(got, "target.wav") {
					t.Errorf("the shield was not asked by name about the plain target.wav (asked: %q)", got)
				}
				for _, name := range got {
					fi, err := os.Lstat(filepath.Join(mon, name))
					if !errors.Is(err, fs.ErrNotExist) && (err != nil || !fi.Mode().IsRegular()) {
						t.Errorf("the shield was asked by name about %s, not a regular file (%v, %v)", name, fi.Mode(), err)
					}
				}
				return
			}
			if kernel.refuse == nil {
				// Every file saved was opened by openat2 but the one named through an
				// absolute link (EXDEV: left to EvalSymlinks).
				if n := opened.Load(); n != inRoot-1 {
					t.Errorf("openat2 opened %d files, want %d: all %d saved but the absolute link's", n, inRoot-1, inRoot)
				}
			} else if n := calls.Load(); n == 0 || n >= files/2 {
				t.Errorf("openat2 asked %d times for %d files, want a few (once per worker at most)", n, files)
			}
		})
	}
}

// countingStore counts the blob HEADs (Stat) and uploads (Put) a snapshot makes.
type countingStore struct {
	storage.Store
	stats, puts atomic.Int64
}

func (c *countingStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	if strings.HasPrefix(key, archive.BlobsPrefix) {
		c.stats.Add(1)
	}
	return c.Store.Stat(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, r io.Reader) error {
	if strings.HasPrefix(key, archive.BlobsPrefix) {
		c.puts.Add(1)
	}
	return c.Store.Put(ctx, key, r)
}

// vouchingShield says of every open file that the shield stored it, under a digest
// that is not its content's: a manifest naming that digest shows the file was not
// read to be hashed.
type vouchingShield struct {
	sum    [32]byte
	stored atomic.Int64

	mu      sync.Mutex
	byName  []string // the names StoredAt was asked about
	storedN atomic.Int64
}

func (v *vouchingShield) Stored(int, fs.FileInfo) ([32]byte, int64, bool) {
	v.stored.Add(1)
	return v.sum, 7, true
}

func (v *vouchingShield) StoredAt(_ int, name string, _ fs.FileInfo) ([32]byte, int64, bool) {
	v.storedN.Add(1)
	v.mu.Lock()
	v.byName = append(v.byName, name)
	v.mu.Unlock()
	return v.sum, 7, true
}

func (v *vouchingShield) names() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Sorted(slices.Values(v.byName))
}

func (v *vouchingShield) Lost(context.Context, string) (snapshot.ShieldCopy, bool, error) {
	return snapshot.ShieldCopy{}, false, nil
}

// A file whose blob the shield vouches for costs the snapshot its open and its
// stat: no read to hash it, no HEAD, no upload; its owner and mode are recorded as
// for any other file.
func TestRun_ShieldVouchedFilesNotRead(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	s := &countingStore{Store: fileStore(t)}
	sh := &vouchingShield{sum: sha256.Sum256([]byte("vouched, not this content"))}
	o := e.options(tenant)
	o.Shield = sh
	m := e.run(t, s, o)[0]
	var saved int64
	for _, f := range m.Files {
		if f.Missing || f.OutsideRoot {
			continue
		}
		saved++
		if f.SHA256 != hex.EncodeToString(sh.sum[:]) || f.StoredBytes != 7 {
			t.Errorf("%s: digest %s, stored %d: want the shield's (the file was read and hashed)", f.Path, f.SHA256, f.StoredBytes)
		}
		fi, err := os.Stat(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if f.Size != fi.Size() || f.Mode != uint32(fi.Mode().Perm()) || f.Owner == nil || f.Owner.UID != st.Uid || f.Owner.GID != st.Gid {
			t.Errorf("%s: size %d mode %o owner %+v; want %d, %o, %d:%d", f.Path, f.Size, f.Mode, f.Owner, fi.Size(), fi.Mode().Perm(), st.Uid, st.Gid)
		}
	}
	if asked := sh.stored.Load() + sh.storedN.Load(); saved == 0 || asked != saved || sh.stored.Load() != 0 {
		t.Fatalf("%d files saved, the shield asked about %d by descriptor and %d by name: the test needs files, each asked about once, by name",
			saved, sh.stored.Load(), sh.storedN.Load())
	}
	if n, p := s.stats.Load(), s.puts.Load(); n != 0 || p != 0 {
		t.Errorf("blob HEADs %d, uploads %d for files the shield stored: want none", n, p)
	}
}

// noByName is a shield that says no by name to files it vouches for by descriptor:
// a shield whose values were written before they named the inode.
type noByName struct{ vouchingShield }

func (v *noByName) StoredAt(_ int, name string, _ fs.FileInfo) ([32]byte, int64, bool) {
	v.storedN.Add(1)
	return [32]byte{}, 0, false
}

// Such a shield is asked by name a few times, not once per file: every file is
// still saved on its word, by descriptor.
func TestRun_ShieldNoByNameStopsAsking(t *testing.T) {
	e := newEnv(t)
	tenant := e.res.Tenants[0]
	defer snapshot.SetByNameTrials(4)()
	sh := &noByName{vouchingShield{sum: sha256.Sum256([]byte("vouched"))}}
	o := e.options(tenant)
	o.Shield = sh
	m := e.run(t, fileStore(t), o)[0]
	var saved int64
	for _, f := range m.Files {
		if f.Missing || f.OutsideRoot {
			continue
		}
		saved++
		if f.SHA256 != hex.EncodeToString(sh.sum[:]) {
			t.Errorf("%s: digest %s, want the shield's", f.Path, f.SHA256)
		}
	}
	// 4 trials, and whatever the other file workers asked meanwhile.
	if byName := sh.storedN.Load(); saved < 30 || byName > 4+int64(o.Jobs*3) || sh.stored.Load() != saved {
		t.Errorf("%d files saved; asked %d by name, %d by descriptor: want a few by name, every one by descriptor", saved, byName, sh.stored.Load())
	}
}
