// Command benchrun is make bench's driver: on a database filled by fixturegen it
// measures, in one run and on the same data, purgeguard snapshot of one tenant, the
// raw pipeline `psql -c "COPY (<same selects>) TO STDOUT" | zstd -3` for the same
// tables, and pg_dump -Fc of the whole database, and prints wall time, rows/s, MB/s,
// peak RSS and the ratios. Every number it prints, it measured in this run.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/snapshot"
)

type measure struct {
	name   string
	wall   time.Duration
	rssKiB int64   // largest process of the step
	cpu    float64 // CPU seconds of the whole machine during the step (PostgreSQL's included)
	// ownCPU is the command's own CPU seconds (user and system, its children's
	// included), from its wait status.
	ownCPU float64
	rows   int64
	bytes  int64 // raw COPY bytes (or dump bytes for pg_dump)
	note   string
}

func main() {
	var (
		dsn     = flag.String("database-url", "", "database filled by fixturegen")
		bin     = flag.String("purgeguard", "bin/purgeguard", "purgeguard binary")
		pgbin   = flag.String("pgbin", "", "directory of psql and pg_dump")
		tenant  = flag.String("tenant", "", "tenant to snapshot")
		work    = flag.String("work", "", "scratch directory (storage goes under it)")
		tables  = flag.String("tables-config", "", "purgeguard config with files: [] (tables only)")
		full    = flag.String("full-config", "", "purgeguard config with the files roots")
		runs    = flag.Int("runs", 3, "runs of each measurement; the median is printed")
		jobs    = flag.Int("jobs", 2, "purgeguard snapshot --jobs")
		machine = flag.String("machine", "", "machine description to print")
		guardDB = flag.String("guard-database-url", "", "database of many small tenants for the guard overhead")
		guardN  = flag.Int("guard-tenants", 0, "tenants in that database (for the printout)")
		others  = flag.String("other-tenants", "", "comma-separated tenants #1.. of the database, for the scale runs")
		part    = flag.String("part", "all", "all: every figure; trash: only the capturing fence's (on -database-url, which it copies per run); shield: only the file shield's; undo: only undo's; files: a tenant of many small files (snapshot, verify, restore, prune peak RSS; files throughput against tar | zstd); seal: encrypted against plaintext snapshot and restore")
		scans   = flag.String("shield-scans", "100000,1000000", "file counts of the shield's initial scans")
		latN    = flag.Int("shield-latency-files", 200, "files created one by one for the shield's latencies")
		rec     = flag.String("recordings", "", "recordings root of the database's files (shield snapshot)")
		exp     = flag.String("exports", "", "exports root of the database's files (shield snapshot)")
		undoDB  = flag.String("undo-database-url", "", "database of the undo part (its tenants are purged by a guarded run)")
		undoTs  = flag.String("undo-tenants", "", "comma-separated tenants the undo part purges and brings back")
		undoCfg = flag.String("undo-config", "", "purgeguard config of the undo part (a policy that lets the guarded run purge them)")
		undoJ   = flag.Int("undo-jobs", 2, "purgeguard undo --jobs")
		files   = flag.Int("files", 0, "files part: the tenant's recordings (for the printout)")
		layout  = flag.String("layout", "", "layout part: its name (for the printout)")
	)
	flag.Parse()
	undoPart := func() {
		if *undoDB == "" {
			return
		}
		var ts []uuid.UUID
		for _, s := range strings.Split(*undoTs, ",") {
			id, err := uuid.Parse(s)
			if err != nil {
				fmt.Fprintln(os.Stderr, "benchrun: -undo-tenants:", err)
				os.Exit(2)
			}
			ts = append(ts, id)
		}
		if err := runUndoBench(*undoDB, *bin, *pgbin, *work, *undoCfg, *machine, ts, *runs, *undoJ); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
	}
	shieldPart := func() {
		var ns []int
		for _, s := range strings.Split(*scans, ",") {
			var n int
			if _, err := fmt.Sscan(s, &n); err == nil && n > 0 {
				ns = append(ns, n)
			}
		}
		if err := shieldBench(*bin, *work, *dsn, *tenant, *tables, ns, *latN, *rec, *exp, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
	}
	switch *part {
	case "all", "":
	case "trash":
		tenant, err := uuid.Parse(*tenant)
		if err == nil {
			err = trashBench(*dsn, *bin, *work, *tables, tenant, *runs)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		return
	case "shield":
		shieldPart()
		return
	case "undo":
		undoPart()
		return
	case "seal":
		tenant, err := uuid.Parse(*tenant)
		if err == nil {
			err = sealBench(context.Background(), *bin, *pgbin, *dsn, *work, *full, tenant, *runs)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		return
	case "layout":
		// One layout of BENCH_PART=layouts: the standard comparison, then issue 17's
		// targets on it.
		r, err := run(*dsn, *bin, *pgbin, *tenant, *work, *tables, "", *runs, *jobs, *machine, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		fmt.Printf("layout %s: snapshot / raw COPY|zstd %.3f (target <= 1.0: %s); restore / raw COPY FROM %.3f (target <= 1.0: %s)\n",
			*layout, r.snapRaw, verdict(r.snapRaw <= 1), r.restoreRaw, verdict(r.restoreRaw <= 1))
		return
	case "files":
		if err := filesBench(*dsn, *bin, *work, *full, *tables, *tenant, *rec, *files, *runs); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		return
	default:
		fmt.Fprintf(os.Stderr, "benchrun: -part %q: want all, trash, shield, undo, files or seal\n", *part)
		os.Exit(2)
	}
	if _, err := run(*dsn, *bin, *pgbin, *tenant, *work, *tables, *full, *runs, *jobs, *machine, strings.Split(*others, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
	if *guardDB != "" {
		g, err := guardOverhead(*bin, *guardDB, *work, *tables, *runs)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			os.Exit(1)
		}
		fmt.Printf("guard overhead, empty deletion set, %d tenants: %.3f s, peak RSS %.1f MiB (target <= 1 s: %s)\n",
			*guardN, g.wall.Seconds(), float64(g.rssKiB)/1024, verdict(g.wall.Seconds() <= 1))
	}
	undoPart()
	shieldPart()
}

// ratios are the wall-time ratios run prints against the raw pipelines.
type ratios struct{ snapRaw, restoreRaw float64 }

func run(dsn, bin, pgbin, tenantS, work, tablesCfg, fullCfg string, runs, jobs int, machine string, others []string) (res ratios, err error) {
	ctx := context.Background()
	tenant, err := uuid.Parse(tenantS)
	if err != nil {
		return res, err
	}
	selects, err := tenantSelects(ctx, dsn, tenant)
	if err != nil {
		return res, err
	}
	// One psql session per table, as the snapshot has one stream per table.
	var scripts []string
	for i, sels := range selects {
		var b strings.Builder
		for _, sel := range sels {
			b.WriteString("COPY (" + sel + ") TO STDOUT;\n")
		}
		script := filepath.Join(work, fmt.Sprintf("raw-%d.sql", i))
		if err := os.WriteFile(script, []byte(b.String()), 0o600); err != nil {
			return res, err
		}
		scripts = append(scripts, script)
	}
	var dbRows int64
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return res, err
	}
	if err := conn.QueryRow(ctx, "SELECT sum(n_live_tup)::bigint FROM pg_stat_user_tables").Scan(&dbRows); err != nil {
		return res, err
	}
	conn.Close(ctx)

	keep := filepath.Join(work, "store-kept") // the last tables snapshot, for the restore bench
	snapOf := func(cfg, name string, tenants []string) (measure, error) {
		store := filepath.Join(work, "store-"+name)
		defer func() { os.RemoveAll(keep); os.Rename(store, keep); os.RemoveAll(store) }()
		args := []string{"-o", "json", "--log-level", "warn", "snapshot", "--jobs", fmt.Sprint(jobs), "--reason", "bench"}
		for _, t := range tenants {
			args = append(args, "--tenant", t)
		}
		cmd := command(bin, args...)
		cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+cfg)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		m, err := timed(name, cmd)
		if err != nil {
			return m, err
		}
		var res struct {
			Snapshots []struct {
				Rows       int64 `json:"rows"`
				RawBytes   int64 `json:"raw_bytes"`
				Files      int   `json:"files"`
				FilesBytes int64 `json:"files_bytes"`
			} `json:"snapshots"`
		}
		if err := json.Unmarshal([]byte(out.String()), &res); err != nil || len(res.Snapshots) != len(tenants) {
			return m, fmt.Errorf("snapshot output: %v: %s", err, out.String())
		}
		var files int
		var filesBytes int64
		for _, s := range res.Snapshots {
			m.rows += s.Rows
			m.bytes += s.RawBytes
			files += s.Files
			filesBytes += s.FilesBytes
		}
		if files > 0 {
			m.note = fmt.Sprintf("+ %d files, %.1f MB", files, float64(filesBytes)/1e6)
		}
		return m, nil
	}
	snap := func(cfg, name string) (measure, error) { return snapOf(cfg, name, []string{tenant.String()}) }
	raw := func() (measure, error) {
		m := measure{name: "psql COPY | zstd -3 (same settings)"}
		start := time.Now()
		for _, script := range scripts {
			psql := command(filepath.Join(pgbin, "psql"), dsn, "-qAtX", "-v", "ON_ERROR_STOP=1", "-f", script)
			zstd := command("zstd", "-3", "-q", "-c")
			pr, pw, err := os.Pipe()
			if err != nil {
				return m, err
			}
			// The same planner settings as purgeguard's read: the baseline measures the
			// pipeline, not a different plan.
			psql.Env = append(os.Environ(), "PGOPTIONS=-c max_parallel_workers_per_gather=0 -c jit=off")
			psql.Stdout, psql.Stderr = pw, os.Stderr
			devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				return m, err
			}
			zstd.Stdin, zstd.Stdout, zstd.Stderr = pr, devnull, os.Stderr
			if err := psql.Start(); err != nil {
				return m, err
			}
			if err := zstd.Start(); err != nil {
				return m, err
			}
			pw.Close()
			pr.Close()
			err = firstErr(psql.Wait(), zstd.Wait())
			devnull.Close()
			if err != nil {
				return m, fmt.Errorf("raw pipeline: %w", err)
			}
			m.rssKiB = max(m.rssKiB, rss(psql), rss(zstd))
		}
		m.wall = time.Since(start)
		// Rows and bytes of the same selects, counted outside the timed part.
		m.rows, m.bytes, err = copyCounts(dsn, slices.Concat(selects...))
		return m, err
	}
	dump := func() (measure, error) {
		out := filepath.Join(work, "bench.dump")
		defer os.Remove(out)
		cmd := command(filepath.Join(pgbin, "pg_dump"), "-Fc", "-f", out, dsn)
		cmd.Stderr = os.Stderr
		m, err := timed("pg_dump -Fc (whole database)", cmd)
		if err != nil {
			return m, err
		}
		m.rows = dbRows
		if fi, err := os.Stat(out); err == nil {
			m.note = fmt.Sprintf("dump %.1f MB", float64(fi.Size())/1e6)
		}
		return m, nil
	}

	a, b, err := pairedMedians("snapshot / raw COPY|zstd", runs, func() (measure, error) {
		return snap(tablesCfg, fmt.Sprintf("purgeguard snapshot (tables, --jobs %d)", jobs))
	}, raw)
	if err != nil {
		return res, err
	}
	c, err := median(1, dump)
	if err != nil {
		return res, err
	}
	rb, err := newRestoreBench(ctx, bin, pgbin, dsn, keep, tablesCfg, tenant)
	if err != nil {
		return res, err
	}
	ra, rr, err := pairedMedians("restore / raw COPY FROM", runs,
		func() (measure, error) { return rb.purgeguard(ctx) },
		func() (measure, error) { return rb.raw(ctx) })
	if err != nil {
		return res, err
	}
	var full []measure
	if fullCfg != "" {
		f, err := median(1, func() (measure, error) { return snap(fullCfg, "purgeguard snapshot (tables + files)") })
		if err != nil {
			return res, err
		}
		full = append(full, f)
	}
	results := append([]measure{a, b, c, ra, rr}, full...)
	var scale []measure
	if len(others) >= 21 {
		// One tenant of 10k call logs, one other tenant alone, and twenty others at once.
		small, err := median(runs, func() (measure, error) {
			return snapOf(tablesCfg, "purgeguard snapshot, tenant #1 (10k call logs)", others[:1])
		})
		if err != nil {
			return res, err
		}
		one, err := median(runs, func() (measure, error) { return snapOf(tablesCfg, "purgeguard snapshot, 1 tenant (#2)", others[1:2]) })
		if err != nil {
			return res, err
		}
		twenty, err := median(runs, func() (measure, error) {
			return snapOf(tablesCfg, "purgeguard snapshot, 20 tenants (#2-#21)", others[1:21])
		})
		if err != nil {
			return res, err
		}
		scale = []measure{small, one, twenty}
		results = append(results, scale...)
	}
	fmt.Printf("\nmake bench — %s\n", machine)
	fmt.Printf("tenant %s: %d tables, %d rows: %.1f%% of the database's %d rows\n",
		tenant, len(selects), a.rows, 100*float64(a.rows)/float64(dbRows), dbRows)
	fmt.Printf("median of %d runs, snapshot and restore each paired with its raw baseline (pg_dump and the files snapshot: 1 run)\n\n", runs)
	fmt.Printf("%-42s %9s %12s %9s %12s %8s  %s\n", "", "wall s", "rows/s", "MB/s", "peak RSS MiB", "CPU s", "")
	for _, m := range results {
		secs := m.wall.Seconds()
		fmt.Printf("%-42s %9.2f %12.0f %9.1f %12.1f %8.2f  %s\n", m.name, secs, float64(m.rows)/secs,
			float64(m.bytes)/1e6/secs, float64(m.rssKiB)/1024, m.cpu, m.note)
	}
	fmt.Printf("(CPU s: the whole machine's busy time during the step, PostgreSQL's included; %d cores)\n", runtime.NumCPU())
	if a.rows != b.rows {
		return res, fmt.Errorf("snapshot saved %d rows but the raw pipeline read %d: not the same data", a.rows, b.rows)
	}
	ab, ac := a.wall.Seconds()/b.wall.Seconds(), a.wall.Seconds()/c.wall.Seconds()
	fmt.Printf("\nsnapshot / raw COPY|zstd wall time: %.3f (target <= 1.11: %s)\n", ab, verdict(ab <= 1.11))
	fmt.Printf("snapshot / pg_dump -Fc wall time:   %.3f (target <= 0.05: %s)\n", ac, verdict(ac <= 0.05))
	fmt.Printf("  snapshot CPU %.2f s on %d cores: no faster than %.2f s with every core busy; 1/20 of pg_dump is %.2f s\n",
		a.cpu, runtime.NumCPU(), a.cpu/float64(runtime.NumCPU()), c.wall.Seconds()/20)
	if len(scale) == 3 {
		rssRatio := float64(a.rssKiB) / float64(scale[0].rssKiB)
		fmt.Printf("snapshot peak RSS, 200k / 10k call logs: %.1f / %.1f MiB = %.2f (targets <= 64 MiB and within 10%%: %s)\n",
			float64(a.rssKiB)/1024, float64(scale[0].rssKiB)/1024, rssRatio,
			verdict(a.rssKiB <= 64<<10 && rssRatio <= 1.10 && rssRatio >= 1/1.10))
		fmt.Printf("snapshot of 20 tenants / of 1 tenant wall time: %.2f (20x the rows, one scan per table)\n",
			scale[2].wall.Seconds()/scale[1].wall.Seconds())
	}
	rab := ra.wall.Seconds() / rr.wall.Seconds()
	fmt.Printf("restore / raw COPY FROM wall time:  %.3f (target <= 1.43: %s)\n", rab, verdict(rab <= 1.43))
	fmt.Printf("restore peak RSS:                   %.1f MiB (target <= 64: %s)\n", float64(ra.rssKiB)/1024, verdict(ra.rssKiB <= 64<<10))
	return ratios{snapRaw: ab, restoreRaw: rab}, nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// tenantSelects renders, from the catalog, the same SELECTs purgeguard runs, per
// table: a child selected by its parent's keys gets purgeguard's chunked selects,
// with the keys read here, before any timing (the baseline is spared that work).
func tenantSelects(ctx context.Context, dsn string, tenant uuid.UUID) ([][]string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	g, err := catalog.Load(ctx, conn, profile.CallLogd().Tenants)
	if err != nil {
		return nil, err
	}
	var out [][]string
	for _, t := range g.Tables {
		ref, ok := g.SelectedByParent(t)
		if !ok {
			out = append(out, []string{g.Select(t, tenant)})
			continue
		}
		// The keys as the snapshot reads them: the COPY text of the parent's saved rows.
		var text strings.Builder
		if _, err := conn.PgConn().CopyTo(ctx, &text, "COPY ("+g.SelectColumns(ref.Parent, tenant, []string{ref.Column})+") TO STDOUT"); err != nil {
			return nil, err
		}
		keys := strings.Fields(text.String())
		// The snapshot joins back instead when the tenant is a large share of the
		// parent (issue 17): so does the baseline.
		var parentRows float64
		if err := conn.QueryRow(ctx, "SELECT reltuples::float8 FROM pg_class WHERE oid = $1::regclass", ref.Parent.Name.Sanitize()).Scan(&parentRows); err != nil {
			return nil, err
		}
		if !snapshot.SelectsByParentIDs(int64(strings.Count(text.String(), "\n")), parentRows) {
			out = append(out, []string{g.Select(t, tenant)})
			continue
		}
		head, tail := g.SelectByParentIDs(t, ref)
		var sels []string
		for len(keys) > 0 {
			n := min(len(keys), snapshot.IDsPerQuery)
			sels = append(sels, head+strings.Join(keys[:n], ",")+tail)
			keys = keys[n:]
		}
		out = append(out, sels)
	}
	return out, nil
}

func timed(name string, cmd *exec.Cmd) (measure, error) {
	start := time.Now()
	err := cmd.Run()
	m := measure{name: name, wall: time.Since(start)}
	if err != nil {
		return m, fmt.Errorf("%s: %w", name, err)
	}
	m.rssKiB = rss(cmd)
	m.ownCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return m, nil
}

// pairedMedians runs f and its baseline g in runs pairs, the first with f first,
// then alternating (whatever slows the first of two runs, or drifts over a series,
// falls on each as often), prints each pair's ratio, and returns each side's
// median. Five runs of f, then five of g, put the two series minutes apart: the
// same restore code printed ratios of 0.99 and 1.03 on two layouts whose restore
// is the same tenant's.
func pairedMedians(name string, runs int, f, g func() (measure, error)) (measure, measure, error) {
	var fs, gs []measure
	timedRun := func(h func() (measure, error), out *[]measure) func() error {
		return func() error {
			m, err := withMachineCPU(h)
			*out = append(*out, m)
			return err
		}
	}
	for i := range max(runs, 1) {
		if err := pair(i, timedRun(f, &fs), timedRun(g, &gs)); err != nil {
			return measure{}, measure{}, err
		}
		first := "purgeguard"
		if i%2 == 1 {
			first = "baseline"
		}
		fmt.Printf("%s, pair %d (%s first): %.2f s / %.2f s = %.3f\n", name, i+1, first,
			fs[i].wall.Seconds(), gs[i].wall.Seconds(), fs[i].wall.Seconds()/gs[i].wall.Seconds())
	}
	return middle(fs), middle(gs), nil
}

func median(runs int, f func() (measure, error)) (measure, error) {
	var ms []measure
	for range runs {
		m, err := withMachineCPU(f)
		if err != nil {
			return m, err
		}
		ms = append(ms, m)
	}
	return middle(ms), nil
}

// withMachineCPU runs f and records in its measure the whole machine's busy time
// during it.
func withMachineCPU(f func() (measure, error)) (measure, error) {
	before := machineCPU()
	m, err := f()
	if err == nil {
		m.cpu = machineCPU() - before
	}
	return m, err
}

type countWriter struct{ n, lines int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	for _, b := range p {
		if b == '\n' {
			c.lines++
		}
	}
	return len(p), nil
}

func copyCounts(dsn string, selects []string) (rows, bytes int64, err error) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	c := &countWriter{}
	for _, sel := range selects {
		if _, err := conn.PgConn().CopyTo(ctx, c, "COPY ("+sel+") TO STDOUT"); err != nil {
			return 0, 0, err
		}
	}
	return c.lines, c.n, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
