// Package repository reads and writes what a snapshot is made of in a store: the
// manifests that commit snapshots, the audit records, and the verification of every
// object a manifest names. It is the one place that knows a snapshot exists only
// once its manifest does (restic's repository, on purgeguard's format).
package repository

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// ErrNoSnapshot is returned when a tenant has no committed snapshot.
var ErrNoSnapshot = errors.New("no committed snapshot")

// Summary is a committed snapshot without its list of files: what list shows and
// what verify and prune decide on. A manifest can name tens of thousands of files
// and a repository holds many snapshots: summaries keep one manifest at most whole
// in memory at a time.
type Summary struct {
	archive.SnapshotRef
	CreatedAt time.Time
	Reason    string
	Scope     archive.Scope
	Totals    archive.Totals
	// Sealed: an encrypted snapshot, summarised from its plaintext envelope without
	// any key: its Scope has only the kind, its Totals only StoredBytes (reason, row
	// and file counts are inside the sealed manifest).
	Sealed bool
}

// Broken is a snapshot whose manifest is stored but cannot be read as one: it does not
// decode, does not validate, or is stored under another tenant or id. It is neither
// listed nor restorable, and it must not hide the others.
type Broken struct {
	archive.SnapshotRef
	Err error // an *archive.VerifyError naming the manifest's key
}

// List returns the committed snapshots of tenant (every tenant when tenant is
// uuid.Nil), newest first, and fails on the first broken manifest. Objects without a
// manifest are not snapshots and are not listed.
func List(ctx context.Context, s storage.Store, tenant uuid.UUID) ([]Summary, error) {
	out, broken, err := ListAll(ctx, s, tenant)
	if err != nil {
		return nil, err
	}
	if len(broken) > 0 {
		return nil, broken[0].Err
	}
	return out, nil
}

// ListAll is List that carries on past broken manifests and returns them apart:
// one corrupt object never hides the other snapshots. A storage failure is still an
// error. Each manifest is read and validated, then only its summary is kept.
func ListAll(ctx context.Context, s storage.Store, tenant uuid.UUID) ([]Summary, []Broken, error) {
	prefix := archive.SnapshotsPrefix
	if tenant != uuid.Nil {
		prefix = archive.TenantPrefix(tenant)
	}
	var refs, sealed []archive.SnapshotRef
	err := s.List(ctx, prefix, func(i storage.Info) error {
		ref, rest, ok := archive.ParseSnapshotKey(i.Key)
		switch {
		case !ok:
		case archive.IsManifest(rest):
			refs = append(refs, ref)
		case archive.IsEnvelope(rest):
			sealed = append(sealed, ref)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	out := make([]Summary, 0, len(refs)+len(sealed))
	var broken []Broken
	for _, ref := range refs {
		m, err := Manifest(ctx, s, ref)
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			broken = append(broken, Broken{SnapshotRef: ref, Err: err})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, Summary{SnapshotRef: ref, CreatedAt: m.CreatedAt, Reason: m.Reason, Scope: m.Scope, Totals: m.Totals()})
	}
	for _, ref := range sealed {
		if slices.Contains(refs, ref) {
			continue // a plaintext manifest is what commits it
		}
		var stored int64
		e, err := Envelope(ctx, s, ref, func(o archive.SealedObject) error { stored += o.Size; return nil })
		var ve *archive.VerifyError
		if errors.As(err, &ve) {
			broken = append(broken, Broken{SnapshotRef: ref, Err: err})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, Summary{SnapshotRef: ref, CreatedAt: e.CreatedAt, Scope: archive.Scope{Kind: e.Kind},
			Totals: archive.Totals{StoredBytes: stored + e.Manifest.Size}, Sealed: true})
	}
	slices.SortStableFunc(out, func(a, b Summary) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:]) // UUIDv7: later id, later snapshot
	})
	return out, broken, nil
}

// Manifest loads and validates one snapshot's manifest. It also checks that the
// manifest is stored where it says it belongs: a manifest copied under another
// tenant must not restore that tenant.
func Manifest(ctx context.Context, s storage.Store, ref archive.SnapshotRef) (*archive.Manifest, error) {
	key := archive.ManifestKey(ref.Tenant, ref.ID)
	rc, err := s.Get(ctx, key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("snapshot %s of tenant %s: %w", ref.ID, ref.Tenant, ErrNoSnapshot)
		}
		return nil, err
	}
	defer rc.Close()
	src := &readErr{r: rc}
	m, err := archive.Decode(src)
	if err != nil {
		if src.err != nil || ctx.Err() != nil { // storage failed, not the manifest
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return nil, &archive.VerifyError{Key: key, What: "manifest", Reason: err}
	}
	if m.Ref() != ref {
		return nil, &archive.VerifyError{Key: key, What: "manifest location",
			Want: ref.Tenant.String() + "/" + ref.ID.String(), Got: m.Tenant.String() + "/" + m.ID.String()}
	}
	return m, nil
}

// Files calls fn with each file entry of m in order: the manifest's own (formats 1
// and 2, or one written whole in memory), else its file list streamed from s, never
// held whole. A list that is not what the manifest says is an *archive.VerifyError,
// known only once every entry was seen (see archive.ReadFileList); a storage
// failure is returned as it is. An error of fn stops the walk and is returned.
func Files(ctx context.Context, s storage.Store, m *archive.Manifest, fn func(archive.File) error) error {
	for _, f := range m.Files {
		if err := fn(f); err != nil {
			return err
		}
	}
	if m.FileList == nil {
		return nil
	}
	key := m.FileList.Key
	rc, err := s.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return &archive.VerifyError{Key: key, What: "missing object"}
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	src := &readErr{r: rc}
	var fnErr error
	err = archive.ReadFileList(src, m, func(f archive.File) error {
		fnErr = fn(f)
		return fnErr
	})
	switch {
	case err == nil || fnErr != nil:
		return err
	case src.err != nil:
		return fmt.Errorf("read %s: %w", key, src.err)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return err
}

// Latest returns the newest committed snapshot of tenant.
func Latest(ctx context.Context, s storage.Store, tenant uuid.UUID) (*archive.Manifest, error) {
	sums, err := List(ctx, s, tenant)
	if err != nil {
		return nil, err
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("tenant %s: %w", tenant, ErrNoSnapshot)
	}
	return Manifest(ctx, s, sums[0].SnapshotRef)
}

// PutManifest commits a snapshot: every object it names must already be stored.
func PutManifest(ctx context.Context, s storage.Store, m *archive.Manifest) error {
	// Streamed: a manifest naming many files is never whole in memory. A failed
	// encoding aborts the upload, which then stores nothing.
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Encode(pw, m)) }()
	err := s.Put(ctx, archive.ManifestKey(m.Tenant, m.ID), pr)
	pr.CloseWithError(err) // the encoder stops if the upload did
	if err != nil {
		return fmt.Errorf("commit snapshot %s: %w", m.ID, err)
	}
	return nil
}

// PutAudit stores one audit record.
func PutAudit(ctx context.Context, s storage.Store, a *archive.Audit) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("audit %s: %w", a.ID, err)
	}
	if err := s.Put(ctx, a.Key(), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("audit %s: %w", a.ID, err)
	}
	return nil
}

// stateKey holds what one guard run leaves for the next: the source of truth's
// size, against which a shrunken source is refused.
const stateKey = "state/guard.json"

// State is the guard's memory between runs.
type State struct {
	SourceOfTruthSize int       `json:"source_of_truth_size"`
	At                time.Time `json:"at"`
}

// GetState reads the state; none yet is the zero State.
func GetState(ctx context.Context, s storage.Store) (State, error) {
	var st State
	rc, err := s.Get(ctx, stateKey)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&st); err != nil {
		return st, fmt.Errorf("%s: %w", stateKey, err)
	}
	return st, nil
}

// PutState records the state.
func PutState(ctx context.Context, s storage.Store, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.Put(ctx, stateKey, bytes.NewReader(b))
}

// readErr remembers a failure of the reader it wraps: a manifest that does not decode
// because storage failed mid-read is not a broken manifest.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
