package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// tmpPrefix marks files being written; List never shows them.
const tmpPrefix = ".tmp-"

// FileStore keeps objects as files under a root directory.
type FileStore struct {
	root string
}

var (
	_ Store     = (*FileStore)(nil)
	_ Leftovers = (*FileStore)(nil)
	_ Erasable  = (*FileStore)(nil)
)

// NewFile opens (creating if needed) a directory store.
func NewFile(root string) (*FileStore, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("storage: file root %q must be absolute", root)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &FileStore{root: filepath.Clean(root)}, nil
}

func (s *FileStore) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put writes to a temporary file in the target's directory, syncs it, renames it
// over the key and syncs the directory: a reader sees the old object or the new
// one, never half of one, even across a crash.
func (s *FileStore) Put(ctx context.Context, key string, r io.Reader) error {
	p, tmp, err := s.writeTemp(ctx, key, r)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("file: put %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// writeTemp writes the stream to a synced temporary file beside the key's path and
// returns both; on error nothing is left behind.
func (s *FileStore) writeTemp(ctx context.Context, key string, r io.Reader) (p, name string, err error) {
	p, tmp, err := s.createTemp(ctx, key, r)
	if err != nil {
		return "", "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("file: put %s: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("file: put %s: %w", key, err)
	}
	return p, tmp.Name(), nil
}

// createTemp writes the stream to a temporary file beside the key's path, not
// synced, and returns the path and the file, still open; on error nothing is left
// behind.
func (s *FileStore) createTemp(ctx context.Context, key string, r io.Reader) (p string, f *os.File, err error) {
	p, err = s.path(key)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, fmt.Errorf("file: put %s: %w", key, err)
	}
	tmp, err := createTempFile(dir, tmpPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("file: put %s: %w", key, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := copyCtx(ctx, tmp, r); err != nil {
		return "", nil, fmt.Errorf("file: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return "", nil, fmt.Errorf("file: put %s: %w", key, err)
	}
	return p, tmp, nil
}

// CreateErasable writes a temporary file and hard-links it to the key's path: a
// link, unlike a rename, fails when the name exists, so of two writers exactly one
// creates the object, whole. A directory keeps no retention and no versions.
func (s *FileStore) CreateErasable(ctx context.Context, key string, r io.Reader) error {
	p, tmp, err := s.writeTemp(ctx, key, r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &ExistError{Key: key}
		}
		return fmt.Errorf("file: create %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// ReplaceErasable is Put: a file has no earlier versions to destroy.
func (s *FileStore) ReplaceErasable(ctx context.Context, key string, r io.Reader) error {
	return s.Put(ctx, key, r)
}

// Erase is Delete: a removed file has no versions left behind.
func (s *FileStore) Erase(ctx context.Context, key string) error {
	return s.Delete(ctx, key)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file: sync %s: %w", dir, err)
	}
	return nil
}

// Get opens the object's file.
func (s *FileStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := openRead(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NotExistError{Key: key}
	}
	if err != nil {
		return nil, fmt.Errorf("file: get %s: %w", key, err)
	}
	return f, nil
}

// Stat describes the object's file.
func (s *FileStore) Stat(ctx context.Context, key string) (Info, error) {
	p, err := s.path(key)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		return Info{}, &NotExistError{Key: key}
	}
	if err != nil {
		return Info{}, fmt.Errorf("file: stat %s: %w", key, err)
	}
	return Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List walks the directories the prefix can reach, in key order, calling fn as it
// goes: one directory's names are held at a time, never the whole listing (a
// million blobs would cost over a hundred MiB, and a BoundedStore would see no
// progress for as long as the walk takes).
func (s *FileStore) List(ctx context.Context, prefix string, fn func(Info) error) error {
	// Start from the deepest directory the prefix names, so listing one tenant does
	// not walk every tenant.
	start, startKey := s.root, ""
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start, startKey = filepath.Join(s.root, filepath.FromSlash(prefix[:i])), prefix[:i+1]
	}
	var fnErr error
	err := s.listDir(ctx, start, startKey, prefix, func(i Info) error {
		if err := fn(i); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr // the caller's own error, as it gave it
	}
	if err != nil {
		return fmt.Errorf("file: list %s: %w", prefix, err)
	}
	return nil
}

// listDir calls fn for each object under dir (whose key is dirKey, "" or ending in
// "/") with the prefix, in key order. A directory's entries sort by name, a
// subdirectory's as its name and "/": every key under it starts so, and no file
// name holds a "/", so the walk meets keys in the order a sort of keys gives
// ("a.b/6" before "a/1").
func (s *FileStore) listDir(ctx context.Context, dir, dirKey, prefix string, fn func(Info) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing under the prefix, or removed while we walked
	}
	if err != nil {
		return err
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := dirKey + sortName(e)
		if e.IsDir() {
			// Only a directory whose keys can start with the prefix is walked.
			if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
				if err := s.listDir(ctx, filepath.Join(dir, e.Name()), key, prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if strings.HasPrefix(e.Name(), tmpPrefix) || !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we walked
		}
		if err != nil {
			return err
		}
		if err := fn(Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes the object's file and the directories it leaves empty.
func (s *FileStore) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file: delete %s: %w", key, err)
	}
	for dir := filepath.Dir(p); dir != s.root && strings.HasPrefix(dir, s.root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break // not empty, or in use: fine
		}
	}
	return nil
}

// ListLeftovers walks the whole store for the temporary files of writes that never
// finished (a process killed mid-Put: a failed or cancelled Put removes its own).
func (s *FileStore) ListLeftovers(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // finished or removed while we walked
		}
		if err != nil {
			return err
		}
		infos = append(infos, Info{Key: filepath.ToSlash(rel), Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("file: list leftovers: %w", err)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Key < infos[j].Key })
	for _, info := range infos {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// RemoveLeftover removes a temporary file ListLeftovers named; any other key is
// refused, so that it can never remove an object.
func (s *FileStore) RemoveLeftover(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.Contains(key, "..") || strings.HasPrefix(key, "/") || !strings.HasPrefix(path.Base(key), tmpPrefix) {
		return fmt.Errorf("file: %q is not a leftover temporary file", key)
	}
	if err := os.Remove(filepath.Join(s.root, filepath.FromSlash(key))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file: remove leftover %s: %w", key, err)
	}
	return nil
}
