package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// undoBench measures `purgeguard undo --run ID --jobs N` of the tenants one guarded
// run purged against `purgeguard restore --tenant T --snapshot S` of the same
// tenants one after another, each run starting from the tenants purged (deleted,
// then VACUUM, outside the timed part).
type undoBench struct {
	bin, dsn, store, cfg string
	jobs                 int
	run                  uuid.UUID
	snaps                map[uuid.UUID]uuid.UUID // tenant → its snapshot of the run
	tenants              []uuid.UUID
}

// newUndoBench purges tenants with a guarded run (which snapshots them) and returns
// the bench of its undo.
func newUndoBench(ctx context.Context, bin, pgbin, dsn, work, cfg string, tenants []uuid.UUID, jobs int) (*undoBench, error) {
	b := &undoBench{bin: bin, dsn: dsn, store: filepath.Join(work, "store-undo"), cfg: cfg, jobs: jobs, tenants: tenants,
		snaps: map[uuid.UUID]uuid.UUID{}}
	doomed := filepath.Join(work, "undo-doomed.txt")
	var lines []string
	for _, t := range tenants {
		lines = append(lines, t.String())
	}
	if err := os.WriteFile(doomed, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	purge := `"$0" "$1" -qAtX -v ON_ERROR_STOP=1 -c "DELETE FROM call_logd_tenant WHERE uuid = ANY (string_to_array('$PURGEGUARD_APPROVED_TENANTS', ',')::uuid[])"`
	cmd := command(bin, "-o", "json", "--log-level", "warn", "guard", "--delete", doomed, "--", "sh", "-c", purge, filepath.Join(pgbin, "psql"), dsn)
	cmd.Env = b.env()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if _, err := timed("guarded purge of the undo bench's tenants", cmd); err != nil {
		return nil, err
	}
	var res struct {
		Run       uuid.UUID `json:"run"`
		Snapshots []struct {
			Tenant   uuid.UUID `json:"tenant"`
			Snapshot uuid.UUID `json:"snapshot"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil || len(res.Snapshots) != len(tenants) {
		return nil, fmt.Errorf("guard output: %v: %s", err, out.String())
	}
	b.run = res.Run
	for _, s := range res.Snapshots {
		b.snaps[s.Tenant] = s.Snapshot
	}
	return b, nil
}

func (b *undoBench) env() []string {
	return append(os.Environ(), "PURGEGUARD_DATABASE_URL="+b.dsn, "PURGEGUARD_STORAGE_URL=file://"+b.store, "PURGEGUARD_CONFIG="+b.cfg)
}

// purged deletes the tenants again and vacuums, so that every measured run starts
// from the same state: the tenants gone, as the bad run left them.
func (b *undoBench) purged(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DELETE FROM call_logd_tenant WHERE uuid = ANY ($1)", b.tenants); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "VACUUM ANALYZE")
	return err
}

// count is the rows of the tenants in the database now.
func (b *undoBench) count(ctx context.Context) (int64, error) {
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM call_logd_call_log WHERE tenant_uuid = ANY ($1))
		+ (SELECT count(*) FROM call_logd_tenant WHERE uuid = ANY ($1))`, b.tenants).Scan(&n)
	return n, err
}

func (b *undoBench) undo(ctx context.Context) (measure, error) {
	if err := b.purged(ctx); err != nil {
		return measure{}, err
	}
	cmd := command(b.bin, "-o", "json", "--log-level", "warn", "undo", "--run", b.run.String(), "--jobs", fmt.Sprint(b.jobs))
	cmd.Env = b.env()
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	m, err := timed(fmt.Sprintf("purgeguard undo --run (--jobs %d)", b.jobs), cmd)
	if err != nil {
		return m, err
	}
	var doc struct {
		Result struct {
			Restored int `json:"restored"`
			Tenants  []struct {
				Inserted int64 `json:"rows_inserted"`
			} `json:"tenants"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(out.String()), &doc); err != nil || doc.Result.Restored != len(b.tenants) {
		return m, fmt.Errorf("undo output: %v: %.2000s", err, out.String())
	}
	for _, t := range doc.Result.Tenants {
		m.rows += t.Inserted
	}
	return m, nil
}

func (b *undoBench) restores(ctx context.Context) (measure, error) {
	m := measure{name: fmt.Sprintf("%d sequential purgeguard restore", len(b.tenants))}
	if err := b.purged(ctx); err != nil {
		return m, err
	}
	var total measure
	for _, t := range b.tenants {
		cmd := command(b.bin, "-o", "json", "--log-level", "warn", "restore", "--tenant", t.String(), "--snapshot", b.snaps[t].String())
		cmd.Env = b.env()
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		one, err := timed("restore", cmd)
		if err != nil {
			return m, err
		}
		var rep struct {
			Totals struct {
				Inserted int64 `json:"rows_inserted"`
			} `json:"totals"`
		}
		if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
			return m, fmt.Errorf("restore output: %v", err)
		}
		total.wall += one.wall
		total.rssKiB = max(total.rssKiB, one.rssKiB)
		total.rows += rep.Totals.Inserted
	}
	m.wall, m.rssKiB, m.rows = total.wall, total.rssKiB, total.rows
	return m, nil
}

// runUndoBench prints the undo part's figures.
func runUndoBench(dsn, bin, pgbin, work, cfg, machine string, tenants []uuid.UUID, runs, jobs int) error {
	ctx := context.Background()
	b, err := newUndoBench(ctx, bin, pgbin, dsn, work, cfg, tenants, jobs)
	if err != nil {
		return err
	}
	// Alternated, undo then the restores, run after run: on a shared machine a
	// change of load then weighs on both sides alike.
	var us, rs []measure
	for range runs {
		for _, side := range []struct {
			f   func(context.Context) (measure, error)
			out *[]measure
		}{{b.undo, &us}, {b.restores, &rs}} {
			m, err := median(1, func() (measure, error) { return side.f(ctx) })
			if err != nil {
				return err
			}
			n, err := b.count(ctx)
			if err != nil {
				return err
			}
			if m.rows == 0 || n == 0 {
				return fmt.Errorf("%s restored %d rows (%d call logs and tenants in the database): nothing measured", m.name, m.rows, n)
			}
			*side.out = append(*side.out, m)
		}
	}
	results := []measure{middle(us), middle(rs)}
	u, r := results[0], results[1]
	if u.rows != r.rows {
		return fmt.Errorf("undo inserted %d rows, the restores %d: not the same work", u.rows, r.rows)
	}
	fmt.Printf("\nmake bench, undo part — %s\n", machine)
	fmt.Printf("%d tenants purged by one guarded run, %d rows; median of %d runs (undo and the restores alternated), each from the tenants purged\n\n", len(tenants), u.rows, runs)
	fmt.Printf("%-42s %9s %12s %12s %8s\n", "", "wall s", "rows/s", "peak RSS MiB", "CPU s")
	for _, m := range results {
		secs := m.wall.Seconds()
		fmt.Printf("%-42s %9.2f %12.0f %12.1f %8.2f\n", m.name, secs, float64(m.rows)/secs, float64(m.rssKiB)/1024, m.cpu)
	}
	fmt.Printf("(CPU s: the whole machine's busy time during the step, PostgreSQL's included; %d cores)\n", runtime.NumCPU())
	ratio := u.wall.Seconds() / r.wall.Seconds()
	fmt.Printf("\nundo --jobs %d / %d sequential restores wall time: %.3f (target <= 0.7: %s)\n", jobs, len(tenants), ratio, verdict(ratio <= 0.7))
	fmt.Printf("undo peak RSS: %.1f MiB (target <= 64: %s)\n", float64(u.rssKiB)/1024, verdict(u.rssKiB <= 64<<10))
	return nil
}

// middle is the run of median wall time.
func middle(ms []measure) measure {
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b measure) int { return int(a.wall - b.wall) })
	return ms[len(ms)/2]
}
