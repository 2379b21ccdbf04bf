package place_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// LgetxattrAt's names as the system call sees them: a name of 255 bytes (the
// longest ext4 allows, filling the copy made on the stack but for its NUL), a path
// of more than 256 (copied to the heap instead) and a name with a NUL inside,
// which is refused, never read as the name before the NUL.
func TestLgetxattrAt_Names(t *testing.T) {
	for _, kernel := range []string{"getxattrat", "no getxattrat"} {
		t.Run(kernel, func(t *testing.T) {
			if kernel == "no getxattrat" {
				defer place.WithoutGetxattrat()()
			}
			dir := t.TempDir()
			const attr = "user.purgeguard.test"
			long := strings.Repeat("a", 255)
			deep := strings.Repeat(strings.Repeat("d", 60)+"/", 4) + "f.wav"
			if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(deep)), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{"f.wav", long, deep} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o640); err != nil {
					t.Fatal(err)
				}
				if err := unix.Setxattr(filepath.Join(dir, name), attr, []byte("value of "+name[:5]), 0); err != nil {
					t.Fatalf("no user xattrs here: %v", err)
				}
			}
			dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dirfd)
			var buf [64]byte
			for _, name := range []string{long, deep} {
				n, err := place.LgetxattrAt(dirfd, name, attr, buf[:])
				if want := "value of " + name[:5]; err != nil || string(buf[:n]) != want {
					t.Errorf("%d-byte name: %q, %v; want %q", len(name), buf[:n], err, want)
				}
			}
			if n, err := place.LgetxattrAt(dirfd, "f.wav\x00.x", attr, buf[:]); err == nil {
				t.Errorf("a name with a NUL: read %q, the value of the name before it", buf[:n])
			}
		})
	}
}
