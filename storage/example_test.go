package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"strings"

	"github.com/purgeguard/purgeguard/storage"
)

// Open a store by URL (file:///path or s3://bucket/prefix), write an object whole, and
// read it back; a missing key is fs.ErrNotExist on every backend.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "store-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := storage.Open(ctx, "file://"+dir, storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Put(ctx, "notes/hello.txt", strings.NewReader("hello")); err != nil {
		log.Fatal(err)
	}
	rc, err := s.Get(ctx, "notes/hello.txt")
	if err != nil {
		log.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	_, err = s.Stat(ctx, "notes/missing")
	_, locks := s.(storage.Locker)
	fmt.Println(string(b), errors.Is(err, fs.ErrNotExist), locks)
	// Output: hello true false
}
