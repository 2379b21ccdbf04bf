package testenv

import (
	"testing"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// FileStore returns an empty directory store for the test.
func FileStore(t *testing.T) storage.Store {
	t.Helper()
	s, err := storage.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// S3Store returns a store on a fresh bucket of the test MinIO server, under prefix.
func S3Store(t *testing.T, prefix string) storage.Store {
	t.Helper()
	b := MinIO(t)
	s, err := storage.NewS3(Context(t), b.Bucket, prefix, storage.S3Options{Endpoint: b.Endpoint,
		Region: b.Region, AccessKeyID: b.AccessKey, SecretAccessKey: b.SecretKey, Insecure: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Manifest reads back, from storage, the manifest of a committed snapshot: tests
// check what was committed, not what the run says it did. Its files are read into
// Files (from its file list, which is then nil): a test's few files fit in memory,
// and a test may edit them and commit the manifest again with them inline.
func Manifest(t testing.TB, s storage.Store, tenant, id uuid.UUID) *archive.Manifest {
	t.Helper()
	m, err := repository.Manifest(Context(t), s, archive.SnapshotRef{Tenant: tenant, ID: id})
	if err != nil {
		t.Fatalf("manifest of snapshot %s: %v", id, err)
	}
	if m.FileList != nil {
		m.Files = []archive.File{}
		err := repository.Files(Context(t), s, m, func(f archive.File) error {
			m.Files = append(m.Files, f)
			return nil
		})
		if err != nil {
			t.Fatalf("files of snapshot %s: %v", id, err)
		}
		m.FileList = nil
	}
	return m
}
