// Package storage is where snapshots live: one small, streaming, context-first
// interface with a file:// backend (the embedded default) and an s3:// backend
// (MinIO, AWS S3). Every backend passes the same conformance suite (storagetest).
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Store holds objects by key. Keys are slash-separated relative paths.
type Store interface {
	// Put stores the stream under key. The object is visible whole or not at all:
	// a failed or cancelled Put leaves nothing behind under key.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens an object. A missing key is an error that Is fs.ErrNotExist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes an object. A missing key is an error that Is fs.ErrNotExist.
	Stat(ctx context.Context, key string) (Info, error)
	// List calls fn for every object whose key starts with prefix, in lexical key
	// order. An error from fn stops the walk and is returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes an object. Deleting a missing key is not an error. An object
	// under retention (S3 Object Lock) is not removed: the error Is ErrLocked.
	Delete(ctx context.Context, key string) error
}

// Locker is the optional capability of a store whose objects may carry a retention
// lock (S3 Object Lock). Callers find it by type assertion; a store without it keeps
// no locks, and Delete alone decides.
type Locker interface {
	// CheckLock answers what Delete would about the object's lock, deleting nothing:
	// an error that Is ErrLocked while a retention or legal hold protects it, nil
	// otherwise (or when the store locks nothing). A dry run reports with it.
	CheckLock(ctx context.Context, key string) error
	// ExtendLock keeps an object stored earlier at least as long as one written now:
	// a blob uploaded once and named again by a newer snapshot must not become
	// deletable first. A retention is only ever lengthened. A missing key is an
	// error that Is fs.ErrNotExist.
	ExtendLock(ctx context.Context, key string) error
}

// Leftovers is the optional capability of a store whose interrupted writes can leave
// temporary objects behind that List never shows: a file:// Put killed between
// creating its temporary file and renaming it. prune sweeps them once they are older
// than its grace. (An s3:// upload killed mid-way leaves an incomplete multipart
// upload instead: a bucket lifecycle rule aborts those.)
type Leftovers interface {
	// ListLeftovers calls fn for every temporary object, its Key the path a Delete of
	// RemoveLeftover takes, in key order.
	ListLeftovers(ctx context.Context, fn func(Info) error) error
	// RemoveLeftover removes one; a missing one is not an error.
	RemoveLeftover(ctx context.Context, key string) error
}

// Erasable is the optional capability of a store that can keep an object outside any
// retention and later destroy it for good. Encryption keeps its keys there: a
// tenant's keys must stay erasable while its snapshots are under Object Lock, so
// that forgetting the keys makes the locked snapshots unreadable (crypto-shredding).
// On a versioned bucket (every bucket with Object Lock is) a plain Put or Delete
// keeps the earlier version readable; these methods do not.
type Erasable interface {
	// CreateErasable stores r under key, without retention, unless an object is
	// already there: then it stores nothing and returns an error that Is
	// fs.ErrExist. Of concurrent calls for one key exactly one succeeds. The object
	// must be small (one upload part at most).
	CreateErasable(ctx context.Context, key string, r io.Reader) error
	// ReplaceErasable stores r under key, without retention, and destroys every
	// earlier version of it: what it replaced can no longer be read by anyone.
	ReplaceErasable(ctx context.Context, key string, r io.Reader) error
	// Erase destroys every version of key. Erasing a missing key is not an error.
	Erase(ctx context.Context, key string) error
}

// ErrNotErasable is what an Erasable store's methods answer, refusing, where nothing
// it stores could be erased (a bucket whose Object Lock rule retains every new
// object): the caller that needs only the object, not its erasure, writes it
// another way.
var ErrNotErasable = errors.New("the store cannot keep erasable objects")

// ExistError is what CreateErasable answers when the key is taken.
type ExistError struct{ Key string }

func (e *ExistError) Error() string { return "storage: " + e.Key + ": object already exists" }

// Is makes errors.Is(err, fs.ErrExist) true.
func (e *ExistError) Is(target error) bool { return target == fs.ErrExist }

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// NotExistError is the not-found error of every backend.
type NotExistError struct{ Key string }

func (e *NotExistError) Error() string { return "storage: " + e.Key + ": object does not exist" }

// Is makes errors.Is(err, fs.ErrNotExist) true.
func (e *NotExistError) Is(target error) bool { return target == fs.ErrNotExist }

// ErrLocked is what Delete answers for an object under retention: the store keeps it
// until its lock expires, whoever asks.
var ErrLocked = errors.New("object is locked")

// LockedError is the refusal of Delete for an object under retention or legal hold.
type LockedError struct {
	Key       string
	Mode      string    // GOVERNANCE or COMPLIANCE; "" when only a legal hold protects it
	Until     time.Time // when the retention ends; zero when unknown or a legal hold alone
	LegalHold bool      // held until someone lifts the hold, whatever Until says
}

func (e *LockedError) Error() string {
	msg := "storage: " + e.Key + ": object is locked"
	switch {
	case !e.Until.IsZero():
		msg += " (" + e.Mode + ") until " + e.Until.UTC().Format(time.RFC3339)
	case e.Mode != "":
		msg += " (" + e.Mode + ")"
	}
	if e.LegalHold {
		msg += ", under legal hold"
	}
	return msg
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// ValidKey rejects keys that could escape a directory or mean two things.
func ValidKey(key string) error {
	if key == "" {
		return fmt.Errorf("storage: empty key")
	}
	if strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("storage: key %q: must be relative, without backslash or NUL", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("storage: key %q: empty, '.' or '..' segment", key)
		}
	}
	return nil
}

// ctxReader fails a stream as soon as its context ends, so a cancelled Put stops
// reading at once instead of draining the producer.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
