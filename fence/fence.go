// Package fence installs database triggers that refuse any tenant DELETE purgeguard did
// not approve, and any TRUNCATE of a table a purge reaches. A tenant sync that deletes
// every tenant (as call-logd's once did, through ON DELETE CASCADE) then fails before
// it removes a single row, whatever client runs it.
//
// Approvals live in purgeguard.approval: the guard snapshots a tenant, arms the fence
// for it (a committed row, visible to the purging session), and disarms it afterwards.
// The triggers compare the deleted row's key, as text, with the live approvals.
package fence

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/purgeguard/purgeguard/profile"
)

// SQLState is the SQLSTATE of the fence's exceptions, for a refused DELETE and a
// refused TRUNCATE alike. It is a code of its own (class "PG" is unused by PostgreSQL)
// rather than P0001, which every plain RAISE EXCEPTION of any trigger also raises.
const SQLState = "PGF01"

// Names the fence creates. The schema is purgeguard's own; nothing else lives there.
const (
	Schema               = "purgeguard"
	DeleteTrigger        = "purgeguard_fence"          // refuse mode: BEFORE DELETE FOR EACH ROW on the root
	TruncateTrigger      = "purgeguard_fence_truncate" // BEFORE TRUNCATE on every fenced table
	CaptureTrigger       = "purgeguard_capture_delete" // capture mode: AFTER DELETE FOR EACH STATEMENT on every graph table and partition
	CaptureUpdateTrigger = "purgeguard_capture_update" // capture mode: BEFORE UPDATE OF emptied columns
	MarkTrigger          = "purgeguard_mark"           // capture mode: BEFORE DELETE FOR EACH ROW on the root, marking approved deletes
	// MarkStatementTrigger is, in capture mode, BEFORE DELETE FOR EACH STATEMENT on
	// every table without a tenant column (and its partitions), marking a DELETE the
	// transaction issues itself, not a cascade's.
	MarkStatementTrigger = "purgeguard_mark_statement"
)

// legacyCaptureTrigger is the row trigger earlier versions captured deletes with:
// Install and Uninstall remove it.
const legacyCaptureTrigger = "purgeguard_capture"

// triggerNames are every name the fence gives its triggers.
var triggerNames = []string{DeleteTrigger, TruncateTrigger, CaptureTrigger, CaptureUpdateTrigger, MarkTrigger, MarkStatementTrigger, legacyCaptureTrigger}

// Modes of the fence.
const (
	// ModeRefuse fails every tenant DELETE of the root that guard did not approve.
	ModeRefuse = "refuse"
	// ModeCapture lets every DELETE through and keeps what guard did not approve in
	// the trash.
	ModeCapture = "capture"
)

// Column is a column whose emptying (an UPDATE setting it to NULL) the capturing
// fence keeps the old row of: a file column (call-logd's recording path), a column
// a retention purge empties.
type Column struct {
	Table  profile.TableName
	Column string
}

// ErrTrashNotEmpty is returned by Uninstall without force while the trash holds rows.
var ErrTrashNotEmpty = errors.New("the trash holds rows: run `purgeguard trash save` first, or uninstall with --force to drop them")

// ErrNotInstalled is wrapped by the errors of Arm and Disarm when the database has no
// fence; test for it with errors.Is.
var ErrNotInstalled = errors.New("the fence is not installed")

// IsRefused reports whether err is the fence refusing a DELETE or a TRUNCATE. It looks
// at the SQLSTATE only: messages are for humans and may change.
func IsRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == SQLState
}

// State is what Status found.
type State struct {
	Installed bool   `json:"installed"`
	Mode      string `json:"mode,omitempty"`
	// DDLGuard is true when event triggers refuse disabling or dropping the fence's
	// triggers to every role but a superuser (Install run by a superuser).
	DDLGuard bool `json:"ddl_guard"`
	// NewPartitions is true when an event trigger fences the partitions created or
	// attached below a fenced table after Install (Install run by a superuser);
	// without it those partitions are not fenced until Install runs again.
	NewPartitions bool                `json:"new_partitions_fenced"`
	TrashRows     int64               `json:"trash_rows"`
	Tables        []profile.TableName `json:"tables"`    // fenced tables, partitions included
	Approvals     []Approval          `json:"approvals"` // live ones only
}

// Approval lets one tenant's root row be deleted until ExpiresAt.
type Approval struct {
	// Tenant is the key in its text form: what `key::text` gives in PostgreSQL.
	Tenant    string    `json:"tenant"`
	Snapshot  uuid.UUID `json:"snapshot"`
	Run       uuid.UUID `json:"run"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"` // set by the database; ignored by Arm
}

// Querier is what Status reads through: a *pgx.Conn, a pgx.Tx or a pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// GraphError is returned by Uninstall when the tenant graph cannot be read: the
// caller may uninstall from the fence's own records instead (tenants nil).
type GraphError struct{ Err error }

func (e *GraphError) Error() string { return "fence: tenant graph unreadable: " + e.Err.Error() }
func (e *GraphError) Unwrap() error { return e.Err }
