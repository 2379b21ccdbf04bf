package archive

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Audit record kinds.
const (
	AuditDecision = "decision"
	AuditSnapshot = "snapshot"
	AuditRestore  = "restore"
	AuditPrune    = "prune"
	AuditGuard    = "guard"
	// AuditLoss is a shielded file whose path no longer holds it; its detail is
	// the shield's loss record (path, blob, owner, mode, link).
	AuditLoss = "loss"
	AuditUndo = "undo"
	// AuditForget records a crypto-shredding (issue 15): the tenants and the
	// snapshots that became unreadable; never a key.
	AuditForget = "forget"
)

// Audit is one record of something purgeguard decided or did. It names people and
// hosts, never credentials: nothing from the configuration's secrets goes in here.
type Audit struct {
	ID          uuid.UUID     `json:"id"`
	Kind        string        `json:"kind"`
	Time        time.Time     `json:"time"`
	User        string        `json:"user,omitempty"`
	Host        string        `json:"host,omitempty"`
	ToolVersion string        `json:"tool_version"`
	Tenants     []uuid.UUID   `json:"tenants,omitempty"`
	Snapshots   []SnapshotRef `json:"snapshots,omitempty"`
	Outcome     string        `json:"outcome"` // "allowed", "refused", "done", "failed"
	// Run, Scope and Command describe a guard run (kind guard): its run id (the
	// reason of its snapshots, what undo --run takes), what it guarded (ScopeTenant:
	// a tenant purge, ScopeRetention: the retention purge) and the purge command, its
	// secrets redacted; an undo --run record names the run it reversed in Run.
	// Records written before these fields existed hold the run id in Detail only;
	// they read back with these empty.
	Run     uuid.UUID       `json:"run,omitzero"`
	Scope   string          `json:"scope,omitempty"`
	Command []string        `json:"command,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// Key is where the record is stored.
func (a *Audit) Key() string { return AuditKey(a.Time, a.ID) }
