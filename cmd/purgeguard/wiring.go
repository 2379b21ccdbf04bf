package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/retention"
	"github.com/purgeguard/purgeguard/internal/tenantlist"
	"github.com/purgeguard/purgeguard/snapshot"
	"github.com/purgeguard/purgeguard/storage"
)

// connConfig is the database to work on: --database-url, else database.url (which
// PURGEGUARD_DATABASE_URL overrides), else libpq's PG* variables, which pgx reads
// itself from an empty string.
func connConfig(c *cli.Context, e *env) (*pgx.ConnConfig, error) {
	dsn := e.cfg.Database.URL.Reveal()
	if c.IsSet(flagDatabaseURL.Name) {
		dsn = c.String(flagDatabaseURL.Name)
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

// connect opens the database a command works on, with the catalog options of the
// configuration: the start of every command that reads the tenant graph.
func connect(c *cli.Context, e *env) (*pgx.Conn, catalog.Options, error) {
	copts, err := catalogOptions(e.cfg)
	if err != nil {
		return nil, copts, err
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return nil, copts, err
	}
	conn, err := pgx.ConnectConfig(c.Context, cfg)
	if err != nil {
		return nil, copts, fmt.Errorf("connect: %w", err)
	}
	return conn, copts, nil
}

func openStore(ctx context.Context, e *env) (storage.Store, error) {
	s3 := e.cfg.Storage.S3
	return storage.Open(ctx, e.cfg.Storage.URL, storage.Options{S3: storage.S3Options{
		Endpoint: s3.Endpoint, Region: s3.Region, AccessKeyID: s3.AccessKeyID,
		SecretAccessKey: s3.SecretAccessKey.Reveal(), Insecure: s3.Insecure,
		CreateBucket: s3.CreateBucket, PartSize: int64(s3.PartSize),
		ObjectLock: storage.ObjectLock{Mode: s3.ObjectLock.Mode, Days: s3.ObjectLock.Days},
	}})
}

// catalogOptions turns the tenants section into the catalog's options.
func catalogOptions(cfg *config.Config) (catalog.Options, error) {
	root, err := catalog.ParseName(cfg.Tenants.Table)
	if err != nil {
		return catalog.Options{}, &config.Error{Key: "tenants.table", Msg: err.Error()}
	}
	o := catalog.Options{Root: root, Key: cfg.Tenants.Key}
	for i, x := range cfg.Tenants.ExtraTables {
		n, err := catalog.ParseName(x.Table)
		if err != nil {
			return o, &config.Error{Key: fmt.Sprintf("tenants.extra_tables[%d].table", i), Msg: err.Error()}
		}
		o.ExtraTables = append(o.ExtraTables, catalog.Extra{Table: n, Column: x.Column})
	}
	return o, nil
}

func fileColumns(cfg *config.Config) ([]snapshot.FileColumn, error) {
	var out []snapshot.FileColumn
	for i, f := range cfg.Files {
		n, err := catalog.ParseName(f.Table)
		if err != nil {
			return nil, &config.Error{Key: fmt.Sprintf("files[%d].table", i), Msg: err.Error()}
		}
		out = append(out, snapshot.FileColumn{Table: n, Column: f.Column, Root: f.Root})
	}
	return out, nil
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
	for _, s := range splitList(c.StringSlice(flagTenant.Name)) {
		id, err := parseTenantFlag("--tenant", s)
		if err != nil {
			return nil, err
		}
		add(id)
	}
	if name := c.String(flagTenantsFile.Name); name != "" {
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

// retentionOptions turns the config's retention section into the snapshot engine's,
// with --margin over retention.margin.
func retentionOptions(c *cli.Context, cfg *config.Config) (*retention.Options, error) {
	r := cfg.Retention
	name := func(key, s string) (catalog.Name, error) {
		if s == "" {
			return catalog.Name{}, nil
		}
		n, err := catalog.ParseName(s)
		if err != nil {
			return n, &config.Error{Key: key, Msg: err.Error()}
		}
		return n, nil
	}
	o := &retention.Options{TenantColumn: r.TenantColumn, PurgeDays: r.PurgeDays,
		PurgeDefaultDays: r.PurgeDefaultDays, Margin: time.Duration(r.Margin)}
	var err error
	if o.Table, err = name("retention.table", r.Table); err != nil {
		return nil, err
	}
	if o.DefaultsTable, err = name("retention.defaults_table", r.DefaultsTable); err != nil {
		return nil, err
	}
	if c.IsSet(flagMargin.Name) {
		if o.Margin, err = config.ParseDuration(c.String(flagMargin.Name)); err != nil || o.Margin < 0 {
			return nil, usagef("--margin %q: want a duration such as 24h or 2d", c.String(flagMargin.Name))
		}
	}
	if c.IsSet(flagPurgeDays.Name) {
		if o.PurgeDays = c.Int(flagPurgeDays.Name); o.PurgeDays < 1 {
			return nil, usagef("--purge-days %d: must be at least 1", o.PurgeDays)
		}
	}
	if len(r.Kinds) == 0 {
		return nil, &config.Error{Key: "retention.kinds", Msg: "no kind: nothing to save"}
	}
	for i, k := range r.Kinds {
		key := fmt.Sprintf("retention.kinds[%d]", i)
		rule := catalog.Rule{Kind: k.Kind, TenantColumn: k.TenantColumn, TimeColumn: k.TimeColumn, NullColumns: k.NullColumns}
		if rule.Table, err = name(key+".table", k.Table); err != nil {
			return nil, err
		}
		if rule.NullTable, err = name(key+".null_table", k.NullTable); err != nil {
			return nil, err
		}
		o.Kinds = append(o.Kinds, retention.Kind{Rule: rule, DaysColumn: k.DaysColumn,
			DefaultColumn: k.DefaultColumn, DefaultDays: k.DefaultDays})
	}
	return o, nil
}
