package snapshot

import (
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/internal/archive"
)

// Snapshot is one committed snapshot as Run returns it: what a caller needs to name
// it, report it and check a purge against it. The manifest in storage holds the rest.
type Snapshot struct {
	ID        uuid.UUID `json:"snapshot"`
	Tenant    uuid.UUID `json:"tenant"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	Scope     Scope     `json:"scope"`
	Tables    []Table   `json:"tables"`
	Totals    Totals    `json:"totals"`
}

// Table is one saved table of a snapshot.
type Table struct {
	Table       string `json:"table"` // schema.table
	Rows        int64  `json:"rows"`
	RawBytes    int64  `json:"raw_bytes"`
	StoredBytes int64  `json:"stored_bytes"`
}

// Scope says which rows a snapshot holds: a whole tenant (ScopeTenant), or what a
// retention purge removes (ScopeRetention), with each kind's cut-off (the instant
// before which rows were saved: the purge's cut-off plus a margin) and days.
type Scope struct {
	Kind    string               `json:"kind"`
	Cutoffs map[string]time.Time `json:"cutoffs,omitempty"`
	Days    map[string]int       `json:"days,omitempty"`
	// Transactions, for a trash snapshot (ScopeTrash), are the deleting transactions
	// whose kept rows of the tenant it holds.
	Transactions []Transaction `json:"transactions,omitempty"`
}

// Transaction is one deleting transaction whose rows a trash snapshot holds: its id
// (xid8), when its first and last rows were kept, and how many.
type Transaction struct {
	Xid   uint64    `json:"xid"`
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Rows  int64     `json:"rows"`
}

// Scope kinds.
const (
	ScopeTenant    = "tenant"    // everything a purge of the tenant would remove or change
	ScopeRetention = "retention" // what a retention purge would remove, per cut-off
	ScopeTrash     = "trash"     // rows the capturing fence kept (RunTrash)
)

// Totals sums a snapshot's tables and files.
type Totals struct {
	Tables      int   `json:"tables"`
	Rows        int64 `json:"rows"`
	Files       int   `json:"files"`
	FilesBytes  int64 `json:"files_bytes"`
	RawBytes    int64 `json:"raw_bytes"`
	StoredBytes int64 `json:"stored_bytes"`
	Missing     int   `json:"missing_files"`
	OutsideRoot int   `json:"outside_root_files"`
	Recovered   int   `json:"recovered_files"` // of Files: missing on disk, saved from the file shield
}

func scopeOf(s archive.Scope) Scope {
	out := Scope{Kind: s.Kind, Cutoffs: s.Cutoffs, Days: s.Days}
	for _, t := range s.Transactions {
		out.Transactions = append(out.Transactions, Transaction(t))
	}
	return out
}

func snapshotOf(m *archive.Manifest) Snapshot {
	tables := make([]Table, len(m.Tables))
	for i, t := range m.Tables {
		tables[i] = Table{Table: t.Schema + "." + t.Name, Rows: t.Rows, RawBytes: t.RawBytes, StoredBytes: t.StoredBytes}
	}
	return Snapshot{ID: m.ID, Tenant: m.Tenant, Reason: m.Reason, CreatedAt: m.CreatedAt,
		Scope: scopeOf(m.Scope), Tables: tables, Totals: Totals(m.Totals())}
}
