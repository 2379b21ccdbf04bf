package guard

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/internal/retention"
	"github.com/purgeguard/purgeguard/policy"
	"github.com/purgeguard/purgeguard/profile"
)

// retentionFacts is what a retention purge would do, read in one transaction:
// each tenant's days and cut-offs, the scope, the rows it must leave alone and what
// the policy decides on.
type retentionFacts struct {
	cutoffs map[uuid.UUID]map[string]time.Time // per tenant, per kind
	scope   *catalog.Retention
	newer   Counts // per kind, per tenant: rows the purge must leave alone
	input   policy.RetentionInput
}

// readRetention reads each tenant's cut-offs and counts, per kind, the rows the
// purge could take (held) and those it must leave alone (newer): the difference is
// what it takes.
func readRetention(ctx context.Context, q catalog.Querier, g *catalog.Graph, o retention.Options, tenants []uuid.UUID) (*retentionFacts, error) {
	days, err := retention.Read(ctx, q, o, tenants)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	cutoffs := make(map[uuid.UUID]map[string]time.Time, len(days))
	for t, d := range days {
		cutoffs[t] = d.Cutoffs
	}
	scope, err := g.Retention(o.Rules(), cutoffs)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	newer, err := countNewer(ctx, q, scope)
	if err != nil {
		return nil, err
	}
	held := Counts{}
	for _, n := range scope.NewerSQL() {
		m, err := countQuery(ctx, q, n.HeldSQL)
		if err != nil {
			return nil, fmt.Errorf("guard: count %s rows the purge could take: %w", n.Kind, err)
		}
		held[n.Kind] = m
	}
	sorted := slices.Clone(tenants)
	slices.SortFunc(sorted, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	in := policy.RetentionInput{Tenants: make([]policy.RetentionTenant, 0, len(sorted))}
	for _, t := range sorted {
		rt := policy.RetentionTenant{Tenant: t, Kinds: make([]policy.RetentionKind, 0, len(o.Kinds))}
		k := t.String()
		for _, kind := range o.Kinds {
			name := kind.Rule.Kind
			h, n := held[name][k], newer[name][k]
			rt.Kinds = append(rt.Kinds, policy.RetentionKind{Kind: name, Days: days[t].Days[name], Held: h, Removed: max(h-n, 0)})
		}
		in.Tenants = append(in.Tenants, rt)
	}
	return &retentionFacts{cutoffs: cutoffs, scope: scope, newer: newer, input: in}, nil
}

// CheckRetentionOptions says what to decide on: the retention purge and its rules,
// where the tenant tree starts, and the tenants (none: every tenant of the root, as
// the purge itself does).
type CheckRetentionOptions struct {
	Graph     profile.Tenants
	Retention profile.Retention
	Rules     policy.RetentionRules
	Tenants   []uuid.UUID
}

// CheckRetention counts what the retention purge would take from each tenant and
// kind, in one read-only transaction, and runs the retention rules on it: what
// `guard --retention` would decide, without the lock, the snapshot or the purge.
// It returns the counts the decision was made on too.
func CheckRetention(ctx context.Context, cfg *pgx.ConnConfig, o CheckRetentionOptions) (policy.RetentionDecision, policy.RetentionInput, error) {
	var none policy.RetentionInput
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return policy.RetentionDecision{}, none, fmt.Errorf("guard: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return policy.RetentionDecision{}, none, fmt.Errorf("guard: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	g, err := catalog.Load(ctx, tx, o.Graph)
	if err != nil {
		return policy.RetentionDecision{}, none, fmt.Errorf("guard: %w", err)
	}
	tenants := o.Tenants
	if len(tenants) == 0 {
		if tenants, err = g.Tenants(ctx, tx); err != nil {
			return policy.RetentionDecision{}, none, fmt.Errorf("guard: %w", err)
		}
	}
	f, err := readRetention(ctx, tx, g, o.Retention, tenants)
	if err != nil {
		return policy.RetentionDecision{}, none, err
	}
	return policy.DecideRetention(f.input, o.Rules), f.input, nil
}
