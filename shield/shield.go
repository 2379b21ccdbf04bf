// Package shield keeps every file under the configured roots recoverable whoever
// deletes it: a hard link of each file in a shield directory on the same filesystem
// (an unlink by any process leaves the content on disk), an upload of each settled
// file's content as a blob (the blobs/sha256/ layout snapshots use), and a loss
// record when a shielded path disappears. Lost files come back with Restore.
//
// The index (path → inode, size, mtime, mode, owner, digest, state) lives in an
// embedded on-disk store (bbolt), never whole in memory: a root of a million files
// costs the index's pages, not the heap.
package shield

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// Root is one files root and the directory its links go to.
type Root struct {
	Dir    string // the files root (call-logd: /var/lib/wazo/sounds/tenants)
	Shield string // the shield directory: same filesystem, outside Dir
}

// DefaultShieldDir is where a root's links go unless configured: beside the root,
// so on the same filesystem in every ordinary layout.
func DefaultShieldDir(root string) string {
	root = filepath.Clean(root)
	return filepath.Join(filepath.Dir(root), ".purgeguard-shield-"+filepath.Base(root))
}

// Options configures a shield.
type Options struct {
	Roots []Root
	// Index is the path of the index file (bbolt). Its directory is created.
	Index string
	Store storage.Store
	// Settle is how long a file must stay unchanged before its blob is uploaded
	// (default 1m): a recording is written for as long as the call lasts.
	Settle time.Duration
	// Rescan is the interval of full rescans behind the watcher (default 1h).
	Rescan time.Duration
	// Keep is how long a lost file's link is kept (default 30 days); after it, the
	// link goes only once its blob is verified in storage.
	Keep time.Duration
	// Jobs bounds concurrent uploads (default 2).
	Jobs int
	// Level is the zstd level of blobs (default 3).
	Level       int
	ToolVersion string
	Log         *slog.Logger
	Now         func() time.Time
	// Hooks for tests and metrics: called after a link is made and after a blob
	// is uploaded (not for one already stored). May be nil.
	OnLinked   func(path string)
	OnUploaded func(path, digest string)
}

func (o *Options) defaults() {
	if o.Settle <= 0 {
		o.Settle = time.Minute
	}
	if o.Rescan <= 0 {
		o.Rescan = time.Hour
	}
	if o.Keep <= 0 {
		o.Keep = 30 * 24 * time.Hour
	}
	if o.Jobs < 1 {
		o.Jobs = 2
	}
	if o.Level < 1 {
		o.Level = 3
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// FilesystemError refuses a shield directory that is not on its root's filesystem:
// a hard link cannot cross filesystems.
type FilesystemError struct {
	Root, Shield       string
	RootDev, ShieldDev uint64
}

func (e *FilesystemError) Error() string {
	return fmt.Sprintf("shield: files root %s (device %d) and shield directory %s (device %d) are on different filesystems: hard links cannot cross them; configure a shield directory on the root's filesystem",
		e.Root, e.RootDev, e.Shield, e.ShieldDev)
}

// Shield is an open shield: its index and its roots.
type Shield struct {
	o     Options
	db    *bolt.DB
	roots []Root
	mu    sync.Mutex // serialises index writes that read first (observe, lose)
	stats stats
	id    string // in storage: shield/<id>/live.zst
	// tag is the store's (storeTag), once tagged.
	tagMu     sync.Mutex
	tag       storeTag
	tagged    bool
	tagWarned time.Time
	// nextDue is when the first queued file not settled at the last upload pass
	// settles (ns; 0: none).
	nextDue atomic.Int64
}

// Open checks the roots (each exists; its shield directory is created on the same
// filesystem, outside the root), and opens the index. Nothing is scanned yet.
func Open(o Options) (*Shield, error) {
	o.defaults()
	if len(o.Roots) == 0 {
		return nil, errors.New("shield: no files root configured")
	}
	if o.Index == "" {
		return nil, errors.New("shield: no index path configured")
	}
	var roots []Root
	for _, r := range o.Roots {
		r.Dir, r.Shield = filepath.Clean(r.Dir), filepath.Clean(r.Shield)
		if !filepath.IsAbs(r.Dir) || !filepath.IsAbs(r.Shield) {
			return nil, fmt.Errorf("shield: root %s, shield %s: both must be absolute", r.Dir, r.Shield)
		}
		if archive.Within(r.Dir, r.Shield) || archive.Within(r.Shield, r.Dir) {
			return nil, fmt.Errorf("shield: shield directory %s and files root %s must not contain each other", r.Shield, r.Dir)
		}
		if err := checkSameFS(r); err != nil {
			return nil, err
		}
		roots = append(roots, r)
	}
	if err := os.MkdirAll(filepath.Dir(o.Index), 0o700); err != nil {
		return nil, fmt.Errorf("shield: index directory: %w", err)
	}
	// A second shield on the same index waits a little, then says so. The free
	// list is written at each commit (a few pages: the index mostly grows): without
	// it (NoFreelistSync) every open rebuilt it by reading every page of the index,
	// and a restart's RSS was the index's size (82 MiB at 100,000 files). It is kept
	// as a map, whose allocations do not scan a sorted array of every free page; the
	// mapping starts small and grows with the file (its resident pages are dropped
	// after each batch: dropPages).
	db, err := bolt.Open(o.Index, 0o600, &bolt.Options{Timeout: 5 * time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("shield: open index %s: %w", o.Index, err)
	}
	if err := initIndex(db); err != nil {
		db.Close()
		return nil, err
	}
	s := &Shield{o: o, db: db, roots: roots, id: shieldID(o.Index)}
	if err := s.loadStats(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the index.
func (s *Shield) Close() error { return s.db.Close() }

// checkSameFS creates the shield directory (mode 0700: the links keep the files'
// own modes, the directory keeps others from browsing them) and compares devices.
func checkSameFS(r Root) error {
	rst, err := os.Stat(r.Dir)
	if err != nil {
		return fmt.Errorf("shield: files root: %w", err)
	}
	if !rst.IsDir() {
		return fmt.Errorf("shield: files root %s: not a directory", r.Dir)
	}
	if err := os.MkdirAll(r.Shield, 0o700); err != nil {
		return fmt.Errorf("shield: shield directory: %w", err)
	}
	sst, err := os.Stat(r.Shield)
	if err != nil {
		return fmt.Errorf("shield: shield directory: %w", err)
	}
	rd, sd := rst.Sys().(*syscall.Stat_t).Dev, sst.Sys().(*syscall.Stat_t).Dev
	if rd != sd {
		return &FilesystemError{Root: r.Dir, Shield: r.Shield, RootDev: uint64(rd), ShieldDev: uint64(sd)}
	}
	return nil
}

// rootOf returns the root path lies under.
func (s *Shield) rootOf(path string) (Root, bool) {
	for _, r := range s.roots {
		if archive.Within(r.Dir, path) && path != r.Dir {
			return r, true
		}
	}
	return Root{}, false
}

// Run shields until ctx ends: a full scan, then the watcher, with a rescan every
// Rescan, uploads of settled files, loss records, and the sweep of expired links.
func (s *Shield) Run(ctx context.Context) error {
	w, err := newWatcher(s)
	if err != nil {
		return err
	}
	defer w.close()
	// The watches go in before the scan: a file created while scanning is seen by
	// one or the other.
	for _, r := range s.roots {
		if err := s.scan(ctx, r, w); err != nil {
			return err
		}
	}
	s.o.Log.Info("shield: initial scan done", "files", s.stats.files.Load())
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { w.loop(ctx) })
	wg.Go(func() { s.uploadLoop(ctx) })
	wg.Go(func() { s.lossLoop(ctx) })
	tick := time.NewTicker(s.o.Rescan)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.overflow:
			s.o.Log.Warn("shield: watcher overflowed: rescanning")
		case <-tick.C:
		}
		for _, r := range s.roots {
			if err := s.scan(ctx, r, w); err != nil && ctx.Err() == nil {
				s.o.Log.Error("shield: rescan", "root", r.Dir, "err", err)
			}
		}
	}
}

// onceWait bounds how long a pass waits for files about to settle.
const onceWait = time.Minute

// Once is one pass, for a cron-style shield: scan every root, record the losses,
// upload what has settled, and sweep. A file that settles within Settle of the
// scan (at most onceWait) is waited for: one pass uploads what was about to go (a
// recording that ended just before, a file a killed shield saw last), rather than
// leaving it for the next. A file still being written is not waited for past that.
func (s *Shield) Once(ctx context.Context) error {
	for _, r := range s.roots {
		if err := s.scan(ctx, r, nil); err != nil {
			return err
		}
	}
	var errs []error
	if err := s.recordLosses(ctx); err != nil {
		errs = append(errs, err)
	}
	until := s.o.Now().Add(min(s.o.Settle, onceWait))
	for {
		if err := s.uploadSettled(ctx); err != nil {
			errs = append(errs, err)
			break
		}
		due := s.nextDue.Load()
		if due == 0 || due > until.UnixNano() {
			break
		}
		select {
		case <-ctx.Done():
			return errors.Join(append(errs, ctx.Err())...)
		case <-time.After(time.Unix(0, due).Sub(s.o.Now())):
		}
	}
	if err := s.recordLosses(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.sweep(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.writeLive(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
