package snapshot

import (
	"os"
	"testing"
)

// The spills have no name in their directory while they are used: a snapshot
// killed outright leaves none of them behind. What was written still reads back.
func TestSpills_LeaveNoName(t *testing.T) {
	dir := t.TempDir()
	sp, err := newSpill(dir, "paths")
	if err != nil {
		t.Fatal(err)
	}
	p := &pathSpill{spill: sp}
	defer p.close()
	list, err := newListSpill(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer list.close()
	paths := []string{"/r/a.wav", "/r/b\n.wav", ""}
	for i, s := range paths {
		if err := p.add(i%2, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("%s holds %v (%v), want nothing", dir, ents, err)
	}
	var got []string
	if err := p.each(func(col int, path string) error {
		if col != len(got)%2 {
			t.Errorf("path %d: column %d, want %d", len(got), col, len(got)%2)
		}
		got = append(got, path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(paths) || got[0] != paths[0] || got[1] != paths[1] || got[2] != paths[2] {
		t.Errorf("read back %q, want %q", got, paths)
	}
}
