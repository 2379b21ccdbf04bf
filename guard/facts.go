package guard

import (
	"github.com/purgeguard/purgeguard/profile"

	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/policy"
)

// Input is what a decision is made on. Targets nil means "derive them from the
// source of truth"; HasSourceOfTruth tells an empty source from none.
type Input struct {
	Targets            []uuid.UUID
	SourceOfTruth      []uuid.UUID
	HasSourceOfTruth   bool
	PreviousSourceSize int
}

// decide reads the database's tenants (and the targets' last activity) and runs the
// policy. Every tenant ID read from the database is parsed: a root key that is not a
// UUID is an error naming it, never a string compared with a UUID.
func decide(ctx context.Context, q catalog.Querier, g *catalog.Graph, act *profile.Activity, in Input, rules policy.Rules, now time.Time) (policy.Decision, error) {
	db, err := databaseTenants(ctx, q, g)
	if err != nil {
		return policy.Decision{}, err
	}
	pin := policy.Input{
		Targets: in.Targets, Database: db, SourceOfTruth: in.SourceOfTruth,
		HasSourceOfTruth: in.HasSourceOfTruth, PreviousSourceSize: in.PreviousSourceSize, Now: now,
	}
	targets := in.Targets
	if targets == nil && (in.HasSourceOfTruth || len(in.SourceOfTruth) > 0) {
		targets = policy.Derive(db, in.SourceOfTruth)
	}
	if act != nil && act.Table.Table != "" && len(targets) > 0 && rules.ActiveWithin > 0 {
		if pin.LastActivity, err = lastActivity(ctx, q, act, targets); err != nil {
			return policy.Decision{}, err
		}
	}
	return policy.Decide(pin, rules), nil
}

func databaseTenants(ctx context.Context, q catalog.Querier, g *catalog.Graph) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT %s::text FROM %s", pgx.Identifier{g.Key}.Sanitize(), g.Root.Sanitize()))
	if err != nil {
		return nil, fmt.Errorf("guard: read tenants of %s: %w", g.Root, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("guard: read tenants of %s: %w", g.Root, err)
	}
	out := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		if out[i], err = uuid.Parse(k); err != nil {
			return nil, fmt.Errorf("guard: tenant root %s holds key %q, not a UUID: %w", g.Root, k, err)
		}
	}
	return out, nil
}

func lastActivity(ctx context.Context, q catalog.Querier, a *profile.Activity, targets []uuid.UUID) (map[uuid.UUID]time.Time, error) {
	strs := make([]string, len(targets))
	for i, t := range targets {
		strs[i] = t.String()
	}
	sql := fmt.Sprintf("SELECT %[1]s::text, max(%[2]s)::timestamptz FROM %[3]s WHERE %[1]s::text = ANY($1) GROUP BY 1",
		pgx.Identifier{a.TenantColumn}.Sanitize(), pgx.Identifier{a.TimeColumn}.Sanitize(), a.Table.Sanitize())
	rows, err := q.Query(ctx, sql, strs)
	if err != nil {
		return nil, fmt.Errorf("guard: last activity from %s.%s: %w", a.Table, a.TimeColumn, err)
	}
	defer rows.Close()
	out := map[uuid.UUID]time.Time{}
	for rows.Next() {
		var k string
		var at *time.Time
		if err := rows.Scan(&k, &at); err != nil {
			return nil, fmt.Errorf("guard: last activity: %w", err)
		}
		id, err := uuid.Parse(k)
		if err != nil {
			return nil, fmt.Errorf("guard: activity table %s holds tenant %q, not a UUID", a.Table, k)
		}
		if at != nil {
			out[id] = *at
		}
	}
	return out, rows.Err()
}

// CheckOptions says what to decide on: the deletion set and the rules, where the
// tenant tree starts, and where activity is read (nil: no activity rule).
type CheckOptions struct {
	Input    Input
	Rules    policy.Rules
	Graph    profile.Tenants
	Activity *profile.Activity
	Now      func() time.Time
}

// Check runs the policy on a deletion set against the database as it is, in one
// read-only transaction, and changes nothing: what `guard` would decide, without
// the lock, the snapshot or the purge.
func Check(ctx context.Context, cfg *pgx.ConnConfig, o CheckOptions) (policy.Decision, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("guard: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return policy.Decision{}, fmt.Errorf("guard: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	g, err := catalog.Load(ctx, tx, o.Graph)
	if err != nil {
		return policy.Decision{}, fmt.Errorf("guard: %w", err)
	}
	return decide(ctx, tx, g, o.Activity, o.Input, o.Rules, o.Now())
}
