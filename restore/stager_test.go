package restore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/purgeguard/purgeguard/internal/place"
)

// A staging worker keeps its directory open from file to file, but a directory
// named by files of two nested roots must lie under each: held open under the
// outer root, it is checked again for the inner one.
func TestStager_DirCheckedPerRoot(t *testing.T) {
	outer := t.TempDir()
	inner := filepath.Join(outer, "exports")
	if err := os.MkdirAll(filepath.Join(outer, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	// Inside the outer root, outside the inner one.
	dir := filepath.Join(inner, "t")
	if err := os.Symlink("../other", dir); err != nil {
		t.Fatal(err)
	}
	w, err := newStager()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	if d, err := w.openDir(place.NewRoot(outer), dir); err != nil || d == nil {
		t.Fatalf("openDir under the outer root = %v, %v; want it open", d, err)
	}
	var oe *place.OutsideError
	if d, err := w.openDir(place.NewRoot(inner), dir); !errors.As(err, &oe) {
		t.Fatalf("openDir of the same directory under the inner root = %v, %v; want an OutsideError", d, err)
	}
}
