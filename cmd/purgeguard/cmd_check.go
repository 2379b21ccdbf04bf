package main

import "github.com/urfave/cli/v2"

var cmdCheck = &cli.Command{
	Name:  "check",
	Usage: "run the policy on a deletion set without deleting anything (exit 3 if refused)",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "delete", Usage: "`FILE` of tenant UUIDs to delete (- for stdin)"},
		&cli.StringFlag{Name: "source-of-truth", Usage: "`FILE` or http(s) URL listing the tenants that must exist (e.g. wazo-auth)"},
		&cli.StringSliceFlag{Name: "source-of-truth-header", Usage: "HTTP header for the source of truth, 'Name: value' (never logged)"},
		flagDatabaseURL,
	},
	Action: notImplemented("check"),
}
