package main

import "github.com/urfave/cli/v2"

var cmdGuard = &cli.Command{
	Name:      "guard",
	Usage:     "check, snapshot and verify, then run the purge COMMAND and check its blast radius",
	ArgsUsage: "-- COMMAND [ARGS...]",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "delete", Usage: "`FILE` of tenant UUIDs the purge will delete (- for stdin)"},
		&cli.StringFlag{Name: "source-of-truth", Usage: "`FILE` or http(s) URL listing the tenants that must exist"},
		&cli.StringSliceFlag{Name: "source-of-truth-header", Usage: "HTTP header for the source of truth, 'Name: value' (never logged)"},
		flagReason, flagDatabaseURL,
		&cli.BoolFlag{Name: "no-wait", Usage: "fail instead of waiting when another guard holds the lock"},
	},
	Action: notImplemented("guard"),
}
