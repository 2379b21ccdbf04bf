package main

import "github.com/urfave/cli/v2"

var cmdList = &cli.Command{
	Name:   "list",
	Usage:  "list committed snapshots, newest first",
	Flags:  []cli.Flag{flagTenant},
	Action: notImplemented("list"),
}
