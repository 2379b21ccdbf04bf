package place_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/place"
)

func TestDir_StageRename(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	r := place.NewRoot(root)
	sub := filepath.Join(root, "tenant", "monitor")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := r.OpenDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)
	s, err := d.StageUnsynced(ctx, "f.wav", "test", strings.NewReader("hello"), place.Attr{Mode: 0o604, ModTime: mtime, Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(sub, "f.wav")
	if s.Target != target || filepath.Dir(s.Temp) != sub || !strings.HasPrefix(filepath.Base(s.Temp), place.TempPrefix+"test-") {
		t.Fatalf("staged %+v: want %stest-… beside %s", s, place.TempPrefix, target)
	}
	if _, err := d.Lstat("f.wav"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("target before the rename: %v, want not there", err)
	}
	fi, err := d.Lstat(filepath.Base(s.Temp))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o604 || !fi.ModTime().Equal(mtime) || fi.Size() != 5 {
		t.Fatalf("staged mode %v mtime %v size %d, want 0604 %v 5", fi.Mode(), fi.ModTime(), fi.Size(), mtime)
	}
	if err := d.Rename(filepath.Base(s.Temp), "f.wav", false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "hello" {
		t.Fatalf("content %q, want hello", b)
	}
	// Without replace, an existing target stays.
	s2, err := d.StageUnsynced(ctx, "f.wav", "test", strings.NewReader("other"), place.Attr{Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Rename(filepath.Base(s2.Temp), "f.wav", false); !errors.Is(err, place.ErrExists) {
		t.Fatalf("Rename without replace over a file = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "hello" {
		t.Fatalf("content %q after a refused rename, want hello", b)
	}
	if err := d.Rename(filepath.Base(s2.Temp), "f.wav", true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "other" {
		t.Fatalf("content %q after a rename with replace, want other", b)
	}
	// A check that fails leaves nothing behind.
	_, err = d.StageUnsynced(ctx, "g.wav", "test", strings.NewReader("x"), place.Attr{Owner: place.Keep}, func() error { return errors.New("bad sum") })
	if err == nil {
		t.Fatal("a failed check staged the file")
	}
	ents, _ := os.ReadDir(sub)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries after a failed check, want only f.wav", len(ents))
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		var oe *place.OutsideError
		if _, err := d.StageUnsynced(ctx, bad, "test", strings.NewReader("x"), place.Attr{Owner: place.Keep}, nil); !errors.As(err, &oe) {
			t.Errorf("StageUnsynced(%q) = %v, want an OutsideError", bad, err)
		}
	}
}

// TestDir_PinsTheDirectoryChecked: once open, a directory swapped for a link out
// of the root is not followed: the file lands in the directory that was checked,
// and opening the path again refuses it.
func TestDir_PinsTheDirectoryChecked(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	outside := t.TempDir()
	sub := filepath.Join(root, "monitor")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	r := place.NewRoot(root)
	d, err := r.OpenDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	moved := filepath.Join(root, "moved")
	if err := os.Rename(sub, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, sub); err != nil {
		t.Fatal(err)
	}
	s, err := d.StageUnsynced(ctx, "f.wav", "test", strings.NewReader("hello"), place.Attr{Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("the staged file went through the link: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(moved, filepath.Base(s.Temp))); err != nil {
		t.Fatalf("the staged file is not in the directory checked: %v", err)
	}
	var oe *place.OutsideError
	if _, err := r.OpenDir(sub); !errors.As(err, &oe) {
		t.Fatalf("OpenDir of the path now a link out = %v, want an OutsideError", err)
	}
}

// A file staged in a directory of its own is made there with its attributes, its
// Staged names both paths, and RenameFrom moves it onto its target, refusing,
// without replace, to replace one.
func TestDir_StageInRenameFrom(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	r := place.NewRoot(root)
	sub, stageDir := filepath.Join(root, "tenant", "monitor"), filepath.Join(root, ".purgeguard-stage")
	for _, p := range []string{sub, stageDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d, err := r.OpenDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	stage, err := r.OpenDir(stageDir)
	if err != nil {
		t.Fatal(err)
	}
	defer stage.Close()
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC)
	s, err := d.StageUnsyncedIn(ctx, stage, "f.wav", "test", strings.NewReader("hello"), place.Attr{Mode: 0o604, ModTime: mtime, Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(sub, "f.wav")
	if s.Target != target || filepath.Dir(s.Temp) != stageDir || !strings.HasPrefix(filepath.Base(s.Temp), place.TempPrefix+"test-") {
		t.Fatalf("staged %+v: want %stest-… in %s for %s", s, place.TempPrefix, stageDir, target)
	}
	if ents, _ := os.ReadDir(sub); len(ents) != 0 {
		t.Fatalf("the target's directory holds %d entries before the rename, want none", len(ents))
	}
	fi, err := stage.Lstat(filepath.Base(s.Temp))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o604 || !fi.ModTime().Equal(mtime) || fi.Size() != 5 {
		t.Fatalf("staged mode %v mtime %v size %d, want 0604 %v 5", fi.Mode(), fi.ModTime(), fi.Size(), mtime)
	}
	if err := d.RenameFrom(stage, filepath.Base(s.Temp), "f.wav", false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "hello" {
		t.Fatalf("content %q, want hello", b)
	}
	if _, err := os.Lstat(s.Temp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temp after the rename: %v, want gone", err)
	}
	s2, err := d.StageUnsyncedIn(ctx, stage, "f.wav", "test", strings.NewReader("other"), place.Attr{Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RenameFrom(stage, filepath.Base(s2.Temp), "f.wav", false); !errors.Is(err, place.ErrExists) {
		t.Fatalf("RenameFrom without replace over a file = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "hello" {
		t.Fatalf("content after a refused RenameFrom %q, want hello", b)
	}
}

// Two directories of one mount are on the same mount; a directory of another
// mount (/proc, mounted in every Linux system this runs on) is not.
func TestSameMount(t *testing.T) {
	root := t.TempDir()
	for _, p := range []string{"a", "b/c"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a, c := openDir(t, root, filepath.Join(root, "a")), openDir(t, root, filepath.Join(root, "b", "c"))
	proc := openDir(t, "/proc", "/proc/sys")
	if same, err := place.SameMount(a, c); err != nil || !same {
		t.Errorf("SameMount(%s, %s) = %v, %v; want true", a.Path(), c.Path(), same, err)
	}
	if same, err := place.SameMount(a, proc); err != nil || same {
		t.Errorf("SameMount(%s, %s) = %v, %v; want false", a.Path(), proc.Path(), same, err)
	}
}

// openDir opens dir under root, closed when the test ends.
func openDir(t *testing.T, root, dir string) *place.Dir {
	t.Helper()
	d, err := place.NewRoot(root).OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// CreateUnsynced makes the file under its own name, with its attributes, and
// refuses a name that exists, leaving it as it was.
func TestDir_CreateUnsynced(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := openDir(t, root, root)
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := d.CreateUnsynced(ctx, "f.wav", strings.NewReader("hello"), place.Attr{Mode: 0o640, ModTime: mtime, Owner: place.Keep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "f.wav")
	if s.Temp != p || s.Target != p {
		t.Fatalf("created %+v, want both paths %s", s, p)
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode() != 0o640 || !fi.ModTime().Equal(mtime) || fi.Size() != 5 {
		t.Fatalf("created %v, %v; want 0640 %v 5 bytes", fi, err, mtime)
	}
	if _, err := d.CreateUnsynced(ctx, "f.wav", strings.NewReader("other"), place.Attr{Owner: place.Keep}, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateUnsynced over a file = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "hello" {
		t.Fatalf("content after a refused create %q, want hello", b)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 {
		t.Fatalf("%d entries after a refused create, want 1", len(ents))
	}
}

// A file created where no one else reaches is given its mode at creation, not by
// a chmod after: whatever the umask strips (0666 and 0777 lose their group and
// world write bits to the usual 022) must still end as recorded.
func TestDir_CreateUnsyncedModes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, stage := openDir(t, root, root), openDir(t, root, root)
	for _, mode := range []fs.FileMode{0o640, 0o666, 0o777, 0o400, 0o604, 0} {
		want := mode
		if mode == 0 {
			want = place.DefaultFileMode
		}
		name := fmt.Sprintf("f%o.wav", mode)
		if _, err := d.CreateUnsynced(ctx, name, strings.NewReader("x"), place.Attr{Mode: mode, Owner: place.Keep}, nil); err != nil {
			t.Fatal(err)
		}
		s, err := d.StageUnsyncedIn(ctx, stage, "in-"+name, "t", strings.NewReader("x"), place.Attr{Mode: mode, Owner: place.Keep}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Join(root, name), s.Temp} {
			if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("mode %o: %s is %v, %v; want %o", mode, p, fi.Mode(), err, want)
			}
		}
	}
}
