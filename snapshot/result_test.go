package snapshot

import (
	"testing"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// The public scope kinds are the manifest's words: a snapshot's Scope.Kind is copied
// from its manifest and compared with these by callers.
func TestScopeKinds(t *testing.T) {
	if ScopeTenant != archive.ScopeTenant || ScopeRetention != archive.ScopeRetention {
		t.Errorf("scope kinds %q, %q differ from the manifest's %q, %q", ScopeTenant, ScopeRetention, archive.ScopeTenant, archive.ScopeRetention)
	}
}
