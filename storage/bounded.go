package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"
)

// Bounds limit how long a store may keep a caller waiting: each request is given up
// after Timeout without progress, and retried at most Retries times (after a short,
// growing wait) when it failed for any reason other than a missing or locked
// object. A dead or stalled store thus ends an operation with an error after at
// most about (Retries+1) × Timeout plus the waits: Budget.
type Bounds struct {
	// Timeout is how long a request may go without progress: the time to answer,
	// or between two reads of a body (time the caller spends with the data does
	// not count, nor, for Put, time spent waiting for the caller's stream).
	Timeout time.Duration
	// Retries is how many times a failed request is tried again. A Put is retried
	// only when its stream can be rewound (an io.Seeker); a Get only until its body
	// has started to flow.
	Retries int
}

// Default bounds, used for zero fields.
const (
	DefaultTimeout = 60 * time.Second
	DefaultRetries = 3
)

// maxWait caps the wait between two attempts.
const maxWait = 5 * time.Second

func (b Bounds) withDefaults() Bounds {
	if b.Timeout <= 0 {
		b.Timeout = DefaultTimeout
	}
	if b.Retries < 0 {
		b.Retries = 0
	}
	return b
}

// wait is the pause before attempt i (1-based retries): 250ms doubling, capped.
func wait(i int) time.Duration {
	d := 250 * time.Millisecond << (i - 1)
	if d > maxWait || d <= 0 {
		return maxWait
	}
	return d
}

// Budget is the longest a single operation can take against a store that never
// answers: every attempt timed out, plus the waits between them.
func (b Bounds) Budget() time.Duration {
	b = b.withDefaults()
	total := time.Duration(b.Retries+1) * b.Timeout
	for i := 1; i <= b.Retries; i++ {
		total += wait(i)
	}
	return total
}

// GiveUpError is a request given up after its retries: the store failed, or made
// no progress within Timeout, on every attempt.
type GiveUpError struct {
	Op       string // get, put, stat, list, delete
	Key      string
	Attempts int
	Last     error // the last attempt's error
}

func (e *GiveUpError) Error() string {
	return fmt.Sprintf("storage: %s %s: giving up after %d attempts: %v", e.Op, e.Key, e.Attempts, e.Last)
}

func (e *GiveUpError) Unwrap() error { return e.Last }

// ErrStalled is in the chain of an error of a request that made no progress within
// its timeout.
var ErrStalled = errors.New("no progress within the request timeout")

// BoundedStore is a Store whose every request is bounded (Bounds). It keeps the
// optional capabilities of the store it wraps: use Bound to make one.
type BoundedStore struct {
	Store
	b Bounds
}

// Bound wraps s so that no request waits forever and failed ones are retried
// within b. The optional capabilities of s (Locker, Leftovers, Erasable, Batcher)
// the result has too, and no others (a Batcher's Batch is nil when s has none).
func Bound(s Store, b Bounds) Store {
	bs := &BoundedStore{Store: s, b: b.withDefaults()}
	l, isLocker := s.(Locker)
	lo, hasLeftovers := s.(Leftovers)
	er, isErasable := s.(Erasable)
	lm, lom, em := lockMethods{bs, l}, leftoverMethods{bs, lo}, erasableMethods{bs, er}
	switch {
	case isLocker && hasLeftovers && isErasable:
		return &struct {
			*BoundedStore
			lockMethods
			leftoverMethods
			erasableMethods
		}{bs, lm, lom, em}
	case isLocker && hasLeftovers:
		return &struct {
			*BoundedStore
			lockMethods
			leftoverMethods
		}{bs, lm, lom}
	case isLocker && isErasable:
		return &struct {
			*BoundedStore
			lockMethods
			erasableMethods
		}{bs, lm, em}
	case hasLeftovers && isErasable:
		return &struct {
			*BoundedStore
			leftoverMethods
			erasableMethods
		}{bs, lom, em}
	case isLocker:
		return &struct {
			*BoundedStore
			lockMethods
		}{bs, lm}
	case hasLeftovers:
		return &struct {
			*BoundedStore
			leftoverMethods
		}{bs, lom}
	case isErasable:
		return &struct {
			*BoundedStore
			erasableMethods
		}{bs, em}
	}
	return bs
}

// Unwrap returns the wrapped store.
func (s *BoundedStore) Unwrap() Store { return s.Store }

// Batch is the wrapped store's batch, its writes bounded as Put's; nil when the
// wrapped store cannot batch.
func (s *BoundedStore) Batch() Batch {
	b := BatchOf(s.Store)
	if b == nil {
		return nil
	}
	return boundedBatch{Batch: b, s: s}
}

// boundedBatch is a Batch whose writes are bounded and retried as Put's. A flush
// syncs local files: it is not bounded.
type boundedBatch struct {
	Batch
	s *BoundedStore
}

func (b boundedBatch) Put(ctx context.Context, key string, r io.Reader) error {
	return b.s.put(ctx, "put", key, r, b.Batch.Put)
}

func (s *BoundedStore) String() string { return fmt.Sprint(s.Store) }

// retryable reports whether another attempt may help: not for what the store
// answered definitely, nor once the caller gave up.
func retryable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) && !errors.Is(err, ErrLocked)
}

// do runs op, each attempt under a watchdog, until it succeeds, fails definitely,
// or has used its retries.
func (s *BoundedStore) do(ctx context.Context, name, key string, again func() bool, op func(ctx context.Context, w *watchdog) error) error {
	if name == "get" || name == "put" || name == "stat" || name == "delete" || name == "create" || name == "replace" || name == "erase" {
		if err := ValidKey(key); err != nil {
			return err // no attempt can mend a key
		}
	}
	var err error
	for attempt := 1; ; attempt++ {
		actx, w := newWatchdog(ctx, s.b.Timeout)
		err = op(actx, w)
		stalled := w.stop()
		if err == nil {
			return nil
		}
		if stalled {
			err = fmt.Errorf("storage: %s %s: %w (%s): %w", name, key, ErrStalled, s.b.Timeout, err)
		}
		if !retryable(ctx, err) {
			if ctx.Err() != nil {
				return fmt.Errorf("storage: %s %s: %w", name, key, errors.Join(ctx.Err(), err))
			}
			return err
		}
		if again != nil && !again() {
			return err // not safely repeatable: the caller's stream is spent
		}
		if attempt > s.b.Retries {
			return &GiveUpError{Op: name, Key: key, Attempts: attempt, Last: err}
		}
		t := time.NewTimer(wait(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("storage: %s %s: %w", name, key, errors.Join(ctx.Err(), err))
		case <-t.C:
		}
	}
}

// Put stores the stream; only a seekable stream is retried (from its start). The
// watchdog runs while the store holds the data, not while it waits for r.
func (s *BoundedStore) Put(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, "put", key, r, s.Store.Put)
}

// put runs one of the wrapped store's writes of a stream under do.
func (s *BoundedStore) put(ctx context.Context, name, key string, r io.Reader, put func(context.Context, string, io.Reader) error) error {
	seeker, canRewind := r.(io.Seeker)
	var start int64
	if canRewind {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			canRewind = false
		}
	}
	first := true
	return s.do(ctx, name, key, func() bool {
		return canRewind
	}, func(ctx context.Context, w *watchdog) error {
		if !first {
			if _, err := seeker.Seek(start, io.SeekStart); err != nil {
				return err
			}
		}
		first = false
		src := pausingReader{r: r, w: w}
		if l, ok := r.(interface{ Len() int }); ok {
			return put(ctx, key, pausingSized{pausingReader: src, l: l}) // keeps a sized upload sized
		}
		return put(ctx, key, src)
	})
}

// pausingReader stops the watchdog while the store waits for the caller's stream,
// and restarts it at each read: reading is progress.
type pausingReader struct {
	r io.Reader
	w *watchdog
}

func (p pausingReader) Read(b []byte) (int, error) {
	p.w.pause()
	defer p.w.resume()
	return p.r.Read(b)
}

type pausingSized struct {
	pausingReader
	l interface{ Len() int }
}

func (p pausingSized) Len() int { return p.l.Len() }

// Get opens the object, retrying until it answers; the body's reads are each
// bounded by the timeout too (a body that stops flowing fails, not retried).
func (s *BoundedStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	var body io.ReadCloser
	var keep *watchdog
	err := s.do(ctx, "get", key, nil, func(actx context.Context, w *watchdog) error {
		rc, err := s.Store.Get(actx, key)
		if err != nil {
			return err
		}
		// The attempt's context must outlive this call: it carries the body.
		w.detach()
		body, keep = rc, w
		return nil
	})
	if err != nil {
		return nil, err
	}
	keep.pause()
	return &boundedBody{rc: body, w: keep, key: key, timeout: s.b.Timeout}, nil
}

// boundedBody runs the watchdog only while a Read waits on the store.
type boundedBody struct {
	rc      io.ReadCloser
	w       *watchdog
	key     string
	timeout time.Duration
}

func (b *boundedBody) Read(p []byte) (int, error) {
	b.w.resume()
	n, err := b.rc.Read(p)
	b.w.pause()
	if err != nil && err != io.EOF && b.w.fired() {
		return n, fmt.Errorf("storage: get %s: body: %w (%s): %w", b.key, ErrStalled, b.timeout, err)
	}
	return n, err
}

func (b *boundedBody) Close() error {
	err := b.rc.Close()
	b.w.release()
	return err
}

// Stat describes an object, retrying.
func (s *BoundedStore) Stat(ctx context.Context, key string) (Info, error) {
	var info Info
	err := s.do(ctx, "stat", key, nil, func(ctx context.Context, _ *watchdog) error {
		var err error
		info, err = s.Store.Stat(ctx, key)
		return err
	})
	return info, err
}

// List walks the objects; it is retried only until fn has been called once (so
// that fn never sees an object twice), and fn's own time does not count.
func (s *BoundedStore) List(ctx context.Context, prefix string, fn func(Info) error) error {
	called := false
	var fnErr error
	err := s.do(ctx, "list", prefix, func() bool { return !called }, func(ctx context.Context, w *watchdog) error {
		return s.Store.List(ctx, prefix, func(i Info) error {
			called = true
			w.pause()
			defer w.resume()
			if err := fn(i); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
	})
	if fnErr != nil {
		return fnErr // the caller's own error, as it gave it
	}
	return err
}

// Delete removes an object, retrying (deleting twice is harmless).
func (s *BoundedStore) Delete(ctx context.Context, key string) error {
	return s.do(ctx, "delete", key, nil, func(ctx context.Context, _ *watchdog) error {
		return s.Store.Delete(ctx, key)
	})
}

// lockMethods are a Locker's methods, bounded.
type lockMethods struct {
	s *BoundedStore
	l Locker
}

var _ Locker = lockMethods{}

// leftoverMethods are Leftovers' methods, bounded.
type leftoverMethods struct {
	s *BoundedStore
	l Leftovers
}

var _ Leftovers = leftoverMethods{}

var _ Batcher = (*BoundedStore)(nil)

// ListLeftovers is the wrapped store's, retried until fn was first called.
func (m leftoverMethods) ListLeftovers(ctx context.Context, fn func(Info) error) error {
	called := false
	return m.s.do(ctx, "list", "leftovers", func() bool { return !called }, func(ctx context.Context, w *watchdog) error {
		return m.l.ListLeftovers(ctx, func(i Info) error {
			called = true
			w.pause()
			defer w.resume()
			return fn(i)
		})
	})
}

// RemoveLeftover is the wrapped store's, retried.
func (m leftoverMethods) RemoveLeftover(ctx context.Context, key string) error {
	return m.s.do(ctx, "remove leftover", key, nil, func(ctx context.Context, _ *watchdog) error {
		return m.l.RemoveLeftover(ctx, key)
	})
}

// erasableMethods are Erasable's methods, bounded.
type erasableMethods struct {
	s *BoundedStore
	e Erasable
}

var _ Erasable = erasableMethods{}

// CreateErasable is the wrapped store's, retried from a seekable stream's start. An
// attempt whose answer was lost may have created the object: the retry then finds
// it there (fs.ErrExist), which is what a caller racing another writer handles.
func (m erasableMethods) CreateErasable(ctx context.Context, key string, r io.Reader) error {
	return m.s.put(ctx, "create", key, r, m.e.CreateErasable)
}

// ReplaceErasable is the wrapped store's, retried from a seekable stream's start.
func (m erasableMethods) ReplaceErasable(ctx context.Context, key string, r io.Reader) error {
	return m.s.put(ctx, "replace", key, r, m.e.ReplaceErasable)
}

// Erase is the wrapped store's, retried (erasing twice is harmless).
func (m erasableMethods) Erase(ctx context.Context, key string) error {
	return m.s.do(ctx, "erase", key, nil, func(ctx context.Context, _ *watchdog) error { return m.e.Erase(ctx, key) })
}

// CheckLock is the wrapped store's, retried.
func (m lockMethods) CheckLock(ctx context.Context, key string) error {
	return m.s.do(ctx, "check lock", key, nil, func(ctx context.Context, _ *watchdog) error { return m.l.CheckLock(ctx, key) })
}

// ExtendLock is the wrapped store's, retried.
func (m lockMethods) ExtendLock(ctx context.Context, key string) error {
	return m.s.do(ctx, "extend lock", key, nil, func(ctx context.Context, _ *watchdog) error { return m.l.ExtendLock(ctx, key) })
}

// watchdog cancels an attempt's context when it has run for its timeout without
// being paused or stopped.
type watchdog struct {
	d      time.Duration
	cancel context.CancelCauseFunc
	ctx    context.Context

	mu       sync.Mutex
	t        *time.Timer
	detached bool
}

func newWatchdog(parent context.Context, d time.Duration) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{d: d, cancel: cancel, ctx: ctx}
	w.t = time.AfterFunc(d, func() { cancel(ErrStalled) })
	return ctx, w
}

func (w *watchdog) pause() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Stop()
}

func (w *watchdog) resume() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() == nil {
		w.t.Reset(w.d)
	}
}

func (w *watchdog) fired() bool { return errors.Is(context.Cause(w.ctx), ErrStalled) }

// detach keeps the context alive past stop: the caller releases it later.
func (w *watchdog) detach() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.detached = true
}

// stop ends the attempt (unless detached) and reports whether the watchdog fired.
func (w *watchdog) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	fired := w.fired()
	if !w.detached {
		w.t.Stop()
		w.cancel(context.Canceled)
	}
	return fired
}

func (w *watchdog) release() {
	w.t.Stop()
	w.cancel(context.Canceled)
}
