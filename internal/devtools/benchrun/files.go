package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// filesBench measures, on a tenant whose rows name many small files (BENCH_PART=files,
// a million by default), the peak RSS of snapshot, verify, restore (of the tenant
// purged first, its files into an empty --files-root) and prune (keep-last 1: it marks every
// blob of the snapshot), and the files' throughput against `tar -c DIR | zstd -3 >
// out` and `zstd -dc out | tar -x`, on the same files and disk.
//
// snapshot and restore move the tenant's rows as well as its files, and tar moves
// files only: the target is the files' throughput. So each run also takes a
// tables-only snapshot of the same tenant and restores it, paired with the full ones
// (alternating which goes first), and the files' own time is the difference of the
// pair; both the whole commands' ratios and the files' are printed. runs pairs (one for
// a million files: they take minutes per command); medians.
func filesBench(dsn, bin, work, cfg, tablesCfg, tenant, recordings string, files, runs int) error {
	if runs < 1 {
		runs = 1
	}
	var n, size int64
	err := filepath.WalkDir(recordings, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n++
		size += fi.Size()
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("files part: tenant %s, %d recordings named (%d on disk, %.1f MB), %d paired runs\n", tenant, files, n, float64(size)/1e6, runs)
	step := func(name, store, config string, args ...string) (measure, error) {
		cmd := command(bin, append([]string{"--log-level", "warn"}, args...)...)
		cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+config)
		cmd.Stdout = nil
		out, err := os.CreateTemp(work, "files-stderr-*")
		if err != nil {
			return measure{}, err
		}
		defer os.Remove(out.Name())
		defer out.Close()
		cmd.Stderr = out
		m, err := timed(name, cmd)
		if err != nil {
			b, _ := os.ReadFile(out.Name())
			return m, fmt.Errorf("%s: %w: %s", name, err, b)
		}
		return m, nil
	}
	store := filepath.Join(work, "store-files")
	tablesStore := filepath.Join(work, "store-tables")
	restored := filepath.Join(work, "files-restored")
	// The tenant is purged before each restore, as a restore follows a purge: its rows
	// go straight in (COPY), its files into the empty --files-root.
	purge := func() error {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = $1", tenant)
		return err
	}
	fresh := func(dirs ...string) error {
		for _, d := range dirs {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
		return nil
	}
	snapshot := []string{"snapshot", "--tenant", tenant, "--reason", "bench"}
	restore := []string{"restore", "--tenant", tenant, "--files-root", restored}
	var snaps, tabSnaps, rests, tabRests []measure
	var verify, prune measure
	for r := range runs {
		// Snapshots of run r, full and tables-only, in alternating order; the stores of
		// the last run stay for verify, the restores and prune.
		if err := fresh(store, tablesStore); err != nil {
			return err
		}
		full := func() error {
			m, err := step("snapshot", store, cfg, snapshot...)
			snaps = append(snaps, m)
			return err
		}
		tabs := func() error {
			m, err := step("snapshot tables-only", tablesStore, tablesCfg, snapshot...)
			tabSnaps = append(tabSnaps, m)
			return err
		}
		if err := pair(r, full, tabs); err != nil {
			return err
		}
		if r == 0 {
			m, err := step("verify", store, cfg, "verify", "--tenant", tenant)
			if err != nil {
				return err
			}
			verify = m
		}
		fullRestore := func() error {
			if err := purge(); err != nil {
				return fmt.Errorf("purge before the restore: %w", err)
			}
			if err := fresh(restored); err != nil {
				return err
			}
			if err := os.MkdirAll(restored, 0o755); err != nil {
				return err
			}
			m, err := step("restore", store, cfg, restore...)
			rests = append(rests, m)
			return err
		}
		tabRestore := func() error {
			if err := purge(); err != nil {
				return fmt.Errorf("purge before the restore: %w", err)
			}
			m, err := step("restore rows-only", tablesStore, tablesCfg, "restore", "--tenant", tenant)
			tabRests = append(tabRests, m)
			return err
		}
		// The full restore goes last in odd runs, first in even ones; the tenant's rows
		// are back either way for the next run's snapshots.
		if err := pair(r+1, fullRestore, tabRestore); err != nil {
			return err
		}
	}
	m, err := step("prune", store, cfg, "prune", "--keep-last", "1")
	if err != nil {
		return err
	}
	prune = m
	rssLine := func(name string, ms ...measure) {
		var peak int64
		var walls []time.Duration
		for _, m := range ms {
			peak = max(peak, m.rssKiB)
			walls = append(walls, m.wall)
		}
		w := pct(walls, 50).Seconds()
		fmt.Printf("  purgeguard %-8s %8.2f s  %7.1f files/s  %6.1f MB/s  peak RSS %6.1f MiB (target <= 64 MiB: %s)\n",
			name, w, float64(n)/w, float64(size)/1e6/w, float64(peak)/1024, verdict(peak <= 64<<10))
	}
	rssLine("snapshot", snaps...)
	rssLine("verify", verify)
	rssLine("restore", rests...)
	rssLine("prune", prune)
	archive := filepath.Join(work, "files.tar.zst")
	untar := filepath.Join(work, "files-untar")
	shell := func(name, script string) (time.Duration, error) {
		start := time.Now()
		cmd := exec.Command("sh", "-c", script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return time.Since(start), nil
	}
	var tarCs, tarXs []time.Duration
	for range runs {
		if err := fresh(archive, untar); err != nil {
			return err
		}
		if err := os.MkdirAll(untar, 0o755); err != nil {
			return err
		}
		tarC, err := shell("tar -c | zstd -3", fmt.Sprintf("tar -c -C %q . | zstd -3 -q -o %q", recordings, archive))
		if err != nil {
			return err
		}
		tarX, err := shell("zstd -dc | tar -x", fmt.Sprintf("zstd -dc -q %q | tar -x -C %q", archive, untar))
		if err != nil {
			return err
		}
		tarCs, tarXs = append(tarCs, tarC), append(tarXs, tarX)
	}
	walls := func(ms []measure) []time.Duration {
		var d []time.Duration
		for _, m := range ms {
			d = append(d, m.wall)
		}
		return d
	}
	// The files' own time per pair: the full command's less the tables-only one's.
	diffs := func(a, b []measure) []time.Duration {
		var d []time.Duration
		for i := range a {
			d = append(d, a[i].wall-b[i].wall)
		}
		return d
	}
	snap, tabSnap, filesSnap := pct(walls(snaps), 50), pct(walls(tabSnaps), 50), pct(diffs(snaps, tabSnaps), 50)
	rest, tabRest, filesRest := pct(walls(rests), 50), pct(walls(tabRests), 50), pct(diffs(rests, tabRests), 50)
	tarC, tarX := pct(tarCs, 50), pct(tarXs, 50)
	fmt.Printf("  tables-only snapshot   %8.2f s;  rows-only restore %8.2f s (same tenant, paired with the full ones)\n", tabSnap.Seconds(), tabRest.Seconds())
	fmt.Printf("  tar -c DIR | zstd -3   %8.2f s  %7.1f files/s\n", tarC.Seconds(), float64(n)/tarC.Seconds())
	fmt.Printf("  zstd -dc | tar -x      %8.2f s  %7.1f files/s\n", tarX.Seconds(), float64(n)/tarX.Seconds())
	fmt.Printf("  whole snapshot / tar: %.2fx the time; whole restore / untar: %.2fx (rows included: not the files' throughput)\n",
		snap.Seconds()/tarC.Seconds(), rest.Seconds()/tarX.Seconds())
	sr, rr := filesSnap.Seconds()/tarC.Seconds(), filesRest.Seconds()/tarX.Seconds()
	fmt.Printf("  files: snapshot %.2f s (%.1f files/s), %.2fx tar's time; restore %.2f s (%.1f files/s), %.2fx untar's (target <= 1.25x, throughput >= 0.8x: %s, %s)\n",
		filesSnap.Seconds(), float64(n)/filesSnap.Seconds(), sr, filesRest.Seconds(), float64(n)/filesRest.Seconds(), rr, verdict(sr <= 1.25), verdict(rr <= 1.25))
	fmt.Println("  (files' time = the full command's less the tables-only one's in the same pair, median of the pairs; tar writes one stream and no sync, purgeguard makes every file durable before the commit)")
	return nil
}

// pair runs a and b, a first when i is even, b first when it is odd: whatever slows
// the first of two runs falls on each as often.
func pair(i int, a, b func() error) error {
	if i%2 == 1 {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}
