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
// out` and `zstd -dc out | tar -x`, on the same files and disk. One run of each: a
// million files take minutes per command.
func filesBench(dsn, bin, work, cfg, tenant, recordings string, files int) error {
	store := filepath.Join(work, "store-files")
	env := append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL=file://"+store, "PURGEGUARD_CONFIG="+cfg)
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
	fmt.Printf("files part: tenant %s, %d recordings named (%d on disk, %.1f MB)\n", tenant, files, n, float64(size)/1e6)
	step := func(name string, args ...string) (measure, error) {
		cmd := command(bin, append([]string{"--log-level", "warn"}, args...)...)
		cmd.Env = env
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
			return m, fmt.Errorf("%w: %s", err, b)
		}
		return m, nil
	}
	restored := filepath.Join(work, "files-restored")
	if err := os.MkdirAll(restored, 0o755); err != nil {
		return err
	}
	// The tenant is purged before the restore, as a restore follows a purge: its rows
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
	var ms []measure
	for _, s := range []struct {
		name string
		args []string
	}{
		{"snapshot", []string{"snapshot", "--tenant", tenant, "--reason", "bench"}},
		{"verify", []string{"verify", "--tenant", tenant}},
		{"restore", []string{"restore", "--tenant", tenant, "--files-root", restored}},
		{"prune", []string{"prune", "--keep-last", "1"}},
	} {
		if s.name == "restore" {
			if err := purge(); err != nil {
				return fmt.Errorf("purge before the restore: %w", err)
			}
		}
		m, err := step(s.name, s.args...)
		if err != nil {
			return err
		}
		ms = append(ms, m)
		fmt.Printf("  purgeguard %-8s %8.1f s  %7.1f files/s  %6.1f MB/s  peak RSS %6.1f MiB (target <= 64 MiB: %s)\n",
			s.name, m.wall.Seconds(), float64(n)/m.wall.Seconds(), float64(size)/1e6/m.wall.Seconds(), float64(m.rssKiB)/1024,
			verdict(m.rssKiB <= 64<<10))
	}
	archive := filepath.Join(work, "files.tar.zst")
	untar := filepath.Join(work, "files-untar")
	if err := os.MkdirAll(untar, 0o755); err != nil {
		return err
	}
	shell := func(name, script string) (time.Duration, error) {
		start := time.Now()
		cmd := exec.Command("sh", "-c", script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%s: %w: %s", name, err, out)
		}
		return time.Since(start), nil
	}
	tarC, err := shell("tar -c | zstd -3", fmt.Sprintf("tar -c -C %q . | zstd -3 -q -o %q", recordings, archive))
	if err != nil {
		return err
	}
	tarX, err := shell("zstd -dc | tar -x", fmt.Sprintf("zstd -dc -q %q | tar -x -C %q", archive, untar))
	if err != nil {
		return err
	}
	snap, rest := ms[0], ms[2]
	fmt.Printf("  tar -c DIR | zstd -3  %8.1f s  %7.1f files/s  (snapshot / tar: %.2fx the time; target <= 1.25: %s)\n",
		tarC.Seconds(), float64(n)/tarC.Seconds(), snap.wall.Seconds()/tarC.Seconds(), verdict(snap.wall.Seconds()/tarC.Seconds() <= 1.25))
	fmt.Printf("  zstd -dc | tar -x     %8.1f s  %7.1f files/s  (restore / untar: %.2fx the time; target <= 1.25: %s)\n",
		tarX.Seconds(), float64(n)/tarX.Seconds(), rest.wall.Seconds()/tarX.Seconds(), verdict(rest.wall.Seconds()/tarX.Seconds() <= 1.25))
	fmt.Println("  (snapshot and restore include the tenant's rows; tar writes one stream and no sync, purgeguard an object or a file per recording, each made durable before the commit)")
	return nil
}
