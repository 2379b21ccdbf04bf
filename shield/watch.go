package shield

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/fsnotify/fsnotify"
	bolt "go.etcd.io/bbolt"
)

// watcher turns inotify events under the roots into observations: every directory
// is watched (inotify is not recursive), a new directory is watched and scanned (it
// may hold files created before its watch), a created file is linked at once (the
// link shares the inode, so a recording still being written is shielded whole), a
// removed or renamed path is checked and, if gone, recorded lost.
type watcher struct {
	s        *Shield
	w        *fsnotify.Watcher
	overflow chan struct{}
}

func newWatcher(s *Shield) (*watcher, error) {
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return nil, fmt.Errorf("shield: watcher: %w", err)
	}
	return &watcher{s: s, w: w, overflow: make(chan struct{}, 1)}, nil
}

func (w *watcher) close() { _ = w.w.Close() }

func (w *watcher) add(dir string) error {
	if err := w.w.Add(dir); err != nil && !isNotExist(err) {
		return fmt.Errorf("shield: watch %s: %w (raise fs.inotify.max_user_watches?)", dir, err)
	}
	return nil
}

func (w *watcher) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				select {
				case w.overflow <- struct{}{}:
				default:
				}
				continue
			}
			w.s.o.Log.Error("shield: watcher", "err", err)
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if err := w.handle(ctx, ev); err != nil && ctx.Err() == nil {
				w.s.o.Log.Error("shield: event", "path", ev.Name, "op", ev.Op.String(), "err", err)
			}
		}
	}
}

func (w *watcher) handle(ctx context.Context, ev fsnotify.Event) error {
	s := w.s
	r, ok := s.rootOf(ev.Name)
	if !ok || ignored(ev.Name) {
		return nil
	}
	switch {
	case ev.Has(fsnotify.Create):
		fi, err := os.Lstat(ev.Name)
		if err != nil {
			if isNotExist(err) {
				return s.update1(func(tx *bolt.Tx) error { return s.check(tx, ev.Name) })
			}
			return err
		}
		if fi.IsDir() {
			// A new tenant directory: watch it, then scan what it already holds.
			return s.scanDir(ctx, r, ev.Name, w, false)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		return s.update1(func(tx *bolt.Tx) error { return s.observeRetry(tx, r, ev.Name, fi) })
	case ev.Has(fsnotify.Remove), ev.Has(fsnotify.Rename), ev.Has(fsnotify.Chmod):
		return s.update1(func(tx *bolt.Tx) error { return s.check(tx, ev.Name) })
	}
	// Writes are not followed one by one (a recording being written sends thousands):
	// the uploader looks at size and mtime before it uploads.
	return nil
}
