package repository

import (
	"context"
	"fmt"
	"slices"
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
}

// PruneReport says what Prune removed (or, with DryRun, would remove).
type PruneReport struct {
	Kept         []archive.SnapshotRef `json:"kept"`
	Removed      []archive.SnapshotRef `json:"removed"`
	Incomplete   []string              `json:"incomplete_objects_removed"`
	Blobs        int                   `json:"blobs_removed"`
	BlobBytes    int64                 `json:"blob_bytes_removed"`
	ObjectsBytes int64                 `json:"snapshot_bytes_removed"`
	DryRun       bool                  `json:"dry_run"`
}

// Prune removes the snapshots no rule keeps (manifest first, so a snapshot stops
// existing before its objects go), objects of snapshots never committed once older
// than Grace, then every blob no surviving manifest references: mark from the
// manifests, then sweep, never sweeping a blob modified after the mark started
// (less Grace): a snapshot being written may have uploaded it and not yet committed.
func Prune(ctx context.Context, s storage.Store, o PruneOptions) (*PruneReport, error) {
	if o.KeepLast <= 0 && o.KeepWithin <= 0 {
		return nil, fmt.Errorf("prune: give --keep-last and/or --keep-within: a prune keeping nothing is refused")
	}
	if o.Grace <= 0 {
		o.Grace = time.Hour
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	markStart := o.Now
	rep := &PruneReport{DryRun: o.DryRun, Kept: []archive.SnapshotRef{}, Removed: []archive.SnapshotRef{}, Incomplete: []string{}}

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
		sn.manifest = sn.manifest || archive.IsManifest(rest)
		if i.ModTime.After(sn.newest) {
			sn.newest = i.ModTime
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: list snapshots: %w", err)
	}
	inScope := func(t uuid.UUID) bool { return len(o.Tenants) == 0 || slices.Contains(o.Tenants, t) }

	// Decide per tenant, newest first.
	ms, err := List(ctx, s, uuid.Nil)
	if err != nil {
		return nil, err
	}
	perTenant := map[uuid.UUID]int{}
	marked := map[string]bool{}
	for _, m := range ms {
		keep := !inScope(m.Tenant)
		if !keep {
			perTenant[m.Tenant]++
			keep = o.KeepLast > 0 && perTenant[m.Tenant] <= o.KeepLast ||
				o.KeepWithin > 0 && o.Now.Sub(m.CreatedAt) < o.KeepWithin
		}
		if keep {
			for _, f := range m.Files {
				if f.SHA256 != "" {
					if k, err := archive.BlobKeyHex(f.SHA256); err == nil {
						marked[k] = true
					}
				}
			}
			if inScope(m.Tenant) {
				rep.Kept = append(rep.Kept, m.Ref())
			}
			continue
		}
		rep.Removed = append(rep.Removed, m.Ref())
		if err := removeSnapshot(ctx, s, m.Ref(), snaps[m.Ref()].objects, o.DryRun, &rep.ObjectsBytes); err != nil {
			return rep, err
		}
	}
	// Objects of snapshots never committed: a crashed run, or one still writing.
	for ref, sn := range snaps {
		if sn.manifest || !inScope(ref.Tenant) || o.Now.Sub(sn.newest) < o.Grace {
			continue
		}
		for _, i := range sn.objects {
			rep.Incomplete = append(rep.Incomplete, i.Key)
			rep.ObjectsBytes += i.Size
			if !o.DryRun {
				if err := s.Delete(ctx, i.Key); err != nil {
					return rep, fmt.Errorf("prune: %w", err)
				}
			}
		}
	}
	slices.Sort(rep.Incomplete)
	// Sweep. Blobs are shared by every tenant: a blob is removed only if no
	// surviving manifest of any tenant names it.
	var doomed []storage.Info
	err = s.List(ctx, archive.BlobsPrefix, func(i storage.Info) error {
		if !marked[i.Key] && i.ModTime.Before(markStart.Add(-o.Grace)) {
			doomed = append(doomed, i)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("prune: list blobs: %w", err)
	}
	for _, i := range doomed {
		rep.Blobs++
		rep.BlobBytes += i.Size
		if !o.DryRun {
			if err := s.Delete(ctx, i.Key); err != nil {
				return rep, fmt.Errorf("prune: %w", err)
			}
		}
	}
	return rep, nil
}

// removeSnapshot deletes the manifest first: from then on the snapshot does not
// exist for any reader, whatever happens to the rest.
func removeSnapshot(ctx context.Context, s storage.Store, ref archive.SnapshotRef, objects []storage.Info, dry bool, bytes *int64) error {
	mk := archive.ManifestKey(ref.Tenant, ref.ID)
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
		*bytes += i.Size
		if dry {
			continue
		}
		if err := s.Delete(ctx, i.Key); err != nil {
			return fmt.Errorf("prune: snapshot %s of tenant %s: %w", ref.ID, ref.Tenant, err)
		}
	}
	return nil
}
