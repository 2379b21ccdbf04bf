// Package config reads purgeguard's configuration: defaults (the call-logd profile),
// then a YAML file, then environment variables; the CLI applies its flags last.
// Decoding is strict: an unknown key or a bad value is an error naming the key and
// the line, because a misspelt safety limit silently left at its default is a trap.
package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/profile"
)

// Config is the whole configuration. Library packages never see it: the CLI turns
// its sections into each package's own options.
type Config struct {
	Database  Database     `yaml:"database" json:"database"`
	Storage   Storage      `yaml:"storage" json:"storage"`
	Tenants   Tenants      `yaml:"tenants" json:"tenants"`
	Files     []FileColumn `yaml:"files" json:"files"`
	Snapshot  Snapshot     `yaml:"snapshot" json:"snapshot"`
	Policy    Policy       `yaml:"policy" json:"policy"`
	Retention Retention    `yaml:"retention" json:"retention"`
	Shield    Shield       `yaml:"shield" json:"shield"`
	// Encryption seals new snapshots with per-tenant keys (issue 15) when it names
	// recipients; its identity file opens them.
	Encryption Encryption `yaml:"encryption" json:"encryption"`
}

// Shield configures the file shield (purgeguard shield): hard links of every file
// under the files roots, blob uploads, loss records.
type Shield struct {
	// Dirs overrides the shield directory of a root (default: <root's parent>/
	// .purgeguard-shield-<root's name>). It must be on the root's filesystem.
	Dirs []ShieldDir `yaml:"dirs" json:"dirs"`
	// Index is the shield's on-disk index (bbolt).
	Index string `yaml:"index" json:"index"`
	// Settle: a file unchanged this long is uploaded.
	Settle Duration `yaml:"settle" json:"settle"`
	// Rescan: full rescan interval behind the watcher.
	Rescan Duration `yaml:"rescan" json:"rescan"`
	// Keep: how long a lost file's link is kept (then removed once its blob verifies).
	Keep Duration `yaml:"keep" json:"keep"`
	// Jobs: concurrent uploads.
	Jobs int `yaml:"jobs" json:"jobs"`
	// MetricsListen serves Prometheus metrics over HTTP (host:port); empty: off.
	MetricsListen string `yaml:"metrics_listen" json:"metrics_listen"`
}

// ShieldDir is one root's shield directory.
type ShieldDir struct {
	Root string `yaml:"root" json:"root"`
	Dir  string `yaml:"dir" json:"dir"`
}

// Encryption is per-tenant envelope encryption of snapshots (internal/seal): each
// tenant's data is sealed to its own key, and that key to the operators' recipients.
type Encryption struct {
	// Recipients are the operators' age public keys (age1…), on-call and break-glass:
	// a host given only these can write snapshots and never read them.
	Recipients []string `yaml:"recipients" json:"recipients"`
	// RecipientsFile holds more of them, one per line; both lists are used.
	RecipientsFile string `yaml:"recipients_file" json:"recipients_file"`
	// IdentityFile is an operator's age identity file, needed only by commands that
	// read snapshot contents (restore, verify of contents, keys rotate).
	IdentityFile string `yaml:"identity_file" json:"identity_file"`
	// KeysURL is where the tenant keys live (keys/…) when not in storage.url: a
	// bucket whose default Object Lock rule would lock them cannot hold them.
	KeysURL string `yaml:"keys_url" json:"keys_url"`
}

// Enabled says whether any encryption key is set.
func (e Encryption) Enabled() bool {
	return len(e.Recipients) > 0 || e.RecipientsFile != "" || e.IdentityFile != "" || e.KeysURL != ""
}

// Database says where the service's PostgreSQL is.
type Database struct {
	// URL is a libpq connection string or URL. Empty: PURGEGUARD_DATABASE_URL, else
	// libpq's PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, ...).
	URL DSN `yaml:"url" json:"url"`
}

// Storage says where snapshots go.
type Storage struct {
	URL string `yaml:"url" json:"url"` // file:///path or s3://bucket/prefix
	// RequestTimeout is how long one storage request may go without progress
	// before it is given up (and retried); Retries is how many times it is retried.
	RequestTimeout Duration `yaml:"request_timeout" json:"request_timeout"`
	Retries        int      `yaml:"retries" json:"retries"`
	S3             S3       `yaml:"s3" json:"s3"`
}

// S3 configures the s3:// backend.
type S3 struct {
	Endpoint        string     `yaml:"endpoint" json:"endpoint"` // host:port; empty: AWS
	Region          string     `yaml:"region" json:"region"`
	AccessKeyID     string     `yaml:"access_key_id" json:"access_key_id"`
	SecretAccessKey Secret     `yaml:"secret_access_key" json:"secret_access_key"`
	Insecure        bool       `yaml:"insecure" json:"insecure"` // plain HTTP (a MinIO on loopback)
	CreateBucket    bool       `yaml:"create_bucket" json:"create_bucket"`
	PartSize        ByteSize   `yaml:"part_size" json:"part_size"`
	ObjectLock      ObjectLock `yaml:"object_lock" json:"object_lock"`
}

// ObjectLock sets S3 Object Lock retention on every object written, so that a
// snapshot cannot be deleted (by prune, a bug or an intruder) before Days have passed.
// An empty Mode is off.
type ObjectLock struct {
	Mode string `yaml:"mode" json:"mode"` // GOVERNANCE or COMPLIANCE
	Days int    `yaml:"days" json:"days"`
}

// Object Lock retention modes, spelt as S3 spells them.
const (
	ObjectLockGovernance = "GOVERNANCE" // a user granted s3:BypassGovernanceRetention may still delete
	ObjectLockCompliance = "COMPLIANCE" // no one may delete, not even the bucket's owner
)

// Tenants names the tenant root and the tables keyed by tenant without a foreign key.
type Tenants struct {
	Table       string       `yaml:"table" json:"table"`
	Key         string       `yaml:"key" json:"key"`
	ExtraTables []ExtraTable `yaml:"extra_tables" json:"extra_tables"`
}

// ExtraTable is a table holding a tenant column but no foreign key to the root.
type ExtraTable struct {
	Table  string `yaml:"table" json:"table"`
	Column string `yaml:"column" json:"column"`
}

// FileColumn is a column holding paths of files that belong to its row, and the only
// directory those files may be read from or written to.
type FileColumn struct {
	Table  string `yaml:"table" json:"table"`
	Column string `yaml:"column" json:"column"`
	Root   string `yaml:"root" json:"root"`
	// PerTenant: each tenant's files lie under root/<tenant key>/ (profile.FileColumn).
	PerTenant bool `yaml:"per_tenant" json:"per_tenant"`
}

// Snapshot tunes the export.
type Snapshot struct {
	Jobs             int `yaml:"jobs" json:"jobs"`
	CompressionLevel int `yaml:"compression_level" json:"compression_level"`
}

// Policy holds the rules a deletion set must pass.
type Policy struct {
	MaxTenants     int      `yaml:"max_tenants" json:"max_tenants"`
	MaxFraction    float64  `yaml:"max_fraction" json:"max_fraction"`
	MinSourceRatio float64  `yaml:"min_source_ratio" json:"min_source_ratio"`
	Protected      UUIDs    `yaml:"protected" json:"protected"`
	ActiveWithin   Duration `yaml:"active_within" json:"active_within"`
	Activity       Activity `yaml:"activity" json:"activity"`
	// Retention bounds what a scheduled retention purge may take in one run.
	Retention RetentionPolicy `yaml:"retention" json:"retention"`
}

// RetentionPolicy holds the rules a retention purge must pass (check --retention,
// guard --retention): rows are a tenant's call logs, recording files and exports.
type RetentionPolicy struct {
	MaxFraction       float64 `yaml:"max_fraction" json:"max_fraction"`               // of every tenant's rows
	MaxTenantFraction float64 `yaml:"max_tenant_fraction" json:"max_tenant_fraction"` // of one tenant's rows
	MinRows           int64   `yaml:"min_rows" json:"min_rows"`                       // fewer taken: never refused
}

// Activity names where a tenant's last activity is read from.
type Activity struct {
	Table        string `yaml:"table" json:"table"`
	TenantColumn string `yaml:"tenant_column" json:"tenant_column"`
	TimeColumn   string `yaml:"time_column" json:"time_column"`
}

// Default returns the call-logd profile.
func Default() *Config {
	tenants, files, retention, activity := fromProfile(profile.CallLogd())
	rr := policy.DefaultRetentionRules()
	return &Config{
		Encryption: Encryption{Recipients: []string{}},
		Storage: Storage{
			URL:            "file:///var/lib/purgeguard",
			RequestTimeout: Duration(60 * time.Second),
			Retries:        3,
			S3:             S3{Region: "us-east-1", PartSize: 8 << 20},
		},
		Tenants:  tenants,
		Files:    files,
		Snapshot: Snapshot{Jobs: 2, CompressionLevel: 3},
		Policy: Policy{
			MaxTenants:     5,
			MaxFraction:    0.10,
			MinSourceRatio: 0.5,
			Protected:      UUIDs{},
			ActiveWithin:   Duration(7 * 24 * time.Hour),
			Activity:       activity,
			Retention:      RetentionPolicy{MaxFraction: rr.MaxFraction, MaxTenantFraction: rr.MaxTenantFraction, MinRows: rr.MinRows},
		},
		Retention: retention,
		Shield: Shield{Dirs: []ShieldDir{}, Index: "/var/lib/purgeguard/shield/index.db",
			Settle: Duration(time.Minute), Rescan: Duration(time.Hour), Keep: Duration(30 * 24 * time.Hour), Jobs: 2},
	}
}

// TableName splits "schema.table" ("table" alone is in public).
func TableName(s string) (schema, table string, err error) {
	schema, table, found := strings.Cut(s, ".")
	if !found {
		schema, table = "public", s
	}
	if schema == "" || table == "" || strings.Contains(table, ".") {
		return "", "", fmt.Errorf("%q is not a table name (want schema.table)", s)
	}
	return schema, table, nil
}
