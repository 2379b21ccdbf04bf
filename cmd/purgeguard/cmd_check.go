package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/policy"
)

func newCheckCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "run the policy on a deletion set without deleting anything (exit 3 if refused)",
		Description: `With --source-of-truth alone, the targets are derived: the database's tenants minus
the source's, as typed UUID sets. With --delete as well, the caller's own targets are
checked against the source of truth: a target the source still lists is refused —
this is what catches a caller whose own set difference went wrong.

Rules (config policy.*): max_tenants, max_fraction of the database's tenants,
protected tenants, a target the source of truth lists, an empty source of truth or
one smaller than min_source_ratio of the previous guard run's, a target active within
active_within. A target absent from the database is reported, not refused.

With --retention it checks the scheduled retention purge instead (config
retention, wazo-purge-db's own days from retention.purge_config): per tenant and
kind, the rows it would take of those it holds; refused when that is more than
policy.retention.max_fraction of every tenant's rows, or more than
max_tenant_fraction of one tenant's (never under min_rows rows).

Exit status: 0 allowed, 3 refused. With -o json:
   {"allowed":false,"targets":[…],"violations":[{"rule":"max_tenants","detail":"…"}]}

Examples:
   purgeguard check --delete doomed.txt
   purgeguard check --source-of-truth https://auth:9497/api/auth/0.1/tenants \
       --source-of-truth-header "X-Auth-Token: $TOKEN" -o json
   purgeguard check --retention`,
		Flags: []cli.Flag{newDeleteFlag(), newSourceFlag(), newHeaderFlag(), newDatabaseURLFlag(),
			newRetentionFlag("check the scheduled retention purge instead of a deletion set (config: retention, policy.retention)"),
			newMarginFlag(), newPurgeDaysFlag()},
		Action: runCheck,
	}
}

func runCheck(c *cli.Context) error {
	e := getEnv(c)
	if c.Bool(flagRetention) {
		return runCheckRetention(c, e)
	}
	if c.IsSet(flagMargin) || c.IsSet(flagPurgeDays) {
		return usagef("--margin and --purge-days go with --retention")
	}
	store, in, act, err := decisionSetup(c, e)
	if err != nil {
		return err
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	d, err := guard.Check(c.Context, cfg, guard.CheckOptions{
		Input: in, Rules: e.cfg.PolicyRules(), Graph: e.prof.Tenants, Activity: act,
	})
	if err != nil {
		return err
	}
	audit := newAudit(archive.AuditDecision, d.Targets)
	audit.Outcome = outcome(d)
	audit.Detail = jsonDetail(map[string]any{"command": "check", "decision": d})
	if err := repository.PutAudit(c.Context, store, audit); err != nil {
		e.log.Warn("audit record not written", "err", err)
	}
	if err := e.emit(d, func(w io.Writer) { printDecision(w, d) }); err != nil {
		return err
	}
	if !d.Allowed {
		return &errReported{code: exitRefused}
	}
	return nil
}

func outcome(d policy.Decision) string {
	if d.Allowed {
		return "allowed"
	}
	return "refused"
}

func printDecision(w io.Writer, d policy.Decision) {
	if d.Allowed {
		fmt.Fprintf(w, "allowed: %d tenants to delete\n", len(d.Targets))
	} else {
		fmt.Fprintf(w, "REFUSED: %d tenants to delete, %d rules violated\n", len(d.Targets), len(d.Violations))
	}
	for _, v := range d.Violations {
		fmt.Fprintf(w, "  refused  %-26s %s\n", v.Rule, v.Detail)
	}
	for _, n := range d.Notes {
		fmt.Fprintf(w, "  note     %-26s %s\n", n.Rule, n.Detail)
	}
	// The targets, one per line; a long set is cut (-o json has them all).
	const shown = 5
	for i, t := range d.Targets {
		if i == shown {
			fmt.Fprintf(w, "  target   … and %d more (-o json lists them all)\n", len(d.Targets)-shown)
			break
		}
		fmt.Fprintf(w, "  target   %s\n", t)
	}
}
