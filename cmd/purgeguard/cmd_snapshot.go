package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/snapshot"
)

// Tenant selection flags shared by snapshot, restore, list, verify and prune.
var (
	flagTenant      = &cli.StringSliceFlag{Name: "tenant", Aliases: []string{"t"}, Usage: "tenant `UUID` (repeat, or comma-separate)"}
	flagTenantsFile = &cli.StringFlag{Name: "tenants-file", Usage: "`FILE` of tenant UUIDs: one per line, a JSON array, or wazo-auth's {\"items\":[{\"uuid\":…}]}; - for stdin"}
	flagReason      = &cli.StringFlag{Name: "reason", Usage: "why this snapshot is taken, kept in its manifest"}
)

var cmdSnapshot = &cli.Command{
	Name:      "snapshot",
	Usage:     "save every row and file a purge of the given tenants would destroy",
	ArgsUsage: " ",
	Description: `All tenants are read in one REPEATABLE READ snapshot of the database, shared by
--jobs worker connections. Each table streams COPY TO STDOUT through zstd into storage;
each file a row names is stored once, content-addressed. The manifest is written last:
a snapshot without one does not exist.

A row naming a missing file, or a path outside its configured root, is recorded in the
manifest (missing / outside_root) and reported; such a file is never read.

Examples:
   purgeguard snapshot --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71 --reason "before manual purge"
   purgeguard snapshot --tenants-file doomed.txt -o json`,
	Flags: []cli.Flag{
		flagTenant, flagTenantsFile, flagReason, flagDatabaseURL,
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "worker connections (default: snapshot.jobs)"},
	},
	Action: runSnapshot,
}

// snapshotSummary is one committed snapshot as commands print it.
type snapshotSummary struct {
	Tenant    uuid.UUID `json:"tenant"`
	Snapshot  uuid.UUID `json:"snapshot"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	archive.Totals
}

func summarize(m *archive.Manifest) snapshotSummary {
	return snapshotSummary{Tenant: m.Tenant, Snapshot: m.ID, Reason: m.Reason, CreatedAt: m.CreatedAt, Totals: m.Totals()}
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
	if len(tenants) == 0 {
		return usagef("snapshot: give at least one --tenant or --tenants-file")
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	so, prog, err := snapshotOptions(c, e)
	if err != nil {
		return err
	}
	so.Tenants, so.Reason = tenants, c.String(flagReason.Name)
	ms, err := snapshot.Run(c.Context, cfg, store, so)
	prog.done()
	audit := newAudit(archive.AuditSnapshot, tenants)
	audit.Outcome = "done"
	if err != nil {
		audit.Outcome = "failed"
		audit.Detail = jsonDetail(map[string]string{"error": err.Error()})
	}
	for _, m := range ms {
		audit.Snapshots = append(audit.Snapshots, m.Ref())
		e.saved(m.Totals())
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
			if s.Missing > 0 || s.OutsideRoot > 0 {
				fmt.Fprintf(w, "; %d files missing, %d outside their root (not saved)", s.Missing, s.OutsideRoot)
			}
			fmt.Fprintln(w)
		}
	})
}

// snapshotOptions is the snapshot configuration shared by snapshot and guard: the
// catalog, the file columns, --jobs and the progress display (done by the caller).
func snapshotOptions(c *cli.Context, e *env) (snapshot.Options, *progress, error) {
	copts, err := catalogOptions(e.cfg)
	if err != nil {
		return snapshot.Options{}, nil, err
	}
	files, err := fileColumns(e.cfg)
	if err != nil {
		return snapshot.Options{}, nil, err
	}
	jobs := e.cfg.Snapshot.Jobs
	if c.IsSet("jobs") {
		if jobs = c.Int("jobs"); jobs < 1 || jobs > 64 {
			return snapshot.Options{}, nil, usagef("--jobs %d: must be between 1 and 64", jobs)
		}
	}
	prog := newProgress(e, "snapshot", 0)
	return snapshot.Options{
		Jobs: jobs, Level: e.cfg.Snapshot.CompressionLevel, Catalog: copts, Files: files,
		ToolVersion: toolVersion(), Log: e.log,
		Progress: func(ev snapshot.Event) {
			if ev.File != "" {
				prog.minor(ev.Bytes)
				return
			}
			prog.item(ev.Table, ev.Rows, ev.Bytes, "tenant", ev.Tenant, "stored_bytes", ev.Stored)
		},
	}, prog, nil
}

// newAudit starts an audit record: who ran what, where. Never a credential.
func newAudit(kind string, tenants []uuid.UUID) *archive.Audit {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	a := &archive.Audit{ID: id, Kind: kind, Time: time.Now().UTC(), ToolVersion: toolVersion(), Tenants: tenants}
	if u, err := user.Current(); err == nil {
		a.User = u.Username
	}
	a.Host, _ = os.Hostname()
	return a
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
