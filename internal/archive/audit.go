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
)

// Audit is one record of something purgeguard decided or did. It names people and
// hosts, never credentials: nothing from the configuration's secrets goes in here.
type Audit struct {
	ID          uuid.UUID       `json:"id"`
	Kind        string          `json:"kind"`
	Time        time.Time       `json:"time"`
	User        string          `json:"user,omitempty"`
	Host        string          `json:"host,omitempty"`
	ToolVersion string          `json:"tool_version"`
	Tenants     []uuid.UUID     `json:"tenants,omitempty"`
	Snapshots   []SnapshotRef   `json:"snapshots,omitempty"`
	Outcome     string          `json:"outcome"` // "allowed", "refused", "done", "failed"
	Detail      json.RawMessage `json:"detail,omitempty"`
}

// Key is where the record is stored.
func (a *Audit) Key() string { return AuditKey(a.Time, a.ID) }
