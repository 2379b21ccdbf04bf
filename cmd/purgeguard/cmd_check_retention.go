package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/purgeguard/purgeguard/guard"
	"github.com/purgeguard/purgeguard/internal/archive"
	"github.com/purgeguard/purgeguard/internal/repository"
	"github.com/purgeguard/purgeguard/policy"
)

// retentionCheck is check --retention's result: the decision and its counts.
type retentionCheck struct {
	policy.RetentionDecision
	Counts []policy.RetentionTenant `json:"counts"`
}

// runCheckRetention counts what the scheduled retention purge would take from each
// tenant, in one read-only transaction, and runs the retention rules on it.
func runCheckRetention(c *cli.Context, e *env) error {
	for _, f := range []string{flagDelete, flagSource, flagHeader} {
		if c.IsSet(f) {
			return usagef("--%s has no place with --retention: a retention purge has no deletion set", f)
		}
	}
	store, err := openStore(c.Context, e)
	if err != nil {
		return err
	}
	ro, err := retentionOptions(c, e)
	if err != nil {
		return err
	}
	cfg, err := connConfig(c, e)
	if err != nil {
		return err
	}
	d, in, err := guard.CheckRetention(c.Context, cfg, guard.CheckRetentionOptions{
		Graph: e.prof.Tenants, Retention: *ro, Rules: e.cfg.RetentionRules(),
	})
	if err != nil {
		return err
	}
	audit := newAudit(archive.AuditDecision, nil)
	audit.Outcome = "allowed"
	if !d.Allowed {
		audit.Outcome = "refused"
	}
	audit.Detail = jsonDetail(map[string]any{"command": "check --retention", "decision": d})
	if err := repository.PutAudit(c.Context, store, audit); err != nil {
		e.log.Warn("audit record not written", "err", err)
	}
	res := retentionCheck{RetentionDecision: d, Counts: in.Tenants}
	if err := e.emit(res, func(w io.Writer) {
		printRetentionDecision(w, d)
		for _, t := range in.Tenants {
			parts := make([]string, len(t.Kinds))
			for i, k := range t.Kinds {
				parts[i] = fmt.Sprintf("%s %d of %d (%d days)", k.Kind, k.Removed, k.Held, k.Days)
			}
			fmt.Fprintf(w, "  tenant %s: %s\n", t.Tenant, strings.Join(parts, ", "))
		}
	}); err != nil {
		return err
	}
	if !d.Allowed {
		return &errReported{code: exitRefused}
	}
	return nil
}

func printRetentionDecision(w io.Writer, d policy.RetentionDecision) {
	if d.Allowed {
		fmt.Fprintf(w, "allowed: the retention purge would remove %d of %d rows of %d tenants\n", d.Removed, d.Held, d.Tenants)
	} else {
		fmt.Fprintf(w, "REFUSED: the retention purge would remove %d of %d rows of %d tenants, %d rules violated\n",
			d.Removed, d.Held, d.Tenants, len(d.Violations))
	}
	for _, v := range d.Violations {
		fmt.Fprintf(w, "  refused  %-30s %s\n", v.Rule, v.Detail)
	}
}
