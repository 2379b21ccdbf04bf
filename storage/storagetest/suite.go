// Package storagetest is the conformance suite every storage backend passes: the
// same behaviour on a directory and on S3 is what lets the rest of purgeguard ignore
// which one it writes to.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/purgeguard/purgeguard/storage"
)

// Run runs the suite; newStore returns an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("CancelMidUpload", func(t *testing.T) { testCancel(t, newStore(t)) })
	t.Run("ReaderFailsMidUpload", func(t *testing.T) { testReaderError(t, newStore(t)) })
	t.Run("InvalidKeys", func(t *testing.T) { testInvalidKeys(t, newStore(t)) })
	t.Run("Locker", func(t *testing.T) { testLocker(t, newStore(t)) })
	t.Run("Leftovers", func(t *testing.T) { testLeftovers(t, newStore(t)) })
	t.Run("Erasable", func(t *testing.T) { testErasable(t, newStore(t)) })
}

// prng is a deterministic stream: large objects are generated and compared by
// hash, never held in memory.
func prng(seed uint64, n int64) io.Reader {
	return io.LimitReader(&randReader{r: rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)}, n)
}

type randReader struct{ r *rand.PCG }

func (p *randReader) Read(b []byte) (int, error) {
	for i := 0; i < len(b); i += 8 {
		v := p.r.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return len(b), nil
}

func sum(t *testing.T, r io.Reader) ([32]byte, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return [32]byte(h.Sum(nil)), n
}

func testRoundTrip(t *testing.T, s storage.Store) {
	ctx := testContext(t)
	for _, size := range []int64{0, 1, 64 << 20} {
		key := "rt/obj-" + itoa(size)
		if err := s.Put(ctx, key, prng(uint64(size), size)); err != nil {
			t.Fatalf("put %d bytes: %v", size, err)
		}
		want, _ := sum(t, prng(uint64(size), size))
		rc, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		got, n := sum(t, rc)
		rc.Close()
		if got != want || n != size {
			t.Errorf("%s: got %d bytes sha %x, want %d bytes sha %x", key, n, got, size, want)
		}
		info, err := s.Stat(ctx, key)
		if err != nil || info.Size != size || info.Key != key {
			t.Errorf("stat %s: got %+v, %v; want size %d", key, info, err, size)
		}
	}
}

func itoa(n int64) string { return string(strconvAppend(nil, n)) }

func strconvAppend(b []byte, n int64) []byte {
	if n >= 10 {
		b = strconvAppend(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func put(t *testing.T, s storage.Store, key, content string) {
	t.Helper()
	if err := s.Put(testContext(t), key, bytes.NewBufferString(content)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func list(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	keys := []string{}
	if err := s.List(testContext(t), prefix, func(i storage.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	return keys
}

func testList(t *testing.T, s storage.Store) {
	for _, k := range []string{"b/5", "a/2", "ab/4", "a/b/3", "a/1", "a.b/6"} {
		put(t, s, k, k)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"a/", []string{"a/1", "a/2", "a/b/3"}},
		{"a", []string{"a.b/6", "a/1", "a/2", "a/b/3", "ab/4"}},
		{"", []string{"a.b/6", "a/1", "a/2", "a/b/3", "ab/4", "b/5"}},
		{"a/b/", []string{"a/b/3"}},
		{"zzz", []string{}},
		{"zzz/", []string{}},
	}
	for _, tt := range tests {
		if got := list(t, s, tt.prefix); !slices.Equal(got, tt.want) {
			t.Errorf("List(%q): got %v, want %v", tt.prefix, got, tt.want)
		}
	}
	stop := errors.New("stop")
	var seen int
	err := s.List(testContext(t), "", func(storage.Info) error { seen++; return stop })
	if !errors.Is(err, stop) || seen != 1 {
		t.Errorf("List with fn error: got %v after %d calls, want the fn's error after 1", err, seen)
	}
}

func testNotFound(t *testing.T, s storage.Store) {
	ctx := testContext(t)
	_, err := s.Get(ctx, "nope/x")
	var nf *storage.NotExistError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &nf) || nf.Key != "nope/x" {
		t.Errorf("Get missing: got %v, want NotExistError{nope/x}", err)
	}
	if _, err := s.Stat(ctx, "nope/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: got %v, want fs.ErrNotExist", err)
	}
	if err := s.Delete(ctx, "nope/x"); err != nil {
		t.Errorf("Delete missing: got %v, want nil", err)
	}
	put(t, s, "d/x", "x")
	if err := s.Delete(ctx, "d/x"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "d/x"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get after Delete: got %v, want fs.ErrNotExist", err)
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Errorf("List after Delete: got %v, want nothing", got)
	}
}

func testOverwrite(t *testing.T, s storage.Store) {
	put(t, s, "o/k", "first version")
	put(t, s, "o/k", "second")
	rc, err := s.Get(testContext(t), "o/k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if string(b) != "second" {
		t.Errorf("after overwrite: got %q, want %q", b, "second")
	}
}

// cancelAfter cancels the context once n bytes were read, and keeps producing.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= int64(n); c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func testCancel(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	err := s.Put(ctx, "c/obj", &cancelAfter{r: prng(1, 40<<20), n: 12 << 20, cancel: cancel})
	if err == nil {
		t.Fatal("Put with its context cancelled mid-stream: got nil error")
	}
	if _, err := s.Stat(testContext(t), "c/obj"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a cancelled Put, Stat: got %v, want fs.ErrNotExist", err)
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Errorf("after a cancelled Put, List: got %v, want nothing", got)
	}
}

func testReaderError(t *testing.T, s storage.Store) {
	boom := errors.New("producer failed")
	r := io.MultiReader(prng(2, 6<<20), iotest.ErrReader(boom))
	if err := s.Put(testContext(t), "e/obj", r); err == nil {
		t.Fatal("Put of a failing reader: got nil error")
	}
	if _, err := s.Stat(testContext(t), "e/obj"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after a failed Put, Stat: got %v, want fs.ErrNotExist", err)
	}
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	ctx := testContext(t)
	for _, k := range []string{"", "/abs", "a//b", "a/../b", "..", "./a", "a/", "a\\b", "a\x00b"} {
		if err := s.Put(ctx, k, bytes.NewBufferString("x")); err == nil {
			t.Errorf("Put(%q): got nil error, want the key refused", k)
		}
		if _, err := s.Get(ctx, k); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get(%q): got %v, want the key refused", k, err)
		}
	}
}

// testContext bounds a subtest: the test's own deadline if it has one (less a margin
// to report), else five minutes. The suite imports only the standard library and
// storage, so that any backend, inside the module or out, can run it.
func testContext(t *testing.T) context.Context {
	t.Helper()
	timeout := 5 * time.Minute
	if dl, ok := t.Deadline(); ok {
		if left := time.Until(dl) - 10*time.Second; left < timeout && left > 0 {
			timeout = left
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// testLocker checks the optional storage.Locker against Delete: what CheckLock says
// of an object is what Delete then does, and ExtendLock of a missing key is not
// found. A store without the capability has nothing more to check: its Delete is
// covered by NotFound.
func testLocker(t *testing.T, s storage.Store) {
	l, ok := s.(storage.Locker)
	if !ok {
		t.Logf("%T keeps no locks", s)
		return
	}
	ctx := testContext(t)
	if err := l.ExtendLock(ctx, "lk/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ExtendLock of a missing key: got %v, want fs.ErrNotExist", err)
	}
	if err := s.Put(ctx, "lk/a", bytes.NewBufferString("a")); err != nil {
		t.Fatal(err)
	}
	if err := l.ExtendLock(ctx, "lk/a"); err != nil {
		t.Errorf("ExtendLock: %v", err)
	}
	checked := l.CheckLock(ctx, "lk/a")
	if checked != nil && !errors.Is(checked, storage.ErrLocked) {
		t.Fatalf("CheckLock: got %v, want nil or storage.ErrLocked", checked)
	}
	deleted := s.Delete(ctx, "lk/a")
	if errors.Is(deleted, storage.ErrLocked) != (checked != nil) || (deleted != nil && !errors.Is(deleted, storage.ErrLocked)) {
		t.Errorf("CheckLock said %v, then Delete %v", checked, deleted)
	}
	_, err := s.Stat(ctx, "lk/a")
	if gone := errors.Is(err, fs.ErrNotExist); gone != (deleted == nil) {
		t.Errorf("after Delete (%v): Stat %v", deleted, err)
	}
}

// testLeftovers checks the optional storage.Leftovers: finished and failed writes
// leave nothing to sweep, and RemoveLeftover never removes an object.
func testLeftovers(t *testing.T, s storage.Store) {
	l, ok := s.(storage.Leftovers)
	if !ok {
		t.Logf("%T leaves no temporary objects", s)
		return
	}
	ctx := testContext(t)
	if err := s.Put(ctx, "lo/a", bytes.NewBufferString("a")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "lo/b", iotest.ErrReader(errors.New("source failed"))); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	var left []string
	if err := l.ListLeftovers(ctx, func(i storage.Info) error { left = append(left, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("leftovers after a finished and a failed Put: %v", left)
	}
	if err := l.RemoveLeftover(ctx, "lo/a"); err == nil {
		t.Error("RemoveLeftover of an object: no error")
	}
	if _, err := s.Stat(ctx, "lo/a"); err != nil {
		t.Errorf("the object after RemoveLeftover of its key: %v", err)
	}
}

func get(t *testing.T, s storage.Store, key string) string {
	t.Helper()
	rc, err := s.Get(testContext(t), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}

// testErasable checks the optional storage.Erasable: a create never overwrites, of
// concurrent creates exactly one wins whole, a replace is read back, and an erased
// object is gone.
func testErasable(t *testing.T, s storage.Store) {
	e, ok := s.(storage.Erasable)
	if !ok {
		t.Logf("%T has no erasable objects", s)
		return
	}
	ctx := testContext(t)
	if err := e.CreateErasable(ctx, "er/a", bytes.NewBufferString("one")); err != nil {
		t.Fatalf("CreateErasable: %v", err)
	}
	if err := e.CreateErasable(ctx, "er/a", bytes.NewBufferString("two")); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateErasable of a taken key: got %v, want fs.ErrExist", err)
	}
	if got := get(t, s, "er/a"); got != "one" {
		t.Errorf("after a refused create: got %q, want %q", got, "one")
	}

	const writers = 8
	errs := make(chan error, writers)
	for i := range writers {
		go func() { errs <- e.CreateErasable(ctx, "er/race", strings.NewReader("writer-"+itoa(int64(i)))) }()
	}
	won := 0
	for range writers {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("concurrent CreateErasable: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("concurrent CreateErasable: %d writers succeeded, want exactly 1", won)
	}
	if got := get(t, s, "er/race"); !strings.HasPrefix(got, "writer-") {
		t.Errorf("after the race: got %q", got)
	}

	if err := e.ReplaceErasable(ctx, "er/a", bytes.NewBufferString("three")); err != nil {
		t.Fatalf("ReplaceErasable: %v", err)
	}
	if got := get(t, s, "er/a"); got != "three" {
		t.Errorf("after ReplaceErasable: got %q, want %q", got, "three")
	}
	for _, key := range []string{"er/a", "er/race", "er/missing"} {
		if err := e.Erase(ctx, key); err != nil {
			t.Errorf("Erase %s: %v", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat %s after Erase: got %v, want fs.ErrNotExist", key, err)
		}
	}
	if keys := list(t, s, "er/"); len(keys) != 0 {
		t.Errorf("left after Erase: %v", keys)
	}
	if l, ok := s.(storage.Leftovers); ok {
		var left []string
		if err := l.ListLeftovers(ctx, func(i storage.Info) error { left = append(left, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("temporary files left by CreateErasable: %v", left)
		}
	}
}
