package seal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// Objects is one tenant's objects in a store, sealed: a storage.Store over the
// plaintext layout's names, whatever the objects hold. Put seals the stream, Get
// opens it; a blob named by its content (archive.BlobKey) is stored at the tenant's
// keyed address instead (archive.SealedBlobKey), and the manifest as
// manifest.age. Keys of another tenant, or outside snapshots and blobs, are refused.
//
// Each object is sealed as its stored key and tenant (inside the encryption), so an
// object moved, swapped or copied from another tenant fails to open: an
// *archive.VerifyError naming the stored key.
//
// A view made for writing remembers every object it stored or was told of (Note),
// as stored: Commit writes them into the snapshot's plaintext envelope.
type Objects struct {
	base   storage.Store
	tenant uuid.UUID
	to     *TenantRecipient
	id     *TenantIdentity // nil: cannot open

	mu     sync.Mutex
	stored map[string]archive.SealedObject // by stored key
}

var _ storage.Store = (*Objects)(nil)

func newObjects(base storage.Store, to *TenantRecipient, id *TenantIdentity) *Objects {
	return &Objects{base: base, tenant: to.Tenant, to: to, id: id, stored: map[string]archive.SealedObject{}}
}

// Tenant is whose objects these are.
func (o *Objects) Tenant() uuid.UUID { return o.tenant }

// StoredKey is where the object named key is stored.
func (o *Objects) StoredKey(key string) (string, error) {
	if sum, ok := archive.ParseBlobKey(key); ok {
		return archive.SealedBlobKey(o.tenant, o.to.BlobAddress(sum)), nil
	}
	if ref, rest, ok := archive.ParseSnapshotKey(key); ok && ref.Tenant == o.tenant {
		if archive.IsManifest(rest) {
			return archive.SealedManifestKey(ref.Tenant, ref.ID), nil
		}
		return key, nil
	}
	return "", fmt.Errorf("seal: %s is not an object of tenant %s", key, o.tenant)
}

// Put seals r into the object. Memory is one chunk of the stream.
func (o *Objects) Put(ctx context.Context, key string, r io.Reader) error {
	sk, err := o.StoredKey(key)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	sum := archive.NewDigest()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w, err := NewWriter(io.MultiWriter(pw, sum), o.to, sk)
		if err == nil {
			_, err = io.Copy(w, r)
			err = errors.Join(err, w.Close())
		}
		pw.CloseWithError(err)
	}()
	err = o.base.Put(ctx, sk, pr)
	pr.CloseWithError(errors.Join(err, errUploadEnded)) // the sealer stops if the upload did
	<-done
	if err != nil {
		return err
	}
	o.record(archive.SealedObject{Key: sk, Size: sum.Size(), SHA256: sum.Hex()})
	return nil
}

var errUploadEnded = errors.New("upload ended")

func (o *Objects) record(so archive.SealedObject) {
	o.mu.Lock()
	o.stored[so.Key] = so
	o.mu.Unlock()
}

// Note records an object already stored (a blob an earlier snapshot of the tenant
// uploaded) for the envelope: its stored bytes are read once to be hashed.
func (o *Objects) Note(ctx context.Context, key string) error {
	sk, err := o.StoredKey(key)
	if err != nil {
		return err
	}
	o.mu.Lock()
	_, ok := o.stored[sk]
	o.mu.Unlock()
	if ok {
		return nil
	}
	rc, err := o.base.Get(ctx, sk)
	if err != nil {
		return err
	}
	defer rc.Close()
	sum := archive.NewDigest()
	if _, err := io.Copy(sum, rc); err != nil {
		return fmt.Errorf("read %s: %w", sk, err)
	}
	o.record(archive.SealedObject{Key: sk, Size: sum.Size(), SHA256: sum.Hex()})
	return nil
}

// Get opens the object. Without an identity it fails with a NoIdentityError.
func (o *Objects) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	sk, err := o.StoredKey(key)
	if err != nil {
		return nil, err
	}
	if o.id == nil {
		return nil, &NoIdentityError{Tenant: o.tenant}
	}
	rc, err := o.base.Get(ctx, sk)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(rc, o.id, sk)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{r, rc}, nil
}

// Stat describes the stored object (its sealed size).
func (o *Objects) Stat(ctx context.Context, key string) (storage.Info, error) {
	sk, err := o.StoredKey(key)
	if err != nil {
		return storage.Info{}, err
	}
	return o.base.Stat(ctx, sk)
}

// Delete deletes the stored object.
func (o *Objects) Delete(ctx context.Context, key string) error {
	sk, err := o.StoredKey(key)
	if err != nil {
		return err
	}
	o.mu.Lock()
	delete(o.stored, sk)
	o.mu.Unlock()
	return o.base.Delete(ctx, sk)
}

// List lists the stored objects under prefix, as stored.
func (o *Objects) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	return o.base.List(ctx, prefix, fn)
}

// String names the view without any key material.
func (o *Objects) String() string {
	return fmt.Sprintf("sealed objects of tenant %s in %v", o.tenant, o.base)
}

// Format prints String whatever the verb: the view holds the tenant's keys.
func (o *Objects) Format(f fmt.State, _ rune) { fmt.Fprint(f, o.String()) }

// Commit writes the envelope of the snapshot whose objects this view stored: the
// sealed manifest (put last, as ManifestKey) and every other object stored or
// noted. The envelope is the snapshot's commit marker: written last.
func (o *Objects) Commit(ctx context.Context, snapshot uuid.UUID, kind string, created time.Time) error {
	mk := archive.SealedManifestKey(o.tenant, snapshot)
	o.mu.Lock()
	man, ok := o.stored[mk]
	objects := make([]archive.SealedObject, 0, len(o.stored))
	for k, so := range o.stored {
		if k != mk {
			objects = append(objects, so)
		}
	}
	o.mu.Unlock()
	if !ok {
		return fmt.Errorf("seal: commit snapshot %s of tenant %s: its manifest was not stored", snapshot, o.tenant)
	}
	e := archive.Envelope{Version: archive.EnvelopeVersion, Snapshot: snapshot, Tenant: o.tenant, CreatedAt: created.UTC(), Kind: kind, Manifest: man}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.EncodeEnvelope(pw, e, objects)) }()
	err := o.base.Put(ctx, archive.EnvelopeKey(o.tenant, snapshot), pr)
	pr.CloseWithError(errors.Join(err, errUploadEnded))
	if err != nil {
		return fmt.Errorf("commit snapshot %s: %w", snapshot, err)
	}
	return nil
}
