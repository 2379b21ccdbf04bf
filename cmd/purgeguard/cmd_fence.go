package main

import "github.com/urfave/cli/v2"

var cmdFence = &cli.Command{
	Name:  "fence",
	Usage: "database triggers that refuse any tenant DELETE the guard did not approve",
	Subcommands: []*cli.Command{
		{Name: "install", Usage: "create the purgeguard schema and triggers (idempotent)", Flags: []cli.Flag{flagDatabaseURL}, Action: notImplemented("fence install")},
		{Name: "status", Usage: "show whether the fence is installed and its live approvals", Flags: []cli.Flag{flagDatabaseURL}, Action: notImplemented("fence status")},
		{Name: "uninstall", Usage: "remove the triggers and the purgeguard schema", Flags: []cli.Flag{flagDatabaseURL}, Action: notImplemented("fence uninstall")},
	},
}
