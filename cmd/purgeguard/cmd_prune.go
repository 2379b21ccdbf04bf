package main

import "github.com/urfave/cli/v2"

var cmdPrune = &cli.Command{
	Name:  "prune",
	Usage: "delete old snapshots and the blobs no remaining snapshot references",
	Flags: []cli.Flag{
		flagTenant,
		&cli.IntFlag{Name: "keep-last", Usage: "keep the newest N snapshots of each tenant"},
		&cli.StringFlag{Name: "keep-within", Usage: "keep snapshots younger than this `DURATION` (e.g. 30d)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "say what would be deleted; delete nothing"},
	},
	Action: notImplemented("prune"),
}
