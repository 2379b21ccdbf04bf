package place_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/purgeguard/purgeguard/internal/place"
)

// LgetxattrAt reads a file's xattr by its name in an open directory, with
// getxattrat and without it (through /proc/self/fd): the file's own value; a
// symbolic link's target is never read; a missing name is ENOENT, a name under a
// file ENOTDIR; the directory renamed after it was opened is still the one read.
func TestLgetxattrAt(t *testing.T) {
	for _, kernel := range []string{"getxattrat", "no getxattrat"} {
		t.Run(kernel, func(t *testing.T) {
			if kernel == "no getxattrat" {
				defer place.WithoutGetxattrat()()
			}
			root := t.TempDir()
			dir := filepath.Join(root, "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, "f.wav")
			if err := os.WriteFile(f, []byte("x"), 0o640); err != nil {
				t.Fatal(err)
			}
			const attr = "user.purgeguard.test"
			if err := unix.Setxattr(f, attr, []byte("the value"), 0); err != nil {
				t.Fatalf("no user xattrs here: %v", err)
			}
			if err := os.Symlink("f.wav", filepath.Join(dir, "link.wav")); err != nil {
				t.Fatal(err)
			}
			dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dirfd)
			// Renamed after the open: the handle still names it.
			if err := os.Rename(dir, filepath.Join(root, "moved")); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			var buf [64]byte
			n, err := place.LgetxattrAt(dirfd, "f.wav", attr, buf[:])
			if err != nil || string(buf[:n]) != "the value" {
				t.Errorf("f.wav: %q, %v; want its value", buf[:n], err)
			}
			if n, err := place.LgetxattrAt(dirfd, "link.wav", attr, buf[:]); err == nil {
				t.Errorf("link.wav: read %q: the link was followed", buf[:n])
			}
			for name, want := range map[string]error{"missing.wav": unix.ENOENT, "f.wav/x": unix.ENOTDIR} {
				if _, err := place.LgetxattrAt(dirfd, name, attr, buf[:]); !errors.Is(err, want) {
					t.Errorf("%s: %v, want %v", name, err, want)
				}
			}
		})
	}
}
