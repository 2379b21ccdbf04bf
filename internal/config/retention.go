package config

import (
	"fmt"
)

// Retention describes the service's scheduled retention purge (call-logd's, run
// nightly by wazo-purge-db), which purgeguard reproduces to save what it deletes.
// A tenant's days for a kind: its row of Table when the kind's column is not NULL;
// else the purge job's days for the kind's plugin when they were changed from
// PurgeDefaultDays and the global days (DefaultsTable) were not changed from the
// kind's DefaultDays; else the global days (DefaultDays when NULL or absent). The
// purge job's days for a plugin are wazo-purge-db's, read from PurgeConfig:
// days_to_keep_per_plugin[plugin], else days_to_keep (which PurgeDays, like
// wazo-purge-db's -d, replaces).
type Retention struct {
	Table         string `yaml:"table" json:"table"`
	TenantColumn  string `yaml:"tenant_column" json:"tenant_column"`
	DefaultsTable string `yaml:"defaults_table" json:"defaults_table"`
	// PurgeConfig is wazo-purge-db's configuration file (its conf.d merged as
	// wazo-purge-db merges it); "" reads none.
	PurgeConfig      string          `yaml:"purge_config" json:"purge_config"`
	PurgeDays        *int            `yaml:"purge_days" json:"purge_days"`
	PurgeDefaultDays int             `yaml:"purge_default_days" json:"purge_default_days"`
	Margin           Duration        `yaml:"margin" json:"margin"`
	Kinds            []RetentionKind `yaml:"kinds" json:"kinds"`
}

// RetentionKind is one kind of the purge: rows of Table older than the tenant's
// cut-off on TimeColumn are deleted, or, with NullTable, the rows of NullTable
// referencing them get NullColumns set to NULL.
type RetentionKind struct {
	Kind          string   `yaml:"kind" json:"kind"`
	Plugin        string   `yaml:"plugin" json:"plugin"` // the wazo-purge-db purger that deletes it
	Table         string   `yaml:"table" json:"table"`
	TenantColumn  string   `yaml:"tenant_column" json:"tenant_column"`
	TimeColumn    string   `yaml:"time_column" json:"time_column"`
	NullTable     string   `yaml:"null_table" json:"null_table,omitempty"`
	NullColumns   []string `yaml:"null_columns" json:"null_columns,omitempty"`
	DaysColumn    string   `yaml:"days_column" json:"days_column"`
	DefaultColumn string   `yaml:"default_column" json:"default_column"`
	DefaultDays   int      `yaml:"default_days" json:"default_days"`
}

func (r *Retention) validate(bad func(key, format string, args ...any) error) error {
	for key, t := range map[string]string{"retention.table": r.Table, "retention.defaults_table": r.DefaultsTable} {
		if t == "" {
			continue
		}
		if _, _, err := TableName(t); err != nil {
			return bad(key, "%v", err)
		}
	}
	if r.Table != "" && r.TenantColumn == "" {
		return bad("retention.tenant_column", "must be set with retention.table")
	}
	if r.PurgeDays != nil && *r.PurgeDays < 0 {
		return bad("retention.purge_days", "%d: must be 0 or more", *r.PurgeDays)
	}
	if r.PurgeDefaultDays < 1 {
		return bad("retention.purge_default_days", "%d: must be at least 1", r.PurgeDefaultDays)
	}
	if r.Margin < 0 {
		return bad("retention.margin", "%s: must not be negative", r.Margin)
	}
	seen := map[string]bool{}
	for i, k := range r.Kinds {
		key := fmt.Sprintf("retention.kinds[%d]", i)
		if k.Kind == "" {
			return bad(key+".kind", "must be set")
		}
		if seen[k.Kind] {
			return bad(key+".kind", "%q appears twice", k.Kind)
		}
		seen[k.Kind] = true
		if _, _, err := TableName(k.Table); err != nil {
			return bad(key+".table", "%v", err)
		}
		if k.TenantColumn == "" || k.TimeColumn == "" {
			return bad(key, "tenant_column and time_column must be set")
		}
		if k.NullTable != "" {
			if _, _, err := TableName(k.NullTable); err != nil {
				return bad(key+".null_table", "%v", err)
			}
			if len(k.NullColumns) == 0 {
				return bad(key+".null_columns", "must name the columns the purge sets to NULL in %s", k.NullTable)
			}
		} else if len(k.NullColumns) > 0 {
			return bad(key+".null_columns", "needs null_table")
		}
		if k.DefaultDays < 1 {
			return bad(key+".default_days", "%d: must be at least 1", k.DefaultDays)
		}
	}
	return nil
}
