package repository_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// lockingStore refuses to delete the keys it holds, as S3 Object Lock does.
type lockingStore struct {
	storage.Store
	locked map[string]bool
}

func (l *lockingStore) Delete(ctx context.Context, key string) error {
	if l.locked[key] {
		return &storage.LockedError{Key: key, Mode: "COMPLIANCE", Until: time.Now().Add(time.Hour)}
	}
	return l.Store.Delete(ctx, key)
}

func exists(t *testing.T, s storage.Store, key string) bool {
	t.Helper()
	_, err := s.Stat(testenv.Context(t), key)
	return err == nil
}

// Whichever object a lock holds, prune reports it and goes on; a locked manifest
// keeps its whole snapshot.
func TestPrune_LockedObjects(t *testing.T) {
	tests := []struct {
		name                    string
		lock                    func(m *archive.Manifest, orphan string) []string
		wantLocked, wantRemoved int
		wantLockedObjects       func(m *archive.Manifest, orphan string) []string
		wantBlobs               int
		wantTableKept           bool
	}{
		{
			name:       "manifest",
			lock:       func(m *archive.Manifest, _ string) []string { return []string{archive.ManifestKey(m.Tenant, m.ID)} },
			wantLocked: 1, wantBlobs: 1, wantTableKept: true,
			wantLockedObjects: func(*archive.Manifest, string) []string { return nil },
		},
		{
			name:        "table after the manifest went",
			lock:        func(m *archive.Manifest, _ string) []string { return []string{m.Tables[0].Key} },
			wantRemoved: 1, wantBlobs: 2, wantTableKept: true,
			wantLockedObjects: func(m *archive.Manifest, _ string) []string { return []string{m.Tables[0].Key} },
		},
		{
			name:        "unreferenced blob",
			lock:        func(_ *archive.Manifest, orphan string) []string { return []string{orphan} },
			wantRemoved: 1, wantBlobs: 1,
			wantLockedObjects: func(_ *archive.Manifest, orphan string) []string { return []string{orphan} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, err := storage.NewFile(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			m := writeSnapshot(t, fs, uuid.New(), now.Add(-48*time.Hour), [][]byte{[]byte("its recording")})
			orphanRaw := archive.NewDigest()
			orphanRaw.Write([]byte("nobody's"))
			orphan := archive.BlobKey(orphanRaw.Sum())
			put(t, fs, orphan, compress(t, []byte("nobody's")))
			s := &lockingStore{Store: fs, locked: map[string]bool{}}
			for _, k := range tt.lock(m, orphan) {
				s.locked[k] = true
			}
			var log bytes.Buffer
			o := repository.PruneOptions{KeepWithin: time.Hour, Now: now.Add(2 * time.Hour), Grace: time.Nanosecond,
				Log: slog.New(slog.NewTextHandler(&log, nil))}
			rep, err := repository.Prune(testenv.Context(t), s, o)
			if err != nil {
				t.Fatalf("prune: %v", err)
			}
			if len(rep.Locked) != tt.wantLocked || len(rep.Removed) != tt.wantRemoved || rep.Blobs != tt.wantBlobs {
				t.Errorf("report %+v: want %d locked, %d removed, %d blobs removed", rep, tt.wantLocked, tt.wantRemoved, tt.wantBlobs)
			}
			if got, want := rep.LockedObjects, tt.wantLockedObjects(m, orphan); !slices.Equal(got, want) && len(got)+len(want) > 0 {
				t.Errorf("locked objects: got %v, want %v", got, want)
			}
			if got := exists(t, fs, m.Tables[0].Key); got != tt.wantTableKept {
				t.Errorf("table object kept: got %v, want %v", got, tt.wantTableKept)
			}
			if tt.wantLocked > 0 {
				if rep.Locked[0].SnapshotRef != m.Ref() || rep.Locked[0].Until.IsZero() {
					t.Errorf("locked snapshot: got %+v, want %v with its date", rep.Locked[0], m.Ref())
				}
				if !strings.Contains(log.String(), "snapshot locked") || !strings.Contains(log.String(), m.ID.String()) {
					t.Errorf("log does not say the snapshot is locked:\n%s", log.String())
				}
				// Whole: listed, verifies, its blob kept even though nothing else locks it.
				ms, err := repository.List(testenv.Context(t), s, uuid.Nil)
				if err != nil || len(ms) != 1 {
					t.Fatalf("List after prune: got %d, %v; want the locked snapshot", len(ms), err)
				}
				chk, _ := repository.NewChecker(s)
				defer chk.Close()
				m, err := repository.Manifest(testenv.Context(t), s, ms[0].SnapshotRef)
				if err != nil {
					t.Fatal(err)
				}
				if probs, err := chk.Verify(testenv.Context(t), m, nil); err != nil || len(probs) > 0 {
					t.Errorf("locked snapshot does not verify after prune: %v %v", probs, err)
				}
			}
		})
	}
}

func s3Store(t *testing.T, b testenv.S3, lock storage.ObjectLock) storage.Store {
	t.Helper()
	s, err := storage.NewS3(testenv.Context(t), b.Bucket, "repo", storage.S3Options{Endpoint: b.Endpoint, Region: b.Region,
		AccessKeyID: b.AccessKey, SecretAccessKey: b.SecretKey, Insecure: true, PartSize: 5 << 20, ObjectLock: lock})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// On a real MinIO with Object Lock: prune refuses (and reports) the locked snapshot,
// which stays listed and verifiable, and still removes an unlocked one. The store
// that prunes has no lock configured: the bucket's locks bind it all the same.
func TestPrune_ObjectLockOnMinIO(t *testing.T) {
	b := testenv.MinIOWithLock(t)
	ctx := testenv.Context(t)
	locked := s3Store(t, b, storage.ObjectLock{Mode: "GOVERNANCE", Days: 1})
	plain := s3Store(t, b, storage.ObjectLock{})
	tenant := uuid.New()
	now := time.Now()
	written := now
	kept := writeSnapshot(t, locked, tenant, now.Add(-72*time.Hour), [][]byte{[]byte("locked recording")})
	gone := writeSnapshot(t, plain, tenant, now.Add(-48*time.Hour), [][]byte{[]byte("unlocked recording")})
	goneBlob, _ := archive.BlobKeyHex(gone.Files[0].SHA256)

	for _, dry := range []bool{true, false} {
		var log bytes.Buffer
		// Now is ahead so both are out of keep-within and the blobs past the grace.
		o := repository.PruneOptions{KeepWithin: time.Hour, DryRun: dry, Now: now.Add(2 * time.Hour), Grace: time.Minute,
			Log: slog.New(slog.NewTextHandler(&log, nil))}
		rep, err := repository.Prune(ctx, plain, o)
		if err != nil {
			t.Fatalf("prune (dry run %v): %v", dry, err)
		}
		if len(rep.Locked) != 1 || rep.Locked[0].SnapshotRef != kept.Ref() {
			t.Fatalf("dry run %v: locked %+v, want %v", dry, rep.Locked, kept.Ref())
		}
		if until := rep.Locked[0].Until; until.Before(written.Add(24*time.Hour-time.Second)) || until.After(time.Now().Add(24*time.Hour+time.Minute)) {
			t.Errorf("locked until %v, want about a day after it was written", until)
		}
		if len(rep.Removed) != 1 || rep.Removed[0] != gone.Ref() || rep.Blobs != 1 || len(rep.LockedObjects) != 0 {
			t.Errorf("dry run %v: report %+v, want the unlocked snapshot and its blob removed, nothing else refused", dry, rep)
		}
		if !strings.Contains(log.String(), "snapshot locked") {
			t.Errorf("dry run %v: no warning logged:\n%s", dry, log.String())
		}
	}
	ms, err := repository.List(ctx, plain, uuid.Nil)
	if err != nil || len(ms) != 1 || ms[0].ID != kept.ID {
		t.Fatalf("List after prune: got %v, %v; want only the locked snapshot", ms, err)
	}
	chk, _ := repository.NewChecker(plain)
	defer chk.Close()
	m, err := repository.Manifest(ctx, plain, ms[0].SnapshotRef)
	if err != nil {
		t.Fatal(err)
	}
	if probs, err := chk.Verify(ctx, m, nil); err != nil || len(probs) > 0 {
		t.Errorf("locked snapshot does not verify after prune: %v %v", probs, err)
	}
	if exists(t, plain, goneBlob) {
		t.Errorf("blob %s of the removed snapshot is still listed", goneBlob)
	}
}
