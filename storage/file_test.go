package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
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

// A Put killed between creating its temporary file and renaming it leaves the file:
// List never shows it, ListLeftovers does, and RemoveLeftover takes it away.
func TestFileStore_Leftovers(t *testing.T) {
	root := t.TempDir()
	s, err := storage.NewFile(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "snapshots/x/obj", strings.NewReader("whole")); err != nil {
		t.Fatal(err)
	}
	killed := filepath.Join(root, "snapshots", "x", ".tmp-123456")
	if err := os.WriteFile(killed, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	var listed, left []string
	_ = s.List(ctx, "", func(i storage.Info) error { listed = append(listed, i.Key); return nil })
	_ = s.ListLeftovers(ctx, func(i storage.Info) error { left = append(left, i.Key); return nil })
	if !slices.Equal(listed, []string{"snapshots/x/obj"}) || !slices.Equal(left, []string{"snapshots/x/.tmp-123456"}) {
		t.Fatalf("List %v, ListLeftovers %v", listed, left)
	}
	if err := s.RemoveLeftover(ctx, "snapshots/x/../x/.tmp-123456"); err == nil {
		t.Error("RemoveLeftover took a key with ..")
	}
	if err := s.RemoveLeftover(ctx, left[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(killed); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover still there: %v", err)
	}
}
