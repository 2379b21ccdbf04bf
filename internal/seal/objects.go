package seal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"
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
// A view made for writing records every object it stored or was told of (Note), as
// stored, in its Ledger: Commit lists them in the snapshot's plaintext envelope.
type Objects struct {
	base   storage.Store
	tenant uuid.UUID
	to     *TenantRecipient
	id     *TenantIdentity // nil: cannot open

	mu        sync.Mutex
	sess      *session // the view's session key (session.go): made at the first Put, dropped at Commit
	ledger    Ledger
	manifests map[string]archive.SealedObject // sealed manifests stored, by key: one per snapshot
}

var _ storage.Store = (*Objects)(nil)

// Ledger keeps the objects a view stored, for the envelope. The snapshot engine
// gives each view one that spills to temporary files (a tenant of a million files
// stores a million blobs); without one a view keeps them in memory.
type Ledger interface {
	// Add records an object: stored (its size and digest) or noted (its key
	// alone, SHA256 empty). It may be called from several goroutines, and with the
	// same key again.
	Add(archive.SealedObject) error
	// Each calls fn with every object added, once per key (the stored one rather
	// than a noted one), in increasing key order. It may be called more than once.
	Each(fn func(archive.SealedObject) error) error
}

func newObjects(base storage.Store, to *TenantRecipient, id *TenantIdentity) *Objects {
	return &Objects{base: base, tenant: to.Tenant, to: to, id: id, ledger: &memLedger{m: map[string]archive.SealedObject{}},
		manifests: map[string]archive.SealedObject{}}
}

// UseLedger makes the view record what it stores in l from now on.
func (o *Objects) UseLedger(l Ledger) {
	o.mu.Lock()
	o.ledger = l
	o.mu.Unlock()
}

// memLedger is a Ledger in memory: a few hundred bytes an object.
type memLedger struct {
	mu sync.Mutex
	m  map[string]archive.SealedObject
}

func (l *memLedger) Add(so archive.SealedObject) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if had, ok := l.m[so.Key]; ok && so.SHA256 == "" && had.SHA256 != "" {
		return nil // noted, but stored by this view: as stored
	}
	l.m[so.Key] = so
	return nil
}

func (l *memLedger) Each(fn func(archive.SealedObject) error) error {
	l.mu.Lock()
	objects := slices.SortedFunc(maps.Values(l.m), func(a, b archive.SealedObject) int { return strings.Compare(a.Key, b.Key) })
	l.mu.Unlock()
	for _, so := range objects {
		if err := fn(so); err != nil {
			return err
		}
	}
	return nil
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

// Put seals r into the object. Memory is one chunk of the stream; the store reads
// the sealed stream itself (no pipe, no goroutine: a snapshot stores tens of
// thousands of small blobs), hashed on the way for the envelope.
func (o *Objects) Put(ctx context.Context, key string, r io.Reader) error {
	return o.PutVia(ctx, o.base.Put, key, r)
}

// PutVia is Put with the sealed stream written by put rather than by the view's
// base: a batch of the base store (storage.Batch), so that a tenant's thousands of
// sealed blobs share their syncs as plaintext ones do. The object appears when
// put's batch is flushed, which its caller does before any manifest names it.
func (o *Objects) PutVia(ctx context.Context, put func(context.Context, string, io.Reader) error, key string, r io.Reader) error {
	sk, err := o.StoredKey(key)
	if err != nil {
		return err
	}
	sess, err := o.sealer()
	if err != nil {
		return err
	}
	sr, err := newSealingReader(r, sess, o.to, sk)
	if err != nil {
		return err
	}
	sum := archive.NewDigest()
	if err := put(ctx, sk, io.TeeReader(sr, sum)); err != nil {
		return err
	}
	return o.record(archive.SealedObject{Key: sk, Size: sum.Size(), SHA256: sum.Hex()})
}

var errUploadEnded = errors.New("upload ended")

// sealer is the view's session, made on first use: one X25519 agreement for the
// snapshot's objects. It lives as long as the snapshot is written, not the
// process: Commit drops it.
func (o *Objects) sealer() (*session, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sess == nil {
		s, err := newSession(o.to.recipient)
		if err != nil {
			return nil, fmt.Errorf("seal: tenant %s: start a session: %w", o.tenant, err)
		}
		o.sess = s
	}
	return o.sess, nil
}

// dropSession forgets the view's session key; a Put after it starts another.
func (o *Objects) dropSession() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.sess != nil {
		clear(o.sess.key)
		o.sess = nil
	}
}

func (o *Objects) record(so archive.SealedObject) error {
	o.mu.Lock()
	ledger := o.ledger
	if ref, rest, ok := archive.ParseSnapshotKey(so.Key); ok && ref.Tenant == o.tenant && rest == archive.SealedManifestName {
		o.manifests[so.Key] = so
		o.mu.Unlock()
		return nil
	}
	o.mu.Unlock()
	if err := ledger.Add(so); err != nil {
		return fmt.Errorf("seal: record %s for the envelope: %w", so.Key, err)
	}
	return nil
}

// Note records an object already stored (a blob an earlier snapshot of the tenant
// uploaded) for the envelope, without reading it: Commit takes its size and digest
// from the tenant's newest earlier envelope, read once, and reads and hashes only
// an object that envelope does not list (one stored by a run that never committed,
// or listed only by an older snapshot).
func (o *Objects) Note(ctx context.Context, key string) error {
	sk, err := o.StoredKey(key)
	if err != nil {
		return err
	}
	return o.record(archive.SealedObject{Key: sk})
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
	// A ledger is not told: a snapshot deletes an object only on its way to failing.
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
// noted, from the ledger. The envelope is the snapshot's commit marker: written last.
func (o *Objects) Commit(ctx context.Context, snapshot uuid.UUID, kind string, created time.Time) error {
	mk := archive.SealedManifestKey(o.tenant, snapshot)
	// The manifest is the snapshot's last sealed object: its session key is no
	// longer needed, whatever becomes of the commit.
	o.dropSession()
	o.mu.Lock()
	man, ok := o.manifests[mk]
	ledger := o.ledger
	o.mu.Unlock()
	if !ok {
		return fmt.Errorf("seal: commit snapshot %s of tenant %s: its manifest was not stored", snapshot, o.tenant)
	}
	// The header counts the objects: one pass to count, one to write.
	var n, noted int64
	if err := ledger.Each(func(so archive.SealedObject) error {
		n++
		if so.SHA256 == "" {
			noted++
		}
		return nil
	}); err != nil {
		return fmt.Errorf("commit snapshot %s: %w", snapshot, err)
	}
	e := archive.Envelope{Version: archive.EnvelopeVersion, Snapshot: snapshot, Tenant: o.tenant, CreatedAt: created.UTC(), Kind: kind, Manifest: man}
	prev := &envelopeCursor{stop: func() {}}
	if noted > 0 {
		var err error
		if prev, err = o.lastEnvelope(ctx, snapshot); err != nil {
			return fmt.Errorf("commit snapshot %s: %w", snapshot, err)
		}
	}
	defer prev.stop()
	each := func(fn func(archive.SealedObject) error) error {
		return ledger.Each(func(so archive.SealedObject) error {
			if so.SHA256 == "" { // noted: as the last envelope lists it, else read
				var err error
				if so, err = o.describe(ctx, so.Key, prev); err != nil {
					return err
				}
			}
			return fn(so)
		})
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(archive.EncodeEnvelopeEach(pw, e, n, each))
	}()
	err := o.base.Put(ctx, archive.EnvelopeKey(o.tenant, snapshot), pr)
	pr.CloseWithError(errors.Join(err, errUploadEnded))
	<-done // the ledger is read no more
	if err != nil {
		return fmt.Errorf("commit snapshot %s: %w", snapshot, err)
	}
	return nil
}

// describe is a noted object as stored: from the last envelope when it lists it
// (the objects come in key order, as the envelope's), else read and hashed.
func (o *Objects) describe(ctx context.Context, key string, last *envelopeCursor) (archive.SealedObject, error) {
	if so, ok := last.find(key); ok {
		return so, nil
	}
	rc, err := o.base.Get(ctx, key)
	if err != nil {
		return archive.SealedObject{}, err
	}
	defer rc.Close()
	sum := archive.NewDigest()
	if _, err := io.Copy(sum, rc); err != nil {
		return archive.SealedObject{}, fmt.Errorf("read %s: %w", key, err)
	}
	return archive.SealedObject{Key: key, Size: sum.Size(), SHA256: sum.Hex()}, nil
}

// lastEnvelope opens the objects of the tenant's newest envelope other than
// snapshot's (snapshot ids are time-ordered), streamed. None, or one that cannot
// be read, is an empty cursor: every noted object is then read instead.
func (o *Objects) lastEnvelope(ctx context.Context, snapshot uuid.UUID) (*envelopeCursor, error) {
	last := ""
	err := o.base.List(ctx, archive.TenantPrefix(o.tenant), func(i storage.Info) error {
		if ref, rest, ok := archive.ParseSnapshotKey(i.Key); ok && archive.IsEnvelope(rest) && ref.ID != snapshot && i.Key > last {
			last = i.Key
		}
		return nil
	})
	if err != nil || last == "" {
		return &envelopeCursor{stop: func() {}}, err
	}
	next, stop := iter.Pull(func(yield func(archive.SealedObject) bool) {
		rc, err := o.base.Get(ctx, last)
		if err != nil {
			return
		}
		defer rc.Close()
		_, _ = archive.DecodeEnvelope(rc, func(so archive.SealedObject) error {
			if !yield(so) {
				return errStopped
			}
			return nil
		})
	})
	return &envelopeCursor{next: next, stop: stop}, nil
}

var errStopped = errors.New("stopped")

// envelopeCursor walks an envelope's objects forward. An envelope cut or damaged
// part way ends there: what it listed before is as it was written.
type envelopeCursor struct {
	next    func() (archive.SealedObject, bool)
	stop    func()
	cur     archive.SealedObject
	started bool
	done    bool
}

// find returns the object listed as key; keys asked must not decrease.
func (c *envelopeCursor) find(key string) (archive.SealedObject, bool) {
	if c.next == nil {
		return archive.SealedObject{}, false
	}
	for !c.done && (!c.started || c.cur.Key < key) {
		c.cur, c.started = archive.SealedObject{}, true
		var ok bool
		if c.cur, ok = c.next(); !ok {
			c.done = true
		}
	}
	return c.cur, !c.done && c.cur.Key == key
}
