package restore

import (
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/purgeguard/purgeguard/internal/place"
)

// The spill gives back every staged file as added, in order, whatever bytes its
// paths hold (a path comes from a database row).
func TestStagedSpill_RoundTrip(t *testing.T) {
	s, err := newStagedSpill(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var want []stagedFile
	odd := []string{"", "plain.wav", "tab\there", "new\nline", "quote\"and\\", "é日本", string([]byte{0xff, 0xfe, 0})}
	for i := range 3000 {
		o := odd[i%len(odd)]
		f := stagedFile{
			Staged:  place.Staged{Temp: fmt.Sprintf("/r/d%d/.purgeguard-restore-x-%d%s", i%7, i, o), Target: fmt.Sprintf("/r/d%d/%s%d", i%7, o, i)},
			Path:    fmt.Sprintf("/orig/%s/%d", o, i),
			Replace: i%3 == 0,
			Root:    "/r" + o,
		}
		want = append(want, f)
		if err := s.add(f); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // read twice: abort after a failed commit reads it again
		var got []stagedFile
		if err := s.each(func(f stagedFile) error { got = append(got, f); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("read back %d files, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("file %d read back as %+v, want %+v", i, got[i], want[i])
			}
		}
	}
}

// The spills have no name in their directory while they are used: a restore killed
// outright leaves none of them behind (the kill -9 test left one per make test).
func TestSpills_LeaveNoName(t *testing.T) {
	dir := t.TempDir()
	s, err := newStagedSpill(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	p, err := newPathSpill(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if err := p.add("public.rec", "path", "/r/a.wav"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 0 {
		t.Fatalf("%s holds %v (%v), want nothing", dir, ents, err)
	}
	r, err := p.reader()
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "0\t/r/a.wav\n" {
		t.Fatalf("read back %q, %v", b, err)
	}
}
