package main

import (
	"slices"

	"github.com/purgeguard/purgeguard/profile"

	"context"
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/tenantlist"
	"github.com/purgeguard/purgeguard/storage"
)

// connConfig is the database to work on: --database-url, else database.url (which
// PURGEGUARD_DATABASE_URL overrides), else libpq's PG* variables, which pgx reads
// itself from an empty string.
func connConfig(c *cli.Context, e *env) (*pgx.ConnConfig, error) {
	dsn := e.cfg.Database.URL.Reveal()
	if c.IsSet(flagDatabaseURL) {
		dsn = c.String(flagDatabaseURL)
	}
	return parseDSN(dsn)
}

func parseDSN(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message may quote the string: never show it, it can hold a password.
		return nil, usagef("database URL %s: cannot be parsed", config.RedactDSN(dsn))
	}
	return cfg, nil
}

// connect opens the database a command works on, with the tenant graph's start of the
// configuration: the start of every command that reads the tenant graph.
func connect(c *cli.Context, e *env) (*pgx.Conn, profile.Tenants, error) {
	cfg, err := connConfig(c, e)
	if err != nil {
		return nil, e.prof.Tenants, err
	}
	conn, err := pgx.ConnectConfig(c.Context, cfg)
	if err != nil {
		return nil, e.prof.Tenants, fmt.Errorf("connect: %w", err)
	}
	return conn, e.prof.Tenants, nil
}

func openStore(ctx context.Context, e *env) (storage.Store, error) {
	return storage.Open(ctx, e.cfg.Storage.URL, e.cfg.StorageOptions())
}

// tenantArgs reads --tenant (repeated or comma-separated) and --tenants-file.
// Every ID is typed from here on; a bad one names the flag or the file line.
func tenantArgs(c *cli.Context) ([]uuid.UUID, error) {
	var out []uuid.UUID
	seen := map[uuid.UUID]bool{}
	add := func(id uuid.UUID) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, s := range splitList(c.StringSlice(flagTenant)) {
		id, err := parseTenantFlag("--tenant", s)
		if err != nil {
			return nil, err
		}
		add(id)
	}
	if name := c.String(flagTenantsFile); name != "" {
		ids, err := readTenantsFile(c, name)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			add(id)
		}
	}
	return out, nil
}

func readTenantsFile(c *cli.Context, name string) ([]uuid.UUID, error) {
	if name == "-" {
		return tenantlist.Parse(c.App.Reader, "stdin")
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return tenantlist.Parse(f, name)
}

func parseTenantFlag(flag, s string) (uuid.UUID, error) {
	id, err := tenantlist.ParseID(s)
	if err != nil {
		return uuid.Nil, usagef("%s: %v", flag, err)
	}
	return id, nil
}

// retentionOptions is the configuration's retention purge with --margin and
// --purge-days applied over it.
func retentionOptions(c *cli.Context, e *env) (*profile.Retention, error) {
	o := e.prof.Retention
	o.Kinds = slices.Clone(o.Kinds)
	var err error
	if c.IsSet(flagMargin) {
		if o.Margin, err = config.ParseDuration(c.String(flagMargin)); err != nil || o.Margin < 0 {
			return nil, usagef("--margin %q: want a duration such as 24h or 2d", c.String(flagMargin))
		}
	}
	if c.IsSet(flagPurgeDays) {
		if o.PurgeDays = c.Int(flagPurgeDays); o.PurgeDays < 1 {
			return nil, usagef("--purge-days %d: must be at least 1", o.PurgeDays)
		}
	}
	if len(o.Kinds) == 0 {
		return nil, &config.Error{Key: "retention.kinds", Msg: "no kind: nothing to save"}
	}
	return &o, nil
}
