package storage_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/storage/storagetest"
)

func TestFileStore(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.NewFile(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A cancelled upload leaves no temporary file behind either.
func TestFileStore_NoTempLeft(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testenv.Context(t))
	cancel()
	if err := s.Put(ctx, "a/b/c", bytes.NewReader(make([]byte, 1<<20))); err == nil {
		t.Fatal("Put with a cancelled context: got nil error")
	}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			t.Errorf("file left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		url, wantErr string
	}{
		{"file://" + dir, ""},
		{"file://relative/path", "absolute"},
		{"file:relative", "absolute"},
		{"s3://", "bucket"},
		{"ftp://x/y", "scheme"},
		{"::", "URL"},
	}
	for _, tt := range tests {
		_, err := storage.Open(context.Background(), tt.url, storage.Options{})
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("Open(%q): got %v, want error containing %q", tt.url, err, tt.wantErr)
		}
	}
	// A directory cannot keep the promise of immutability: refused, not ignored.
	lock := storage.Options{S3: storage.S3Options{ObjectLock: storage.ObjectLock{Mode: "COMPLIANCE", Days: 7}}}
	if _, err := storage.Open(context.Background(), "file://"+dir, lock); err == nil || !strings.Contains(err.Error(), "object lock") {
		t.Errorf("Open(file://) with object lock: got %v, want a refusal naming object lock", err)
	}
}
