package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/shield"
)

var (
	flagUnder = &cli.StringFlag{Name: "under", Usage: "only files under `PATH` (a files root or a directory in one)"}
	flagSince = &cli.StringFlag{Name: "since", Usage: "only losses at or after `TIME` (RFC 3339, or a duration ago: 24h, 7d)"}
)

func newFilesCommand() *cli.Command {
	return &cli.Command{
		Name:  "files",
		Usage: "list and restore files the shield saw lost",
		Subcommands: []*cli.Command{
			{
				Name:      "lost",
				Usage:     "list lost files: path, size, owner, mode, when, and where the content is",
				ArgsUsage: " ",
				Description: `Reads the shield's loss records from storage (one per lost file, written once
its blob is stored). A path lost twice shows its newest loss.

Examples:
   purgeguard files lost --under /var/lib/wazo/sounds/tenants/2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71
   purgeguard files lost --since 24h -o json`,
				Flags:  []cli.Flag{flagUnder, flagSince},
				Action: runFilesLost,
			},
			{
				Name:      "restore",
				Usage:     "put lost files back, byte-identical, with mode, mtime, owner and group",
				ArgsUsage: " ",
				Description: `Every lost file under --under (lost at or after --since) is put back at its path:
from its shield link while the link holds it, else from its blob in storage; its
content is checked against the recorded SHA-256 before it appears (temporary file,
fsync, rename); missing directories are recreated with the owner and mode they had.
A path that holds a file again is left alone (reported as present, or as differs
with exit 1); a path outside the files roots, or through a symbolic link leaving
them, is refused. Running it twice restores nothing the second time.

Examples:
   purgeguard files restore --under /var/lib/wazo/sounds/tenants/2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71 --dry-run
   purgeguard files restore --under /var/lib/wazo-call-logd/exports --since 2026-11-27T00:00:00Z`,
				Flags:  []cli.Flag{flagUnder, flagSince, &cli.BoolFlag{Name: "dry-run", Usage: "say what would be restored and from where; write nothing"}},
				Action: runFilesRestore,
			},
		},
	}
}

// lossQuery reads --under and --since against the configured roots.
func lossQuery(c *cli.Context, e *env, needUnder bool) (shield.LossQuery, error) {
	o, err := shieldOptions(e)
	if err != nil {
		return shield.LossQuery{}, err
	}
	q := shield.LossQuery{Roots: o.Roots}
	if u := c.String(flagUnder.Name); u != "" {
		if !filepath.IsAbs(u) {
			return q, usagef("--under %q: want an absolute path", u)
		}
		q.Under = filepath.Clean(u)
	} else if needUnder {
		return q, usagef("files restore: give --under PATH (a files root or a directory in one)")
	}
	if s := c.String(flagSince.Name); s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			q.Since = t
		} else if d, err := config.ParseDuration(s); err == nil && d > 0 {
			q.Since = time.Now().Add(-d)
		} else {
			return q, usagef("--since %q: want RFC 3339 (2026-11-27T00:00:00Z) or a duration (24h, 7d)", s)
		}
	}
	return q, nil
}

func runFilesLost(c *cli.Context) error {
	e := getEnv(c)
	q, err := lossQuery(c, e, false)
	if err != nil {
		return err
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	ls, err := shield.Losses(c.Context, store, q)
	if err != nil {
		return err
	}
	return e.emit(map[string]any{"lost": ls}, func(w io.Writer) {
		if len(ls) == 0 {
			fmt.Fprintln(w, "no lost file")
			return
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LOST\tPATH\tSIZE\tOWNER\tMODE\tSHA256")
		for _, l := range ls {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d:%d\t%04o\t%.12s\n", l.LostAt.Format("2006-01-02 15:04:05Z"), l.Path,
				humanBytes(l.Size), l.UID, l.GID, l.Mode, l.SHA256)
		}
		tw.Flush()
	})
}

func runFilesRestore(c *cli.Context) error {
	e := getEnv(c)
	q, err := lossQuery(c, e, true)
	if err != nil {
		return err
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	out, rerr := shield.Restore(c.Context, store, shield.RestoreOptions{LossQuery: q, DryRun: c.Bool("dry-run"), Log: e.log})
	var re *shield.RestoreError
	if rerr != nil && !errors.As(rerr, &re) {
		return rerr
	}
	if err := e.emit(map[string]any{"files": out, "dry_run": c.Bool("dry-run")}, func(w io.Writer) {
		n := map[string]int{}
		for _, r := range out {
			n[r.Outcome]++
			if r.Outcome != shield.Present {
				fmt.Fprintf(w, "%s: %s", r.Path, r.Outcome)
				if r.From != "" {
					fmt.Fprintf(w, " from %s", r.From)
				}
				if r.Detail != "" {
					fmt.Fprintf(w, " (%s)", r.Detail)
				}
				fmt.Fprintln(w)
			}
		}
		fmt.Fprintf(w, "%d restored, %d would be restored, %d present, %d differ, %d failed\n",
			n[shield.Restored], n[shield.WouldRestore], n[shield.Present], n[shield.Differs], n[shield.Unrecoverable])
	}); err != nil {
		return err
	}
	if rerr != nil {
		return &errReported{code: exitError}
	}
	return nil
}
