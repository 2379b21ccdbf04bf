package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/fence"
	"github.com/purgeguard/purgeguard/internal/catalog"
)

// trashBench measures the capturing fence's three costs on one tenant, each run on
// a fresh copy of the same database (CREATE DATABASE ... TEMPLATE):
//   - DELETE of the tenant's root row (the whole cascade) with no fence, with the
//     capturing fence and no approval, and with the capturing fence and the tenant
//     approved as guard approves it;
//   - trash save of what that unapproved DELETE kept, against a snapshot of the same
//     tenant (tables only, both).
func trashBench(dsn, bin, work, tablesCfg string, tenant uuid.UUID, runs int) error {
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	template := admin.Config().Database
	root, _ := catalog.ParseName("public.call_logd_tenant")
	co := catalog.Options{Root: root, Key: "uuid"}
	watch := []fence.Column{
		{Table: catalog.Name{Schema: "public", Table: "call_logd_recording"}, Column: "path"},
		{Table: catalog.Name{Schema: "public", Table: "call_logd_export"}, Column: "path"},
	}
	clone := func(name string) (*pgx.Conn, string, error) {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return nil, "", err
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{template}.Sanitize()); err != nil {
			return nil, "", fmt.Errorf("clone the bench database: %w", err)
		}
		cfg := admin.Config().Copy()
		cfg.Database = name
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return nil, "", err
		}
		// The clone's statistics: the template's are copied, but a fresh ANALYZE
		// keeps every variant on the same plans.
		if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
			return nil, "", err
		}
		return conn, strings.Replace(dsn, "/"+template+"?", "/"+name+"?", 1), nil
	}
	drop := func(conn *pgx.Conn, name string) {
		conn.Close(ctx)
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	}
	// deleteRun times the tenant's DELETE on a clone prepared by setup; keep, when
	// set, gets the clone afterwards (and then drops it).
	deleteRun := func(name string, setup func(*pgx.Conn) error, keep func(dsn string) error) (measure, int64, error) {
		conn, cdsn, err := clone("bench_trash_" + name)
		if err != nil {
			return measure{}, 0, err
		}
		defer drop(conn, "bench_trash_"+name)
		if setup != nil {
			if err := setup(conn); err != nil {
				return measure{}, 0, fmt.Errorf("%s: %w", name, err)
			}
		}
		start := time.Now()
		tag, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant)
		m := measure{name: name, wall: time.Since(start)}
		if err != nil || tag.RowsAffected() != 1 {
			return m, 0, fmt.Errorf("%s: delete: %d rows, %v", name, tag.RowsAffected(), err)
		}
		var kept int64
		if err := conn.QueryRow(ctx, "SELECT CASE WHEN to_regclass('purgeguard.trash') IS NULL THEN 0 ELSE 1 END").Scan(&kept); err == nil && kept == 1 {
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM purgeguard.trash").Scan(&kept); err != nil {
				return m, 0, err
			}
		}
		if keep != nil {
			if err := keep(cdsn); err != nil {
				return m, kept, err
			}
		}
		return m, kept, nil
	}
	install := func(conn *pgx.Conn) error {
		return fence.InstallCapture(ctx, conn, co, watch)
	}
	approve := func(conn *pgx.Conn) error {
		if err := install(conn); err != nil {
			return err
		}
		run := uuid.New()
		return fence.Arm(ctx, conn, run, []fence.Approval{{Tenant: tenant.String(), Snapshot: uuid.New(), ExpiresAt: time.Now().Add(time.Hour)}})
	}

	var rows, kept int64
	var saves []measure
	plainRun := func() (measure, error) {
		m, _, err := deleteRun("plain", nil, nil)
		return m, err
	}
	capturedRun := func() (measure, error) {
		m, n, err := deleteRun("capture", install, func(cdsn string) error {
			store := filepath.Join(work, "store-trash")
			defer os.RemoveAll(store)
			cmd := command(bin, "--log-level", "warn", "trash", "save")
			cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+cdsn, "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+tablesCfg)
			cmd.Stdout, cmd.Stderr = nil, os.Stderr
			s, err := timed("purgeguard trash save", cmd)
			if err != nil {
				return err
			}
			saves = append(saves, s)
			return nil
		})
		kept = n
		return m, err
	}
	approvedRun := func() (measure, error) {
		m, n, err := deleteRun("approved", approve, nil)
		if n != 0 {
			return m, fmt.Errorf("approved delete kept %d rows in the trash", n)
		}
		return m, err
	}
	snapRun := func() (measure, error) {
		conn, cdsn, err := clone("bench_trash_snapshot")
		if err != nil {
			return measure{}, err
		}
		defer drop(conn, "bench_trash_snapshot")
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = $1)
			+ (SELECT count(*) FROM call_logd_call_log_participant p JOIN call_logd_call_log c ON c.id = p.call_log_id WHERE c.tenant_uuid = $1)
			+ (SELECT count(*) FROM call_logd_call_log_destination d JOIN call_logd_call_log c ON c.id = d.call_log_id WHERE c.tenant_uuid = $1)
			+ (SELECT count(*) FROM call_logd_recording r JOIN call_logd_call_log c ON c.id = r.call_log_id WHERE c.tenant_uuid = $1)`, tenant).Scan(&rows); err != nil {
			return measure{}, err
		}
		store := filepath.Join(work, "store-trash-snapshot")
		defer os.RemoveAll(store)
		cmd := command(bin, "--log-level", "warn", "snapshot", "--tenant", tenant.String())
		cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+cdsn, "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+tablesCfg)
		cmd.Stdout, cmd.Stderr = nil, os.Stderr
		return timed("purgeguard snapshot", cmd)
	}
	// Rounds, each running the four in an order turned by one from the round before:
	// in series (five plain DELETEs, then five captured, ...) whatever drifts over
	// the minutes a series takes (the clones' WAL, the checkpoints) fell on the
	// later series; the same fence code printed approved / no fence from 1.03 to
	// 1.38 in quiet runs.
	kinds := []struct {
		name string
		run  func() (measure, error)
		out  []measure
	}{{"no fence", plainRun, nil}, {"unapproved", capturedRun, nil}, {"approved", approvedRun, nil}, {"snapshot", snapRun, nil}}
	for i := range max(runs, 1) {
		var line []string
		for j := range kinds {
			k := &kinds[(i+j)%len(kinds)]
			m, err := withMachineCPU(k.run)
			if err != nil {
				return err
			}
			k.out = append(k.out, m)
			line = append(line, fmt.Sprintf("%s %.3f s", k.name, m.wall.Seconds()))
		}
		fmt.Printf("capturing fence, round %d: %s\n", i+1, strings.Join(line, ", "))
	}
	plain, captured, approved, snap := middle(kinds[0].out), middle(kinds[1].out), middle(kinds[2].out), middle(kinds[3].out)
	save, err := median(len(saves), func() (measure, error) { m := saves[0]; saves = saves[1:]; return m, nil })
	if err != nil {
		return err
	}
	fmt.Printf("\ncapturing fence, tenant of %d call-log rows (%d rows kept in the trash by the unapproved DELETE), median of %d rounds:\n", rows, kept, runs)
	fmt.Printf("  DELETE, no fence:                    %8.3f s\n", plain.wall.Seconds())
	fmt.Printf("  DELETE, capture fence, unapproved:   %8.3f s\n", captured.wall.Seconds())
	fmt.Printf("  DELETE, capture fence, approved:     %8.3f s\n", approved.wall.Seconds())
	fmt.Printf("  trash save of the kept rows:         %8.3f s, peak RSS %.1f MiB\n", save.wall.Seconds(), float64(save.rssKiB)/1024)
	fmt.Printf("  snapshot of the same tenant:         %8.3f s, peak RSS %.1f MiB\n", snap.wall.Seconds(), float64(snap.rssKiB)/1024)
	r1, r2, r3 := captured.wall.Seconds()/plain.wall.Seconds(), approved.wall.Seconds()/plain.wall.Seconds(), save.wall.Seconds()/snap.wall.Seconds()
	fmt.Printf("unapproved DELETE with capture / no fence: %.2f (target <= 3: %s)\n", r1, verdict(r1 <= 3))
	fmt.Printf("approved DELETE with fence / no fence:     %.2f (target <= 1.1: %s)\n", r2, verdict(r2 <= 1.1))
	fmt.Printf("trash save / snapshot:                     %.2f (target <= 2: %s)\n", r3, verdict(r3 <= 2))
	return nil
}
