package main

import "github.com/urfave/cli/v2"

// Tenant selection flags shared by snapshot, restore, list, verify and prune.
var (
	flagTenant      = &cli.StringSliceFlag{Name: "tenant", Aliases: []string{"t"}, Usage: "tenant `UUID` (repeat, or comma-separate)"}
	flagTenantsFile = &cli.StringFlag{Name: "tenants-file", Usage: "`FILE` of tenant UUIDs: one per line, a JSON array, or wazo-auth's {\"items\":[{\"uuid\":…}]}; - for stdin"}
	flagReason      = &cli.StringFlag{Name: "reason", Usage: "why this snapshot is taken, kept in its manifest"}
)

var cmdSnapshot = &cli.Command{
	Name:      "snapshot",
	Usage:     "save every row and file a purge of the given tenants would destroy",
	ArgsUsage: " ",
	Description: `All tenants are read in one REPEATABLE READ snapshot of the database, shared by
--jobs worker connections. Each table streams COPY TO STDOUT through zstd into storage;
each file a row names is stored once, content-addressed. The manifest is written last:
a snapshot without one does not exist.

Example:
   purgeguard snapshot --tenant 2f3c…-… --reason "before manual purge"`,
	Flags: []cli.Flag{
		flagTenant, flagTenantsFile, flagReason, flagDatabaseURL,
		&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "worker connections (default: snapshot.jobs)"},
	},
	Action: notImplemented("snapshot"),
}
