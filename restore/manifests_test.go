package restore_test

import (
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/testenv"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// manifests reads back the manifests of the snapshots Run returned.
func manifests(t *testing.T, s storage.Store, ss []snapshot.Snapshot) []*archive.Manifest {
	t.Helper()
	out := make([]*archive.Manifest, len(ss))
	for i, sn := range ss {
		out[i] = testenv.Manifest(t, s, sn.Tenant, sn.ID)
	}
	return out
}
