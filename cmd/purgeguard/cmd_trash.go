package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/metrics"
	"github.com/purgeguard/purgeguard/snapshot"
)

// newTrashCommand builds `purgeguard trash`: what the capturing fence kept.
func newTrashCommand() *cli.Command {
	return &cli.Command{
		Name:  "trash",
		Usage: "rows the capturing fence kept (fence install --mode capture): list them, save them as snapshots",
		Description: `With the fence in capture mode, every row a statement deletes (or whose file or
retention column it empties) without guard's approval is kept in the database, in
purgeguard.trash, whichever client deleted it: call-logd's own tenant deletion, its
purgers, a retention purge run outside guard, ad-hoc SQL. The trash never drops a row
on its own.

'trash list' shows the kept rows per tenant, table and deleting transaction.
'trash save' turns them, per tenant, into ordinary snapshots (scope "trash", with the
transactions and times in the manifest), verifies them, and only then removes the
saved rows from the trash; 'restore --tenant T --snapshot S' brings them back
(--on-conflict fill-nulls where the rows survived and had a column emptied), and list,
verify, prune and Object Lock treat them as any snapshot. Run it regularly (deploy/
has a systemd timer and a CronJob). A crash at any point loses no row and, at the next
save, makes no second copy.`,
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "show the kept rows per tenant, table and transaction",
				Description: `Each line is one tenant's rows of one table kept by one transaction, oldest
first; rows whose tenant is not known yet show as "(not attributed yet)". A service
that deletes row by row leaves a transaction per row: --by table or --by tenant sums
them (TRANSACTIONS counts the deleting transactions).`,
				Flags: []cli.Flag{newDatabaseURLFlag(), &cli.StringFlag{Name: flagTenant, Aliases: []string{"t"}, Usage: "only this tenant's `UUID`"},
					&cli.StringFlag{Name: "by", Value: "transaction", Usage: "one line per tenant, table and `transaction`; table: per tenant and table; tenant: per tenant"}},
				Action: runTrashList,
			},
			{
				Name:   "save",
				Usage:  "save the kept rows as snapshots, one per tenant, then remove them from the trash",
				Flags:  []cli.Flag{newDatabaseURLFlag(), newReasonFlag(), &cli.BoolFlag{Name: "no-wait", Usage: "fail instead of waiting when another purgeguard run holds the lock"}},
				Action: runTrashSave,
			},
		},
	}
}

func runTrashList(c *cli.Context) error {
	e := getEnv(c)
	by := c.String("by")
	if by != "transaction" && by != "table" && by != "tenant" {
		return usagef("--by %q: want transaction, table or tenant", by)
	}
	var tenant *uuid.UUID
	if s := c.String(flagTenant); s != "" {
		id, err := parseTenantFlag("--tenant", s)
		if err != nil {
			return err
		}
		tenant = &id
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	groups, err := guard.ListTrash(c.Context, cfg, guard.TrashOptions{Snapshot: snapshot.Options{Graph: e.prof.Tenants}, Log: e.log}, tenant)
	if err != nil {
		return err
	}
	if by != "transaction" {
		return emitTrashSummary(e, guard.SummarizeTrash(groups, by == "table"), by)
	}
	return e.emit(struct {
		Groups []guard.TrashGroup `json:"groups"`
	}{groups}, func(w io.Writer) {
		if len(groups) == 0 {
			fmt.Fprintln(w, "the trash is empty")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tTABLE\tTRANSACTION\tFIRST\tLAST\tROWS")
		for _, g := range groups {
			t := "(not attributed yet)"
			if g.Tenant != nil {
				t = g.Tenant.String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\n", t, g.Table, g.Xid, g.First.UTC().Format(time.RFC3339), g.Last.UTC().Format(time.RFC3339), g.Rows)
		}
		tw.Flush()
	})
}

// emitTrashSummary prints the trash summed per tenant and table, or per tenant (by).
func emitTrashSummary(e *env, sums []guard.TrashSummary, by string) error {
	return e.emit(struct {
		By      string               `json:"by"`
		Summary []guard.TrashSummary `json:"summary"`
	}{by, sums}, func(w io.Writer) {
		if len(sums) == 0 {
			fmt.Fprintln(w, "the trash is empty")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if by == "table" {
			fmt.Fprintln(tw, "TENANT\tTABLE\tTRANSACTIONS\tFIRST\tLAST\tROWS")
		} else {
			fmt.Fprintln(tw, "TENANT\tTRANSACTIONS\tFIRST\tLAST\tROWS")
		}
		for _, sm := range sums {
			t := "(not attributed yet)"
			if sm.Tenant != nil {
				t = sm.Tenant.String()
			}
			if by == "table" {
				t += "\t" + sm.Table
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\n", t, sm.Transactions, sm.First.UTC().Format(time.RFC3339), sm.Last.UTC().Format(time.RFC3339), sm.Rows)
		}
		tw.Flush()
	})
}

func runTrashSave(c *cli.Context) error {
	e := getEnv(c)
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	so, prog, err := snapshotOptions(c, e)
	if err != nil {
		return err
	}
	if err := snapshotsTo(c.Context, e, store, &so); err != nil {
		return err
	}
	res, err := guard.SaveTrash(c.Context, cfg, store, guard.TrashOptions{Snapshot: so, Reason: c.String(flagReason),
		NoWait: c.Bool("no-wait"), Log: e.log})
	prog.done(err == nil)
	// The trash's size and age after the save, saved or not: what the alert watches.
	// Read only for --metrics-file: counting scans the whole trash, the rows just
	// removed included.
	if c.String(flagMetrics) != "" {
		if st, serr := guard.ReadTrashStats(c.Context, cfg); serr == nil {
			e.trash = &metrics.Trash{Rows: st.Rows, Oldest: st.Oldest}
		}
	}
	if err != nil {
		return err
	}
	for _, s := range append(res.Recovered, res.Saved...) {
		e.rows += s.Rows
	}
	return e.emit(res, func(w io.Writer) {
		for _, s := range res.Recovered {
			fmt.Fprintf(w, "finished an interrupted save: tenant %s, snapshot %s, %d rows removed from the trash\n", s.Tenant, s.Snapshot, s.Rows)
		}
		if len(res.Saved) == 0 {
			fmt.Fprintln(w, "nothing to save")
		}
		for _, s := range res.Saved {
			fmt.Fprintf(w, "tenant %s: snapshot %s, %d rows of %d transactions saved and removed from the trash\n", s.Tenant, s.Snapshot, s.Rows, s.Transactions)
		}
		if res.Unresolved > 0 {
			fmt.Fprintf(w, "%d rows whose tenant is not known stay in the trash (purgeguard trash list)\n", res.Unresolved)
		}
		if len(res.Saved) > 0 {
			fmt.Fprintln(w, "restore with: purgeguard restore --tenant TENANT --snapshot SNAPSHOT [--on-conflict fill-nulls]")
		}
	})
}
