package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/repository"
)

func newPruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete old snapshots and the blobs no remaining snapshot references",
		Description: `A snapshot is kept if any rule keeps it: among the newest --keep-last of its tenant,
or younger than --keep-within. At least one rule is required. A removed snapshot's
manifest goes first, so it stops existing before its objects do. Objects of snapshots
never committed (a crashed run) are removed once an hour old. File blobs are shared
by every tenant: one is removed only if no surviving snapshot of any tenant names it,
and never if it was written within the last hour (a snapshot may be writing it now).
On S3 with Object Lock, a snapshot still under retention is not removed: it is kept
whole (with its blobs), reported as locked, and removed by a later prune once its
retention ends; this is not an error.

Examples:
   purgeguard prune --keep-last 3 --keep-within 30d --dry-run
   purgeguard prune --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71 --keep-last 1`,
		Flags: []cli.Flag{
			newTenantFlag(),
			&cli.IntFlag{Name: "keep-last", Usage: "keep the newest `N` snapshots of each tenant"},
			&cli.StringFlag{Name: "keep-within", Usage: "keep snapshots younger than this `DURATION` (e.g. 30d, 36h)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would be deleted; delete nothing"},
		},
		Action: runPrune,
	}
}

func runPrune(c *cli.Context) error {
	e := getEnv(c)
	tenants, err := tenantArgs(c)
	if err != nil {
		return err
	}
	o := repository.PruneOptions{Tenants: tenants, KeepLast: c.Int("keep-last"), DryRun: c.Bool("dry-run"), Log: e.log}
	if o.KeepLast < 0 {
		return usagef("--keep-last %d: must not be negative", o.KeepLast)
	}
	if s := c.String("keep-within"); s != "" {
		d, err := config.ParseDuration(s)
		if err != nil || d <= 0 {
			return usagef("--keep-within %q: want a duration like 30d or 36h", s)
		}
		o.KeepWithin = d
	}
	if o.KeepLast == 0 && o.KeepWithin == 0 {
		return usagef("prune: give --keep-last and/or --keep-within (a prune keeping nothing is refused)")
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	rep, err := repository.Prune(c.Context, store, o)
	if err != nil {
		return err
	}
	e.bytes = rep.BlobBytes + rep.ObjectsBytes
	if !o.DryRun {
		a := newAudit(archive.AuditPrune, tenants)
		a.Outcome, a.Snapshots, a.Detail = "done", rep.Removed, jsonDetail(rep)
		if err := repository.PutAudit(c.Context, store, a); err != nil {
			e.log.Warn("audit record not written", "err", err)
		}
	}
	return e.emit(rep, func(w io.Writer) {
		verb := "removed"
		if rep.DryRun {
			verb = "would remove (dry run)"
		}
		fmt.Fprintf(w, "%s %d snapshots, kept %d; %d incomplete objects; %d blobs (%s)\n", verb, len(rep.Removed), len(rep.Kept),
			len(rep.Incomplete), rep.Blobs, humanBytes(rep.BlobBytes+rep.ObjectsBytes))
		for _, r := range rep.Removed {
			fmt.Fprintf(w, "  snapshot %s of tenant %s\n", r.ID, r.Tenant)
		}
		if len(rep.Incomplete) > 0 {
			fmt.Fprintf(w, "  incomplete: %s\n", strings.Join(rep.Incomplete, ", "))
		}
		if len(rep.Locked) > 0 {
			fmt.Fprintf(w, "locked: %d snapshots kept under object lock (not removed)\n", len(rep.Locked))
			for _, l := range rep.Locked {
				until := "under legal hold"
				if !l.Until.IsZero() {
					until = "until " + l.Until.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "  snapshot %s of tenant %s locked %s\n", l.ID, l.Tenant, until)
			}
		}
		if len(rep.LockedObjects) > 0 {
			keys := rep.LockedObjects
			more := ""
			if len(keys) > 10 { // thousands of blobs would drown the rest; JSON has them all
				keys, more = keys[:10], ", …"
			}
			fmt.Fprintf(w, "locked: %d other objects kept under object lock: %s%s\n", len(rep.LockedObjects), strings.Join(keys, ", "), more)
		}
		if len(rep.Leftovers) > 0 {
			fmt.Fprintf(w, "  temporary files of killed writes: %s\n", strings.Join(rep.Leftovers, ", "))
		}
		for _, b := range rep.Broken {
			fmt.Fprintf(w, "BROKEN  snapshot %s of tenant %s left alone: %s\n", b.ID, b.Tenant, b.Error)
		}
		if rep.SweepSkipped != "" {
			fmt.Fprintf(w, "blobs not swept: %s\n", rep.SweepSkipped)
		}
	})
}
