package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/place"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/restore"
)

func newRestoreCommand() *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "bring one tenant back from a snapshot, in one transaction (safe to run twice)",
		Description: `Restores the newest committed snapshot of the tenant (or --snapshot ID):
  1. every object it will read is verified (SHA-256) before anything is written;
  2. the target schema is checked: a column added since the snapshot gets its default,
     a dropped column or a changed type is an error naming table and column;
  3. every table is loaded in foreign-key order inside ONE transaction; rows already
     present are left alone (or refused with --on-conflict fail, or completed with
     --on-conflict fill-nulls), references a purge set to NULL are put back,
     sequences are moved past the restored ids;
  4. every row must belong to the tenant and every file be named by one of its rows,
     under its root: anything else is an integrity error (exit 4), nothing written;
  5. files are staged under temp names beside their targets (fsync, owner, group,
     mode, mtime), the transaction commits, then they are renamed into place; a
     file with the same content is left alone, one with other content is an error
     unless --overwrite-files; a path leaving its root through a link is refused.
Any error rolls everything back, files included: no file of a failed run stays,
and what a killed run left is swept by the next one. The transaction holds purgeguard's
lock, shared with other restores: while a guard run is at work on the database (or
waiting for the lock), the restore stops at once and changes nothing; a guard started
meanwhile waits for it. Two restores of one tenant take turns. Run it with --dry-run first: it prints, per
table, the rows in the snapshot, already present and to insert, and per file whether
it is present, missing or different, and changes nothing.

A retention snapshot (snapshot --retention) holds what the retention purge removed:
restore it with --on-conflict fill-nulls, so that a recording whose row survived with
its path emptied gets the path (and its file) back. Restoring several retention
snapshots of a tenant, in any order, gives the same result.

Examples:
   purgeguard restore --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71 --dry-run
   purgeguard restore --tenant 2f3c… --target-database-url postgres://…/scratch --files-root /tmp/inspect
   purgeguard restore --tenant 2f3c… --snapshot 0193… -o json
   purgeguard restore --tenant 2f3c… --snapshot 0193… --on-conflict fill-nulls   (a retention snapshot)`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tenant", Aliases: []string{"t"}, Usage: "tenant `UUID` to restore (required)"},
			&cli.StringFlag{Name: "snapshot", Aliases: []string{"s"}, Usage: "snapshot `ID` (default: the newest of the tenant)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would be inserted and written; change nothing"},
			newDatabaseURLFlag(),
			&cli.StringFlag{Name: "target-database-url", Usage: "restore into this database instead (e.g. a scratch copy)"},
			&cli.StringFlag{Name: "files-root", Usage: "write files under this `DIR` instead of the configured roots"},
			&cli.StringSliceFlag{Name: "tables", Usage: "restore only these tables (schema.table, repeat or comma-separate)"},
			&cli.StringFlag{Name: "on-conflict", Value: restore.ConflictSkip, Usage: "a row already present: skip, fail, or fill-nulls (also set the columns it holds NULL and the snapshot does not: a retention snapshot's emptied recording paths)"},
			&cli.BoolFlag{Name: "allow-drop-columns", Usage: "restore even if columns were dropped since the snapshot (their values are lost)"},
			&cli.BoolFlag{Name: "overwrite-files", Usage: "replace files whose content differs from the snapshot"},
			&cli.StringFlag{Name: "files-owner", Usage: "give every file and directory written to `USER:GROUP` (names or numeric ids) instead of the recorded owner: a restore on another host"},
			&cli.IntFlag{Name: "file-jobs", Value: 4, Usage: "files fetched and staged at once, `N` from 1 to 64"},
		},
		Action: runRestore,
	}
}

func runRestore(c *cli.Context) error {
	e := getEnv(c)
	if !c.IsSet("tenant") {
		return usagef("restore: give --tenant UUID (purgeguard list shows the tenants with snapshots)")
	}
	tenant, err := parseTenantFlag("--tenant", c.String("tenant"))
	if err != nil {
		return err
	}
	var snap uuid.UUID
	if s := c.String("snapshot"); s != "" {
		if snap, err = uuid.Parse(s); err != nil {
			return usagef("--snapshot %q: not a snapshot id", s)
		}
	}
	if oc := c.String("on-conflict"); oc != restore.ConflictSkip && oc != restore.ConflictFail && oc != restore.ConflictFillNulls {
		return usagef("--on-conflict %q: want skip, fail or fill-nulls", oc)
	}
	var tables []catalog.Name
	for _, s := range splitList(c.StringSlice("tables")) {
		n, err := catalog.ParseName(s)
		if err != nil {
			return usagef("--tables: %v", err)
		}
		tables = append(tables, n)
	}
	if fr := c.String("files-root"); fr != "" {
		if fi, err := os.Stat(fr); err != nil || !fi.IsDir() {
			return usagef("--files-root %s: not a directory: create it first", fr)
		}
	}
	if n := c.Int("file-jobs"); n < 1 || n > 64 {
		return usagef("--file-jobs %d: must be between 1 and 64", n)
	}
	if fo := c.String("files-owner"); fo != "" {
		if _, err := place.ParseOwner(fo); err != nil {
			return usagef("--files-owner: %v", err)
		}
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	if c.IsSet("target-database-url") {
		if cfg, err = parseDSN(c.String("target-database-url")); err != nil {
			return err
		}
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	keys, err := opener(c.Context, e, store)
	if err != nil {
		return err
	}
	prog := newProgress(e, "restore", 0)
	rep, err := restore.Run(c.Context, cfg, store, restore.Options{
		Keys:   keys,
		Tenant: tenant, Snapshot: snap, DryRun: c.Bool("dry-run"), Tables: tables,
		OnConflict: c.String("on-conflict"), AllowDropColumns: c.Bool("allow-drop-columns"),
		Graph: e.prof.Tenants, Files: e.prof.Files, FilesRoot: c.String("files-root"), OverwriteFiles: c.Bool("overwrite-files"),
		FilesOwner: c.String("files-owner"), FileJobs: c.Int("file-jobs"),
		Log: e.log, Lock: func(ctx context.Context, tx pgx.Tx) error { return guard.LockTenantTx(ctx, tx, tenant) },
		Progress: func(ev restore.Event) {
			if ev.File != "" {
				prog.minor(ev.Bytes)
				return
			}
			prog.item(ev.Table, ev.Rows, ev.Bytes)
		},
	})
	prog.done(err == nil)
	if errors.Is(err, guard.ErrBusy) {
		err = fmt.Errorf("%w: a guard run is at work (or waiting to start) on this database; nothing was restored: run it again once that has ended", err)
	}
	if rep != nil {
		e.rows = rep.Totals.Inserted
	}
	if !c.Bool("dry-run") {
		audit := newAudit(archive.AuditRestore, []uuid.UUID{tenant})
		audit.Outcome = "done"
		if rep != nil {
			audit.Snapshots = []archive.SnapshotRef{{Tenant: rep.Tenant, ID: rep.Snapshot}}
			audit.Detail = jsonDetail(rep.Totals)
		}
		if err != nil {
			audit.Outcome = "failed"
			audit.Detail = jsonDetail(map[string]string{"error": err.Error()})
		}
		if aerr := repository.PutAudit(c.Context, store, audit); aerr != nil {
			e.log.Warn("audit record not written", "err", aerr)
		}
	}
	if err != nil {
		// Nothing is reported as restored unless it committed: the error says what
		// failed (a differing file names its path) and that nothing was restored.
		return err
	}
	return e.emit(rep, func(w io.Writer) { printRestore(w, rep) })
}

// maxFilesShown bounds the files the text report names one by one.
const maxFilesShown = 10

func printRestore(w io.Writer, r *restore.Report) {
	verb := "restored"
	if r.DryRun {
		verb = "dry run, nothing changed: would restore"
	}
	fmt.Fprintf(w, "%s tenant %s from snapshot %s\n", verb, r.Tenant, r.Snapshot)
	if r.Scope.Kind == archive.ScopeRetention {
		fmt.Fprintf(w, "scope: what a retention purge removes: %s\n", scopeText(r.Scope.Cutoffs, r.Scope.Days))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	insert := "INSERTED"
	if r.DryRun {
		insert = "TO INSERT"
	}
	fmt.Fprintf(tw, "TABLE\tIN SNAPSHOT\tPRESENT\t%s\tUPDATED\t\n", insert)
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", t.Table, t.InSnapshot, t.Present, t.Inserted, t.Updated)
	}
	tw.Flush()
	shown := 0
	for _, f := range r.Files {
		if f.Outcome != restore.FileWritten && f.Outcome != restore.FilePresent {
			if shown++; shown <= maxFilesShown {
				fmt.Fprintf(w, "file %s: %s %s\n", f.Path, f.Outcome, f.Detail)
			}
		}
	}
	if shown > maxFilesShown {
		fmt.Fprintf(w, "… and %d more files (-o json lists the first %d files)\n", shown-maxFilesShown, restore.MaxFileReports)
	}
	written := "written"
	if r.DryRun {
		written = "to write"
	}
	fmt.Fprintf(w, "files: %d %s, %d already present, %d differ, %d refused, %d not in the snapshot\n",
		r.Totals.FilesWritten, written, r.Totals.FilesPresent, r.Totals.FilesDiffer, r.Totals.FilesRefused, r.Totals.FilesNotSaved)
	if !r.DryRun && r.Totals.Inserted == 0 && r.Totals.Updated == 0 && r.Totals.FilesWritten == 0 {
		fmt.Fprintln(w, "nothing to restore: every row and file of the snapshot is already there")
	}
}
