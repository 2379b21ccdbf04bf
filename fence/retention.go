package fence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/profile"
)

// RetentionApproval lets the capturing fence pass, without a copy, what a guarded
// retention purge removes of one tenant: the rows of Table older than Cutoff by
// TimeColumn, or, with Null set, the emptying of Null's columns in rows whose parent
// row of Table (through the single-column key Null.Column → Null.RefColumn) is.
type RetentionApproval struct {
	Tenant       uuid.UUID
	Table        profile.TableName
	TenantColumn string
	TimeColumn   string
	Cutoff       time.Time
	Null         *NullRef
	ExpiresAt    time.Time
}

// NullRef is the table a retention rule empties columns of, and its key to the
// rule's table.
type NullRef struct {
	Table     profile.TableName
	Column    string // of Table, referencing the rule's table
	RefColumn string // of the rule's table
}

// ArmRetention records retention approvals for run and commits them. Without the
// fence it returns ErrNotInstalled. Only a capturing fence reads them.
func ArmRetention(ctx context.Context, conn *pgx.Conn, run uuid.UUID, approvals []RetentionApproval) error {
	if run == uuid.Nil {
		return errors.New("fence: arm retention: no run id")
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := beginInstalled(ctx, tx); err != nil {
			return err
		}
		for _, a := range approvals {
			if a.ExpiresAt.IsZero() || a.Cutoff.IsZero() {
				return fmt.Errorf("retention approval of tenant %s on %s: no cut-off or no expiry", a.Tenant, a.Table)
			}
			var ns, nt, fc, rc *string
			if a.Null != nil {
				ns, nt, fc, rc = &a.Null.Table.Schema, &a.Null.Table.Table, &a.Null.Column, &a.Null.RefColumn
			}
			_, err := tx.Exec(ctx, `INSERT INTO purgeguard.retention_approval
				(run, tenant, table_schema, table_name, time_column, cutoff, null_schema, null_table, fk_column, ref_column, tenant_column, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
				run, a.Tenant.String(), a.Table.Schema, a.Table.Table, a.TimeColumn, a.Cutoff, ns, nt, fc, rc, a.TenantColumn, a.ExpiresAt)
			if err != nil {
				return fmt.Errorf("insert into %s.retention_approval: %w", Schema, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fence: arm retention run %s: %w", run, err)
	}
	return nil
}
