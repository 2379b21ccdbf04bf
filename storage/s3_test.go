package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/storage/storagetest"
)

func s3Options(s testenv.S3) storage.S3Options {
	return storage.S3Options{Endpoint: s.Endpoint, Region: s.Region, AccessKeyID: s.AccessKey,
		SecretAccessKey: s.SecretKey, Insecure: true, PartSize: 5 << 20}
}

func TestS3Store(t *testing.T) {
	bucket := testenv.MinIO(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.NewS3(testenv.Context(t), bucket.Bucket, testenv.RandomName("suite/"), s3Options(bucket))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestS3Store_PrefixIsolates(t *testing.T) {
	b := testenv.MinIO(t)
	ctx := testenv.Context(t)
	p1, err := storage.NewS3(ctx, b.Bucket, "p1", s3Options(b))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := storage.NewS3(ctx, b.Bucket, "p2", s3Options(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Put(ctx, "k", bytes.NewBufferString("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Stat(ctx, "k"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("key of p1 seen under p2: %v", err)
	}
	var keys []string
	if err := p1.List(ctx, "", func(i storage.Info) error { keys = append(keys, i.Key); return nil }); err != nil || len(keys) != 1 || keys[0] != "k" {
		t.Errorf("List under p1: got %v, %v; want [k]", keys, err)
	}
}

func TestS3Store_Bucket(t *testing.T) {
	b := testenv.MinIO(t)
	ctx := testenv.Context(t)
	missing := testenv.RandomName("pgtest-missing-")
	_, err := storage.NewS3(ctx, missing, "", s3Options(b))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket without create_bucket: got %v, want a clear error", err)
	}
	o := s3Options(b)
	o.CreateBucket = true
	if _, err := storage.NewS3(ctx, missing, "", o); err != nil {
		t.Fatalf("create_bucket: %v", err)
	}
	c := b.Client(t)
	ok, err := c.BucketExists(ctx, missing)
	if err != nil || !ok {
		t.Errorf("bucket %s after create_bucket: exists=%v, %v", missing, ok, err)
	}
	t.Cleanup(func() { _ = c.RemoveBucket(context.Background(), missing) })
}

// A cancelled multipart upload is aborted: no parts are left in the bucket.
func TestS3Store_CancelLeavesNoParts(t *testing.T) {
	b := testenv.MinIO(t)
	ctx := testenv.Context(t)
	s, err := storage.NewS3(ctx, b.Bucket, "cancel", s3Options(b))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	r := &cancelReader{n: 12 << 20, cancel: cancel}
	if err := s.Put(cctx, "big", r); err == nil {
		t.Fatal("cancelled Put: got nil error")
	}
	for u := range b.Client(t).ListIncompleteUploads(ctx, b.Bucket, "cancel/", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("incomplete upload left behind: %s (%s)", u.Key, u.UploadID)
	}
}

type cancelReader struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	c.n -= len(p)
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}
