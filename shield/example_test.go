package shield_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/purgeguard/purgeguard/shield"
	"github.com/purgeguard/purgeguard/storage"
)

// Shield a root with one pass, lose a file, and put it back: the link made by the
// first pass kept its content; the second pass uploaded it and recorded the loss.
func ExampleShield_Once() {
	dir, err := os.MkdirTemp("", "shield-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	root := filepath.Join(dir, "recordings")
	rec := filepath.Join(root, "2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71", "monitor", "call.wav")
	if err := os.MkdirAll(filepath.Dir(rec), 0o750); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(rec, []byte("RIFF...a recording"), 0o640); err != nil {
		log.Fatal(err)
	}
	store, err := storage.Open(ctx, "file://"+filepath.Join(dir, "store"), storage.Options{})
	if err != nil {
		log.Fatal(err)
	}
	roots := []shield.Root{{Dir: root, Shield: shield.DefaultShieldDir(root)}}
	s, err := shield.Open(shield.Options{Roots: roots, Index: filepath.Join(dir, "index.db"), Store: store,
		Settle: time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Once(ctx); err != nil { // links (and uploads what has settled)
		log.Fatal(err)
	}
	if err := os.Remove(rec); err != nil { // any process, any path
		log.Fatal(err)
	}
	if err := s.Once(ctx); err != nil { // sees the loss, records it once its blob is stored
		log.Fatal(err)
	}
	out, err := shield.Restore(ctx, store, shield.RestoreOptions{LossQuery: shield.LossQuery{Roots: roots, Under: root}})
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(rec)
	fmt.Println(out[0].Outcome, "from", out[0].From+":", string(b))
	// Output: restored from link: RIFF...a recording
}
