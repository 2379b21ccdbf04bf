package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/repository"
)

func newListCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list committed snapshots, newest first",
		Description: `Only committed snapshots are listed: one whose manifest was never written (an
interrupted run) does not exist. Without --tenant, every tenant's snapshots.

A manifest that is stored but cannot be read (corrupt, or under another tenant's
name) is reported as BROKEN ("broken" in -o json) beside the others; verify --all
exits 4 for it.`,
		Flags:  []cli.Flag{newTenantFlag()},
		Action: runList,
	}
}

func runList(c *cli.Context) error {
	e := getEnv(c)
	tenants, err := tenantArgs(c)
	if err != nil {
		return err
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	if len(tenants) == 0 {
		tenants = []uuid.UUID{uuid.Nil}
	}
	out := []snapshotSummary{}
	var broken []brokenSnapshot
	for _, t := range tenants {
		ms, bs, err := repository.ListAll(c.Context, store, t)
		if err != nil {
			return err
		}
		for _, m := range ms {
			out = append(out, summaryOf(m))
		}
		for _, b := range bs {
			broken = append(broken, brokenSnapshot{Tenant: b.Tenant, Snapshot: b.ID, Error: b.Err.Error()})
		}
	}
	doc := struct {
		Snapshots []snapshotSummary `json:"snapshots"`
		Broken    []brokenSnapshot  `json:"broken,omitempty"`
	}{out, broken}
	err = e.emit(doc, func(w io.Writer) {
		for _, b := range broken {
			fmt.Fprintf(w, "BROKEN  snapshot %s of tenant %s: %s (verify --all reports it; prune leaves it)\n", b.Snapshot, b.Tenant, b.Error)
		}
		if len(out) == 0 {
			fmt.Fprintln(w, "no snapshot")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CREATED\tTENANT\tSNAPSHOT\tTABLES\tROWS\tFILES\tSTORED\tREASON")
		for _, s := range out {
			if s.Encrypted {
				// Counts and reason are inside the sealed manifest.
				fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t%s\t(encrypted)\n", s.CreatedAt.Format("2006-01-02 15:04:05Z"),
					s.Tenant, s.Snapshot, humanBytes(s.StoredBytes))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.CreatedAt.Format("2006-01-02 15:04:05Z"),
				s.Tenant, s.Snapshot, s.Tables, s.Rows, s.Files, humanBytes(s.StoredBytes), s.Reason)
		}
		tw.Flush()
	})
	return err
}

// brokenSnapshot is a stored manifest that cannot be read as one.
type brokenSnapshot struct {
	Tenant   uuid.UUID `json:"tenant"`
	Snapshot uuid.UUID `json:"snapshot"`
	Error    string    `json:"error"`
}
