package restore_test

import (
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// manifests reads back, from storage, the manifests of the snapshots Run returned:
// the tests check what was committed, not what the run says it did.
func manifests(t *testing.T, s storage.Store, ss []snapshot.Snapshot) []*archive.Manifest {
	t.Helper()
	out := make([]*archive.Manifest, len(ss))
	for i, sn := range ss {
		m, err := repository.Manifest(testenv.Context(t), s, archive.SnapshotRef{Tenant: sn.Tenant, ID: sn.ID})
		if err != nil {
			t.Fatalf("manifest of snapshot %s: %v", sn.ID, err)
		}
		out[i] = m
	}
	return out
}
