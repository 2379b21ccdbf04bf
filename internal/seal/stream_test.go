package seal_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"filippo.io/age"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/seal"
)

// A 64 MiB stream is sealed and opened through pipes, as the snapshot and restore
// pipelines will, and what comes out is what went in; the memory it holds does not
// grow with it: the live heap, measured after a collection every 4 MiB, stays far
// below the stream's size. (age allocates a fresh 64 KiB buffer per chunk it opens:
// garbage, not held, so the total allocated is about the stream's size.)
func TestStream_RoundTripBoundedMemory(t *testing.T) {
	to, id := tenantKeys(t, tenantA)
	const size = 64 << 20
	want := sha256.New()
	if _, err := io.Copy(want, generator(1, size)); err != nil {
		t.Fatal(err)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sealedR, sealedW := io.Pipe()
	go func() {
		w, err := seal.NewWriter(sealedW, to, "obj")
		if err == nil {
			_, err = io.Copy(w, generator(1, size))
			err = errors.Join(err, w.Close())
		}
		sealedW.CloseWithError(err)
	}()
	var stored int64
	counted := &countReader{r: sealedR, n: &stored}
	r, err := seal.NewReader(counted, id, "obj")
	if err != nil {
		t.Fatal(err)
	}
	got := &heapWatcher{w: sha256.New(), every: 4 << 20}
	n, err := io.Copy(got, r)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || !bytes.Equal(got.w.Sum(nil), want.Sum(nil)) {
		t.Fatalf("round trip: got %d bytes, want %d identical bytes", n, size)
	}
	if stored <= size {
		t.Errorf("sealed size %d: want more than the %d plaintext bytes (chunk tags)", stored, size)
	}
	if got.checks < size/(4<<20) {
		t.Fatalf("heap measured %d times, want %d", got.checks, size/(4<<20))
	}
	if held := int64(got.peak) - int64(before.HeapAlloc); held > 8<<20 {
		t.Errorf("round trip of %d MiB held up to %d KiB of heap: the stream is being buffered, want well under 8 MiB", size>>20, held>>10)
	}
}

// heapWatcher hashes what is written and, every so many bytes, collects garbage
// and records the live heap: what the pipeline holds at that moment.
type heapWatcher struct {
	w interface {
		io.Writer
		Sum([]byte) []byte
	}
	every  int64
	seen   int64
	peak   uint64
	checks int
}

func (h *heapWatcher) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	if h.seen/h.every != (h.seen+int64(n))/h.every {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapAlloc)
		h.checks++
	}
	h.seen += int64(n)
	return n, err
}

type countReader struct {
	r io.Reader
	n *int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// Every kind of damage is a verification error naming the object, found before
// the reader hands out a byte past the damage.
func TestStream_Tampering(t *testing.T) {
	ctx := testenv.Context(t)
	s := testenv.FileStore(t)
	ks := keyStore(t, s)
	ids, rs, _ := operator(t)
	toA, err := ks.Create(ctx, tenantA, rs)
	if err != nil {
		t.Fatal(err)
	}
	toB, err := ks.Create(ctx, tenantB, rs)
	if err != nil {
		t.Fatal(err)
	}
	idA, err := ks.Identity(ctx, tenantA, ids)
	if err != nil {
		t.Fatal(err)
	}
	const size = 200 << 10 // several 64 KiB chunks
	seal1 := func(to *seal.TenantRecipient, key string) []byte {
		var buf bytes.Buffer
		w, err := seal.NewWriter(&buf, to, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, generator(7, size)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	good := seal1(toA, "t/a")
	flip := func(at int) []byte { b := bytes.Clone(good); b[at] ^= 0x01; return b }
	tests := []struct {
		name   string
		stored []byte
		key    string
	}{
		{"flipped byte in the header", flip(40), "t/a"},
		{"flipped byte in the first chunk", flip(len(good) / 4), "t/a"},
		{"flipped byte in the last chunk", flip(len(good) - 3), "t/a"},
		{"truncated mid-chunk", good[:len(good)/2], "t/a"},
		{"truncated at a chunk boundary", good[:len(good)-(size%(64<<10))-16], "t/a"},
		{"trailing bytes", append(bytes.Clone(good), 0), "t/a"},
		{"tenant B's object under tenant A", seal1(toB, "t/a"), "t/a"},
		{"tenant A's object moved to another key", good, "t/b"},
		{"empty", nil, "t/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			r, err := seal.NewReader(bytes.NewReader(tt.stored), idA, tt.key)
			if err == nil {
				_, err = io.Copy(io.Discard, r)
			}
			var ve *archive.VerifyError
			if !errors.As(err, &ve) || ve.Key != tt.key {
				t.Fatalf("got %v, want an *archive.VerifyError naming %s", err, tt.key)
			}
		})
	}
	t.Run("intact", func(t *testing.T) {
		r, err := seal.NewReader(bytes.NewReader(good), idA, "t/a")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != size {
			t.Fatalf("got %d bytes, %v; want %d", n, err, size)
		}
	})
}

// A failing source (the network, the disk) is not a verification failure: the
// command must not say the snapshot is damaged when the store was unreachable.
func TestStream_SourceErrorIsNotTampering(t *testing.T) {
	to, id := tenantKeys(t, tenantA)
	var buf bytes.Buffer
	w, _ := seal.NewWriter(&buf, to, "k")
	io.Copy(w, generator(3, 300<<10))
	w.Close()
	cut := errors.New("connection reset")
	for _, at := range []int{10, buf.Len() / 2} {
		src := io.MultiReader(bytes.NewReader(buf.Bytes()[:at]), iotest.ErrReader(cut))
		r, err := seal.NewReader(src, id, "k")
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		var ve *archive.VerifyError
		if !errors.Is(err, cut) || errors.As(err, &ve) || !strings.Contains(err.Error(), "k") {
			t.Errorf("source failing at byte %d: got %v, want the source's error naming the key, not a VerifyError", at, err)
		}
	}
}

func TestBlobAddress(t *testing.T) {
	ctx := testenv.Context(t)
	ks := keyStore(t, testenv.FileStore(t))
	_, rs, _ := operator(t)
	a, err := ks.Create(ctx, tenantA, rs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ks.Create(ctx, tenantB, rs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ks.Recipient(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a recording"))
	other := sha256.Sum256([]byte("another recording"))
	switch {
	case a.BlobAddress(sum) != again.BlobAddress(sum):
		t.Error("one tenant, one content: two addresses (dedupe broken)")
	case a.BlobAddress(sum) == b.BlobAddress(sum):
		t.Error("two tenants, one content: one address (names link tenants)")
	case a.BlobAddress(sum) == a.BlobAddress(other):
		t.Error("two contents, one address")
	case strings.Contains(a.BlobAddress(sum), hexOf(sum[:])):
		t.Error("the address shows the content's SHA-256")
	case len(a.BlobAddress(sum)) != 64:
		t.Errorf("address %q: want 64 hex digits", a.BlobAddress(sum))
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// Objects sealed by one writer share one session: their headers carry the same
// wrapped session key (one X25519 agreement for all of them) and each its own
// nonce and file key; every one opens, and only as its own key. An object sealed
// the plain age way, to the tenant's X25519 recipient (as the first encrypted
// snapshots were), still opens.
func TestStream_Session(t *testing.T) {
	to, id := tenantKeys(t, tenantA)
	stanza := func(b []byte) (share, rest string) {
		lines := strings.Split(string(b), "\n")
		f := strings.Fields(lines[1])
		if len(f) != 4 || f[0] != "->" || f[1] != "purgeguard-X25519-session" {
			t.Fatalf("stanza line %q: want -> purgeguard-X25519-session SHARE NONCE", lines[1])
		}
		return f[2], f[3] + lines[2]
	}
	shares, nonces := map[string]bool{}, map[string]bool{}
	var sealed [][]byte
	for i := range 20 {
		var buf bytes.Buffer
		w, err := seal.NewWriter(&buf, to, fmt.Sprintf("k%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(w, "object %d", i); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		share, rest := stanza(buf.Bytes())
		shares[share], nonces[rest] = true, true
		sealed = append(sealed, buf.Bytes())
	}
	if len(shares) != 1 || len(nonces) != len(sealed) {
		t.Errorf("%d objects: %d session shares, %d distinct nonces and keys; want one share, each its own", len(sealed), len(shares), len(nonces))
	}
	for i, b := range sealed {
		r, err := seal.NewReader(bytes.NewReader(b), id, fmt.Sprintf("k%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(r); err != nil || string(got) != fmt.Sprintf("object %d", i) {
			t.Errorf("object %d: %q, %v", i, got, err)
		}
	}
	var ve *archive.VerifyError
	if _, err := seal.NewReader(bytes.NewReader(sealed[0]), id, "k1"); !errors.As(err, &ve) {
		t.Errorf("object k0 opened as k1: %v, want a VerifyError", err)
	}

	// The plain way: age.Encrypt to the tenant's recipient, the sealed header inside.
	r, err := age.ParseX25519Recipient(to.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "purgeguard-sealed/1\n%s\nplain\nplain content", tenantA)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pr, err := seal.NewReader(&buf, id, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(pr); err != nil || string(got) != "plain content" {
		t.Errorf("object sealed the plain age way: %q, %v", got, err)
	}
}
