package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/repository"
)

func newHistoryCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "list the guarded runs (tenant and retention purges), newest first",
		Description: `Reads guard's audit records and lists each guarded run: when it started, what it
guarded (a tenant purge or the retention purge), the purge command (secrets
redacted), its targets and snapshots, the command's exit status and the verdict of
the blast-radius check:
  clean        checked: nothing went that should not have;
  losses       checked: rows went without a copy, or from tenants not approved;
  refused      the policy refused the deletion set: the command never ran;
  not_reached  guard failed before the command's end could be checked;
  unknown      an older record that does not say.
The RUN column is what 'purgeguard undo --run' takes. Records written before
purgeguard recorded the command show it empty.

Examples:
   purgeguard history
   purgeguard history --since 2d
   purgeguard history -o json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "since", Usage: "only runs recorded from `TIME` on (RFC 3339, \"2026-11-28 03:00\", or 6h, 2d back)"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` runs, the newest (0: all)"},
		},
		Action: runHistory,
	}
}

func runHistory(c *cli.Context) error {
	e := getEnv(c)
	var since time.Time
	if c.IsSet("since") {
		var err error
		if since, err = parseWhen("--since", c.String("since"), time.Now()); err != nil {
			return err
		}
	}
	if c.Int("limit") < 0 {
		return usagef("--limit %d: want 0 (all) or more", c.Int("limit"))
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	runs, err := repository.GuardRuns(c.Context, store, since)
	if err != nil {
		return err
	}
	if n := c.Int("limit"); n > 0 && len(runs) > n {
		runs = runs[:n]
	}
	if runs == nil {
		runs = []repository.GuardRun{}
	}
	doc := struct {
		Runs []repository.GuardRun `json:"runs"`
	}{runs}
	return e.emit(doc, func(w io.Writer) { printHistory(w, runs) })
}

func printHistory(w io.Writer, runs []repository.GuardRun) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "no guarded run recorded")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED\tRUN\tSCOPE\tTARGETS\tSNAPSHOTS\tOUTCOME\tEXIT\tBLAST RADIUS\tCOMMAND")
	for _, r := range runs {
		started := r.Started
		if started.IsZero() {
			started = r.Recorded
		}
		verdict := r.Verdict
		if r.Losses > 0 {
			verdict = fmt.Sprintf("%s (%d)", verdict, r.Losses)
		}
		exit := fmt.Sprint(r.ExitCode)
		if r.Verdict == repository.VerdictRefused || r.Verdict == repository.VerdictNotReached {
			exit = "-" // the command never ran, or its end is not known
		}
		cmd := strings.Join(r.Command, " ")
		if len(cmd) > 60 {
			cmd = cmd[:57] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", started.UTC().Format("2006-01-02 15:04:05Z"), r.Run, r.Scope,
			len(r.Targets), len(r.Snapshots), r.Outcome, exit, verdict, cmd)
	}
	tw.Flush()
	fmt.Fprintln(w, "undo a run with: purgeguard undo --run RUN --dry-run, then without --dry-run")
}
