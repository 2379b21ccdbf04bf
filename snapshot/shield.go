package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// Shield is what a file shield (purgeguard shield) tells a snapshot. The snapshot
// does not know the shield: the caller hands it an implementation.
type Shield interface {
	// Stored returns the digest and stored size of the content of the file open as
	// fd (fi its stat) when the shield has already put its blob in the snapshot's
	// store and the file has not changed since; ok is false otherwise (the snapshot then hashes
	// and uploads as usual). It is asked for every file a snapshot saves: a
	// descriptor, not an *os.File, which costs two system calls more to make.
	Stored(fd int, fi fs.FileInfo) (sum [32]byte, storedBytes int64, ok bool)
	// Lost returns the shield's copy of a path the disk no longer has; ok is false
	// when the shield knows of none.
	Lost(ctx context.Context, path string) (c ShieldCopy, ok bool, err error)
}

// ShieldAt is a Shield that also answers for a file by its name in an open
// directory, without the file being opened: two system calls (a stat by name and
// the xattr read by name) where Stored's open, fstat, fgetxattr and close cost
// four. The snapshot asks it first, for every file it saves, and opens the file as
// before when it says no.
type ShieldAt interface {
	Shield
	// StoredAt is Stored for the file name (one path component, not followed when it
	// is a symbolic link) in the directory open as dirfd, fi its stat by name. The
	// file may have been replaced between that stat and StoredAt's own look: ok must
	// then be false unless what it vouches for is the inode fi describes.
	StoredAt(dirfd int, name string, fi fs.FileInfo) (sum [32]byte, storedBytes int64, ok bool)
}

// ShieldCopy is a lost file as the shield keeps it.
type ShieldCopy struct {
	SHA256      [32]byte
	Size        int64
	StoredBytes int64 // of its blob, when stored
	Mode        uint32
	ModTime     time.Time
	// UID and GID own the lost file; HasOwner is false when the shield did not say.
	UID, GID uint32
	HasOwner bool
	// Link is a hard link holding the content on this host ("" once removed): the
	// snapshot reads it like the file itself; without it, the blob must be stored.
	Link string
}

// fromShield saves a missing file from the shield: its link read and stored like
// the file itself, else its blob already in storage. ok is false when the shield
// has no copy; the file is then missing.
func (e *exporter) fromShield(ctx context.Context, fw *fileWorker, m *archive.Manifest, p filePath, f archive.File, ev Event) (archive.File, Event, bool, error) {
	c, ok, err := e.o.Shield.Lost(ctx, p.path)
	if err != nil || !ok {
		return f, ev, false, err
	}
	f.Recovered = true
	ev.Recovered = true
	if c.Link != "" {
		fh, err := os.OpenFile(c.Link, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == nil {
			defer fh.Close()
			rf, rev, err := e.saveOpen(ctx, fw, m, p.path, f, ev, fh, true)
			if err == nil {
				// The link's own mode and mtime are the lost file's (one inode).
				e.o.Log.Info("file missing on disk saved from the shield's link", "path", p.path, "table", f.Table)
			}
			return rf, rev, true, err
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return f, ev, false, fmt.Errorf("shield link %s: %w", c.Link, err)
		}
	}
	if c.SHA256 == ([32]byte{}) {
		return f, ev, false, nil // only a link was known, and it is gone
	}
	key := archive.BlobKey(c.SHA256)
	info, err := e.store.Stat(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return f, ev, false, nil // the shield knew it, but its content is nowhere: missing
	}
	if err != nil {
		return f, ev, false, err
	}
	if e.o.Sealer != nil {
		// The shield's blob is plaintext and shared: the tenant's sealed copy is
		// made from it, stream to stream (its bytes are already compressed).
		if info.Size, err = e.sealShieldBlob(ctx, m, c.SHA256); err != nil {
			return f, ev, false, err
		}
	} else {
		e.mu.Lock()
		err = e.reuse(c.SHA256, false)
		e.mu.Unlock()
		if err != nil {
			return f, ev, false, err
		}
	}
	f.Size, f.Mode, f.ModTime, f.SHA256, f.StoredBytes = c.Size, c.Mode, c.ModTime.UTC(), fmt.Sprintf("%x", c.SHA256), info.Size
	if c.HasOwner {
		// The blob has no owner of its own: the shield's record says who owned the
		// file (call-logd reads recordings through their group).
		uid, gid := int(c.UID), int(c.GID)
		f.Owner = &archive.Owner{UID: c.UID, GID: c.GID, User: e.names.User(uid), Group: e.names.Group(gid)}
	}
	ev.Bytes = c.Size
	e.o.Log.Info("file missing on disk saved from the shield's blob", "path", p.path, "table", f.Table)
	return f, ev, true, nil
}

// sealShieldBlob stores the tenant's sealed copy of a shield blob (plaintext, at its
// content key), unless the tenant has it already; it returns the stored size.
func (e *exporter) sealShieldBlob(ctx context.Context, m *archive.Manifest, sum [32]byte) (int64, error) {
	key := archive.BlobKey(sum)
	store := e.storeOf(m)
	storedKey, err := e.storedKey(m, key)
	if err != nil {
		return 0, err
	}
	size, _, err := e.blobs.ensure(storedKey, func() (int64, bool, error) {
		if info, err := store.Stat(ctx, key); err == nil {
			return info.Size, false, e.reuseBlob(ctx, m, sum, storedKey)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return 0, false, err
		}
		rc, err := e.store.Get(ctx, key)
		if err != nil {
			return 0, false, err
		}
		defer rc.Close()
		if err := store.Put(ctx, key, rc); err != nil {
			return 0, false, err
		}
		info, err := store.Stat(ctx, key)
		return info.Size, true, err
	})
	return size, err
}
