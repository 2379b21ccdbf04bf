package snapshot

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/seal"
	"github.com/purgeguard/purgeguard/storage"
)

// Sealer encrypts a tenant's snapshot (issue 15): Seal returns a view of the store
// in which what is put under the tenant's names is sealed with the tenant's key.
// The CLI hands down its keyring (internal/seal); a process holding only the
// operators' public keys can seal, never open.
type Sealer interface {
	Seal(ctx context.Context, s storage.Store, tenant uuid.UUID) (storage.Store, error)
}

// sealedView is what a Sealer's view does besides storing: where a name is
// stored, remembering an object already there, and committing the snapshot with
// its plaintext envelope.
type sealedView interface {
	storage.Store
	StoredKey(key string) (string, error)
	PutVia(ctx context.Context, put func(context.Context, string, io.Reader) error, key string, r io.Reader) error
	Note(ctx context.Context, key string) error
	UseLedger(seal.Ledger)
	Commit(ctx context.Context, snapshot uuid.UUID, kind string, created time.Time) error
}

// openViews gives every snapshot of the run its store: the tenant's sealed view with
// a Sealer, else the store itself.
func (e *exporter) openViews(ctx context.Context, ms []*archive.Manifest) error {
	e.views = make(map[*archive.Manifest]storage.Store, len(ms))
	for _, m := range ms {
		if e.o.Sealer == nil {
			e.views[m] = e.store
			continue
		}
		v, err := e.o.Sealer.Seal(ctx, e.store, m.Tenant)
		if err != nil {
			return fmt.Errorf("snapshot: tenant %s: %w", m.Tenant, err)
		}
		sv, ok := v.(sealedView)
		if !ok {
			return fmt.Errorf("snapshot: tenant %s: the sealer's store cannot commit a sealed snapshot", m.Tenant)
		}
		// What the view stores is listed in the envelope from temporary files.
		l := &objectSpill{dir: e.o.TempDir}
		e.ledgers = append(e.ledgers, l)
		sv.UseLedger(l)
		e.views[m] = v
	}
	return nil
}

// closeViews removes the temporary files of the views' ledgers, once the
// snapshots are committed or abandoned.
func (e *exporter) closeViews() {
	for _, l := range e.ledgers {
		l.close()
	}
	e.ledgers = nil
}

// storeOf is where m's objects go.
func (e *exporter) storeOf(m *archive.Manifest) storage.Store {
	if v := e.views[m]; v != nil {
		return v
	}
	return e.store
}

// storedKey is where the object named key of m is stored.
func (e *exporter) storedKey(m *archive.Manifest, key string) (string, error) {
	if v, ok := e.storeOf(m).(sealedView); ok {
		return v.StoredKey(key)
	}
	return key, nil
}

// reuseBlob records a blob found already stored (sum its content digest, storedKey
// where m's copy is): checked again before the commit (a prune may sweep it
// meanwhile) and, sealed, listed in the envelope.
func (e *exporter) reuseBlob(ctx context.Context, m *archive.Manifest, sum [32]byte, storedKey string) error {
	v, ok := e.storeOf(m).(sealedView)
	if !ok {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.reuse(sum, false)
	}
	if err := v.Note(ctx, archive.BlobKey(sum)); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.reusedSealed == nil {
		sp, err := newSpill(e.o.TempDir, "sealed-blobs")
		if err != nil {
			return err
		}
		e.reusedSealed = &pathSpill{spill: sp}
	}
	if err := e.reusedSealed.addString(0, storedKey); err != nil {
		return fmt.Errorf("snapshot: spill reused blobs: %w", err)
	}
	return nil
}

// commit writes m's manifest: plaintext, or sealed and then its envelope, the
// commit marker of a sealed snapshot.
func (e *exporter) commit(ctx context.Context, m *archive.Manifest) error {
	v, ok := e.storeOf(m).(sealedView)
	if !ok {
		return repository.PutManifest(ctx, e.store, m)
	}
	if err := repository.PutManifest(ctx, v, m); err != nil {
		return err
	}
	return v.Commit(ctx, m.ID, m.Scope.Kind, m.CreatedAt)
}
