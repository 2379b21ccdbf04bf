package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/seal"
)

// newKeysCommand manages the keys of per-tenant encryption (issue 15). Only the
// operator identity exists so far: rotate and forget come with the wiring.
func newKeysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "encryption keys: make an operator identity",
		Subcommands: []*cli.Command{
			{
				Name:  "init",
				Usage: "make a new operator identity (age X25519): writes it to --out (mode 0600), prints its recipient",
				Description: `The identity file opens every tenant's key: keep it with on-call (or in a
vault), never on the host that takes snapshots, and keep a second one (break-glass)
elsewhere. The recipient printed (age1…) is public: it goes in encryption.recipients.
--out is never overwritten. The file is age-keygen's format (age -d -i reads it).`,
				Flags: []cli.Flag{
					&cli.PathFlag{Name: "out", Usage: "where to write the identity file (must not exist)"},
				},
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					out := c.Path("out")
					if out == "" {
						return usagef("--out: a file name is needed")
					}
					k, err := seal.GenerateOperatorKey()
					if err != nil {
						return err
					}
					if err := k.Save(out, time.Now()); err != nil {
						return err
					}
					v := struct {
						Recipient    string `json:"recipient"`
						IdentityFile string `json:"identity_file"`
					}{k.Recipient(), out}
					e.log.Info("operator identity written", "file", out, "recipient", v.Recipient)
					return e.emit(v, func(w io.Writer) { fmt.Fprintln(w, v.Recipient) })
				},
			},
		},
	}
}
