package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/archive"
)

func newVersionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the storage format version and the Go runtime",
		Action: func(c *cli.Context) error {
			e := getEnv(c)
			v := struct {
				Version       string `json:"version"`
				FormatVersion int    `json:"format_version"`
				Go            string `json:"go"`
				Platform      string `json:"platform"`
			}{toolVersion(), archive.FormatVersion, runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH}
			return e.emit(v, func(w io.Writer) {
				fmt.Fprintf(w, "purgeguard %s (storage format %d, %s, %s)\n", v.Version, v.FormatVersion, v.Go, v.Platform)
			})
		},
	}
}
