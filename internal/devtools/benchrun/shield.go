package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// shieldBench measures the file shield: the initial scan of n files (time, peak
// RSS) for each n; the time from a file's creation to its link, and from its settle
// to its blob in storage; and a tenant snapshot whose files' blobs the shield already
// uploaded, against the same snapshot of tables only.
func shieldBench(bin, work, dsn, tenant, tablesCfg string, scans []int, latencyFiles int, recordings, exports string, runs int) error {
	link, blob, err := shieldLatency(bin, work, latencyFiles)
	if err != nil {
		return err
	}
	fmt.Printf("shield, %d files created one by one: creation -> link median %s, p99 %s (target < 1 s: %s)\n",
		latencyFiles, pct(link, 50), pct(link, 99), verdict(pct(link, 99) < time.Second))
	fmt.Printf("shield, the same files: settle (2 s) -> blob in storage median %s, p99 %s\n", pct(blob, 50), pct(blob, 99))
	if dsn != "" {
		if err := shieldSnapshot(bin, work, dsn, tenant, tablesCfg, recordings, exports, runs); err != nil {
			return err
		}
	}
	// The scans last: a million files take the longest to write.
	for _, n := range scans {
		m, index, err := shieldScan(bin, work, n)
		if err != nil {
			return err
		}
		fmt.Printf("shield initial scan of %d files: %.2f s, peak RSS %.1f MiB (target <= 64 MiB: %s)\n",
			n, m.wall.Seconds(), float64(m.rssKiB)/1024, verdict(m.rssKiB <= 64<<10))
		fmt.Printf("shield index after the scan of %d files: %.1f MB on disk (%d bytes, %d per file)\n",
			n, float64(index)/1e6, index, index/int64(n))
	}
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(100 * time.Microsecond)
}

// shieldConfig writes a configuration with root as the one files root.
func shieldConfig(work, name, root, extra string) (string, error) {
	cfg := filepath.Join(work, name+".yaml")
	y := fmt.Sprintf("files:\n  - table: public.call_logd_recording\n    column: path\n    root: %s\nshield:\n  index: %s\n%s",
		root, filepath.Join(work, name+"-state", "index.db"), extra)
	return cfg, os.WriteFile(cfg, []byte(y), 0o600)
}

// shieldScan runs the initial scan of n files; it returns the scan's measure and
// the size of the index file it left (bbolt's file, as ls shows it).
func shieldScan(bin, work string, n int) (measure, int64, error) {
	dir := filepath.Join(work, fmt.Sprintf("scan-%d", n))
	root := filepath.Join(dir, "tenants")
	defer os.RemoveAll(dir)
	fmt.Fprintf(os.Stderr, "bench: writing %d files for the shield's initial scan...\n", n)
	buf := make([]byte, 256)
	for i := range n {
		d := filepath.Join(root, fmt.Sprintf("%08d", i/1000), "monitor")
		if i%1000 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return measure{}, 0, err
			}
		}
		_, _ = rand.Read(buf)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("%d.wav", i)), buf, 0o640); err != nil {
			return measure{}, 0, err
		}
	}
	cfg, err := shieldConfig(dir, "scan", root, "  settle: 1000h\n")
	if err != nil {
		return measure{}, 0, err
	}
	cmd := command(bin, "--log-level", "warn", "shield", "--once")
	cmd.Env = append(os.Environ(), "PURGEGUARD_CONFIG="+cfg, "PURGEGUARD_STORAGE_URL=file://"+filepath.Join(dir, "store"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	m, err := timed(fmt.Sprintf("shield --once, %d files", n), cmd)
	if err != nil {
		return m, 0, err
	}
	fi, err := os.Stat(filepath.Join(dir, "scan-state", "index.db"))
	if err != nil {
		return m, 0, fmt.Errorf("shield index after the scan: %w", err)
	}
	return m, fi.Size(), nil
}

// shieldLatency runs the shield and creates files one at a time: the link shows as
// the file's link count going to 2; the blob as its object in the file:// store.
func shieldLatency(bin, work string, n int) (link, blob []time.Duration, err error) {
	dir := filepath.Join(work, "latency")
	root := filepath.Join(dir, "tenants", "11111111-1111-4111-8111-111111111111", "monitor")
	store := filepath.Join(dir, "store")
	defer os.RemoveAll(dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, nil, err
	}
	const settle = 2 * time.Second
	cfg, err := shieldConfig(dir, "latency", filepath.Join(dir, "tenants"), "  settle: 2s\n")
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "--log-level", "warn", "shield")
	cmd.Env = append(os.Environ(), "PURGEGUARD_CONFIG="+cfg, "PURGEGUARD_STORAGE_URL=file://"+store)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	linked := func(p string) bool {
		var st syscall.Stat_t
		return syscall.Lstat(p, &st) == nil && st.Nlink >= 2
	}
	// The shield is up once a probe file is linked.
	probe := filepath.Join(root, "probe")
	if err := os.WriteFile(probe, []byte("probe"), 0o640); err != nil {
		return nil, nil, err
	}
	for deadline := time.Now().Add(time.Minute); !linked(probe); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("shield: probe not linked within a minute")
		}
	}
	type pending struct {
		key     string
		created time.Time
	}
	var waiting []pending
	data := make([]byte, 64<<10)
	for i := range n {
		_, _ = rand.Read(data)
		p := filepath.Join(root, fmt.Sprintf("r%04d.wav", i))
		start := time.Now()
		if err := os.WriteFile(p, data, 0o640); err != nil {
			return nil, nil, err
		}
		for !linked(p) {
			if time.Since(start) > time.Minute {
				return nil, nil, fmt.Errorf("%s not linked within a minute", p)
			}
			time.Sleep(200 * time.Microsecond)
		}
		link = append(link, time.Since(start))
		sum := sha256.Sum256(data)
		h := hex.EncodeToString(sum[:])
		waiting = append(waiting, pending{key: filepath.Join(store, "blobs", "sha256", h[:2], h+".zst"), created: start})
		time.Sleep(5 * time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Minute); len(waiting) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%d blobs not in storage within 5 minutes", len(waiting))
		}
		waiting = slices.DeleteFunc(waiting, func(w pending) bool {
			if _, err := os.Stat(w.key); err != nil {
				return false
			}
			blob = append(blob, time.Since(w.created.Add(settle)))
			return true
		})
	}
	return link, blob, nil
}

// shieldSnapshot: the shield uploads every file of the tenant (two passes: the
// first links, the second, once they have settled, uploads), then a snapshot of the
// tenant with its files, against tables only: runs pairs, the first with files
// first, then alternating (whatever slows the first of two runs, a cold cache, falls
// on each as often); every pair's ratio and the medians'.
func shieldSnapshot(bin, work, dsn, tenant, tablesCfg, recordings, exports string, runs int) error {
	dir := filepath.Join(work, "shield-snap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store := "file://" + filepath.Join(dir, "store")
	cfg := filepath.Join(dir, "full.yaml")
	y := fmt.Sprintf("files:\n  - table: public.call_logd_recording\n    column: path\n    root: %s\n  - table: public.call_logd_export\n    column: path\n    root: %s\nshield:\n  index: %s\n  settle: 1s\n",
		recordings, exports, filepath.Join(dir, "state", "index.db"))
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		return err
	}
	env := append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL="+store, "PURGEGUARD_CONFIG="+cfg)
	fmt.Fprintln(os.Stderr, "bench: the shield uploads the tenant's files...")
	for i := range 2 {
		cmd := exec.Command(bin, "--log-level", "warn", "shield", "--once")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("shield --once: %w", err)
		}
		if i == 0 {
			time.Sleep(1500 * time.Millisecond)
		}
	}
	snap := func(name, config, storeURL string) (measure, error) {
		cmd := command(bin, "-o", "json", "--log-level", "warn", "snapshot", "--tenant", tenant, "--reason", "bench")
		cmd.Env = append(os.Environ(), "PURGEGUARD_DATABASE_URL="+dsn, "PURGEGUARD_STORAGE_URL="+storeURL, "PURGEGUARD_CONFIG="+config)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		m, err := timed(name, cmd)
		if err == nil {
			if i := strings.Index(out.String(), `"files":`); i >= 0 {
				line, _, _ := strings.Cut(out.String()[i:], "\n")
				m.note = strings.TrimSuffix(line, ",")
			}
		}
		return m, err
	}
	var withs, tabs []measure
	for i := range max(runs, 1) {
		with := func() error {
			m, err := snap("snapshot with shield-uploaded blobs", cfg, store)
			withs = append(withs, m)
			return err
		}
		tables := func() error {
			m, err := snap("snapshot, tables only", tablesCfg, "file://"+filepath.Join(dir, "store-tables"))
			tabs = append(tabs, m)
			return err
		}
		if err := pair(i, with, tables); err != nil {
			return err
		}
		first := "files"
		if i%2 == 1 {
			first = "tables"
		}
		fmt.Printf("pair %d (%s first): with the shield's blobs %.2f s, tables only %.2f s, ratio %.2f\n", i+1,
			first, withs[i].wall.Seconds(), tabs[i].wall.Seconds(), withs[i].wall.Seconds()/tabs[i].wall.Seconds())
	}
	with, tables := middle(withs), middle(tabs)
	ratio := with.wall.Seconds() / tables.wall.Seconds()
	fmt.Printf("snapshot of tenant %s with its files' blobs uploaded by the shield: %.2f s (median of %d), peak RSS %.1f MiB (%s)\n",
		tenant, with.wall.Seconds(), len(withs), float64(with.rssKiB)/1024, with.note)
	fmt.Printf("the same snapshot, tables only: %.2f s (median of %d), peak RSS %.1f MiB; ratio %.2f (target <= 1.3: %s)\n",
		tables.wall.Seconds(), len(tabs), float64(tables.rssKiB)/1024, ratio, verdict(ratio <= 1.3))
	return nil
}
