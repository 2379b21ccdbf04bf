package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
	"github.com/purgeguard/purgeguard/undo"
)

func newUndoCommand() *cli.Command {
	return &cli.Command{
		Name:  "undo",
		Usage: "restore everything one bad purge removed: a guard run, a time window, or listed tenants",
		Description: `Chooses the snapshots by what you know about the incident:
  --run ID                     every tenant guard run ID snapshotted (the id guard prints
                               and purgeguard history lists);
  --since TIME [--until TIME]  every snapshot taken in the window (guard, retention,
                               manual), a tenant's snapshots newest first;
  --tenants-file F             the newest snapshot of each listed tenant.
It prints the plan (tenants, snapshots, rows and files) and then restores --jobs tenants
at once, each tenant in its own transaction as restore does: a tenant comes back from all
its snapshots or not at all, and a failed tenant does not stop the others. A retention
snapshot is applied with --on-conflict fill-nulls, the others skip rows already present
(the newest snapshot goes first, so its version of a row wins). It ends with one table:
per tenant restored, already present, or FAILED with the reason. Exit 0 only when every
tenant is back; rows already present are never inserted twice, so run it again once the
cause of a failure is fixed: it restores only what is still missing.

--dry-run also reads the database: per tenant what is already present and what would
be inserted and written; it changes nothing.

TIME is RFC 3339 (2026-11-28T03:00:00Z), a date and time in the local zone
("2026-11-28 03:00"), or a duration back from now (90m, 6h, 2d).

Examples:
   purgeguard history
   purgeguard undo --run 0193a5c4-… --dry-run
   purgeguard undo --run 0193a5c4-… --jobs 4
   purgeguard undo --since 2026-11-28T02:00:00Z --until 2026-11-28T04:00:00Z
   purgeguard undo --tenants-file lost.txt -o json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run", Usage: "guard run `ID` whose snapshots to restore (purgeguard history)"},
			&cli.StringFlag{Name: "since", Usage: "restore every snapshot taken from `TIME` on"},
			&cli.StringFlag{Name: "until", Usage: "with --since: up to `TIME` (default: now)"},
			newTenantsFileFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and what is already present; change nothing"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Value: 2, Usage: "tenants restored at once, `N` from 1 to 64 (one connection each)"},
			newDatabaseURLFlag(),
			&cli.BoolFlag{Name: "allow-drop-columns", Usage: "restore even if columns were dropped since the snapshots (their values are lost)"},
			&cli.BoolFlag{Name: "overwrite-files", Usage: "replace files whose content differs from the snapshot"},
		},
		Action: runUndo,
	}
}

func runUndo(c *cli.Context) error {
	e := getEnv(c)
	sel, err := undoSelection(c)
	if err != nil {
		return err
	}
	jobs := c.Int("jobs")
	if jobs < 1 || jobs > 64 {
		return usagef("--jobs %d: must be between 1 and 64", jobs)
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	plan, err := undo.NewPlan(c.Context, store, sel)
	if errors.Is(err, repository.ErrNoRun) {
		return usagef("--run %s: %v (purgeguard history lists the runs)", sel.Run, err)
	}
	if err != nil {
		return err
	}
	if !e.json {
		printUndoPlan(e.stdout, plan)
	}
	dry := c.Bool("dry-run")
	keys, err := opener(c.Context, e, store)
	if err != nil {
		return err
	}
	res, err := plan.Execute(c.Context, cfg, store, undo.Options{
		Keys: keys,
		Jobs: jobs, DryRun: dry, Graph: e.prof.Tenants, Files: e.prof.Files,
		AllowDropColumns: c.Bool("allow-drop-columns"), OverwriteFiles: c.Bool("overwrite-files"), Log: e.log,
		Lock: func(ctx context.Context, tx pgx.Tx, tenant uuid.UUID) error {
			err := guard.LockTenantTx(ctx, tx, tenant)
			if errors.Is(err, guard.ErrBusy) {
				return fmt.Errorf("%w: a guard run is at work (or waiting) on this database: run undo again once it has ended", err)
			}
			return err
		},
	})
	if err != nil {
		return err
	}
	for _, t := range res.Tenants {
		e.rows += t.Inserted
	}
	if !dry {
		writeUndoAudit(c, e, store, plan, res)
	}
	doc := struct {
		Plan   *undo.Plan   `json:"plan"`
		Result *undo.Result `json:"result"`
	}{plan, res}
	if err := e.emit(doc, func(w io.Writer) { printUndoResult(w, res) }); err != nil {
		return err
	}
	if err := res.Err(); err != nil {
		// The report is printed; the status is the one exitCode gives the error
		// (4 for a verification or integrity failure), never a usage code.
		code := exitCode(err)
		if code == exitUsage || code == exitOK {
			code = exitError
		}
		return &errReported{code: code}
	}
	return nil
}

// undoSelection reads --run, --since/--until and --tenants-file: exactly one.
func undoSelection(c *cli.Context) (undo.Selection, error) {
	var sel undo.Selection
	n := 0
	for _, f := range []string{"run", "since", flagTenantsFile} {
		if c.IsSet(f) {
			n++
		}
	}
	if n != 1 {
		return sel, usagef("undo: give exactly one of --run ID, --since TIME or --tenants-file F (purgeguard history lists the runs)")
	}
	if c.IsSet("until") && !c.IsSet("since") {
		return sel, usagef("--until goes with --since")
	}
	now := time.Now()
	var err error
	switch {
	case c.IsSet("run"):
		if sel.Run, err = uuid.Parse(c.String("run")); err != nil {
			return sel, usagef("--run %q: not a run id", c.String("run"))
		}
	case c.IsSet("since"):
		if sel.Since, err = parseWhen("--since", c.String("since"), now); err != nil {
			return sel, err
		}
		if c.IsSet("until") {
			if sel.Until, err = parseWhen("--until", c.String("until"), now); err != nil {
				return sel, err
			}
			if sel.Until.Before(sel.Since) {
				return sel, usagef("--until %s is before --since %s", c.String("until"), c.String("since"))
			}
		}
	default:
		if sel.Tenants, err = readTenantsFile(c, c.String(flagTenantsFile)); err != nil {
			return sel, err
		}
		if len(sel.Tenants) == 0 {
			return sel, usagef("--tenants-file %s: no tenant in it", c.String(flagTenantsFile))
		}
	}
	return sel, nil
}

// parseWhen reads a TIME flag: RFC 3339, a local date and time, or a duration ago.
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := config.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usagef("%s %q: want RFC 3339 (2026-11-28T03:00:00Z), a local \"2026-11-28 03:00\", or a duration back from now (6h, 2d)", flag, s)
}

func printUndoPlan(w io.Writer, p *undo.Plan) {
	fmt.Fprintf(w, "undo plan: %s\n", p.Selection)
	if r := p.Run; r != nil {
		cmd := strings.Join(r.Command, " ")
		if cmd == "" {
			cmd = "(not recorded)"
		}
		fmt.Fprintf(w, "  %s purge started %s, command %s, outcome %s, blast radius %s\n",
			r.Scope, r.Started.Format(time.RFC3339), cmd, r.Outcome, r.Verdict)
	}
	fmt.Fprintf(w, "  %d tenants, %d snapshots, %d rows, %d files\n", len(p.Tenants), p.Snapshots, p.Rows, p.Files)
	if len(p.Tenants) == 0 {
		fmt.Fprintln(w, "  nothing to restore: no snapshot is selected (a refused run took none, and its purge never ran)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSNAPSHOT\tCREATED\tSCOPE\tON CONFLICT\tROWS\tFILES")
	for _, t := range p.Tenants {
		if t.Problem != "" {
			fmt.Fprintf(tw, "%s\t-\t\t\t\t\t\tCANNOT RESTORE: %s\n", t.Tenant, t.Problem)
		}
		for _, s := range t.Snapshots {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", t.Tenant, s.Snapshot, s.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"),
				s.Scope, s.OnConflict, s.Rows, s.Files)
		}
	}
	tw.Flush()
}

func printUndoResult(w io.Writer, r *undo.Result) {
	head := "undo"
	if r.DryRun {
		head = "undo dry run, nothing changed"
	}
	fmt.Fprintf(w, "%s:\n", head)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	insert, write := "INSERTED", "WRITTEN"
	if r.DryRun {
		insert, write = "TO INSERT", "TO WRITE"
	}
	fmt.Fprintf(tw, "TENANT\tSTATUS\tROWS\tPRESENT\t%s\tUPDATED\tFILES %s\tFILES PRESENT\tREASON\n", insert, write)
	for _, t := range r.Tenants {
		status := strings.ReplaceAll(t.Status, "_", " ")
		if t.Status == undo.Failed {
			status = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Tenant, status, t.Rows, t.Present, t.Inserted, t.Updated,
			t.FilesWritten, t.FilesPresent, oneLine(t.Reason))
	}
	tw.Flush()
	switch {
	case r.DryRun:
		fmt.Fprintf(w, "%d tenants to restore, %d already present, %d cannot be restored\n", r.Restored, r.Present, r.Failed)
	case r.Failed > 0:
		fmt.Fprintf(w, "%d restored, %d already present, %d FAILED (nothing of a failed tenant was committed): fix the reason and run the same undo again; it restores only what is still missing\n",
			r.Restored, r.Present, r.Failed)
	default:
		fmt.Fprintf(w, "every tenant is back: %d restored, %d already present\n", r.Restored, r.Present)
	}
}

// oneLine keeps a table row on one line: joined errors carry newlines.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// writeUndoAudit records an undo: which tenants, from which snapshots, and how each
// ended.
func writeUndoAudit(c *cli.Context, e *env, store storage.Store, p *undo.Plan, r *undo.Result) {
	var tenants []uuid.UUID
	var snaps []archive.SnapshotRef
	for _, t := range p.Tenants {
		tenants = append(tenants, t.Tenant)
		for _, s := range t.Snapshots {
			snaps = append(snaps, archive.SnapshotRef{Tenant: t.Tenant, ID: s.Snapshot})
		}
	}
	a := newAudit(archive.AuditUndo, tenants)
	a.Snapshots = snaps
	a.Outcome = "done"
	if r.Failed > 0 {
		a.Outcome = "failed"
	}
	if p.Run != nil {
		a.Run = p.Run.ID
	}
	a.Detail = jsonDetail(map[string]any{"selection": p.Selection, "result": r})
	if err := repository.PutAudit(c.Context, store, a); err != nil {
		e.log.Warn("audit record not written", "err", err)
	}
}
