package shield

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/storage"
)

// The pages dropped are the index mapping's, never past its end: there the process
// has other mappings (here an anonymous one right after it, as the Go heap's can be).
func TestMappedLen(t *testing.T) {
	const maps = `55d0c0a00000-55d0c0c00000 r-xp 00000000 fd:00 1234 /usr/bin/purgeguard
7f1a20000000-7f1a24000000 r--s 00000000 fd:00 5678 /var/lib/purgeguard/shield.db
7f1a24000000-7f1a28000000 rw-p 00000000 00:00 0
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]
`
	for _, tc := range []struct {
		name string
		addr uintptr
		want uintptr
		ok   bool
	}{
		{"the index's mapping", 0x7f1a20000000, 0x4000000, true},
		{"an address inside a mapping is not its start", 0x7f1a20001000, 0, false},
		{"no mapping starts there", 0x1000, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := mappedLen(strings.NewReader(maps), tc.addr)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("mappedLen(%#x) = %#x, %v; want %#x, %v", tc.addr, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// On a real index whose file runs ahead of its mapping (bbolt grows the file in
// steps before it maps them), the pages dropped are the mapping's only, and the
// index reads fine after they are dropped.
func TestMapped_RealIndexFileLongerThanMapping(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "recordings")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	store, err := storage.NewFile(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(dir, "index.db")
	s, err := Open(Options{Roots: []Root{{Dir: root, Shield: DefaultShieldDir(root)}}, Index: index, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr, n, ok := s.mapped()
	if !ok || addr != s.db.Info().Data || n == 0 || n%uintptr(os.Getpagesize()) != 0 {
		t.Fatalf("index mapping at %#x: length %#x, found %v", addr, n, ok)
	}
	if err := os.Truncate(index, int64(n)+64<<20); err != nil {
		t.Fatal(err)
	}
	if _, m, _ := s.mapped(); m != n {
		t.Fatalf("with the file %d bytes longer than the mapping: %#x bytes to drop, want the mapping's %#x", 64<<20, m, n)
	}
	s.dropPages()
	if err := s.loadStats(); err != nil {
		t.Fatal(err)
	}
}
