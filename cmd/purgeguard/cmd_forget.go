package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/config"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/internal/seal"
)

// newForgetCommand crypto-shreds tenants (issue 15): their keys are destroyed, so
// every encrypted snapshot of them is unreadable wherever it is kept, Object Lock
// included.
func newForgetCommand() *cli.Command {
	return &cli.Command{
		Name:  "forget",
		Usage: "crypto-shred tenants: destroy their keys, so that their encrypted snapshots can never be read again",
		Description: `Erases each tenant's key from the keys/ area (every version of it) and leaves a
tombstone with the date: from then on restore and verify --contents of the tenant fail
with "keys forgotten on DATE", and no new key is ever made for it. The snapshot objects
stay (under Object Lock they must); prune removes them when their lock allows. Other
tenants are untouched. Snapshots written before encryption was on are plaintext: forget
lists them, and they stay readable until pruned.

A tenant the database still holds is refused unless --force. --older-than D forgets
every tenant with a key that the database no longer holds and whose newest snapshot is
older than D (a scheduled erasure policy). An audit record names who, when, and which
snapshots became unreadable.

Examples:
   purgeguard forget --tenant 2f3c6a1e-0b4d-4c57-9b1e-6f0d2a9c8e71
   purgeguard forget --older-than 30d --dry-run`,
		Flags: []cli.Flag{
			newTenantFlag(), newTenantsFileFlag(),
			&cli.StringFlag{Name: "older-than", Usage: "forget tenants deleted from the database for longer than `D` (e.g. 30d)"},
			&cli.BoolFlag{Name: "force", Usage: "forget a named tenant even though the database still holds it"},
			&cli.BoolFlag{Name: "dry-run", Usage: "say what would be forgotten, change nothing"},
		},
		Action: runForget,
	}
}

func runForget(c *cli.Context) error {
	e := getEnv(c)
	tenants, err := tenantArgs(c)
	if err != nil {
		return err
	}
	var older time.Duration
	if s := c.String("older-than"); s != "" {
		if older, err = config.ParseDuration(s); err != nil || older <= 0 {
			return usagef("--older-than %q: want a duration such as 30d or 720h", s)
		}
	}
	if len(tenants) == 0 && older == 0 {
		return usagef("forget: give --tenant (or --tenants-file), or --older-than")
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	kr, err := keyring(c.Context, e, store)
	if err != nil {
		return err
	}
	var ks *seal.KeyStore
	if kr != nil {
		ks = kr.Keys()
	} else if ks, err = keyStore(c.Context, e, store); err != nil {
		return err
	}
	conn, graph, err := connect(c, e)
	if err != nil {
		return err
	}
	defer conn.Close(c.Context)
	g, err := catalog.Load(c.Context, conn, graph)
	if err != nil {
		return err
	}
	ids, err := g.Tenants(c.Context, conn)
	if err != nil {
		return err
	}
	present := make(map[uuid.UUID]bool, len(ids))
	for _, t := range ids {
		present[t] = true
	}
	plan, err := seal.PlanForget(c.Context, ks, store, seal.ForgetOptions{Tenants: tenants, OlderThan: older, Present: present, Force: c.Bool("force")})
	if errors.Is(err, seal.ErrStillPresent) {
		return refusal{err} // as a policy refusal: nothing was changed
	}
	if err != nil {
		return err
	}
	dry := c.Bool("dry-run")
	done := plan
	if !dry {
		done, err = ks.ForgetAll(c.Context, plan)
		audit := newAudit(archive.AuditForget, nil)
		audit.Outcome = "done"
		if err != nil {
			audit.Outcome = "failed"
			audit.Detail = jsonDetail(map[string]any{"error": err.Error(), "forgotten": done})
		} else {
			audit.Detail = jsonDetail(map[string]any{"forgotten": done})
		}
		for _, ft := range done {
			audit.Tenants = append(audit.Tenants, ft.Tenant)
			audit.Snapshots = append(audit.Snapshots, ft.Sealed...)
		}
		if aerr := repository.PutAudit(c.Context, store, audit); aerr != nil {
			e.log.Warn("audit record not written", "err", aerr)
		}
		if err != nil {
			return err
		}
	}
	for _, ft := range done {
		e.log.Info("tenant forgotten", "tenant", ft.Tenant, "dry_run", dry, "snapshots_unreadable", len(ft.Sealed), "snapshots_plaintext", len(ft.Plaintext))
	}
	return e.emit(map[string]any{"dry_run": dry, "tenants": done}, func(w io.Writer) {
		verb := "forgot"
		if dry {
			verb = "would forget"
		}
		if len(done) == 0 {
			fmt.Fprintln(w, "no tenant to forget")
		}
		for _, ft := range done {
			fmt.Fprintf(w, "%s tenant %s: %d encrypted snapshots unreadable", verb, ft.Tenant, len(ft.Sealed))
			if !ft.Forgotten.IsZero() {
				fmt.Fprintf(w, " (keys forgotten on %s)", ft.Forgotten.UTC().Format(time.DateOnly))
			}
			if len(ft.Plaintext) > 0 {
				fmt.Fprintf(w, "; %d plaintext snapshots stay readable until pruned", len(ft.Plaintext))
			}
			if ft.InDatabase {
				fmt.Fprint(w, "; the database still holds it (--force)")
			}
			fmt.Fprintln(w)
		}
	})
}

// refusal carries exit status 3 (refused) with its error.
type refusal struct{ error }

func (r refusal) ExitCode() int { return exitRefused }
func (r refusal) Unwrap() error { return r.error }
