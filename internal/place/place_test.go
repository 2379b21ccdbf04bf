package place_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/place"
)

// TestRoot_Check runs each case with the kernel's openat2 and without it (the
// user-space resolution): both must give the same answer, and OpenDir of the
// path's directory the same one (or, for a directory not made yet, not there).
func TestRoot_Check(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An absolute link that stays inside: openat2 refuses it (RESOLVE_BENEATH), the
	// user-space resolution accepts it, as Check always did.
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "abs-inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a/b", filepath.Join(root, "rel-inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../"+filepath.Base(outside), filepath.Join(root, "a", "rel-out")); err != nil {
		t.Fatal(err)
	}
	r := place.NewRoot(root)
	for _, kernel := range []string{"openat2", "no openat2"} {
		for _, tc := range []struct {
			name, path string
			refused    bool
			dirMissing bool
		}{
			{"under", filepath.Join(root, "a", "b", "f"), false, false},
			{"in the root", filepath.Join(root, "f"), false, false},
			{"not yet made", filepath.Join(root, "new", "dir", "f"), false, true},
			{"not yet made under a", filepath.Join(root, "a", "new", "dir", "f"), false, true},
			{"the root itself", root, true, false},
			{"relative", "a/b/f", true, false},
			{"dot dot", root + "/a/../../f", true, false},
			{"elsewhere", filepath.Join(outside, "f"), true, false},
			{"through a link", filepath.Join(root, "link", "f"), true, false},
			{"below a link", filepath.Join(root, "link", "deeper", "f"), true, false},
			{"through an absolute link inside", filepath.Join(root, "abs-inside", "b", "f"), false, false},
			{"through a relative link inside", filepath.Join(root, "rel-inside", "f"), false, false},
			{"through a relative link out", filepath.Join(root, "a", "rel-out", "f"), true, false},
			{"below a relative link out", filepath.Join(root, "a", "rel-out", "new", "f"), true, false},
		} {
			t.Run(kernel+"/"+tc.name, func(t *testing.T) {
				if kernel == "no openat2" {
					defer place.WithoutOpenat2()()
				}
				err := r.Check(tc.path)
				var oe *place.OutsideError
				if got := errors.As(err, &oe); got != tc.refused {
					t.Fatalf("Check(%s) = %v, want refused %v", tc.path, err, tc.refused)
				}
				dir := filepath.Dir(tc.path)
				if !filepath.IsAbs(tc.path) {
					dir = tc.path // relative: refused as it is
				}
				d, err := r.OpenDir(dir)
				if got := errors.As(err, &oe); got != tc.refused {
					t.Fatalf("OpenDir(%s) = %v, want refused %v", dir, err, tc.refused)
				}
				if got := errors.Is(err, fs.ErrNotExist); got != tc.dirMissing {
					t.Fatalf("OpenDir(%s) = %v, want not there: %v", dir, err, tc.dirMissing)
				}
				if err == nil {
					d.Close()
				}
			})
		}
	}
}

func TestStage_CommitAbort(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	r := place.NewRoot(root)
	target := filepath.Join(root, "f.wav")
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

	s, err := r.Stage(ctx, target, "test", strings.NewReader("hello"), place.Attr{Mode: 0o604, ModTime: mtime, Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("target exists before commit: %v", err)
	}
	if !strings.HasPrefix(filepath.Base(s.Temp), place.TempPrefix+"test-") || filepath.Dir(s.Temp) != root {
		t.Fatalf("temp %s: want %stest-… beside the target", s.Temp, place.TempPrefix)
	}
	if err := s.Commit(false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "hello" {
		t.Fatalf("content %q, want hello", b)
	}
	if fi.Mode().Perm() != 0o604 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("mode %v mtime %v, want 0604 %v", fi.Mode().Perm(), fi.ModTime(), mtime)
	}
	if _, err := os.Stat(s.Temp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temp left after commit: %v", err)
	}

	// Without replace, an existing target stays and the staged file can be aborted.
	s2, err := r.Stage(ctx, target, "test", strings.NewReader("other"), place.Attr{Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Commit(false); !errors.Is(err, place.ErrExists) {
		t.Fatalf("Commit(false) over an existing file = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "hello" {
		t.Fatalf("content %q after a refused commit, want hello", b)
	}
	if err := s2.Abort(); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, root, "f.wav")

	// With replace it is replaced.
	s3, err := r.Stage(ctx, target, "test", strings.NewReader("other"), place.Attr{Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Commit(true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "other" {
		t.Fatalf("content %q, want other", b)
	}
	assertOnly(t, root, "f.wav")
}

func TestStage_NothingLeftOnError(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	r := place.NewRoot(root)
	bad := errors.New("checksum does not match")
	_, err := r.Stage(ctx, filepath.Join(root, "f"), "test", strings.NewReader("x"), place.Attr{Owner: place.Keep}, func() error { return bad })
	if !errors.Is(err, bad) {
		t.Fatalf("Stage = %v, want the check's error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Stage(cctx, filepath.Join(root, "f"), "test", strings.NewReader("x"), place.Attr{Owner: place.Keep}, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stage with a cancelled context = %v", err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	_, err = r.Stage(ctx, filepath.Join(root, "link", "f"), "test", strings.NewReader("x"), place.Attr{Owner: place.Keep}, nil)
	var oe *place.OutsideError
	if !errors.As(err, &oe) {
		t.Fatalf("Stage through a link = %v, want OutsideError", err)
	}
	assertOnly(t, root, "link")
	assertOnly(t, outside)
}

func TestSweep(t *testing.T) {
	root := t.TempDir()
	for _, n := range []string{".purgeguard-restore-1-abc", ".purgeguard-restore-2-def", ".purgeguard-shield-x", "keep.wav"} {
		if err := os.WriteFile(filepath.Join(root, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := place.Sweep(root, "restore-")
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Fatalf("removed %v, want the two restore temps", removed)
	}
	assertOnly(t, root, ".purgeguard-shield-x", "keep.wav")
	if _, err := place.Sweep(filepath.Join(root, "missing"), "restore-"); err != nil {
		t.Fatalf("Sweep of a missing dir = %v", err)
	}
}

func TestMkdirAll(t *testing.T) {
	if !place.CanChown() {
		t.Skip("needs root to give directories away (make test runs as root)")
	}
	root := t.TempDir()
	if err := os.Chown(root, 33, 33); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o751); err != nil {
		t.Fatal(err)
	}
	r := place.NewRoot(root)
	tenant := filepath.Join(root, "tenant")
	dir := filepath.Join(tenant, "monitor")
	created, err := r.MkdirAll(dir, func(d string) (place.DirAttr, bool) {
		if d == dir {
			return place.DirAttr{Mode: 0o750 | fs.ModeSetgid, Owner: place.Owner{UID: 1234, GID: 4321}}, true
		}
		return place.DirAttr{}, false
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 || created[0] != tenant || created[1] != dir {
		t.Fatalf("created %v, want [%s %s]", created, tenant, dir)
	}
	for _, tc := range []struct {
		dir      string
		mode     fs.FileMode
		uid, gid uint32
	}{
		{tenant, 0o751, 33, 33},                  // not recorded: the parent's
		{dir, 0o750 | fs.ModeSetgid, 1234, 4321}, // recorded
	} {
		fi, err := os.Stat(tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if got := fi.Mode() & (fs.ModePerm | fs.ModeSetgid); got != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid {
			t.Errorf("%s: mode %v owner %d:%d, want %v %d:%d", tc.dir, got, st.Uid, st.Gid, tc.mode, tc.uid, tc.gid)
		}
	}
	place.RemoveCreated(created)
	assertOnly(t, root)
}

func TestStage_Owner(t *testing.T) {
	if !place.CanChown() {
		t.Skip("needs root to give files away (make test runs as root)")
	}
	root := t.TempDir()
	r := place.NewRoot(root)
	target := filepath.Join(root, "f")
	if err := r.Write(context.Background(), target, strings.NewReader("x"), place.Attr{Mode: 0o640, Owner: place.Owner{UID: 33, GID: 1234}}, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	o := place.OwnerOf(fi, &place.Names{})
	if o.UID != 33 || o.GID != 1234 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("owner %+v mode %v, want 33:1234 0640", o, fi.Mode().Perm())
	}
	if o.User != "www-data" && o.User != "" {
		t.Errorf("user name %q for uid 33", o.User)
	}
}

func TestParseOwner(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid int
		err      bool
	}{
		{"0:0", 0, 0, false},
		{"root:root", 0, 0, false},
		{"1234:5678", 1234, 5678, false},
		{"root", 0, 0, true},
		{":0", 0, 0, true},
		{"no-such-user-here:0", 0, 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			o, err := place.ParseOwner(tc.in)
			if (err != nil) != tc.err {
				t.Fatalf("ParseOwner(%q) = %v, want error %v", tc.in, err, tc.err)
			}
			if err == nil && (o.UID != tc.uid || o.GID != tc.gid) {
				t.Fatalf("ParseOwner(%q) = %d:%d, want %d:%d", tc.in, o.UID, o.GID, tc.uid, tc.gid)
			}
		})
	}
}

// assertOnly checks that dir holds exactly names.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}
