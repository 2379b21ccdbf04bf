package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/seal"
)

// newKeysCommand manages the keys of per-tenant encryption (issue 15): operator
// identities, and the rotation of the tenant keys to new operators. Tenant keys are
// made by the first encrypted snapshot of each tenant; forget destroys them.
func newKeysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "encryption keys: make an operator identity, reseal the tenant keys to new operators",
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
			{
				Name:  "rotate",
				Usage: "seal every tenant's key again to new operator recipients (no snapshot object changes)",
				Description: `Opens each tenant's key in the store's keys/ area with --identity-file (an
operator identity it is sealed to now) and seals it again to exactly the recipients
given (--recipient, repeated, and --recipients-file). Every earlier version of each
key record is destroyed: a recipient left out can no longer open any tenant. A tenant
already sealed to exactly these recipients is skipped, so an interrupted rotation is
simply run again. Forgotten tenants are skipped.`,
				Flags: []cli.Flag{
					&cli.PathFlag{Name: "identity-file", Usage: "an operator identity file the keys are sealed to now"},
					&cli.StringSliceFlag{Name: "recipient", Usage: "a new operator recipient (age1…), repeated"},
					&cli.PathFlag{Name: "recipients-file", Usage: "more new recipients, one per line"},
				},
				Action: func(c *cli.Context) error {
					e := getEnv(c)
					idFile := c.Path("identity-file")
					if idFile == "" {
						return usagef("--identity-file: an operator identity is needed to open the tenant keys")
					}
					to, err := rotateRecipients(c)
					if err != nil {
						return err
					}
					f, err := os.Open(idFile)
					if err != nil {
						return fmt.Errorf("--identity-file: %w", err)
					}
					ids, err := seal.ParseIdentities(f)
					f.Close()
					if err != nil {
						return fmt.Errorf("--identity-file %s: %w", idFile, err)
					}
					store, err := openStore(c.Context, e)
					if err != nil {
						return err
					}
					// encryption.keys_url, when set, is where the tenant keys are.
					ks, err := keyStore(c.Context, e, store)
					if err != nil {
						return err
					}
					res, err := ks.Rotate(c.Context, ids, to)
					if err != nil {
						return err
					}
					v := struct {
						Resealed   int      `json:"resealed"`
						Unchanged  int      `json:"unchanged"`
						Forgotten  int      `json:"forgotten"`
						Recipients []string `json:"recipients"`
					}{res.Resealed, res.Unchanged, res.Forgotten, to.List()}
					e.log.Info("tenant keys resealed", "resealed", res.Resealed, "unchanged", res.Unchanged, "forgotten", res.Forgotten)
					return e.emit(v, func(w io.Writer) {
						fmt.Fprintf(w, "resealed %d tenant keys to %d recipients (%d already were, %d forgotten)\n",
							res.Resealed, to.Len(), res.Unchanged, res.Forgotten)
					})
				},
			},
		},
	}
}

// rotateRecipients reads the new operator recipients from --recipient and
// --recipients-file, together.
func rotateRecipients(c *cli.Context) (seal.Recipients, error) {
	lines := strings.Join(c.StringSlice("recipient"), "\n")
	if f := c.Path("recipients-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return seal.Recipients{}, fmt.Errorf("--recipients-file: %w", err)
		}
		lines += "\n" + string(b)
	}
	if strings.TrimSpace(lines) == "" {
		return seal.Recipients{}, usagef("--recipient or --recipients-file: the new operator recipients are needed")
	}
	to, err := seal.ParseRecipients(strings.NewReader(lines))
	if err != nil {
		return seal.Recipients{}, usagef("new recipients: %v", err)
	}
	return to, nil
}
