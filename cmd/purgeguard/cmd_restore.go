package main

import "github.com/urfave/cli/v2"

var cmdRestore = &cli.Command{
	Name:  "restore",
	Usage: "bring one tenant back from a snapshot, in one transaction (safe to run twice)",
	Flags: []cli.Flag{
		flagTenant,
		&cli.StringFlag{Name: "snapshot", Aliases: []string{"s"}, Usage: "snapshot `ID` (default: the newest of the tenant)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "say what would be inserted and written; change nothing"},
		&cli.StringFlag{Name: "target-database-url", Usage: "restore into this database instead (e.g. a scratch copy)"},
		&cli.StringFlag{Name: "files-root", Usage: "write files under this `DIR` instead of the configured roots"},
		&cli.StringSliceFlag{Name: "tables", Usage: "restore only these tables (schema.table)"},
		&cli.StringFlag{Name: "on-conflict", Value: "skip", Usage: "a row already present: skip or fail"},
		&cli.BoolFlag{Name: "allow-drop-columns", Usage: "restore even if columns were dropped since the snapshot"},
		&cli.BoolFlag{Name: "overwrite-files", Usage: "replace files whose content differs from the snapshot"},
	},
	Action: notImplemented("restore"),
}
