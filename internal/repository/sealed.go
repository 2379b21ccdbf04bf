package repository

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// Opener opens a tenant's sealed objects (issue 15): a view of the store in which
// Get returns what was sealed, under the plaintext layout's names. seal.Keyring is
// the one the CLI hands down.
type Opener interface {
	Open(ctx context.Context, s storage.Store, tenant uuid.UUID) (storage.Store, error)
}

// ErrSealed is what reading an encrypted snapshot's contents answers when no keys
// were given at all.
var ErrSealed = errors.New("snapshot is encrypted")

// SealedError names the encrypted snapshot and the fix; it Is ErrSealed.
type SealedError struct{ archive.SnapshotRef }

func (e *SealedError) Error() string {
	return fmt.Sprintf("snapshot %s of tenant %s is encrypted: reading its contents needs an operator identity (encryption.identity_file)", e.ID, e.Tenant)
}

// Is makes errors.Is(err, ErrSealed) true.
func (e *SealedError) Is(target error) bool { return target == ErrSealed }

// IsSealed reports whether the committed snapshot ref is sealed (its envelope, not a
// plaintext manifest, commits it). A snapshot committed neither way is ErrNoSnapshot.
func IsSealed(ctx context.Context, s storage.Store, ref archive.SnapshotRef) (bool, error) {
	_, err := s.Stat(ctx, archive.ManifestKey(ref.Tenant, ref.ID))
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	_, err = s.Stat(ctx, archive.EnvelopeKey(ref.Tenant, ref.ID))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("snapshot %s of tenant %s: %w", ref.ID, ref.Tenant, ErrNoSnapshot)
	}
	return false, err
}

// Open loads a snapshot's manifest, plaintext or sealed, and returns with it the
// store its objects are read from: s itself for a plaintext snapshot, the tenant's
// opened view (op) for a sealed one. A sealed snapshot with no op is a SealedError.
func Open(ctx context.Context, s storage.Store, ref archive.SnapshotRef, op Opener) (*archive.Manifest, storage.Store, error) {
	sealed, err := IsSealed(ctx, s, ref)
	if err != nil {
		return nil, nil, err
	}
	if !sealed {
		m, err := Manifest(ctx, s, ref)
		return m, s, err
	}
	e, err := Envelope(ctx, s, ref, nil)
	if err != nil {
		return nil, nil, err
	}
	if op == nil {
		return nil, nil, &SealedError{SnapshotRef: ref}
	}
	// The sealed manifest is read as the envelope recorded it: another one sealed
	// for the tenant in its place (any snapshot host can seal one) is refused, as
	// the keyless verify refuses it.
	pin := &pinned{Store: s, want: e.Manifest}
	view, err := op.Open(ctx, pin, ref.Tenant)
	if err != nil {
		return nil, nil, err
	}
	m, err := Manifest(ctx, view, ref)
	if err == nil {
		err = pin.check()
	}
	var ve *archive.VerifyError
	if errors.As(err, &ve) && ve.Key == archive.ManifestKey(ref.Tenant, ref.ID) {
		ve.Key = archive.SealedManifestKey(ref.Tenant, ref.ID) // the object as stored
	}
	if err != nil {
		return nil, nil, err
	}
	return m, view, nil
}

// pinned is a store in which one object is hashed as it is read, to the end
// (its reader is drained on Close), so that check compares it with what was
// recorded of it. Every other object is read as it is.
type pinned struct {
	storage.Store
	want archive.SealedObject

	mu      sync.Mutex
	got     *archive.Digest // of the last read of want.Key, once closed
	readErr error           // the store failed while it was drained
}

func (p *pinned) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := p.Store.Get(ctx, key)
	if err != nil || key != p.want.Key {
		return rc, err
	}
	return &pinnedReader{rc: rc, sum: archive.NewDigest(), p: p}, nil
}

// check compares the pinned object, as read, with what was recorded.
func (p *pinned) check() error {
	p.mu.Lock()
	got, err := p.got, p.readErr
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("read %s: %w", p.want.Key, err)
	}
	if got == nil {
		return &archive.VerifyError{Key: p.want.Key, What: "sealed manifest", Reason: errors.New("not read to its end")}
	}
	return got.Check(p.want.Key, p.want.SHA256, p.want.Size)
}

type pinnedReader struct {
	rc  io.ReadCloser
	sum *archive.Digest
	err error
	p   *pinned
}

func (r *pinnedReader) Read(b []byte) (int, error) {
	n, err := r.rc.Read(b)
	r.sum.Write(b[:n])
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Close reads what the reader above left (a decoder may stop before the end) into
// the digest: the whole object is compared.
func (r *pinnedReader) Close() error {
	_, err := io.Copy(r.sum, r.rc)
	err = errors.Join(r.err, err, r.rc.Close())
	r.p.mu.Lock()
	r.p.got, r.p.readErr = r.sum, err
	r.p.mu.Unlock()
	return err
}

// OpenLatest is Open of the newest committed snapshot of tenant.
func OpenLatest(ctx context.Context, s storage.Store, tenant uuid.UUID, op Opener) (*archive.Manifest, storage.Store, error) {
	sums, err := List(ctx, s, tenant)
	if err != nil {
		return nil, nil, err
	}
	if len(sums) == 0 {
		return nil, nil, fmt.Errorf("tenant %s: %w", tenant, ErrNoSnapshot)
	}
	return Open(ctx, s, sums[0].SnapshotRef, op)
}

// Envelope reads a sealed snapshot's envelope, handing each object to fn (nil: none),
// and checks that it is stored where it says it belongs. An envelope that cannot be
// read as one is an *archive.VerifyError naming its key.
func Envelope(ctx context.Context, s storage.Store, ref archive.SnapshotRef, fn func(archive.SealedObject) error) (*archive.Envelope, error) {
	key := archive.EnvelopeKey(ref.Tenant, ref.ID)
	rc, err := s.Get(ctx, key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("snapshot %s of tenant %s: %w", ref.ID, ref.Tenant, ErrNoSnapshot)
		}
		return nil, err
	}
	defer rc.Close()
	if fn == nil {
		fn = func(archive.SealedObject) error { return nil }
	}
	var fnErr error
	src := &readErr{r: rc}
	e, err := archive.DecodeEnvelope(src, func(o archive.SealedObject) error {
		if fnErr = fn(o); fnErr != nil {
			return fnErr
		}
		return nil
	})
	switch {
	case err != nil && fnErr != nil:
		return nil, fnErr
	case err != nil && (src.err != nil || ctx.Err() != nil):
		return nil, fmt.Errorf("%s: %w", key, err)
	case err != nil:
		return nil, &archive.VerifyError{Key: key, What: "envelope", Reason: err}
	case e.Tenant != ref.Tenant || e.Snapshot != ref.ID:
		return nil, &archive.VerifyError{Key: key, What: "envelope location",
			Want: ref.Tenant.String() + "/" + ref.ID.String(), Got: e.Tenant.String() + "/" + e.Snapshot.String()}
	}
	return e, nil
}

// VerifySealed checks a sealed snapshot without any key: every object its envelope
// lists, and the sealed manifest, is present, of the size and SHA-256 recorded. It
// finds a lost, cut or altered object; only opening it (Checker.Verify on the opened
// view) proves its content. Problems are *archive.VerifyError, one per object; an
// error is returned only when the check could not run.
func VerifySealed(ctx context.Context, s storage.Store, ref archive.SnapshotRef, progress func(key string, bytes int64)) (Problems, error) {
	var probs Problems
	check := func(o archive.SealedObject) error {
		err := checkStored(ctx, s, o)
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			probs = append(probs, err)
			err = nil
		}
		if err == nil && progress != nil {
			progress(o.Key, o.Size)
		}
		return err
	}
	e, err := Envelope(ctx, s, ref, check)
	if err != nil {
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			return append(probs, err), nil
		}
		return probs, err
	}
	if err := check(e.Manifest); err != nil {
		return probs, err
	}
	return probs, nil
}

// checkStored re-reads one stored object and compares its size and SHA-256.
func checkStored(ctx context.Context, s storage.Store, o archive.SealedObject) error {
	rc, err := s.Get(ctx, o.Key)
	if errors.Is(err, fs.ErrNotExist) {
		return &archive.VerifyError{Key: o.Key, What: "missing object"}
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	sum := archive.NewDigest()
	if _, err := io.Copy(sum, rc); err != nil {
		return fmt.Errorf("read %s: %w", o.Key, err)
	}
	return sum.Check(o.Key, o.SHA256, o.Size)
}
