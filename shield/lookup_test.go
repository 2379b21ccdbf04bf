package shield

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/storage"
)

// Lost lists a fan-out directory of links once while the directory does not
// change (a snapshot asks for each of a tenant's missing files), and lists it again
// once it does: a link made after the listing is found.
func TestLookup_FanOutListedOncePerChange(t *testing.T) {
	ctx := testenv.Context(t)
	r := Root{Dir: t.TempDir(), Shield: t.TempDir()}
	store, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l := NewLookup(store, []Root{r}, time.Hour)
	path := filepath.Join(r.Dir, "tenant", "monitor", "lost.wav")
	h := pathHash(path)
	// Another path whose links share the fan-out directory, linked long ago.
	var other string
	for i := 0; other == ""; i++ {
		if p := filepath.Join(r.Dir, "tenant", "monitor", strconv.Itoa(i)+".wav"); pathHash(p)&0xff == h&0xff && p != path {
			other = p
		}
	}
	dir := fanDir(r, h)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(linkPath(r, other, 1), []byte("other"), 0o640); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-time.Hour)
	setMtime := func(m time.Time) {
		t.Helper()
		if err := os.Chtimes(dir, m, m); err != nil {
			t.Fatal(err)
		}
	}
	setMtime(long)
	if _, ok, err := l.Lost(ctx, path); ok || err != nil {
		t.Fatalf("before any link: ok %v, err %v; want nothing", ok, err)
	}
	if c, ok, err := l.Lost(ctx, other); !ok || err != nil || c.Link != linkPath(r, other, 1) {
		t.Fatalf("the other path: %+v, ok %v, err %v; want its link", c, ok, err)
	}
	// A link appears, the directory's mtime put back: the listing kept is used, so
	// the link is not seen (what shows that the directory was not listed again).
	link := linkPath(r, path, 2)
	if err := os.WriteFile(link, []byte("lost"), 0o640); err != nil {
		t.Fatal(err)
	}
	setMtime(long)
	if _, ok, err := l.Lost(ctx, path); ok || err != nil {
		t.Fatalf("directory unchanged: ok %v, err %v; want the listing kept, without the new link", ok, err)
	}
	// The directory's mtime moved, as a link's making moves it: listed again.
	setMtime(time.Now())
	if c, ok, err := l.Lost(ctx, path); !ok || err != nil || c.Link != link || c.Size != 4 {
		t.Fatalf("after the directory changed: %+v, ok %v, err %v; want the link %s", c, ok, err, link)
	}
}
