package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/storage/storagetest"
)

func TestLockOf(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		h         map[string]string
		wantLock  bool
		wantUntil time.Time
	}{
		{"no lock", nil, false, time.Time{}},
		{"retained", map[string]string{"X-Amz-Object-Lock-Mode": "COMPLIANCE", "X-Amz-Object-Lock-Retain-Until-Date": "2026-05-02T12:00:00Z"}, true, now.Add(24 * time.Hour)},
		{"expired", map[string]string{"X-Amz-Object-Lock-Mode": "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date": "2026-05-01T11:59:59Z"}, false, time.Time{}},
		{"ends now", map[string]string{"X-Amz-Object-Lock-Mode": "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date": "2026-05-01T12:00:00Z"}, false, time.Time{}},
		{"unreadable date", map[string]string{"X-Amz-Object-Lock-Mode": "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date": "tomorrow"}, true, time.Time{}},
		{"legal hold", map[string]string{"X-Amz-Object-Lock-Legal-Hold": "ON"}, true, time.Time{}},
		{"legal hold off", map[string]string{"X-Amz-Object-Lock-Legal-Hold": "OFF"}, false, time.Time{}},
		{"expired under hold", map[string]string{"X-Amz-Object-Lock-Mode": "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date": "2026-04-01T00:00:00Z", "X-Amz-Object-Lock-Legal-Hold": "ON"}, true, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			err := storage.LockOf("k", h, now)
			if got := errors.Is(err, storage.ErrLocked); got != tt.wantLock {
				t.Fatalf("got %v, want locked=%v", err, tt.wantLock)
			}
			var le *storage.LockedError
			if errors.As(err, &le) && !le.Until.Equal(tt.wantUntil) {
				t.Errorf("until: got %v, want %v", le.Until, tt.wantUntil)
			}
		})
	}
}

func lockedStore(t *testing.T, b testenv.S3, prefix string, lock storage.ObjectLock) *storage.S3Store {
	t.Helper()
	o := s3Options(b)
	o.ObjectLock = lock
	s, err := storage.NewS3(testenv.Context(t), b.Bucket, prefix, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Every object written carries the retention, and Delete refuses it while it lasts:
// no delete marker hides it, it stays readable and listed.
func TestS3Store_ObjectLock(t *testing.T) {
	for _, mode := range []string{"GOVERNANCE", "COMPLIANCE"} {
		t.Run(mode, func(t *testing.T) {
			b := testenv.MinIOWithLock(t)
			ctx := testenv.Context(t)
			s := lockedStore(t, b, "p", storage.ObjectLock{Mode: mode, Days: 2})
			objects := map[string]io.Reader{
				"small": bytes.NewBufferString("a table"),
				// Unsized and past one part: the multipart path carries the lock too.
				"big": io.LimitReader(zeros{}, 6<<20),
			}
			c := b.Client(t)
			for key, r := range objects {
				start := time.Now()
				if err := s.Put(ctx, key, r); err != nil {
					t.Fatal(err)
				}
				gotMode, until, err := c.GetObjectRetention(ctx, b.Bucket, "p/"+key, "")
				if err != nil {
					t.Fatalf("%s: retention: %v", key, err)
				}
				want := start.AddDate(0, 0, 2)
				if string(*gotMode) != mode || until.Before(want.Add(-time.Second)) || until.After(want.Add(time.Minute)) {
					t.Errorf("%s: retention got %s until %v, want %s until about %v", key, *gotMode, until, mode, want)
				}

				err = s.Delete(ctx, key)
				var le *storage.LockedError
				if !errors.Is(err, storage.ErrLocked) || !errors.As(err, &le) {
					t.Fatalf("%s: Delete of a locked object: got %v, want ErrLocked", key, err)
				}
				if le.Key != key || le.Mode != mode || !le.Until.Equal(until.Truncate(time.Second)) || !strings.Contains(err.Error(), key) {
					t.Errorf("%s: got %+v (%v), want key, mode %s and until %v", key, le, err, mode, until)
				}
				if err := s.CheckLock(ctx, key); !errors.Is(err, storage.ErrLocked) {
					t.Errorf("%s: CheckLock: got %v, want ErrLocked", key, err)
				}
				rc, err := s.Get(ctx, key)
				if err != nil {
					t.Fatalf("%s: Get after refused Delete: %v", key, err)
				}
				rc.Close()
				for v := range c.ListObjects(ctx, b.Bucket, minio.ListObjectsOptions{Prefix: "p/" + key, WithVersions: true}) {
					if v.IsDeleteMarker {
						t.Errorf("%s: a delete marker was written: the object is hidden from listings", key)
					}
				}
			}
			var keys []string
			if err := s.List(ctx, "", func(i storage.Info) error { keys = append(keys, i.Key); return nil }); err != nil || len(keys) != 2 {
				t.Errorf("List after refused deletes: got %v, %v; want both objects", keys, err)
			}
			if err := s.Delete(ctx, "never-written"); err != nil {
				t.Errorf("Delete of a missing key on a locked bucket: got %v, want nil", err)
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A bucket with Object Lock but no retention configured behaves as any store (every
// Delete looks first, and finds nothing held); a legal hold set by someone else is
// still honoured.
func TestS3Store_LockableBucket(t *testing.T) {
	b := testenv.MinIOWithLock(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return lockedStore(t, b, testenv.RandomName("suite/"), storage.ObjectLock{})
	})
	t.Run("LegalHold", func(t *testing.T) {
		ctx := testenv.Context(t)
		s := lockedStore(t, b, "held", storage.ObjectLock{})
		if _, err := b.Client(t).PutObject(ctx, b.Bucket, "held/k", bytes.NewReader([]byte("x")), 1,
			minio.PutObjectOptions{LegalHold: minio.LegalHoldEnabled}); err != nil {
			t.Fatal(err)
		}
		var le *storage.LockedError
		if err := s.Delete(ctx, "k"); !errors.As(err, &le) || !le.LegalHold {
			t.Fatalf("Delete under legal hold: got %v, want a LockedError with LegalHold", err)
		}
		if _, err := s.Stat(ctx, "k"); err != nil {
			t.Errorf("held object after refused Delete: %v", err)
		}
	})
}

func TestS3Store_ObjectLockOptions(t *testing.T) {
	plain := testenv.MinIO(t)
	ctx := testenv.Context(t)
	tests := []struct {
		name    string
		lock    storage.ObjectLock
		wantErr string
	}{
		{"bucket without object lock", storage.ObjectLock{Mode: "GOVERNANCE", Days: 1}, "does not have object lock enabled"},
		{"bad mode", storage.ObjectLock{Mode: "governance", Days: 1}, "GOVERNANCE or COMPLIANCE"},
		{"no days", storage.ObjectLock{Mode: "COMPLIANCE"}, "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := s3Options(plain)
			o.ObjectLock = tt.lock
			_, err := storage.NewS3(ctx, plain.Bucket, "", o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("create_bucket makes a locking bucket", func(t *testing.T) {
		o := s3Options(plain)
		o.CreateBucket, o.ObjectLock = true, storage.ObjectLock{Mode: "GOVERNANCE", Days: 1}
		name := testenv.RandomName("pgtest-lock-new-")
		if _, err := storage.NewS3(ctx, name, "", o); err != nil {
			t.Fatalf("create_bucket with object lock: %v", err)
		}
		t.Cleanup(func() { _ = plain.Client(t).RemoveBucket(context.Background(), name) })
	})
}

// Why Delete looks before it removes: on a bucket with Object Lock (always
// versioned), MinIO answers a plain DELETE of a locked object with success, writing a
// delete marker. The object leaves every listing while its locked version stays:
// to purgeguard a snapshot would be gone, yet no one could remove it.
func TestMinIO_PlainDeleteOfLockedObjectHidesIt(t *testing.T) {
	b := testenv.MinIOWithLock(t)
	ctx := testenv.Context(t)
	c := b.Client(t)
	info, err := c.PutObject(ctx, b.Bucket, "k", bytes.NewReader([]byte("x")), 1,
		minio.PutObjectOptions{Mode: minio.Governance, RetainUntilDate: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveObject(ctx, b.Bucket, "k", minio.RemoveObjectOptions{}); err != nil {
		t.Skipf("this server refuses a plain delete of a locked object (%v): the look-first Delete is then only belt and braces", err)
	}
	if _, err := c.StatObject(ctx, b.Bucket, "k", minio.StatObjectOptions{}); err == nil {
		t.Error("after a plain delete the object is still current")
	}
	// The locked version itself is refused only when named.
	if err := c.RemoveObject(ctx, b.Bucket, "k", minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
		t.Error("delete of the locked version by id: got nil, want a refusal")
	}
}

// ExtendLock lengthens an earlier object's retention to that of an object written
// now, keeps the mode of a retention in force, and never shortens one.
func TestS3Store_ExtendLock(t *testing.T) {
	b := testenv.MinIOWithLock(t)
	ctx := testenv.Context(t)
	c := b.Client(t)
	retention := func(key string) (string, time.Time) {
		t.Helper()
		mode, until, err := c.GetObjectRetention(ctx, b.Bucket, "p/"+key, "")
		if err != nil {
			t.Fatalf("%s: retention: %v", key, err)
		}
		return string(*mode), *until
	}
	about := func(got time.Time, days int) bool {
		want := time.Now().AddDate(0, 0, days)
		return got.After(want.Add(-time.Minute)) && got.Before(want.Add(time.Minute))
	}
	put := func(s *storage.S3Store, key string) {
		t.Helper()
		if err := s.Put(ctx, key, strings.NewReader(key)); err != nil {
			t.Fatal(err)
		}
	}
	short := lockedStore(t, b, "p", storage.ObjectLock{Mode: "COMPLIANCE", Days: 1})
	long := lockedStore(t, b, "p", storage.ObjectLock{Mode: "GOVERNANCE", Days: 3})
	none := lockedStore(t, b, "p", storage.ObjectLock{})

	put(short, "blob")
	if err := long.ExtendLock(ctx, "blob"); err != nil {
		t.Fatal(err)
	}
	// COMPLIANCE in force stays COMPLIANCE: S3 refuses to change its mode.
	if mode, until := retention("blob"); mode != "COMPLIANCE" || !about(until, 3) {
		t.Errorf("extended: got %s until %v, want COMPLIANCE until about 3 days from now", mode, until)
	}
	// A store with a shorter retention, or none, leaves the longer one as it is.
	for name, s := range map[string]*storage.S3Store{"shorter": short, "none": none} {
		if err := s.ExtendLock(ctx, "blob"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, until := retention("blob"); !about(until, 3) {
			t.Errorf("%s: retention became %v, want it kept at about 3 days from now", name, until)
		}
	}
	// An object written without retention gets the store's.
	put(none, "plain")
	if err := long.ExtendLock(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if mode, until := retention("plain"); mode != "GOVERNANCE" || !about(until, 3) {
		t.Errorf("plain: got %s until %v, want GOVERNANCE until about 3 days from now", mode, until)
	}
	// GOVERNANCE in force stays GOVERNANCE under a COMPLIANCE store (changing it needs
	// the bypass permission), with the longer date.
	put(long, "governed")
	strict := lockedStore(t, b, "p", storage.ObjectLock{Mode: "COMPLIANCE", Days: 4})
	if err := strict.ExtendLock(ctx, "governed"); err != nil {
		t.Fatal(err)
	}
	if mode, until := retention("governed"); mode != "GOVERNANCE" || !about(until, 4) {
		t.Errorf("governed: got %s until %v, want GOVERNANCE until about 4 days from now", mode, until)
	}
	// A legal hold alone is no retention: the store's is added.
	put(none, "held")
	on, off := minio.LegalHoldEnabled, minio.LegalHoldDisabled
	if err := c.PutObjectLegalHold(ctx, b.Bucket, "p/held", minio.PutObjectLegalHoldOptions{Status: &on}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.PutObjectLegalHold(context.Background(), b.Bucket, "p/held", minio.PutObjectLegalHoldOptions{Status: &off})
	})
	if err := long.ExtendLock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	if mode, until := retention("held"); mode != "GOVERNANCE" || !about(until, 3) {
		t.Errorf("held: got %s until %v, want GOVERNANCE until about 3 days from now", mode, until)
	}
	if err := long.ExtendLock(ctx, "never-written"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing object: got %v, want fs.ErrNotExist", err)
	}
}

// On a bucket where every Put is locked (COMPLIANCE), the erasable objects carry no
// retention, a replace leaves no earlier version readable, and an erase leaves no
// version and no delete marker: the content is gone, not hidden.
func TestS3Store_ErasableUnderObjectLock(t *testing.T) {
	b := testenv.MinIOWithLock(t)
	ctx := testenv.Context(t)
	s := lockedStore(t, b, "p", storage.ObjectLock{Mode: "COMPLIANCE", Days: 1})
	c := b.Client(t)
	versions := func(key string) (n int, markers int) {
		for v := range c.ListObjects(ctx, b.Bucket, minio.ListObjectsOptions{Prefix: "p/" + key, WithVersions: true}) {
			if v.Err != nil {
				t.Fatal(v.Err)
			}
			if v.IsDeleteMarker {
				markers++
			} else {
				n++
			}
		}
		return n, markers
	}
	if err := s.CreateErasable(ctx, "keys/k", bytes.NewBufferString("first secret")); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckLock(ctx, "keys/k"); err != nil {
		t.Errorf("CheckLock of an erasable object: got %v, want no lock", err)
	}
	for _, content := range []string{"second secret", "third secret"} {
		if err := s.ReplaceErasable(ctx, "keys/k", bytes.NewBufferString(content)); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := versions("keys/k"); n != 1 || m != 0 {
		t.Errorf("after two replaces: %d versions and %d delete markers, want 1 and 0", n, m)
	}
	// A plain Delete would leave the content behind a delete marker: Erase must not.
	if err := s.Erase(ctx, "keys/k"); err != nil {
		t.Fatal(err)
	}
	if n, m := versions("keys/k"); n != 0 || m != 0 {
		t.Errorf("after Erase: %d versions and %d delete markers, want none", n, m)
	}
}

// A bucket whose own rule locks every new object cannot hold erasable objects: the
// store says so rather than write a key that could never be shredded.
func TestS3Store_ErasableRefusedUnderDefaultRetention(t *testing.T) {
	b := testenv.MinIOWithLock(t)
	ctx := testenv.Context(t)
	mode, validity, unit := minio.Governance, uint(1), minio.Days
	if err := b.Client(t).SetObjectLockConfig(ctx, b.Bucket, &mode, &validity, &unit); err != nil {
		t.Fatal(err)
	}
	s := lockedStore(t, b, "p", storage.ObjectLock{})
	for name, op := range map[string]func() error{
		"create":  func() error { return s.CreateErasable(ctx, "keys/k", bytes.NewBufferString("x")) },
		"replace": func() error { return s.ReplaceErasable(ctx, "keys/k", bytes.NewBufferString("x")) },
	} {
		if err := op(); err == nil || !strings.Contains(err.Error(), "default retention") {
			t.Errorf("%s on a bucket with a default retention: got %v, want a refusal naming it", name, err)
		}
	}
	if _, err := s.Stat(ctx, "keys/k"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the refusals: Stat got %v, want nothing written", err)
	}
}
