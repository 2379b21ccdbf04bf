package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

var _ Batcher = (*FileStore)(nil)

// batchSize bounds the objects a file:// batch holds waiting (a temporary file
// each, its name held): past it, the Put that fills it flushes them.
const batchSize = 1024

// syncJobs is how many files of a batch are synced at once where syncfs(2) is not
// available: concurrent fsyncs on one filesystem share its journal's commits.
const syncJobs = 16

// Batch starts a batch: each Put writes a temporary file and returns; a flush makes
// the batch's files durable together (syncfs(2) on the store's filesystem, else an
// fsync each, concurrently), renames each onto its key, then makes the renames
// durable (syncfs again, else an fsync of each directory). An object is thus
// renamed only once its content is durable: a crash leaves temporary files (never
// a named object with lost content, which a later snapshot would find stored and
// name), and a flushed object's name is durable too.
func (s *FileStore) Batch() Batch { return &fileBatch{s: s} }

type fileBatch struct {
	s       *FileStore
	mu      sync.Mutex
	waiting []pendingObject
	err     error // the first failed flush's
}

// pendingObject is a temporary file written and not yet renamed onto its key.
type pendingObject struct {
	tmp  string // the temporary file, written and closed, not synced
	path string // the key's path
	key  string
}

func (b *fileBatch) Put(ctx context.Context, key string, r io.Reader) error {
	p, f, err := b.s.createTemp(ctx, key, r)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("file: put %s: %w", key, err)
	}
	b.mu.Lock()
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		os.Remove(f.Name())
		return err
	}
	b.waiting = append(b.waiting, pendingObject{tmp: f.Name(), path: p, key: key})
	var full []pendingObject
	if len(b.waiting) >= batchSize {
		full, b.waiting = b.waiting, nil
	}
	b.mu.Unlock()
	if full == nil {
		return nil
	}
	// This Put flushes the batch it filled; the other writers go on meanwhile.
	return b.flush(ctx, full)
}

// flush writes objs and keeps the first error for Flush to return again.
func (b *fileBatch) flush(ctx context.Context, objs []pendingObject) error {
	err := b.s.flush(ctx, objs)
	if err != nil {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return err
}

func (b *fileBatch) Flush(ctx context.Context) error {
	b.mu.Lock()
	waiting, err := b.waiting, b.err
	b.waiting = nil
	b.mu.Unlock()
	if err != nil {
		removeObjects(waiting)
		return err
	}
	return b.flush(ctx, waiting)
}

func (b *fileBatch) Close() error {
	b.mu.Lock()
	waiting := b.waiting
	b.waiting = nil
	b.mu.Unlock()
	removeObjects(waiting)
	return nil
}

// flush makes the objects' temporary files durable, renames each onto its key and
// makes the renames durable. On error the files not yet renamed are removed.
func (s *FileStore) flush(ctx context.Context, objs []pendingObject) error {
	if len(objs) == 0 {
		return nil
	}
	whole, err := syncFS(s.root)
	if !whole {
		err = errors.Join(parallel(len(objs), func(i int) error { return syncFile(objs[i].tmp) })...)
	}
	if err = errors.Join(err, ctx.Err()); err != nil {
		removeObjects(objs)
		return err
	}
	seen := map[string]bool{}
	var dirs []string
	for i, o := range objs {
		if err := os.Rename(o.tmp, o.path); err != nil {
			removeObjects(objs[i:])
			return fmt.Errorf("file: put %s: %w", o.key, err)
		}
		if d := filepath.Dir(o.path); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	if whole {
		_, err := syncFS(s.root)
		return err
	}
	return errors.Join(parallel(len(dirs), func(i int) error { return syncDir(dirs[i]) })...)
}

// syncFile makes a closed file's content durable.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("file: sync %s: %w", name, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("file: sync %s: %w", name, err)
	}
	return nil
}

// parallel runs fn for 0..n-1, syncJobs at a time, and returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(syncJobs, n) {
		wg.Go(func() {
			for i := range next {
				errs[i] = fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// removeObjects removes temporary files that will never be renamed.
func removeObjects(objs []pendingObject) {
	for _, o := range objs {
		os.Remove(o.tmp)
	}
}
