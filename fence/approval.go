package fence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Status reports whether the fence is installed, the tables it guards and the live
// approvals (expires_at > now()). Without the fence it returns Installed false.
func Status(ctx context.Context, q Querier) (*State, error) {
	st := &State{}
	if err := q.QueryRow(ctx, installedSQL).Scan(&st.Installed); err != nil {
		return nil, fmt.Errorf("fence: status: %w", err)
	}
	if !st.Installed {
		return st, nil
	}
	tables, err := queryNames(ctx, q, "SELECT schema, table_name FROM purgeguard.fenced ORDER BY 1, 2")
	if err != nil {
		return nil, fmt.Errorf("fence: status: read %s.fenced: %w", Schema, err)
	}
	st.Tables = tables
	st.Mode = ModeRefuse
	if err := q.QueryRow(ctx, ddlGuardInstalledSQL).Scan(&st.DDLGuard); err != nil {
		return nil, fmt.Errorf("fence: status: read the event triggers: %w", err)
	}
	if err := q.QueryRow(ctx, partitionGuardInstalledSQL).Scan(&st.NewPartitions); err != nil {
		return nil, fmt.Errorf("fence: status: read the event triggers: %w", err)
	}
	var capture bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('purgeguard.setting') IS NOT NULL AND to_regclass('purgeguard.trash') IS NOT NULL").Scan(&capture); err != nil {
		return nil, fmt.Errorf("fence: status: %w", err)
	}
	if capture {
		err := q.QueryRow(ctx, "SELECT coalesce((SELECT value FROM purgeguard.setting WHERE name = 'mode'), $1), (SELECT count(*) FROM purgeguard.trash)",
			ModeRefuse).Scan(&st.Mode, &st.TrashRows)
		if err != nil {
			return nil, fmt.Errorf("fence: status: read the mode and the trash: %w", err)
		}
	}
	rows, err := q.Query(ctx, `
		SELECT tenant, snapshot, run, expires_at, created_at FROM purgeguard.approval
		WHERE expires_at > now() ORDER BY created_at, tenant, run`)
	if err != nil {
		return nil, fmt.Errorf("fence: status: read %s.approval: %w", Schema, err)
	}
	st.Approvals, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Approval, error) {
		var a Approval
		err := row.Scan(&a.Tenant, &a.Snapshot, &a.Run, &a.ExpiresAt, &a.CreatedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("fence: status: read %s.approval: %w", Schema, err)
	}
	return st, nil
}

// Arm records approvals for run and commits them, so that the purge, which runs in
// another session, may delete those tenants' root rows until each ExpiresAt. Each
// approval's Run must be run or zero; CreatedAt is the database's. Arming a tenant the
// run already armed replaces its snapshot and expiry. Without the fence Arm returns
// ErrNotInstalled and records nothing: whether to purge unfenced is the caller's call.
func Arm(ctx context.Context, conn *pgx.Conn, run uuid.UUID, approvals []Approval) error {
	if err := checkApprovals(run, approvals); err != nil {
		return fmt.Errorf("fence: arm run %s: %w", run, err)
	}
	tenants := make([]string, len(approvals))
	snapshots := make([]uuid.UUID, len(approvals))
	expires := make([]time.Time, len(approvals))
	for i, a := range approvals {
		tenants[i], snapshots[i], expires[i] = a.Tenant, a.Snapshot, a.ExpiresAt
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := beginInstalled(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO purgeguard.approval (tenant, snapshot, run, expires_at)
			SELECT t, s, $4, e FROM unnest($1::text[], $2::uuid[], $3::timestamptz[]) AS a(t, s, e)
			ON CONFLICT (tenant, run) DO UPDATE
				SET snapshot = excluded.snapshot, expires_at = excluded.expires_at`,
			tenants, snapshots, expires, run)
		if err != nil {
			return fmt.Errorf("insert into %s.approval: %w", Schema, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fence: arm run %s: %w", run, err)
	}
	return nil
}

// Disarm deletes run's approvals, and expired ones of any run, which approve nothing
// and would only accumulate. Without the fence it returns ErrNotInstalled.
func Disarm(ctx context.Context, conn *pgx.Conn, run uuid.UUID) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := beginInstalled(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM purgeguard.approval WHERE run = $1 OR expires_at <= now()", run); err != nil {
			return fmt.Errorf("delete from %s.approval: %w", Schema, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM purgeguard.retention_approval WHERE run = $1 OR expires_at <= now()`, run); err != nil {
			return fmt.Errorf("delete from %s.retention_approval: %w", Schema, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fence: disarm run %s: %w", run, err)
	}
	return nil
}

// installedSQL is true when both tables of the fence exist.
const installedSQL = "SELECT to_regclass('purgeguard.approval') IS NOT NULL AND to_regclass('purgeguard.fenced') IS NOT NULL"

// beginInstalled takes the shared lock, so no Uninstall runs until the transaction
// ends, then checks the fence is there.
func beginInstalled(ctx context.Context, tx pgx.Tx) error {
	if err := begin(ctx, tx, false); err != nil {
		return err
	}
	var installed bool
	if err := tx.QueryRow(ctx, installedSQL).Scan(&installed); err != nil {
		return fmt.Errorf("look for the fence: %w", err)
	}
	if !installed {
		return ErrNotInstalled
	}
	return nil
}

func checkApprovals(run uuid.UUID, approvals []Approval) error {
	if run == uuid.Nil {
		return errors.New("no run id")
	}
	seen := map[string]bool{}
	for _, a := range approvals {
		switch {
		case a.Tenant == "":
			return errors.New("approval without a tenant")
		case a.ExpiresAt.IsZero():
			return fmt.Errorf("approval of tenant %s: no expiry", a.Tenant)
		case a.Run != uuid.Nil && a.Run != run:
			return fmt.Errorf("approval of tenant %s: run %s, not %s", a.Tenant, a.Run, run)
		case seen[a.Tenant]:
			// One statement cannot upsert the same row twice.
			return fmt.Errorf("tenant %s approved twice", a.Tenant)
		}
		seen[a.Tenant] = true
	}
	return nil
}
