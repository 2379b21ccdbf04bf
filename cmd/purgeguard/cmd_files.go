package main

import "github.com/urfave/cli/v2"

func newFilesCommand() *cli.Command {
	return &cli.Command{Name: "files", Usage: "list and restore files the shield saw lost"}
}
