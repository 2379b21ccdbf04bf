package layers_test

import (
	"os"
	"testing"

	"github.com/purgeguard/purgeguard/internal/devtools/layers"
)

const m = layers.Module

// The tree as it stands keeps every arrow pointing down.
func TestScan_Tree(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := layers.ModuleRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := layers.Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v)
	}
}

// Each rule, shown failing on the import it forbids and passing on its neighbour:
// this is what the tree scan would report if such an import were added.
func TestCheck(t *testing.T) {
	tests := []struct {
		pkg, imp string
		ok       bool
	}{
		{m + "/cmd/purgeguard", m + "/guard", true},
		{m + "/guard", m + "/snapshot", true},
		{m + "/guard", m + "/cmd/purgeguard", false},
		{m + "/snapshot", m + "/guard", false},   // the arrow of stop 9: internal/guard → snapshot was up
		{m + "/snapshot", m + "/restore", false}, // engines stay apart
		{m + "/shield", m + "/snapshot", false},  // engines stay apart
		{m + "/snapshot", m + "/internal/catalog", true},
		{m + "/internal/repository", m + "/snapshot", false},
		{m + "/internal/repository", m + "/storage", true},
		{m + "/internal/config", m + "/profile", true},
		{m + "/storage", m + "/internal/archive", false},
		{m + "/storage", "github.com/minio/minio-go/v7", true},
		{m + "/storage", "github.com/jackc/pgx/v5", false},
		{m + "/storage/storagetest", m + "/storage", true},
		{m + "/storage/storagetest", m + "/internal/devtools/testenv", false}, // the arrow of stop 9
		{m + "/policy", "github.com/google/uuid", true},
		{m + "/policy", "github.com/jackc/pgx/v5", false},
		{m + "/policy", m + "/profile", false},
		{m + "/profile", "github.com/jackc/pgx/v5", true},
		{m + "/restore", m + "/internal/devtools/fixture", false},
		{m + "/internal/devtools/benchrun", m + "/snapshot", true}, // tools may use anything
		{m + "/guard", "os/exec", true},
		{m + "/cmd/purgeguard", m + "/undo", true},
		{m + "/undo", m + "/restore", true},
		{m + "/undo", m + "/internal/repository", true},
		{m + "/restore", m + "/undo", false},
		{m + "/undo", m + "/guard", false}, // orchestrators stay apart: the lock comes in as a function
		{m + "/undo", m + "/cmd/purgeguard", false},
	}
	for _, tc := range tests {
		why := layers.Check(tc.pkg, tc.imp)
		if (why == "") != tc.ok {
			t.Errorf("Check(%s, %s) = %q, want allowed %v", tc.pkg, tc.imp, why, tc.ok)
		}
	}
}
