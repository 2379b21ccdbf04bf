package archive_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

func TestAuditKinds(t *testing.T) {
	tests := []struct{ got, want string }{
		{archive.AuditDecision, "decision"},
		{archive.AuditSnapshot, "snapshot"},
		{archive.AuditRestore, "restore"},
		{archive.AuditPrune, "prune"},
		{archive.AuditGuard, "guard"},
		{archive.AuditUndo, "undo"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestAuditMethodKey(t *testing.T) {
	id := uuid.MustParse("3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d")
	at := time.Date(2026, 3, 10, 1, 5, 7, 42, time.FixedZone("+11", 11*3600))
	a := &archive.Audit{ID: id, Kind: archive.AuditSnapshot, Time: at}
	if got, want := a.Key(), "audit/2026/03/09/140507.000000042Z-3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d.json"; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, want := a.Key(), archive.AuditKey(at, id); got != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestAuditJSON pins the stored form of audit records: field names and which fields are
// left out when empty.
func TestAuditJSON(t *testing.T) {
	id := uuid.MustParse("3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d")
	at := time.Date(2026, 3, 9, 14, 5, 7, 123000000, time.UTC)
	tests := []struct {
		name string
		a    archive.Audit
		want string
	}{
		{"minimal", archive.Audit{ID: id, Kind: archive.AuditGuard, Time: at, ToolVersion: "v1", Outcome: "refused"},
			`{"id":"3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d","kind":"guard","time":"2026-03-09T14:05:07.123Z",` +
				`"tool_version":"v1","outcome":"refused"}`},
		{"full", archive.Audit{
			ID: id, Kind: archive.AuditSnapshot, Time: at, User: "ops", Host: "pbx1", ToolVersion: "v1",
			Tenants:   []uuid.UUID{tenantA},
			Snapshots: []archive.SnapshotRef{{Tenant: tenantA, ID: snapA}},
			Outcome:   "done",
			Detail:    json.RawMessage(`{"rows":3}`),
		},
			`{"id":"3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d","kind":"snapshot","time":"2026-03-09T14:05:07.123Z",` +
				`"user":"ops","host":"pbx1","tool_version":"v1","tenants":["6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11"],` +
				`"snapshots":[{"tenant":"6f1c2a4e-0b7d-4c1e-9a53-2f0e8d7b4c11","id":"0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7d"}],` +
				`"outcome":"done","detail":{"rows":3}}`},
		{"guard run", archive.Audit{
			ID: id, Kind: archive.AuditGuard, Time: at, ToolVersion: "v1", Outcome: "done",
			Run: snapA, Scope: archive.ScopeRetention, Command: []string{"wazo-purge-db"},
		},
			`{"id":"3d4e5f60-7182-4a9b-8c0d-1e2f3a4b5c6d","kind":"guard","time":"2026-03-09T14:05:07.123Z",` +
				`"tool_version":"v1","outcome":"done","run":"0195a3c1-7e2f-7a4b-9c1d-2e3f4a5b6c7d","scope":"retention","command":["wazo-purge-db"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(&tt.a)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			var back archive.Audit
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.a) {
				t.Errorf("round trip: got %+v, want %+v", back, tt.a)
			}
		})
	}
}
