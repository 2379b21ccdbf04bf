package shield

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/storage"
)

// LossQuery selects loss records.
type LossQuery struct {
	// Roots are the shield's roots: a record naming another root, a path outside
	// its root, or a link outside its root's shield directory is refused.
	Roots []Root
	Under string    // only paths under this directory (lexically); "" : every root
	Since time.Time // only losses at or after; zero: all
	// Bad, when set, is told of a record that cannot be read or fails the checks,
	// which is then skipped; when nil, such a record is an error.
	Bad func(key string, err error)
}

// Losses reads the loss records from storage (audit records of kind loss), newest
// last, one per path (the newest loss of a path: what it last held). Records that
// fail the checks of q.Roots are errors naming the record: nothing it says is used.
func Losses(ctx context.Context, s storage.Store, q LossQuery) ([]Loss, error) {
	if q.Under != "" {
		q.Under = filepath.Clean(q.Under)
		if _, ok := rootFor(q.Roots, q.Under); !ok && !slices.ContainsFunc(q.Roots, func(r Root) bool { return archive.Within(q.Under, r.Dir) }) {
			return nil, fmt.Errorf("shield: %s is not under a files root", q.Under)
		}
	}
	byPath := map[string]Loss{}
	prefixes := auditPrefixes(q.Since)
	for _, prefix := range prefixes {
		err := s.List(ctx, prefix, func(i storage.Info) error {
			l, ok, err := readLoss(ctx, s, i.Key)
			if err != nil && q.Bad != nil {
				q.Bad(i.Key, err)
				return nil
			}
			if err != nil || !ok {
				return err
			}
			if !q.Since.IsZero() && l.LostAt.Before(q.Since) {
				return nil
			}
			if q.Under != "" && !archive.Within(q.Under, l.Path) {
				return nil
			}
			if err := checkLoss(q.Roots, l); err != nil {
				err = fmt.Errorf("shield: loss record %s: %w", i.Key, err)
				if q.Bad != nil {
					q.Bad(i.Key, err)
					return nil
				}
				return err
			}
			if old, ok := byPath[l.Path]; !ok || !l.LostAt.Before(old.LostAt) {
				byPath[l.Path] = l
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]Loss, 0, len(byPath))
	for _, l := range byPath {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Loss) int {
		if c := a.LostAt.Compare(b.LostAt); c != 0 {
			return c
		}
		return cmpString(a.Path, b.Path)
	})
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// auditPrefixes lists the audit days from since to tomorrow (audit keys are laid
// out by day), or the whole audit area for a zero since.
func auditPrefixes(since time.Time) []string {
	if since.IsZero() {
		return []string{archive.AuditPrefix}
	}
	var out []string
	end := time.Now().UTC().Add(24 * time.Hour)
	for d := since.UTC().Truncate(24 * time.Hour); !d.After(end); d = d.Add(24 * time.Hour) {
		out = append(out, fmt.Sprintf("%s%04d/%02d/%02d/", archive.AuditPrefix, d.Year(), d.Month(), d.Day()))
	}
	return out
}

func readLoss(ctx context.Context, s storage.Store, key string) (Loss, bool, error) {
	rc, err := s.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return Loss{}, false, nil
	}
	if err != nil {
		return Loss{}, false, err
	}
	defer rc.Close()
	var a archive.Audit
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&a); err != nil {
		return Loss{}, false, fmt.Errorf("shield: audit record %s: %w", key, err)
	}
	if a.Kind != archive.AuditLoss {
		return Loss{}, false, nil
	}
	var l Loss
	if err := json.Unmarshal(a.Detail, &l); err != nil {
		return Loss{}, false, fmt.Errorf("shield: loss record %s: %w", key, err)
	}
	return l, true, nil
}

func rootFor(roots []Root, path string) (Root, bool) {
	for _, r := range roots {
		if archive.Within(r.Dir, path) {
			return r, true
		}
	}
	return Root{}, false
}

// checkLoss holds a record to the configured roots: its path under its root, its
// link under that root's shield directory, its directories on the way to the path,
// its digest well-formed.
func checkLoss(roots []Root, l Loss) error {
	r, ok := rootFor(roots, l.Path)
	switch {
	case !ok || filepath.Clean(l.Root) != r.Dir || filepath.Clean(l.Path) != l.Path || l.Path == r.Dir:
		return fmt.Errorf("path %s is not under a configured files root", l.Path)
	case l.Link != "" && !archive.Within(r.Shield, filepath.Clean(l.Link)):
		return fmt.Errorf("link %s is not in the shield directory %s", l.Link, r.Shield)
	case l.Size < 0:
		return fmt.Errorf("negative size")
	}
	for _, d := range l.Dirs {
		if !archive.Within(r.Dir, d.Path) || !archive.Within(d.Path, filepath.Dir(l.Path)) {
			return fmt.Errorf("directory %s is not on the way from %s to %s", d.Path, r.Dir, l.Path)
		}
	}
	if _, err := archive.ParseDigestHex(l.SHA256); err != nil {
		return err
	}
	return nil
}

// Restore outcomes.
const (
	Restored      = "restored"
	WouldRestore  = "would restore"
	Present       = "present" // the path holds the same content already
	Differs       = "differs" // the path holds another file: left alone
	Unrecoverable = "failed"  // neither the link nor the blob gave the content
)

// RestoreOutcome is what happened to one lost file.
type RestoreOutcome struct {
	Path    string `json:"path"`
	Outcome string `json:"outcome"`
	From    string `json:"from,omitempty"` // link or blob
	Detail  string `json:"detail,omitempty"`
}

// RestoreOptions says which lost files to put back.
type RestoreOptions struct {
	LossQuery
	DryRun bool
	Log    *slog.Logger
}

// RestoreError says some lost files could not be put back; the others were.
type RestoreError struct{ Failed, Differ int }

func (e *RestoreError) Error() string {
	return fmt.Sprintf("shield: %d lost files could not be restored, %d paths hold another file", e.Failed, e.Differ)
}

// Restore puts every selected lost file back at its path, from its link when the
// link still holds the content, else from its blob: byte-identical (checked against
// the recorded digest before it appears), with its mode, mtime, owner and group,
// its missing directories recreated with the owner and mode they had. A path
// holding another file is left alone and reported; a path leaving its root, through
// a symbolic link too, is refused.
func Restore(ctx context.Context, s storage.Store, o RestoreOptions) ([]RestoreOutcome, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ls, err := Losses(ctx, s, o.LossQuery)
	if err != nil {
		return nil, err
	}
	dec, err := archive.NewBlobDecoder()
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out := []RestoreOutcome{}
	var failed, differ int
	for _, l := range ls {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		r, _ := rootFor(o.Roots, l.Path)
		res := restoreOne(ctx, s, dec, r, l, o.DryRun)
		switch res.Outcome {
		case Unrecoverable:
			failed++
			o.Log.Error("shield: lost file not restored", "path", l.Path, "err", res.Detail)
		case Differs:
			differ++
			o.Log.Warn("shield: lost file's path holds another file: left alone", "path", l.Path)
		}
		out = append(out, res)
	}
	if failed > 0 || differ > 0 {
		return out, &RestoreError{Failed: failed, Differ: differ}
	}
	return out, nil
}

func restoreOne(ctx context.Context, s storage.Store, dec *zstd.Decoder, r Root, l Loss, dryRun bool) RestoreOutcome {
	res := RestoreOutcome{Path: l.Path}
	pr := place.NewRoot(r.Dir)
	if err := pr.Check(l.Path); err != nil {
		res.Outcome, res.Detail = Unrecoverable, err.Error()
		return res
	}
	if fi, err := os.Lstat(l.Path); err == nil {
		res.Outcome = Differs
		if fi.Mode().IsRegular() && sameContent(l.Path, l.SHA256, l.Size) {
			res.Outcome = Present
		}
		return res
	}
	from, open := sourceOf(ctx, s, dec, r, l)
	res.From = from
	if open == nil {
		res.Outcome, res.Detail = Unrecoverable, "link gone and blob not in storage"
		return res
	}
	if dryRun {
		res.Outcome = WouldRestore
		return res
	}
	dirs := map[string]Dir{}
	for _, d := range l.Dirs {
		dirs[d.Path] = d
	}
	if _, err := pr.MkdirAll(filepath.Dir(l.Path), func(dir string) (place.DirAttr, bool) {
		d, ok := dirs[dir]
		return place.DirAttr{Mode: fs.FileMode(d.Mode).Perm(), Owner: place.Owner{UID: int(d.UID), GID: int(d.GID)}}, ok
	}); err != nil {
		res.Outcome, res.Detail = Unrecoverable, err.Error()
		return res
	}
	rc, err := open()
	if err != nil {
		res.Outcome, res.Detail = Unrecoverable, err.Error()
		return res
	}
	defer rc.Close()
	d := archive.NewDigest()
	st, err := pr.Stage(ctx, l.Path, "shield", io.TeeReader(rc, d), place.Attr{Mode: fs.FileMode(l.Mode), ModTime: l.ModTime,
		Owner: place.Owner{UID: int(l.UID), GID: int(l.GID)}}, func() error { return d.Check(l.Path, l.SHA256, l.Size) })
	if err != nil {
		res.Outcome, res.Detail = Unrecoverable, err.Error()
		return res
	}
	if err := st.Commit(false); err != nil {
		_ = st.Abort()
		if errors.Is(err, place.ErrExists) {
			res.Outcome = Differs
			return res
		}
		res.Outcome, res.Detail = Unrecoverable, err.Error()
		return res
	}
	res.Outcome = Restored
	return res
}

// sourceOf picks where a lost file's content comes from: its link, if it still
// holds an inode of the recorded size, else its blob. The content is checked
// against the digest as it is written, whichever it is.
func sourceOf(ctx context.Context, s storage.Store, dec *zstd.Decoder, r Root, l Loss) (string, func() (io.ReadCloser, error)) {
	if l.Link != "" {
		if fi, err := os.Lstat(l.Link); err == nil && fi.Mode().IsRegular() && fi.Size() == l.Size {
			return "link", func() (io.ReadCloser, error) {
				return os.OpenFile(l.Link, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			}
		}
	}
	key, err := archive.BlobKeyHex(l.SHA256)
	if err != nil {
		return "", nil
	}
	if _, err := s.Stat(ctx, key); err != nil {
		return "", nil
	}
	return "blob", func() (io.ReadCloser, error) {
		rc, err := s.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		if err := dec.Reset(rc); err != nil {
			rc.Close()
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{dec, rc}, nil
	}
}

// sameContent reports whether path holds content of the digest and size.
func sameContent(path, digest string, size int64) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	d := archive.NewDigest()
	if _, err := io.Copy(d, f); err != nil {
		return false
	}
	return d.Check(path, digest, size) == nil
}
