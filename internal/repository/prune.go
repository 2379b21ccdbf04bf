package repository

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/storage"
)

// PruneOptions says which snapshots to keep. A snapshot is kept if any rule keeps
// it; with no rule at all, Prune refuses (deleting every snapshot is never a default).
type PruneOptions struct {
	Tenants    []uuid.UUID   // empty: every tenant
	KeepLast   int           // the newest N of each tenant
	KeepWithin time.Duration // those younger than this
	DryRun     bool
	// Grace protects what may belong to a snapshot still being written: objects of
	// an uncommitted snapshot and unreferenced blobs are removed only once older than
	// this (default 1h).
	Grace time.Duration
	Now   time.Time
	Log   *slog.Logger // nil: no log
	// LossKeep is how long a file shield's loss record keeps the blob it names
	// live (default DefaultLossKeep: the shield's own keep).
	LossKeep time.Duration
}

// PruneReport says what Prune removed (or, with DryRun, would remove).
type PruneReport struct {
	Kept         []archive.SnapshotRef `json:"kept"`
	Removed      []archive.SnapshotRef `json:"removed"`
	Incomplete   []string              `json:"incomplete_objects_removed"`
	Blobs        int                   `json:"blobs_removed"`
	BlobBytes    int64                 `json:"blob_bytes_removed"`
	ObjectsBytes int64                 `json:"snapshot_bytes_removed"`
	// Locked are the snapshots no rule keeps that the store refused to delete (S3
	// Object Lock): each is left whole, still listed and verifiable, and so are the
	// blobs it names. A later prune removes it once its retention has ended.
	Locked []LockedSnapshot `json:"locked"`
	// LockedObjects are other objects the store refused to delete: unreferenced blobs,
	// objects of uncommitted snapshots. They stay until their retention ends.
	LockedObjects []string `json:"locked_objects"`
	// Leftovers are temporary objects of writes killed mid-way (a file:// store's
	// .tmp- files), older than Grace, removed.
	Leftovers []string `json:"leftovers_removed"`
	// Broken are snapshots whose manifest cannot be read: left alone, and while any
	// exists no blob is swept (a broken manifest may name any of them).
	Broken       []BrokenRef `json:"broken,omitempty"`
	SweepSkipped string      `json:"blob_sweep_skipped,omitempty"`
	DryRun       bool        `json:"dry_run"`
}

// BrokenRef is a snapshot whose manifest cannot be read, and why.
type BrokenRef struct {
	archive.SnapshotRef
	Error string `json:"error"`
}

// LockedSnapshot is a snapshot kept because its manifest is under object lock.
type LockedSnapshot struct {
	archive.SnapshotRef
	Until time.Time `json:"locked_until,omitzero"` // zero: a legal hold, no date
}

// Prune plans a prune and executes it (with DryRun, executes it without deleting:
// every deletion is only asked about).
func Prune(ctx context.Context, s storage.Store, o PruneOptions) (*PruneReport, error) {
	plan, err := PlanPrune(ctx, s, o)
	if err != nil {
		return nil, err
	}
	return plan.Execute(ctx, s)
}

// PrunePlan is what a prune will remove, decided before anything is touched: the
// snapshots no rule keeps, objects of snapshots never committed, and the blobs no
// kept snapshot names. Execute carries it out; a dry run executes it asking only.
type PrunePlan struct {
	o          PruneOptions
	markStart  time.Time
	Kept       []archive.SnapshotRef
	Remove     []PlannedSnapshot
	Incomplete []storage.Info // objects of snapshots never committed, older than Grace
	Leftovers  []storage.Info // temporary objects of killed writes, older than Grace
	Broken     []Broken       // manifests that cannot be read: left alone, and no sweep
	// marked are the digests of every blob a kept snapshot names.
	marked blobMarks
	// markedSealed are the keys of every sealed blob a kept sealed snapshot's
	// envelope lists (their content digests are inside the sealed manifest), by
	// the digest of the key (sealedMark): 8 bytes each, not the key's 120-odd.
	markedSealed blobMarks
}

// PlannedSnapshot is a snapshot the plan removes, with every object stored under it.
type PlannedSnapshot struct {
	archive.SnapshotRef
	Objects []storage.Info
	Sealed  bool // committed by its envelope
}

// PlanPrune decides, reading only: which snapshots no rule keeps (per tenant, newest
// first), which objects belong to snapshots never committed and are older than Grace,
// and the blobs every kept snapshot names. Blobs to sweep are listed by Execute, after
// the removals, from this mark.
func PlanPrune(ctx context.Context, s storage.Store, o PruneOptions) (*PrunePlan, error) {
	if o.KeepLast <= 0 && o.KeepWithin <= 0 {
		return nil, fmt.Errorf("prune: give --keep-last and/or --keep-within: a prune keeping nothing is refused")
	}
	if o.Grace <= 0 {
		o.Grace = time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	plan := &PrunePlan{o: o, markStart: o.Now, Kept: []archive.SnapshotRef{}, Remove: []PlannedSnapshot{},
		Incomplete: []storage.Info{}, marked: blobMarks{}, markedSealed: blobMarks{}}

	// Every object under snapshots/, grouped by snapshot: committed or not.
	type snap struct {
		objects  []storage.Info
		manifest bool
		newest   time.Time
	}
	snaps := map[archive.SnapshotRef]*snap{}
	err := s.List(ctx, archive.SnapshotsPrefix, func(i storage.Info) error {
		ref, rest, ok := archive.ParseSnapshotKey(i.Key)
		if !ok {
			return nil
		}
		sn := snaps[ref]
		if sn == nil {
			sn = &snap{}
			snaps[ref] = sn
		}
		sn.objects = append(sn.objects, i)
		sn.manifest = sn.manifest || archive.IsCommit(rest)
		if i.ModTime.After(sn.newest) {
			sn.newest = i.ModTime
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: list snapshots: %w", err)
	}
	inScope := plan.inScope

	// Decide per tenant, newest first. A broken manifest is reported and left alone:
	// it is not counted as a snapshot kept, and its objects are not incomplete ones.
	sums, broken, err := ListAll(ctx, s, uuid.Nil)
	if err != nil {
		return nil, err
	}
	plan.Broken = broken
	perTenant := map[uuid.UUID]int{}
	for _, m := range sums {
		keep := !inScope(m.Tenant)
		if !keep {
			perTenant[m.Tenant]++
			keep = o.KeepLast > 0 && perTenant[m.Tenant] <= o.KeepLast ||
				o.KeepWithin > 0 && o.Now.Sub(m.CreatedAt) < o.KeepWithin
		}
		if keep {
			if err := plan.mark(ctx, s, m.SnapshotRef, m.Sealed); err != nil {
				return nil, err
			}
			if inScope(m.Tenant) {
				plan.Kept = append(plan.Kept, m.SnapshotRef)
			}
			continue
		}
		var objects []storage.Info
		if sn := snaps[m.SnapshotRef]; sn != nil {
			objects = sn.objects
		}
		plan.Remove = append(plan.Remove, PlannedSnapshot{SnapshotRef: m.SnapshotRef, Objects: objects, Sealed: m.Sealed})
	}
	// Objects of snapshots never committed: a crashed run, or one still writing.
	for ref, sn := range snaps {
		if sn.manifest || !inScope(ref.Tenant) || o.Now.Sub(sn.newest) < o.Grace {
			continue
		}
		plan.Incomplete = append(plan.Incomplete, sn.objects...)
	}
	slices.SortFunc(plan.Incomplete, func(a, b storage.Info) int { return strings.Compare(a.Key, b.Key) })
	if l, ok := s.(storage.Leftovers); ok {
		err := l.ListLeftovers(ctx, func(i storage.Info) error {
			if o.Now.Sub(i.ModTime) >= o.Grace {
				plan.Leftovers = append(plan.Leftovers, i)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
	}
	// The file shield's blobs: files it shields (most named by no snapshot yet) and
	// lost files within their keep.
	if o.LossKeep <= 0 {
		o.LossKeep = DefaultLossKeep
	}
	if err := markShield(ctx, s, o.Now, o.LossKeep, plan.marked.add); err != nil {
		return nil, err
	}
	return plan, nil
}

func (plan *PrunePlan) inScope(t uuid.UUID) bool {
	return len(plan.o.Tenants) == 0 || slices.Contains(plan.o.Tenants, t)
}

// mark reads a surviving snapshot's manifest again, one at a time, for the blobs it
// names: digests, not keys, a third of the memory per blob. A sealed snapshot's
// envelope names its sealed blobs by key: no key is needed to keep them.
func (plan *PrunePlan) mark(ctx context.Context, s storage.Store, ref archive.SnapshotRef, sealed bool) error {
	if sealed {
		_, err := Envelope(ctx, s, ref, func(o archive.SealedObject) error {
			if _, ok := archive.ParseSealedBlobKey(o.Key); ok {
				plan.markedSealed.add(sealedMark(o.Key))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		return nil
	}
	m, err := Manifest(ctx, s, ref)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	err = Files(ctx, s, m, func(f archive.File) error {
		// A packed file has no blob: its pack goes with its snapshot.
		if f.SHA256 != "" && f.Pack == nil {
			if sum, err := archive.ParseDigestHex(f.SHA256); err == nil {
				plan.marked.add(sum)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune: files of snapshot %s: %w", ref.ID, err)
	}
	return nil
}

// Execute removes what the plan says (manifest first, so a snapshot stops existing
// before its objects go), then every blob no surviving manifest references: swept
// from the plan's mark, never a blob modified after the mark started (less Grace): a
// snapshot being written may have uploaded it and not yet committed. A snapshot whose
// manifest the store refuses for a lock stays whole, and so does every blob it names.
// With DryRun nothing is deleted: each deletion is only asked about.
func (plan *PrunePlan) Execute(ctx context.Context, s storage.Store) (*PruneReport, error) {
	o := plan.o
	rep := &PruneReport{DryRun: o.DryRun, Kept: plan.Kept, Removed: []archive.SnapshotRef{}, Incomplete: []string{},
		Locked: []LockedSnapshot{}, LockedObjects: []string{}, Leftovers: []string{}}
	for _, b := range plan.Broken {
		rep.Broken = append(rep.Broken, BrokenRef{SnapshotRef: b.SnapshotRef, Error: b.Err.Error()})
		o.Log.Warn("snapshot manifest unreadable: left alone", "tenant", b.Tenant, "snapshot", b.ID, "err", b.Err)
	}
	p := &pruner{s: s, o: o, rep: rep}
	for _, ps := range plan.Remove {
		lock, err := p.removeSnapshot(ctx, ps.SnapshotRef, ps.Objects, ps.Sealed)
		if err != nil {
			return rep, err
		}
		if lock != nil {
			// The snapshot stays whole (its manifest is the first object tried), so
			// must every blob it names, even one whose own retention (set when a
			// first snapshot uploaded it) has ended.
			if err := plan.mark(ctx, s, ps.SnapshotRef, ps.Sealed); err != nil {
				return rep, err
			}
			rep.Locked = append(rep.Locked, LockedSnapshot{SnapshotRef: ps.SnapshotRef, Until: lock.Until})
			o.Log.Warn("snapshot locked until its retention ends: kept", "tenant", ps.Tenant, "snapshot", ps.ID, "until", lock.Until, "mode", lock.Mode)
			continue
		}
		rep.Removed = append(rep.Removed, ps.SnapshotRef)
	}
	for _, i := range plan.Incomplete {
		if locked, err := p.remove(ctx, i.Key); err != nil {
			return rep, fmt.Errorf("prune: %w", err)
		} else if locked != nil {
			continue
		}
		rep.Incomplete = append(rep.Incomplete, i.Key)
		rep.ObjectsBytes += i.Size
	}
	if l, ok := s.(storage.Leftovers); ok {
		for _, i := range plan.Leftovers {
			if !o.DryRun {
				if err := l.RemoveLeftover(ctx, i.Key); err != nil {
					return rep, fmt.Errorf("prune: %w", err)
				}
			}
			rep.Leftovers = append(rep.Leftovers, i.Key)
			rep.ObjectsBytes += i.Size
		}
	}
	if len(plan.Broken) > 0 {
		rep.SweepSkipped = fmt.Sprintf("%d snapshot manifests cannot be read and may name any blob: no blob is removed until they are repaired or deleted (see verify --all)", len(plan.Broken))
		return rep, nil
	}
	// Sweep. Blobs are shared by every tenant: a blob is removed only if no
	// surviving manifest of any tenant names it. Each is removed as the listing
	// meets it, so that no list of doomed blobs is held (a forgotten tenant's
	// million recordings would be over a hundred MiB of keys).
	sweep := func(i storage.Info) error {
		if locked, err := p.remove(ctx, i.Key); err != nil {
			return fmt.Errorf("prune: %w", err)
		} else if locked == nil {
			rep.Blobs++
			rep.BlobBytes += i.Size
		}
		return nil
	}
	err := s.List(ctx, archive.BlobsPrefix, func(i storage.Info) error {
		sum, ok := archive.ParseBlobKey(i.Key)
		if !(ok && plan.marked.has(sum)) && i.ModTime.Before(plan.markStart.Add(-o.Grace)) {
			return sweep(i)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("prune: list blobs: %w", err)
	}
	// Sealed blobs belong to one tenant each: removed when no surviving envelope
	// lists them (a forgotten tenant's too, once their lock allows).
	err = s.List(ctx, archive.SealedBlobsPrefix, func(i storage.Info) error {
		if _, ok := archive.ParseSealedBlobKey(i.Key); ok && !plan.markedSealed.has(sealedMark(i.Key)) && i.ModTime.Before(plan.markStart.Add(-o.Grace)) {
			return sweep(i)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("prune: list sealed blobs: %w", err)
	}
	slices.Sort(rep.LockedObjects)
	if n := len(rep.LockedObjects); n > 0 {
		// One line, not one per object: a locked bucket can hold thousands of blobs.
		o.Log.Warn("objects locked until their retention ends: kept", "count", n, "first", rep.LockedObjects[0])
	}
	return rep, nil
}

type pruner struct {
	s   storage.Store
	o   PruneOptions
	rep *PruneReport
}

// remove deletes an object (with DryRun, only asks whether it could). A refusal for
// a lock is no error: it is returned, and the key recorded in LockedObjects.
func (p *pruner) remove(ctx context.Context, key string) (*storage.LockedError, error) {
	lock, err := p.try(ctx, key)
	if lock != nil {
		p.rep.LockedObjects = append(p.rep.LockedObjects, key)
	}
	return lock, err
}

func (p *pruner) try(ctx context.Context, key string) (*storage.LockedError, error) {
	var err error
	if !p.o.DryRun {
		err = p.s.Delete(ctx, key)
	} else if lc, ok := p.s.(storage.Locker); ok {
		if err = lc.CheckLock(ctx, key); errors.Is(err, fs.ErrNotExist) {
			err = nil // gone meanwhile: nothing would be refused
		}
	}
	var le *storage.LockedError
	switch {
	case errors.As(err, &le):
		return le, nil
	case errors.Is(err, storage.ErrLocked): // a store saying so without details
		return &storage.LockedError{Key: key}, nil
	}
	return nil, err
}

// removeSnapshot deletes the manifest first: from then on the snapshot does not
// exist for any reader, whatever happens to the rest. A manifest under object lock
// is refused: then nothing else is touched, the snapshot stays whole, and the
// refusal is returned. (Every object of a snapshot carries the same retention, so
// the manifest, written last, is the first to refuse; an object of the snapshot
// refused after its manifest went is recorded and left for a later prune.)
func (p *pruner) removeSnapshot(ctx context.Context, ref archive.SnapshotRef, objects []storage.Info, sealed bool) (*storage.LockedError, error) {
	mk := archive.ManifestKey(ref.Tenant, ref.ID)
	if sealed {
		mk = archive.EnvelopeKey(ref.Tenant, ref.ID) // the commit marker of a sealed snapshot
	}
	slices.SortFunc(objects, func(a, b storage.Info) int {
		switch {
		case a.Key == mk:
			return -1
		case b.Key == mk:
			return 1
		}
		return 0
	})
	for _, i := range objects {
		var lock *storage.LockedError
		var err error
		if i.Key == mk {
			lock, err = p.try(ctx, i.Key)
		} else {
			lock, err = p.remove(ctx, i.Key)
		}
		if err != nil {
			return nil, fmt.Errorf("prune: snapshot %s of tenant %s: %w", ref.ID, ref.Tenant, err)
		}
		if lock != nil {
			if i.Key == mk {
				return lock, nil
			}
			continue
		}
		p.rep.ObjectsBytes += i.Size
	}
	return nil, nil
}

// blobMarks is the set of blobs surviving snapshots name, by the first 8 bytes of
// their digest: a million recordings cost 8 MiB-odd, not the 60 of whole digests. Two
// blobs sharing a prefix (odds about n²/2⁶⁵) only keep the unnamed one: a prune
// never removes a named blob, it may leave an unnamed one for the next.
type blobMarks map[uint64]struct{}

// sealedMark is the digest a sealed blob's key is marked by. Like two blobs'
// prefixes, two keys' can only meet to keep an unnamed blob.
func sealedMark(key string) [32]byte { return sha256.Sum256([]byte(key)) }

func (b blobMarks) add(sum [32]byte) { b[binary.BigEndian.Uint64(sum[:8])] = struct{}{} }

func (b blobMarks) has(sum [32]byte) bool {
	_, ok := b[binary.BigEndian.Uint64(sum[:8])]
	return ok
}
