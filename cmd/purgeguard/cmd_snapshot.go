package main

import (
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/snapshot"
)

func newSnapshotCommand() *cli.Command {
	return &cli.Command{
		Name:      "snapshot",
		Usage:     "save every row and file a purge of the given tenants would destroy",
		ArgsUsage: " ",
		Description: `All tenants are read in one REPEATABLE READ snapshot of the database, shared by
--jobs worker connections. Each table streams COPY TO STDOUT through zstd into storage;
each file a row names is stored once, content-addressed. The manifest is written last:
a snapshot without one does not exist.

A row naming a missing file, or a path outside its configured root, is recorded in the
manifest (missing / outside_root) and reported; such a file is never read.

With --retention it saves instead what the scheduled retention purge (call-logd's
nightly wazo-purge-db) will remove: per tenant, the rows older than that tenant's
cut-off (its own days, else the global ones: see the retention section of the
configuration), what cascades from them, and the files they name; recordings the
purge only empties (path set to NULL) are saved whole, with their call log. Rows up
to --margin newer than the cut-off are saved too, since the purge runs later. The
manifest records the days and cut-offs. A tenant the purge takes nothing from gets
no snapshot. Restore one with --on-conflict fill-nulls.

With --dry-run it counts, in the same kind of read, the rows per table and the file
paths each snapshot would hold, and writes nothing (storage is not even opened).

Examples:
   purgeguard snapshot --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71 --dry-run
   purgeguard snapshot --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71 --reason "before manual purge"
   purgeguard snapshot --tenants-file doomed.txt -o json
   purgeguard snapshot --retention --reason "nightly, before wazo-purge-db"`,
		Flags: []cli.Flag{
			newTenantFlag(), newTenantsFileFlag(), newReasonFlag(), newDatabaseURLFlag(), newRetentionFlag("save what the scheduled retention purge will remove (config: retention), for every tenant unless --tenant"), newMarginFlag(), newPurgeDaysFlag(),
			newJobsFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "count what each snapshot would hold; write nothing"},
		},
		Action: runSnapshot,
	}
}

func runSnapshot(c *cli.Context) error {
	e := getEnv(c)
	if c.NArg() > 0 {
		return usagef("snapshot takes no arguments (got %q): use --tenant", c.Args().First())
	}
	tenants, err := tenantArgs(c)
	if err != nil {
		return err
	}
	retain := c.Bool(flagRetention)
	if len(tenants) == 0 && !retain {
		return usagef("snapshot: give at least one --tenant or --tenants-file (or --retention for every tenant)")
	}
	if !retain && (c.IsSet(flagMargin) || c.IsSet(flagPurgeDays)) {
		return usagef("--margin and --purge-days go with --retention")
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	so, prog, err := snapshotOptions(c, e)
	if err != nil {
		return err
	}
	so.Tenants, so.Reason = tenants, c.String(flagReason)
	if retain {
		if so.Retention, err = retentionOptions(c, e); err != nil {
			return err
		}
	}
	if c.Bool("dry-run") {
		return snapshotDryRun(c, e, cfg, so) // nothing saved: no progress to close
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	if err := snapshotsTo(c.Context, e, store, &so); err != nil {
		return err
	}
	ms, err := snapshot.Run(c.Context, cfg, store, so)
	prog.done(err == nil)
	audit := newAudit(archive.AuditSnapshot, tenants)
	audit.Outcome = "done"
	if err != nil {
		audit.Outcome = "failed"
		audit.Detail = jsonDetail(map[string]string{"error": err.Error()})
	}
	for _, m := range ms {
		audit.Snapshots = append(audit.Snapshots, archive.SnapshotRef{Tenant: m.Tenant, ID: m.ID})
		e.saved(m.Totals.Rows, m.Totals.StoredBytes)
	}
	if aerr := repository.PutAudit(c.Context, store, audit); aerr != nil {
		e.log.Warn("audit record not written", "err", aerr)
	}
	if err != nil {
		return err
	}
	out := make([]snapshotSummary, len(ms))
	for i, m := range ms {
		out[i] = summarize(m)
	}
	return e.emit(map[string]any{"snapshots": out}, func(w io.Writer) {
		for _, s := range out {
			fmt.Fprintf(w, "snapshot %s of tenant %s: %d tables, %d rows, %d files (%s), %s stored",
				s.Snapshot, s.Tenant, s.Tables, s.Rows, s.Files, humanBytes(s.FilesBytes), humanBytes(s.StoredBytes))
			if s.Scope.Kind == archive.ScopeRetention {
				fmt.Fprintf(w, "; retention %s", scopeText(s.Scope.Cutoffs, s.Scope.Days))
			}
			if s.Recovered > 0 {
				fmt.Fprintf(w, "; %d files missing on disk recovered from the file shield", s.Recovered)
			}
			if s.Missing > 0 || s.OutsideRoot > 0 {
				fmt.Fprintf(w, "; %d files missing, %d outside their root (not saved)", s.Missing, s.OutsideRoot)
			}
			fmt.Fprintln(w)
		}
	})
}

// snapshotDryRun prints what each snapshot would hold.
func snapshotDryRun(c *cli.Context, e *env, cfg *pgx.ConnConfig, so snapshot.Options) error {
	plans, err := snapshot.DryRun(c.Context, cfg, so)
	if err != nil {
		return err
	}
	return e.emit(map[string]any{"dry_run": true, "plans": plans}, func(w io.Writer) {
		fmt.Fprintln(w, "dry run: nothing written")
		for _, p := range plans {
			fmt.Fprintf(w, "tenant %s: %d tables, %d rows, %d files named", p.Tenant, len(p.Tables), p.Rows, p.Files)
			if p.Scope.Kind == archive.ScopeRetention {
				fmt.Fprintf(w, "; retention %s", scopeText(p.Scope.Cutoffs, p.Scope.Days))
				if p.Rows == 0 && p.Files == 0 {
					fmt.Fprint(w, " (nothing to save: no snapshot)")
				}
			}
			fmt.Fprintln(w)
			for _, t := range p.Tables {
				fmt.Fprintf(w, "  %-50s %10d rows\n", t.Table, t.Rows)
			}
		}
	})
}
