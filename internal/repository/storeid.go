package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// StoreID is a store's identity (archive.StoreIDKey): what tells two stores apart
// whatever URL reaches them, and a store emptied and made again from the one it was.
type StoreID [16]byte

// String is the ID as stored, without the newline.
func (id StoreID) String() string { return hex.EncodeToString(id[:]) }

// ReadStoreID reads the store's identity; ok is false when it has none yet.
func ReadStoreID(ctx context.Context, s storage.Store) (id StoreID, ok bool, err error) {
	rc, err := s.Get(ctx, archive.StoreIDKey)
	if errors.Is(err, fs.ErrNotExist) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("store identity: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64))
	if err != nil {
		return id, false, fmt.Errorf("store identity: %w", err)
	}
	if n, err := hex.Decode(id[:], bytes.TrimSpace(b)); err != nil || n != len(id) {
		return id, false, fmt.Errorf("store identity %s: %q is not 32 hex digits: remove the object and a file shield writes a new one", archive.StoreIDKey, bytes.TrimSpace(b))
	}
	return id, true, nil
}

// EnsureStoreID reads the store's identity, making one first when it has none.
// Where the store can create an object only if absent (storage.Erasable) two
// processes making it at once agree on one; elsewhere (a bucket whose Object Lock
// rule retains every object: storage.ErrNotErasable) it is written when a look
// just before finds none, so only writers racing within that moment may each
// write theirs: the last one stays, each reads back what is there, and a read
// racing a write may fail (the caller asks again later).
func EnsureStoreID(ctx context.Context, s storage.Store) (StoreID, error) {
	id, ok, err := ReadStoreID(ctx, s)
	if err != nil || ok {
		return id, err
	}
	if _, err := rand.Read(id[:]); err != nil {
		return id, err
	}
	body := []byte(id.String() + "\n")
	put := true
	if e, can := s.(storage.Erasable); can {
		switch err := e.CreateErasable(ctx, archive.StoreIDKey, bytes.NewReader(body)); {
		case err == nil, errors.Is(err, fs.ErrExist):
			put = false
		case !errors.Is(err, storage.ErrNotErasable):
			return id, fmt.Errorf("store identity: %w", err)
		}
	}
	if put {
		// Looked for again just before: a writer that came first keeps its own.
		if _, ok, err := ReadStoreID(ctx, s); err != nil {
			return id, err
		} else if !ok {
			if err := s.Put(ctx, archive.StoreIDKey, bytes.NewReader(body)); err != nil {
				return id, fmt.Errorf("store identity: %w", err)
			}
		}
	}
	id, ok, err = ReadStoreID(ctx, s)
	if err == nil && !ok {
		err = fmt.Errorf("store identity: %s written but not read back", archive.StoreIDKey)
	}
	return id, err
}
