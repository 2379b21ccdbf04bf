package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"

	"filippo.io/age"
)

// What sealingReader writes is an age file age itself opens, whatever the length
// (around the chunk boundaries: the last chunk flagged, a full one too), however
// the source and the reader hand out their bytes, and with a header too long for
// the room before the first chunk (many recipients).
func TestSealingReader_AgeOpensIt(t *testing.T) {
	ids := make([]*age.X25519Identity, 12)
	for i := range ids {
		var err error
		if ids[i], err = age.GenerateX25519Identity(); err != nil {
			t.Fatal(err)
		}
	}
	prefix := []byte("purgeguard-sealed/1\nprefix\n")
	for _, size := range []int{0, 1, 100, payloadChunk - len(prefix), payloadChunk - len(prefix) + 1, payloadChunk - 1, payloadChunk,
		payloadChunk + 1, 2*payloadChunk - len(prefix), 2 * payloadChunk, 2*payloadChunk + 1, 3*payloadChunk + 12345} {
		for _, tc := range []struct {
			name       string
			recipients int
			src        func(io.Reader) io.Reader
			out        func(io.Reader) io.Reader
		}{
			{"whole reads", 1, func(r io.Reader) io.Reader { return r }, func(r io.Reader) io.Reader { return r }},
			{"short source reads", 1, iotest.HalfReader, func(r io.Reader) io.Reader { return r }},
			{"one byte out at a time", 1, func(r io.Reader) io.Reader { return r }, iotest.OneByteReader},
			{"long header", len(ids), iotest.DataErrReader, iotest.HalfReader},
		} {
			t.Run(fmt.Sprintf("%d bytes/%s", size, tc.name), func(t *testing.T) {
				content := make([]byte, size)
				rng := rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)})
				rng.Read(content)
				var rs []age.Recipient
				for _, id := range ids[:tc.recipients] {
					rs = append(rs, id.Recipient())
				}
				var r age.Recipient = rs[0]
				if len(rs) > 1 {
					r = multi(rs)
				}
				sr, err := newSealer(tc.src(bytes.NewReader(content)), r, prefix)
				if err != nil {
					t.Fatal(err)
				}
				sealed, err := io.ReadAll(tc.out(sr))
				if err != nil {
					t.Fatal(err)
				}
				if hdr := sealed[:bytes.Index(sealed, []byte("\n---"))]; tc.recipients > 1 &&
					(bytes.Count(hdr, []byte("\n-> X25519 ")) != tc.recipients || len(hdr) <= sealHeadroom) {
					t.Fatalf("header of %d bytes: want %d X25519 stanzas, longer than the %d bytes of room", len(hdr), tc.recipients, sealHeadroom)
				}
				opened, err := age.Decrypt(bytes.NewReader(sealed), ids[tc.recipients-1])
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(opened)
				if err != nil {
					t.Fatalf("age reads it: %v", err)
				}
				want := append(append([]byte{}, prefix...), content...)
				if sha256.Sum256(got) != sha256.Sum256(want) {
					t.Fatalf("age opened %d bytes, want the %d sealed", len(got), len(want))
				}
				// And payloadReader, the restore's reader, as age.
				pr, err := openPayload(bytes.NewReader(sealed), newTenantIdentity([16]byte{}, ids[tc.recipients-1]))
				if err != nil {
					t.Fatal(err)
				}
				if got, err := io.ReadAll(pr); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("payloadReader: %d bytes, %v", len(got), err)
				}
			})
		}
	}
}

// multi is several recipients as one, each wrapping the file key.
type multi []age.Recipient

func (m multi) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	var out []*age.Stanza
	for _, r := range m {
		s, err := r.Wrap(fileKey)
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

// A small object comes out in one read, header and nonce included: a file:// store
// writes it with one write(2). Each object has its own file key and nonce.
func TestSealingReader_SmallObjectOneRead(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	const size, prefix = 4096, "prefix\n"
	heads := map[string]bool{}
	for i := range 3 {
		sr, err := newSealer(bytes.NewReader(make([]byte, size)), id.Recipient(), []byte(prefix))
		if err != nil {
			t.Fatal(err)
		}
		w := &writeCounter{}
		if _, err := io.Copy(w, sr); err != nil {
			t.Fatal(err)
		}
		if w.writes != 1 {
			t.Errorf("object %d: %d writes, want 1", i, w.writes)
		}
		// The header and the nonce: all but the one chunk.
		heads[string(w.first[:len(w.first)-len(prefix)-size-chunkOverhead])] = true
	}
	if len(heads) != 3 {
		t.Errorf("3 objects, %d distinct headers and nonces", len(heads))
	}
}

const chunkOverhead = payloadEncChunk - payloadChunk

type writeCounter struct {
	writes int
	first  []byte
}

func (w *writeCounter) Write(p []byte) (int, error) {
	if w.writes == 0 {
		w.first = append([]byte{}, p...)
	}
	w.writes++
	return len(p), nil
}

// BlobAddress is HMAC-SHA256(address key, content digest) however often and from
// however many goroutines it is asked (its keyed state is reused).
func TestBlobAddress_ReusedStateIsFresh(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r := &TenantRecipient{recipient: id.Recipient(), addressKey: []byte("an address key of thirty-two b.")}
	want := func(sum [sha256.Size]byte) string {
		m := hmac.New(sha256.New, r.addressKey)
		m.Write(sum[:])
		return hex.EncodeToString(m.Sum(nil))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				sum := sha256.Sum256([]byte{byte(g), byte(i % 7)})
				if got := r.BlobAddress(sum); got != want(sum) {
					t.Errorf("goroutine %d, call %d: %s, want %s", g, i, got, want(sum))
					return
				}
			}
		})
	}
	wg.Wait()
}

// Objects opened from many goroutines at once, each through pooled readers and
// buffers, each read to its end: every one comes out as it was sealed.
func TestOpen_PooledReadersConcurrently(t *testing.T) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	id := newTenantIdentity([16]byte{}, x)
	const objects = 64
	sealed, plain := make([][]byte, objects), make([][]byte, objects)
	for i := range objects {
		plain[i] = bytes.Repeat([]byte{byte(i)}, 1+i*2311)
		sr, err := newSealer(bytes.NewReader(plain[i]), x.Recipient(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if sealed[i], err = io.ReadAll(sr); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for round := range 20 {
				i := (g*7 + round*13) % objects
				pr, err := openPayload(iotest.HalfReader(bytes.NewReader(sealed[i])), id)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(iotest.OneByteReader(pr))
				if err != nil || !bytes.Equal(got, plain[i]) {
					t.Errorf("object %d: %d bytes (want %d), %v", i, len(got), len(plain[i]), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
