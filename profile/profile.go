// Package profile describes the service purgeguard protects: where its tenant tree
// starts, which columns name files and under which roots, and how its scheduled
// retention purge decides what to delete. It is the vocabulary the public engines
// (snapshot, restore, guard) share, declared once; CallLogd returns Wazo
// call-logd's description, purgeguard's defaults.
//
// The package holds no logic beyond names: it imports only the standard library and
// pgx (for quoting identifiers), so that every other package can use it.
package profile

import (
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// TableName is a schema-qualified table name, unquoted, as pg_class spells it.
type TableName struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
}

// String returns "schema.table" unquoted, for humans and manifests.
func (n TableName) String() string { return n.Schema + "." + n.Table }

// Sanitize returns the name quoted for SQL.
func (n TableName) Sanitize() string { return pgx.Identifier{n.Schema, n.Table}.Sanitize() }

// IsZero reports whether no table is named.
func (n TableName) IsZero() bool { return n == TableName{} }

// ParseTableName splits "schema.table" at its first dot; "table" alone is in public.
// Names are taken as written (no case folding, no quotes), as pg_class spells them.
func ParseTableName(s string) (TableName, error) {
	schema, table, found := strings.Cut(s, ".")
	if !found {
		schema, table = "public", s
	}
	if schema == "" || table == "" {
		return TableName{}, fmt.Errorf("%q is not a table name (want schema.table)", s)
	}
	return TableName{Schema: schema, Table: table}, nil
}

// Tenants says where the tenant tree starts: the root table and its key, and the
// tables holding a tenant column without a foreign key to the root.
type Tenants struct {
	Root        TableName
	Key         string // key column of the root
	ExtraTables []ExtraTable
}

// ExtraTable is a table holding a tenant column but no foreign key to the root: the
// purge removes its rows where Column = tenant.
type ExtraTable struct {
	Table  TableName
	Column string
}

// FileColumn is a column holding paths of files owned by its row, and the only
// directory those files may be read from or written to.
type FileColumn struct {
	Table  TableName
	Column string
	Root   string
	// PerTenant says each tenant's files lie in the directory named after its key
	// under Root (call-logd's recordings: Root/<tenant uuid>/monitor/…). Restore then
	// refuses a path of tenant A in B's directory, even one a forged row names.
	PerTenant bool
}

// Retention describes the service's scheduled retention purge. A tenant's days for a
// kind: its row of Table when the kind's column is not NULL; else the purge job's
// days for the kind when they were changed from PurgeDefaultDays and the global days
// (DefaultsTable) were not changed from the kind's DefaultDays; else the global days
// (DefaultDays when NULL or absent) — call-logd's purger.py. The purge job's days for
// a kind are what it hands the kind's purger: PluginDays[kind's Plugin] when set,
// else PurgeDays (wazo-purge-db: days_to_keep_per_plugin, else days_to_keep).
type Retention struct {
	Table            TableName // per-tenant days; zero: none
	TenantColumn     string
	DefaultsTable    TableName // global days, first row; zero: built-in defaults
	PurgeDays        int       // the purge job's own days (days_to_keep)
	PurgeDefaultDays int       // the purge job's days when nobody changed them
	// PluginDays are the purge job's days for some of its purgers, by Plugin
	// (days_to_keep_per_plugin): they win over PurgeDays for those.
	PluginDays map[string]int
	// Margin is added to every cut-off: the purge runs after the snapshot and
	// computes its cut-offs from its own clock, so rows up to Margin newer are saved
	// too.
	Margin time.Duration
	Kinds  []RetentionKind
}

// RetentionKind is one kind of the purge with where its days come from.
type RetentionKind struct {
	Rule          PurgeRule
	DaysColumn    string // in Retention.Table; "" when tenants cannot override
	DefaultColumn string // in Retention.DefaultsTable; "" when there is no global setting
	DefaultDays   int    // built-in
	Plugin        string // the purge job's purger for this kind (wazo-purge-db's plugin name)
}

// PurgeDaysFor returns the days the purge job hands kind k's purger.
func (r *Retention) PurgeDaysFor(k RetentionKind) int {
	if d, ok := r.PluginDays[k.Plugin]; ok && k.Plugin != "" {
		return d
	}
	return r.PurgeDays
}

// PurgeRule is what one kind of a retention purge does: delete the rows of Table
// whose TimeColumn is older than the tenant's cut-off or, with NullTable, set
// NullColumns to NULL in the rows of NullTable that reference them.
type PurgeRule struct {
	Kind         string
	Table        TableName
	TenantColumn string
	TimeColumn   string
	NullTable    TableName
	NullColumns  []string
}

// Rules returns the purge rules of the kinds.
func (r *Retention) Rules() []PurgeRule {
	out := make([]PurgeRule, len(r.Kinds))
	for i, k := range r.Kinds {
		out[i] = k.Rule
	}
	return out
}

// Activity names where a tenant's last activity is read: max(TimeColumn) per
// TenantColumn.
type Activity struct {
	Table        TableName
	TenantColumn string
	TimeColumn   string
}

// Profile is everything purgeguard knows of a service.
type Profile struct {
	Tenants   Tenants
	Files     []FileColumn
	Retention Retention
	Activity  Activity
}

// MismatchError says the profile does not fit the database it is used on: a file
// column whose table the tenant purge does not reach (a typo in files[].table would
// otherwise silently drop every file of it), or whose column does not exist. It is
// returned before anything is read or written; the fix is in the configuration.
type MismatchError struct {
	Field  string // the profile's part, as the configuration names it: "files[0].table"
	Reason string
}

func (e *MismatchError) Error() string { return e.Field + ": " + e.Reason }
