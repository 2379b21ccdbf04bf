package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/shield"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

func newShieldCommand() *cli.Command {
	return &cli.Command{
		Name:      "shield",
		Usage:     "keep every file under the files roots recoverable, whoever deletes it",
		ArgsUsage: " ",
		Description: `Runs until stopped (SIGTERM): keeps a hard link of every file under each configured
files root in a shield directory on the same filesystem (shield.dirs; default
<root's parent>/.purgeguard-shield-<root's name>), so an unlink by any process leaves
the content on disk; uploads each file's content once it has not changed for
shield.settle, as a blob under blobs/sha256/ (where snapshots put theirs: a later
snapshot uploads nothing again); and records a loss (an audit record in storage, a log
line, a metric) when a shielded path disappears. A lost file's link is kept for
shield.keep, then removed once its blob is verified in storage. New files are linked as
inotify reports them; a full rescan runs at start and every shield.rescan.
The index (shield.index) is on disk: restart it at will, the upload queue resumes.

With --once: one scan, the uploads of settled files, the loss records and the sweep,
then exit (1 if an upload or a record failed: they are retried by the next pass).

Bring lost files back with 'purgeguard files restore'.

Examples:
   purgeguard shield --metrics-listen 127.0.0.1:9469
   purgeguard shield --once`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "once", Usage: "one pass, then exit"},
			&cli.StringFlag{Name: "metrics-listen", Usage: "serve Prometheus metrics on `HOST:PORT` (default: shield.metrics_listen)"},
		},
		Action: runShield,
	}
}

// shieldOptions turns the configuration into the shield's options: one root per
// distinct files root, with its configured or default shield directory.
func shieldOptions(e *env) (shield.Options, error) {
	sc := e.cfg.Shield
	o := shield.Options{Index: sc.Index, Settle: time.Duration(sc.Settle), Rescan: time.Duration(sc.Rescan),
		Keep: time.Duration(sc.Keep), Jobs: sc.Jobs, Level: e.cfg.Snapshot.CompressionLevel,
		ToolVersion: toolVersion(), Log: e.log}
	seen := map[string]bool{}
	for _, f := range e.cfg.Files {
		root := filepath.Clean(f.Root)
		if seen[root] {
			continue
		}
		seen[root] = true
		dir := shield.DefaultShieldDir(root)
		for _, d := range sc.Dirs {
			if filepath.Clean(d.Root) == root {
				dir = d.Dir
			}
		}
		o.Roots = append(o.Roots, shield.Root{Dir: root, Shield: dir})
	}
	if len(o.Roots) == 0 {
		return o, &config.Error{Key: "files", Msg: "no files root: nothing to shield"}
	}
	return o, nil
}

func runShield(c *cli.Context) error {
	e := getEnv(c)
	if c.NArg() > 0 {
		return usagef("shield takes no arguments (got %q)", c.Args().First())
	}
	o, err := shieldOptions(e)
	if err != nil {
		return err
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	o.Store = store
	s, err := shield.Open(o)
	if err != nil {
		return err
	}
	defer s.Close()
	listen := e.cfg.Shield.MetricsListen
	if c.IsSet("metrics-listen") {
		listen = c.String("metrics-listen")
	}
	if listen != "" {
		stop, err := serveShieldMetrics(c.Context, listen, s)
		if err != nil {
			return err
		}
		defer stop()
	}
	if c.Bool("once") {
		err := s.Once(c.Context)
		st := s.Stats()
		if eerr := e.emit(st, func(w io.Writer) {
			fmt.Fprintf(w, "shielded %d files; %d waiting for upload; %d lost files held (%s)\n",
				st.Files, st.Queue, st.Lost, humanBytes(st.LostBytes))
		}); eerr != nil {
			return eerr
		}
		return err
	}
	e.log.Info("shield: started", "roots", len(o.Roots), "index", o.Index)
	err = s.Run(c.Context)
	if errors.Is(err, context.Canceled) || c.Context.Err() != nil {
		return nil // stopped by a signal: the index holds everything to resume
	}
	return err
}

// serveShieldMetrics serves the shield's gauges at /metrics. A long-running process
// is scraped, not written to a textfile: its figures change by the second, and a
// scrape shows whether it is alive at all (up == 0 when it is not).
func serveShieldMetrics(ctx context.Context, addr string, s *shield.Shield) (func(), error) {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v func(shield.Stats) float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return v(s.Stats()) }))
	}
	counter := func(name, help string, v func(shield.Stats) float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return v(s.Stats()) }))
	}
	gauge("purgeguard_shield_files", "Files shielded (present at their path).", func(st shield.Stats) float64 { return float64(st.Files) })
	gauge("purgeguard_shield_upload_queue", "Files whose blob is not in storage yet.", func(st shield.Stats) float64 { return float64(st.Queue) })
	gauge("purgeguard_shield_oldest_unuploaded_seconds", "Age of the oldest file whose blob is not in storage yet (since it last changed).",
		func(st shield.Stats) float64 { return st.OldestQueued.Seconds() })
	gauge("purgeguard_shield_lost_files", "Lost files still held by their link.", func(st shield.Stats) float64 { return float64(st.Lost) })
	gauge("purgeguard_shield_lost_bytes", "Bytes held on disk by the links of lost files.", func(st shield.Stats) float64 { return float64(st.LostBytes) })
	counter("purgeguard_shield_losses_total", "Losses recorded since the shield started.", func(st shield.Stats) float64 { return float64(st.Losses) })
	counter("purgeguard_shield_blobs_uploaded_total", "Blobs uploaded since the shield started.", func(st shield.Stats) float64 { return float64(st.BlobsUploaded) })
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("shield: metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() { _ = srv.Close() }, nil
}

// snapshotShield hands snapshots the shield's knowledge: blobs it stored in store
// (read from each file's extended attribute, whose tag must be store's identity)
// and copies of lost files (its loss records and links). Without a shield running
// it finds nothing: it costs a column's first files three system calls each (the
// snapshot then stops asking about that column's files, snapshot.shieldTrials)
// and, at the first missing file, one listing of the loss records. A store whose
// identity cannot be read only costs the snapshot that shortcut: it reads and
// stores every file itself.
func snapshotShield(ctx context.Context, e *env, store storage.Store) snapshot.Shield {
	o, err := shieldOptions(e)
	if err != nil {
		return nil
	}
	l := shield.NewLookup(store, o.Roots, o.Keep)
	if err := l.ReadStore(ctx); err != nil && e.log != nil {
		e.log.Warn("snapshot: files the shield uploaded are read again: the store's identity is unreadable", "err", err)
	}
	return shieldAdapter{l}
}

type shieldAdapter struct{ *shield.Lookup }

func (a shieldAdapter) Lost(ctx context.Context, path string) (snapshot.ShieldCopy, bool, error) {
	c, ok, err := a.Lookup.Lost(ctx, path)
	if err != nil || !ok {
		return snapshot.ShieldCopy{}, ok, err
	}
	return snapshot.ShieldCopy{SHA256: c.Sum, Size: c.Size, StoredBytes: c.StoredBytes, Mode: c.Mode,
		ModTime: c.ModTime, UID: c.UID, GID: c.GID, HasOwner: true, Link: c.Link}, true, nil
}
