package main

import "github.com/urfave/cli/v2"

var cmdVerify = &cli.Command{
	Name:  "verify",
	Usage: "re-read snapshots: checksums, decompression, row counts and blobs (exit 4 on any mismatch)",
	Flags: []cli.Flag{
		flagTenant,
		&cli.StringFlag{Name: "snapshot", Aliases: []string{"s"}, Usage: "snapshot `ID` (default: every snapshot of --tenant)"},
		&cli.BoolFlag{Name: "all", Usage: "every snapshot of every tenant"},
	},
	Action: notImplemented("verify"),
}
