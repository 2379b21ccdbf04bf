package storage_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/storage/storagetest"
)

// A bounded store is still a store: the conformance suite on both backends.
func TestBoundedStore(t *testing.T) {
	b := storage.Bounds{Timeout: 5 * time.Second, Retries: 2}
	t.Run("file", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Store {
			s, err := storage.NewFile(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			bs := storage.Bound(s, b)
			// The capabilities of the store, and no others.
			if _, ok := bs.(storage.Leftovers); !ok {
				t.Error("a bounded file store lost Leftovers")
			}
			if _, ok := bs.(storage.Locker); ok {
				t.Error("a bounded file store became a Locker")
			}
			if _, ok := bs.(storage.Erasable); !ok {
				t.Error("a bounded file store lost Erasable")
			}
			if _, ok := storage.Bound(struct{ storage.Store }{s}, b).(storage.Erasable); ok {
				t.Error("a bounded store without Erasable gained it")
			}
			return bs
		})
	})
	t.Run("s3", func(t *testing.T) {
		bucket := testenv.MinIO(t)
		storagetest.Run(t, func(t *testing.T) storage.Store {
			s, err := storage.NewS3(testenv.Context(t), bucket.Bucket, testenv.RandomName("bounded/"), s3Options(bucket))
			if err != nil {
				t.Fatal(err)
			}
			bs := storage.Bound(s, b)
			if _, ok := bs.(storage.Locker); !ok {
				t.Error("a bounded s3 store lost Locker")
			}
			if _, ok := bs.(storage.Erasable); !ok {
				t.Error("a bounded s3 store lost Erasable")
			}
			return bs
		})
	})
}

// A paused MinIO (SIGSTOP: connections accepted, nothing answers) and a killed one:
// every request ends with an error after its retries instead of waiting for ever;
// a body that stops flowing fails its next read.
func TestBoundedStore_DeadStorage(t *testing.T) {
	srv := testenv.StartMinIO(t)
	ctx := testenv.Context(t)
	raw, err := storage.NewS3(ctx, srv.Bucket, "b", s3Options(srv.S3))
	if err != nil {
		t.Fatal(err)
	}
	bounds := storage.Bounds{Timeout: 500 * time.Millisecond, Retries: 2}
	s := storage.Bound(raw, bounds)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB: more than one read
	if err := raw.Put(ctx, "big", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	body, err := s.Get(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if _, err := io.ReadFull(body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}

	srv.Pause()
	_, err = io.Copy(io.Discard, body)
	if !errors.Is(err, storage.ErrStalled) {
		t.Errorf("reading a body from a paused store: %v, want ErrStalled", err)
	}
	checkGiveUp := func(what string, err error, stalled bool) {
		t.Helper()
		var gu *storage.GiveUpError
		if !errors.As(err, &gu) || gu.Attempts != bounds.Retries+1 {
			t.Errorf("%s: %v, want a GiveUpError after %d attempts", what, err, bounds.Retries+1)
		}
		if stalled && !errors.Is(err, storage.ErrStalled) {
			t.Errorf("%s: %v, want ErrStalled in the chain", what, err)
		}
	}
	_, err = s.Get(ctx, "big")
	checkGiveUp("get from a paused store", err, true)
	_, err = s.Stat(ctx, "big")
	checkGiveUp("stat on a paused store", err, true)
	err = s.Put(ctx, "small", strings.NewReader("x"))
	checkGiveUp("seekable put to a paused store", err, true)
	// A stream that cannot be rewound is tried once.
	err = s.Put(ctx, "stream", io.MultiReader(strings.NewReader("x")))
	if !errors.Is(err, storage.ErrStalled) {
		t.Errorf("streamed put to a paused store: %v, want ErrStalled", err)
	}
	err = s.List(ctx, "", func(storage.Info) error { return nil })
	checkGiveUp("list on a paused store", err, true)

	srv.Resume()
	srv.Kill()
	_, err = s.Get(ctx, "big")
	checkGiveUp("get from a killed store", err, false)
	if err != nil && !strings.Contains(err.Error(), "big") {
		t.Errorf("error %q does not name the key", err)
	}
}
