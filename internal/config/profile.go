package config

import (
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/profile"
	"github.com/purgeguard/purgeguard/storage"
)

// This file is the one translation of the configuration into the engines' options:
// the CLI, the bench and anything else that reads a config file go through it.

// Profile returns the service's description the configuration gives: the tenant
// graph's start, the file columns, the retention purge and the activity source.
// A malformed table name is an *Error naming its key.
func (c *Config) Profile() (profile.Profile, error) {
	var p profile.Profile
	var err error
	if p.Tenants.Root, err = tableName("tenants.table", c.Tenants.Table); err != nil {
		return p, err
	}
	p.Tenants.Key = c.Tenants.Key
	for i, x := range c.Tenants.ExtraTables {
		n, err := tableName(fmt.Sprintf("tenants.extra_tables[%d].table", i), x.Table)
		if err != nil {
			return p, err
		}
		p.Tenants.ExtraTables = append(p.Tenants.ExtraTables, profile.ExtraTable{Table: n, Column: x.Column})
	}
	for i, f := range c.Files {
		n, err := tableName(fmt.Sprintf("files[%d].table", i), f.Table)
		if err != nil {
			return p, err
		}
		p.Files = append(p.Files, profile.FileColumn{Table: n, Column: f.Column, Root: f.Root, PerTenant: f.PerTenant})
	}
	if p.Retention, err = c.Retention.profile(); err != nil {
		return p, err
	}
	if a := c.Policy.Activity; a.Table != "" {
		if p.Activity.Table, err = tableName("policy.activity.table", a.Table); err != nil {
			return p, err
		}
		p.Activity.TenantColumn, p.Activity.TimeColumn = a.TenantColumn, a.TimeColumn
	}
	return p, nil
}

func (r *Retention) profile() (profile.Retention, error) {
	// Until the purge job's configuration is read (ApplyPurgeConfig), its days are
	// retention.purge_days, else its built-in days_to_keep.
	o := profile.Retention{TenantColumn: r.TenantColumn, PurgeDays: r.PurgeDefaultDays,
		PurgeDefaultDays: r.PurgeDefaultDays, Margin: time.Duration(r.Margin)}
	if r.PurgeDays != nil {
		o.PurgeDays = *r.PurgeDays
	}
	var err error
	if o.Table, err = optionalTableName("retention.table", r.Table); err != nil {
		return o, err
	}
	if o.DefaultsTable, err = optionalTableName("retention.defaults_table", r.DefaultsTable); err != nil {
		return o, err
	}
	for i, k := range r.Kinds {
		key := fmt.Sprintf("retention.kinds[%d]", i)
		rule := profile.PurgeRule{Kind: k.Kind, TenantColumn: k.TenantColumn, TimeColumn: k.TimeColumn, NullColumns: k.NullColumns}
		if rule.Table, err = tableName(key+".table", k.Table); err != nil {
			return o, err
		}
		if rule.NullTable, err = optionalTableName(key+".null_table", k.NullTable); err != nil {
			return o, err
		}
		o.Kinds = append(o.Kinds, profile.RetentionKind{Rule: rule, DaysColumn: k.DaysColumn,
			DefaultColumn: k.DefaultColumn, DefaultDays: k.DefaultDays, Plugin: k.Plugin})
	}
	return o, nil
}

func tableName(key, s string) (profile.TableName, error) {
	n, err := profile.ParseTableName(s)
	if err != nil {
		return n, &Error{Key: key, Msg: err.Error()}
	}
	return n, nil
}

func optionalTableName(key, s string) (profile.TableName, error) {
	if s == "" {
		return profile.TableName{}, nil
	}
	return tableName(key, s)
}

// ApplyPurgeConfig gives r the purge job's days from wazo-purge-db's own
// configuration (retention.purge_config, see LoadPurgeDB): PluginDays from its
// days_to_keep_per_plugin, PurgeDays from its days_to_keep unless override (its -d
// option: --purge-days) or retention.purge_days says otherwise. An unreadable or
// invalid file is an *Error naming file and line.
func (c *Config) ApplyPurgeConfig(r *profile.Retention, override *int) error {
	p, err := LoadPurgeDB(c.Retention.PurgeConfig)
	if err != nil {
		return err
	}
	if override == nil {
		override = c.Retention.PurgeDays
	}
	r.PurgeDays = p.DaysFor("", override)
	r.PluginDays = p.PerPlugin
	return nil
}

// RetentionRules returns the rules a retention purge must pass.
func (c *Config) RetentionRules() policy.RetentionRules {
	r := c.Policy.Retention
	return policy.RetentionRules{MaxFraction: r.MaxFraction, MaxTenantFraction: r.MaxTenantFraction, MinRows: r.MinRows}
}

// PolicyRules returns the rules a deletion set must pass.
func (c *Config) PolicyRules() policy.Rules {
	p := c.Policy
	return policy.Rules{MaxTenants: p.MaxTenants, MaxFraction: p.MaxFraction, MinSourceRatio: p.MinSourceRatio,
		Protected: []uuid.UUID(p.Protected), ActiveWithin: time.Duration(p.ActiveWithin)}
}

// StorageOptions returns what storage.Open needs besides the URL.
func (c *Config) StorageOptions() storage.Options {
	s3 := c.Storage.S3
	return storage.Options{S3: storage.S3Options{
		Endpoint: s3.Endpoint, Region: s3.Region, AccessKeyID: s3.AccessKeyID,
		SecretAccessKey: s3.SecretAccessKey.Reveal(), Insecure: s3.Insecure,
		CreateBucket: s3.CreateBucket, PartSize: int64(s3.PartSize),
		ObjectLock: storage.ObjectLock{Mode: s3.ObjectLock.Mode, Days: s3.ObjectLock.Days},
	}}
}

// fromProfile writes a profile's parts in the configuration's own spelling: the
// defaults are profile.CallLogd(), declared there once.
func fromProfile(p profile.Profile) (Tenants, []FileColumn, Retention, Activity) {
	str := func(n profile.TableName) string {
		if n.IsZero() {
			return ""
		}
		return n.String()
	}
	t := Tenants{Table: str(p.Tenants.Root), Key: p.Tenants.Key, ExtraTables: []ExtraTable{}}
	for _, x := range p.Tenants.ExtraTables {
		t.ExtraTables = append(t.ExtraTables, ExtraTable{Table: str(x.Table), Column: x.Column})
	}
	var files []FileColumn
	for _, f := range p.Files {
		files = append(files, FileColumn{Table: str(f.Table), Column: f.Column, Root: f.Root, PerTenant: f.PerTenant})
	}
	r := p.Retention
	// purge_days stays unset: the days are wazo-purge-db's own (purge_config).
	ret := Retention{Table: str(r.Table), TenantColumn: r.TenantColumn, DefaultsTable: str(r.DefaultsTable),
		PurgeConfig: DefaultPurgeConfig, PurgeDefaultDays: r.PurgeDefaultDays, Margin: Duration(r.Margin)}
	for _, k := range r.Kinds {
		nulls := k.Rule.NullColumns
		if nulls == nil {
			nulls = []string{}
		}
		ret.Kinds = append(ret.Kinds, RetentionKind{Kind: k.Rule.Kind, Table: str(k.Rule.Table),
			TenantColumn: k.Rule.TenantColumn, TimeColumn: k.Rule.TimeColumn, NullTable: str(k.Rule.NullTable),
			NullColumns: nulls, DaysColumn: k.DaysColumn, DefaultColumn: k.DefaultColumn, DefaultDays: k.DefaultDays,
			Plugin: k.Plugin})
	}
	a := Activity{Table: str(p.Activity.Table), TenantColumn: p.Activity.TenantColumn, TimeColumn: p.Activity.TimeColumn}
	return t, files, ret, a
}
