package main

import "github.com/urfave/cli/v2"

// Flags shared by several commands. Each is built fresh for every app: urfave/cli
// records what it parsed in the flag values, so a package-level flag would carry one
// run into the next.

// Flag names, for reading values back in actions.
const (
	flagConfig      = "config"
	flagDatabaseURL = "database-url"
	flagDelete      = "delete"
	flagHeader      = "source-of-truth-header"
	flagLogFormat   = "log-format"
	flagLogLevel    = "log-level"
	flagMargin      = "margin"
	flagMetrics     = "metrics-file"
	flagOutput      = "output"
	flagPurgeDays   = "purge-days"
	flagReason      = "reason"
	flagRetention   = "retention"
	flagSource      = "source-of-truth"
	flagTenant      = "tenant"
	flagTenantsFile = "tenants-file"
)

func newConfigFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name: flagConfig, Aliases: []string{"c"}, EnvVars: []string{"PURGEGUARD_CONFIG"},
		Usage: "YAML configuration `FILE` (see config.example.yaml); defaults are the call-logd profile",
	}
}

// newDatabaseURLFlag overrides database.url and PURGEGUARD_DATABASE_URL for one run.
func newDatabaseURLFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:  flagDatabaseURL,
		Usage: "PostgreSQL connection `URL` (default: database.url, $PURGEGUARD_DATABASE_URL, libpq PG* variables)",
	}
}

func newDeleteFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagDelete, Usage: "`FILE` of tenant UUIDs the purge will delete (- for stdin): one per line, a JSON array, or wazo-auth's {\"items\":[…]}"}
}

func newHeaderFlag() *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: flagHeader, Usage: "HTTP header for the source of truth, 'Name: value' (repeatable; the value is never logged)"}
}

func newLogFormatFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagLogFormat, Value: "text", Usage: "log format on stderr: text or json"}
}

func newLogLevelFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagLogLevel, Value: "info", Usage: "debug, info, warn or error"}
}

func newMarginFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagMargin, DefaultText: "retention.margin", Usage: "with --retention: also save rows this much `DURATION` newer than the cut-off"}
}

func newMetricsFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name: flagMetrics, EnvVars: []string{"PURGEGUARD_METRICS_FILE"},
		Usage: "write Prometheus metrics of the run to `FILE` (*.prom, for node_exporter's textfile collector)",
	}
}

func newOutputFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagOutput, Aliases: []string{"o"}, Value: "text", Usage: "result format on stdout: text or json"}
}

func newPurgeDaysFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: flagPurgeDays, DefaultText: "retention.purge_days, else retention.purge_config's days_to_keep",
		Usage: "with --retention: wazo-purge-db's -d `DAYS`: replaces days_to_keep, not days_to_keep_per_plugin"}
}

func newReasonFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagReason, Usage: "why this snapshot is taken, kept in its manifest"}
}

// newRetentionFlag is --retention; usage says what it means to the command.
func newRetentionFlag(usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: flagRetention, Usage: usage}
}

// newJobsFlag is --jobs, the snapshot's worker connections.
func newJobsFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, DefaultText: "snapshot.jobs", Usage: "snapshot worker connections, `N` from 1 to 64"}
}

func newSourceFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagSource, Usage: "`FILE` or http(s) URL listing the tenants that must exist (e.g. wazo-auth's /tenants)"}
}

func newTenantFlag() *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: flagTenant, Aliases: []string{"t"}, Usage: "tenant `UUID` (repeat, or comma-separate)"}
}

func newTenantsFileFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: flagTenantsFile, Usage: "`FILE` of tenant UUIDs: one per line, a JSON array, or wazo-auth's {\"items\":[{\"uuid\":…}]}; - for stdin"}
}
