package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/devtools/fixture"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/storage"
)

// restoreBench measures purgeguard restore of the tenant's snapshot into an emptied
// database against the raw `zstd -dc <object> | psql -c "COPY … FROM STDIN"` of the
// same objects in the same order, each run starting from an empty schema.
type restoreBench struct {
	bin, pgbin, adminDSN, dsn, store, cfg string
	tenant                                uuid.UUID
	m                                     *archive.Manifest
}

func newRestoreBench(ctx context.Context, bin, pgbin, dsn, store, cfg string, tenant uuid.UUID) (*restoreBench, error) {
	s, err := storage.NewFile(store)
	if err != nil {
		return nil, err
	}
	m, err := repository.Latest(ctx, s, tenant)
	if err != nil {
		return nil, err
	}
	i := strings.LastIndex(dsn, "/")
	q := strings.Index(dsn[i:], "?")
	rest := ""
	if q >= 0 {
		rest = dsn[i+q:]
	}
	return &restoreBench{bin: bin, pgbin: pgbin, adminDSN: dsn, dsn: dsn[:i] + "/bench_restore" + rest,
		store: store, cfg: cfg, tenant: tenant, m: m}, nil
}

// empty recreates the target database with the call-logd schema and no rows.
func (r *restoreBench) empty(ctx context.Context) error {
	admin, err := pgx.Connect(ctx, r.adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS bench_restore WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE bench_restore"); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, r.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if err := fixture.CreateSchemaLayout(ctx, conn, fixture.LayoutScrambled); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "CHECKPOINT")
	return err
}

func (r *restoreBench) purgeguard(ctx context.Context) (measure, error) {
	if err := r.empty(ctx); err != nil {
		return measure{}, err
	}
	cmd := command(r.bin, "--log-level", "warn", "restore", "--tenant", r.tenant.String(), "--target-database-url", r.dsn)
	cmd.Env = append(os.Environ(), "PURGEGUARD_STORAGE_URL=file://"+r.store, "PURGEGUARD_CONFIG="+r.cfg)
	cmd.Stdout, cmd.Stderr = nil, os.Stderr
	m, err := timed("purgeguard restore (into an empty schema)", cmd)
	m.rows, m.bytes = r.totals()
	return m, err
}

func (r *restoreBench) raw(ctx context.Context) (measure, error) {
	m := measure{name: "zstd -dc | psql COPY FROM"}
	if err := r.empty(ctx); err != nil {
		return m, err
	}
	start := time.Now()
	for _, t := range r.m.Tables {
		cols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = pgx.Identifier{c.Name}.Sanitize()
		}
		sql := "COPY " + pgx.Identifier{t.Schema, t.Name}.Sanitize() + " (" + strings.Join(cols, ", ") + ") FROM STDIN"
		zstd := command("zstd", "-dcq", filepath.Join(r.store, filepath.FromSlash(t.Key)))
		psql := command(filepath.Join(r.pgbin, "psql"), r.dsn, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql)
		pr, pw, err := os.Pipe()
		if err != nil {
			return m, err
		}
		zstd.Stdout, zstd.Stderr = pw, os.Stderr
		psql.Stdin, psql.Stdout, psql.Stderr = pr, nil, os.Stderr
		if err := zstd.Start(); err != nil {
			return m, err
		}
		if err := psql.Start(); err != nil {
			return m, err
		}
		pw.Close()
		pr.Close()
		if err := firstErr(zstd.Wait(), psql.Wait()); err != nil {
			return m, fmt.Errorf("raw restore of %s: %w", t.Name, err)
		}
		m.rssKiB = max(m.rssKiB, rss(zstd), rss(psql))
	}
	m.wall = time.Since(start)
	m.rows, m.bytes = r.totals()
	return m, nil
}

func (r *restoreBench) totals() (rows, bytes int64) {
	for _, t := range r.m.Tables {
		rows += t.Rows
		bytes += t.RawBytes
	}
	return rows, bytes
}
