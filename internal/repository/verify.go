package repository

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// Checker re-reads stored objects and compares them with what a manifest promised.
// It owns one zstd decoder: Close it.
type Checker struct {
	s   storage.Store
	dec *zstd.Decoder
	// br buffers what dec reads: the decoder reads a frame's header a few bytes at
	// a time, a read(2) each from a file:// blob (18 reads for a 512 B recording).
	br *bufio.Reader
	// Jobs is how many blobs Verify reads at once (a decoder each): a tenant's
	// thousands of small recordings, one at a time, leave the disk or the network
	// idle between them. Default (0) BlobJobs.
	Jobs int
}

// BlobReadBuffer is the buffer between a stored blob and its decoder.
const BlobReadBuffer = 32 << 10

// BlobJobs is the default of Checker.Jobs.
const BlobJobs = 4

// NewChecker returns a checker reading from s.
func NewChecker(s storage.Store) (*Checker, error) {
	// One goroutine and a bounded window: verifying must not cost more memory than
	// the snapshot that wrote the object.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return &Checker{s: s, dec: dec, br: bufio.NewReaderSize(nil, BlobReadBuffer)}, nil
}

// Close releases the decoder.
func (c *Checker) Close() { c.dec.Close() }

// Problems is what Verify found, one *archive.VerifyError per object.
type Problems []error

// Verify re-reads every table object and every blob m names. Objects that are not
// what the manifest says are returned as problems; an error is returned only when
// the check itself could not run (storage unreachable, cancelled).
func (c *Checker) Verify(ctx context.Context, m *archive.Manifest, progress func(key string, bytes int64)) (Problems, error) {
	var probs Problems
	keep := func(err error) error {
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			probs = append(probs, err)
			return nil
		}
		return err
	}
	for _, t := range m.Tables {
		if err := keep(c.Table(ctx, t)); err != nil {
			return probs, err
		}
		if progress != nil {
			progress(t.Key, t.StoredBytes)
		}
	}
	var mu sync.Mutex // keep and progress, called by CheckBlobs' workers
	// Packed files are read here, in the walk, each pack once from its start:
	// their frames come in the list's order. Blobs go to CheckBlobs' workers.
	packs := NewPackCursor(c.s, m)
	defer packs.Abandon()
	badPack := map[int]bool{} // a pack found bad is named once, not once per file
	report := func(err error) error {
		mu.Lock()
		defer mu.Unlock()
		return keep(err)
	}
	checkPacked := func(f archive.File) error {
		if packs.cur >= 0 && packs.cur != f.Pack.Index {
			if err := report(packs.Close()); err != nil { // the pack before, whole
				return err
			}
		}
		if badPack[f.Pack.Index] {
			return nil
		}
		frame, err := packs.Frame(ctx, f)
		if err == nil {
			err = CheckFrame(c.dec, m, f, frame)
		}
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			badPack[f.Pack.Index] = true
			packs.Abandon()
		}
		if err := report(err); err != nil {
			return err
		}
		if progress != nil {
			mu.Lock()
			progress(f.Path, f.StoredBytes)
			mu.Unlock()
		}
		return nil
	}
	err := CheckBlobs(ctx, c.s, c.Jobs, func(fn func(archive.File) error) error {
		err := Files(ctx, c.s, m, func(f archive.File) error {
			switch {
			case f.Missing || f.OutsideRoot:
				return nil
			case f.Pack != nil:
				return checkPacked(f)
			}
			return fn(f)
		})
		if err != nil {
			return err
		}
		return report(packs.Close())
	}, func(f archive.File, err error) error {
		mu.Lock()
		defer mu.Unlock()
		if err := keep(err); err != nil {
			return err
		}
		if progress != nil {
			progress(f.Path, f.StoredBytes)
		}
		return nil
	})
	return probs, keep(err)
}

// CheckBlobs checks the blob of every file walk gives (content several files share
// once, as BlobsSeen remembers), jobs at a time, each with its own decoder. done is
// called with each file and its check's result (nil, or a *archive.VerifyError, or
// why the check could not run), from the workers, concurrently: an error it returns
// stops the walk and is returned, as is an error of walk.
func CheckBlobs(ctx context.Context, s storage.Store, jobs int, walk func(fn func(archive.File) error) error, done func(archive.File, error) error) error {
	if jobs < 1 {
		jobs = BlobJobs
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	blobs := make(chan archive.File)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			chk, err := NewChecker(s)
			if err != nil {
				cancel(err)
				return
			}
			defer chk.Close()
			for f := range blobs {
				if ctx.Err() != nil {
					continue
				}
				if err := done(f, chk.Blob(ctx, f)); err != nil {
					cancel(err)
				}
			}
		})
	}
	var seen BlobsSeen
	err := walk(func(f archive.File) error {
		if seen.Seen(f.SHA256) {
			return nil
		}
		select {
		case blobs <- f:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	})
	close(blobs)
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause // what the walk saw, if anything, follows from it
	}
	return err
}

// maxSeen bounds BlobsSeen: past it, the set starts again.
const maxSeen = 1 << 16

// BlobsSeen remembers the blobs a walk over a manifest's files has checked, so that
// content several files share is read once — up to maxSeen blobs (a few MiB): a
// tenant's million distinct recordings must not cost their digests in memory, and
// a blob read twice costs only time.
type BlobsSeen struct{ m map[string]struct{} }

// Seen reports whether sum was seen, and remembers it.
func (b *BlobsSeen) Seen(sum string) bool {
	if _, ok := b.m[sum]; ok {
		return true
	}
	if b.m == nil || len(b.m) >= maxSeen {
		b.m = make(map[string]struct{}, 1024)
	}
	b.m[sum] = struct{}{}
	return false
}

// Table checks one table object: stored size and SHA-256, that it decompresses,
// and its row and byte counts.
func (c *Checker) Table(ctx context.Context, t archive.Table) error {
	rc, err := c.get(ctx, t.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	stored := archive.NewDigest()
	if err := c.dec.Reset(io.TeeReader(rc, stored)); err != nil {
		return &archive.VerifyError{Key: t.Key, What: "decompress", Reason: err}
	}
	var rows archive.RowCounter
	if _, err := io.Copy(&rows, c.dec); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &archive.VerifyError{Key: t.Key, What: "decompress", Reason: err}
	}
	// The decoder may stop at the end of the frame: hash whatever follows it too.
	if _, err := io.Copy(io.Discard, io.TeeReader(rc, stored)); err != nil {
		return fmt.Errorf("read %s: %w", t.Key, err)
	}
	if err := stored.Check(t.Key, t.SHA256, t.StoredBytes); err != nil {
		return err
	}
	switch {
	case rows.Rows != t.Rows:
		return &archive.VerifyError{Key: t.Key, What: "rows", Want: fmt.Sprint(t.Rows), Got: fmt.Sprint(rows.Rows)}
	case rows.Bytes != t.RawBytes:
		return &archive.VerifyError{Key: t.Key, What: "raw bytes", Want: fmt.Sprint(t.RawBytes), Got: fmt.Sprint(rows.Bytes)}
	case !rows.Complete():
		return &archive.VerifyError{Key: t.Key, What: "truncated COPY text"}
	}
	return nil
}

// Blob checks a file's content: it decompresses to the size and SHA-256 the
// manifest recorded.
func (c *Checker) Blob(ctx context.Context, f archive.File) error {
	key, err := archive.BlobKeyHex(f.SHA256)
	if err != nil {
		return &archive.VerifyError{Key: f.Path, What: "sha256", Reason: err}
	}
	rc, err := c.get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	c.br.Reset(rc)
	defer c.br.Reset(nil)
	if err := c.dec.Reset(c.br); err != nil {
		return &archive.VerifyError{Key: key, What: "decompress", Reason: err}
	}
	raw := archive.NewDigest()
	if _, err := io.Copy(raw, c.dec); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &archive.VerifyError{Key: key, What: "decompress", Reason: err}
	}
	return raw.Check(key, f.SHA256, f.Size)
}

func (c *Checker) get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := c.s.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &archive.VerifyError{Key: key, What: "missing object"}
	}
	return rc, err
}
