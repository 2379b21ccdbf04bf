package shield

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
)

// Loss is the record of a shielded file whose path no longer holds it: what it was,
// where its link keeps it, and the blob holding its content. It is stored as the
// detail of an audit record of kind archive.AuditLoss.
type Loss struct {
	Path        string    `json:"path"`
	Root        string    `json:"root"`
	Link        string    `json:"link"` // on the shield's host, kept until LostAt + keep
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	StoredBytes int64     `json:"stored_bytes"`
	Mode        uint32    `json:"mode"`
	ModTime     time.Time `json:"mtime"`
	UID         uint32    `json:"uid"`
	GID         uint32    `json:"gid"`
	LostAt      time.Time `json:"lost_at"`
	Why         string    `json:"why"` // removed (or moved away), replaced (another file took its path)
	// Dirs are the directories from the root down to the file's, with the owner and
	// mode they had, to recreate them as they were.
	Dirs []Dir `json:"dirs"`
}

// Dir is a directory's owner and mode.
type Dir struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
}

// lossTick is how often losses waiting for their record are looked at.
const lossTick = 2 * time.Second

func (s *Shield) lossLoop(ctx context.Context) {
	t := time.NewTicker(lossTick)
	defer t.Stop()
	lastSweep := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.recordLosses(ctx); err != nil && ctx.Err() == nil {
			s.o.Log.Debug("shield: loss records", "err", err)
		}
		if time.Since(lastSweep) > time.Hour {
			lastSweep = time.Now()
			if err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.o.Log.Warn("shield: sweep of expired links", "err", err)
			}
		}
	}
}

// recordLosses writes the loss record of every lost file whose blob is in storage:
// the record names the blob, so it waits for the upload (Settle after the file's
// last change; the link holds the content meanwhile, and the loss is in the log and
// the metrics at once).
func (s *Shield) recordLosses(ctx context.Context) error {
	if _, err := s.storeTag(ctx); err != nil {
		return err // the index must follow the store first: its digests may be another's
	}
	var todo []entryAt
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bUnrecorded).ForEach(func(k, _ []byte) error {
			e, err := getEntry(tx, k)
			if err != nil || e == nil || e.Digest == "" {
				return err
			}
			todo = append(todo, entryAt{key: bytes.Clone(k), loss: s.lossOf(tx, e)})
			return nil
		})
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range todo {
		a := &archive.Audit{ID: uuid.Must(uuid.NewV7()), Kind: archive.AuditLoss, Time: t.loss.LostAt,
			ToolVersion: s.o.ToolVersion, Outcome: "lost"}
		a.Host, _ = os.Hostname()
		if tenant, ok := TenantOf(t.loss.Root, t.loss.Path); ok {
			a.Tenants = []uuid.UUID{tenant}
		}
		a.Detail, _ = json.Marshal(t.loss)
		if err := repository.PutAudit(ctx, s.o.Store, a); err != nil {
			errs = append(errs, err)
			break // storage is down: the next pass tries again
		}
		if err := s.update1(func(tx *bolt.Tx) error {
			e, err := getEntry(tx, t.key)
			if err != nil || e == nil || e.Digest != t.loss.SHA256 {
				return err // queued again meanwhile: recorded again once uploaded
			}
			e.Recorded = true
			if err := putEntry(tx, t.key, e); err != nil {
				return err
			}
			return tx.Bucket(bUnrecorded).Delete(t.key)
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type entryAt struct {
	key  []byte
	loss Loss
}

func (s *Shield) lossOf(tx *bolt.Tx, e *entry) Loss {
	l := Loss{Path: e.Path, Root: e.Root, Link: e.Link, SHA256: e.Digest, Size: e.Size, StoredBytes: e.Stored,
		Mode: e.Mode, ModTime: time.Unix(0, e.MTime).UTC(), UID: e.UID, GID: e.GID,
		LostAt: time.Unix(0, e.LostAt).UTC(), Why: e.Why, Dirs: []Dir{}}
	rel, err := filepath.Rel(e.Root, filepath.Dir(e.Path))
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return l
	}
	dir := e.Root
	for part := range strings.SplitSeq(rel, string(filepath.Separator)) {
		dir = filepath.Join(dir, part)
		var m dirMeta
		if v := tx.Bucket(bDirs).Get([]byte(dir)); v != nil && json.Unmarshal(v, &m) == nil {
			l.Dirs = append(l.Dirs, Dir{Path: dir, Mode: m.Mode, UID: m.UID, GID: m.GID})
		} else {
			l.Dirs = append(l.Dirs, Dir{Path: dir, Mode: 0o755})
		}
	}
	return l
}

// TenantOf reads the tenant from a path laid out <root>/<tenant uuid>/… (call-logd's
// recordings); ok is false for any other layout.
func TenantOf(root, path string) (uuid.UUID, bool) {
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return uuid.Nil, false
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	id, err := uuid.Parse(first)
	if err != nil || id.String() != strings.ToLower(first) {
		return uuid.Nil, false
	}
	return id, true
}

// sweep removes the links of files lost more than Keep ago whose blob is in storage
// and verified (decompressed, hashed, compared); a link whose blob is not is kept
// and reported.
func (s *Shield) sweep(ctx context.Context) error {
	if _, err := s.storeTag(ctx); err != nil {
		return err // a blob verifies only in the store the index follows
	}
	cut := s.o.Now().Add(-s.o.Keep).UnixNano()
	var due [][]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bLost).Cursor()
		for k, _ := c.First(); k != nil && int64(beUint64(k[:8])) < cut; k, _ = c.Next() {
			due = append(due, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	dec, err := archive.NewBlobDecoder()
	if err != nil {
		return err
	}
	defer dec.Close()
	var errs []error
	for _, k := range due {
		key := k[8:]
		var e *entry
		if err := s.db.View(func(tx *bolt.Tx) (err error) { e, err = getEntry(tx, key); return err }); err != nil {
			return err
		}
		if e != nil {
			if e.Digest == "" || !e.Recorded {
				s.o.Log.Warn("shield: expired lost file kept: its blob or loss record is not in storage yet", "path", e.Path, "link", e.Link)
				continue
			}
			if err := s.verifyBlob(ctx, dec, e); err != nil {
				s.o.Log.Error("shield: expired lost file kept: its blob does not verify", "path", e.Path, "link", e.Link, "err", err)
				errs = append(errs, err)
				continue
			}
			if err := os.Remove(e.Link); err != nil && !isNotExist(err) {
				errs = append(errs, err)
				continue
			}
		}
		if err := s.update1(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bLost).Delete(k); err != nil {
				return err
			}
			if e != nil {
				// The entry as it is now: its claim on the blob is dropped once.
				cur, err := getEntry(tx, key)
				if err != nil {
					return err
				}
				if cur != nil {
					if err := unref(tx, cur); err != nil {
						return err
					}
				}
				s.stats.lost.Add(-1)
				s.stats.lostBytes.Add(-e.Size)
				s.stats.swept.Add(1)
			}
			return tx.Bucket(bEntries).Delete(key)
		}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Shield) verifyBlob(ctx context.Context, dec interface {
	Reset(io.Reader) error
	Read([]byte) (int, error)
}, e *entry) error {
	key, err := archive.BlobKeyHex(e.Digest)
	if err != nil {
		return err
	}
	rc, err := s.o.Store.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := dec.Reset(rc); err != nil {
		return &archive.VerifyError{Key: key, What: "decompress", Reason: err}
	}
	d := archive.NewDigest()
	if _, err := io.Copy(d, dec); err != nil {
		return &archive.VerifyError{Key: key, What: "decompress", Reason: err}
	}
	if err := d.Check(key, e.Digest, e.Size); err != nil {
		return err
	}
	return nil
}
