package repository_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// A store gets one identity, whoever asks first and however many ask at once, and
// keeps it; two stores get two. On a bucket whose Object Lock rule retains every
// object (nothing there is erasable) it is written all the same, by a plain write:
// there writers racing may each write theirs (the last one stays, and a reader
// between two writes may fail and ask again), so they are not raced here.
func TestStoreID_OnePerStore(t *testing.T) {
	ctx := testenv.Context(t)
	defaultRetention := func(t *testing.T) storage.Store {
		b := testenv.MinIOWithLock(t)
		mode, validity, unit := minio.Governance, uint(1), minio.Days
		if err := b.Client(t).SetObjectLockConfig(ctx, b.Bucket, &mode, &validity, &unit); err != nil {
			t.Fatal(err)
		}
		s, err := storage.NewS3(ctx, b.Bucket, "p", storage.S3Options{Endpoint: b.Endpoint, Region: b.Region,
			AccessKeyID: b.AccessKey, SecretAccessKey: b.SecretKey, Insecure: true, PartSize: 5 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, open := range map[string]func(*testing.T) storage.Store{
		"file":             testenv.FileStore,
		"s3":               func(t *testing.T) storage.Store { return testenv.S3Store(t, "p") },
		"s3 retaining all": defaultRetention,
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if _, ok, err := repository.ReadStoreID(ctx, s); ok || err != nil {
				t.Fatalf("a new store: identity read %v, err %v; want none", ok, err)
			}
			racing := 6
			if name == "s3 retaining all" {
				racing = 1
			}
			ids := make([]repository.StoreID, racing)
			var wg sync.WaitGroup
			for i := range ids {
				wg.Go(func() {
					id, err := repository.EnsureStoreID(ctx, s)
					if err != nil {
						t.Error(err)
					}
					ids[i] = id
				})
			}
			wg.Wait()
			read, ok, err := repository.ReadStoreID(ctx, s)
			if !ok || err != nil {
				t.Fatalf("after EnsureStoreID: read %v, err %v", ok, err)
			}
			for i, id := range ids {
				if id != read {
					t.Errorf("caller %d got %s, the store holds %s", i, id, read)
				}
			}
			if again, err := repository.EnsureStoreID(ctx, s); err != nil || again != read {
				t.Errorf("asked again: %s, %v; want %s kept", again, err, read)
			}
			if other, err := repository.EnsureStoreID(ctx, open(t)); err != nil || other == read {
				t.Errorf("another store: %s, %v; want an identity of its own", other, err)
			}
		})
	}
}

// An identity object that is not one is an error naming the object and the fix,
// not a new identity written over it.
func TestStoreID_Garbled(t *testing.T) {
	ctx := testenv.Context(t)
	s := testenv.FileStore(t)
	if err := s.Put(ctx, archive.StoreIDKey, bytes.NewBufferString("not hex\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := repository.EnsureStoreID(ctx, s); err == nil || !strings.Contains(err.Error(), archive.StoreIDKey) {
		t.Errorf("garbled identity: got %v, want an error naming %s", err, archive.StoreIDKey)
	}
}
