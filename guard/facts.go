package guard

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
	"github.com/purgeguard/purgeguard/policy"
)

// Activity names where a tenant's last activity is read: max(Time) per Tenant.
type Activity struct {
	Table  catalog.Name
	Tenant string
	Time   string
}

// Input is what a decision is made on. Targets nil means "derive them from the
// source of truth"; HasSourceOfTruth tells an empty source from none.
type Input struct {
	Targets            []uuid.UUID
	SourceOfTruth      []uuid.UUID
	HasSourceOfTruth   bool
	PreviousSourceSize int
}

// Decide reads the database's tenants (and the targets' last activity) and runs the
// policy. Every tenant ID read from the database is parsed: a root key that is not a
// UUID is an error naming it, never a string compared with a UUID.
func Decide(ctx context.Context, q catalog.Querier, g *catalog.Graph, act *Activity, in Input, rules policy.Rules, now time.Time) (policy.Decision, error) {
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

func lastActivity(ctx context.Context, q catalog.Querier, a *Activity, targets []uuid.UUID) (map[uuid.UUID]time.Time, error) {
	strs := make([]string, len(targets))
	for i, t := range targets {
		strs[i] = t.String()
	}
	sql := fmt.Sprintf("SELECT %[1]s::text, max(%[2]s)::timestamptz FROM %[3]s WHERE %[1]s::text = ANY($1) GROUP BY 1",
		pgx.Identifier{a.Tenant}.Sanitize(), pgx.Identifier{a.Time}.Sanitize(), a.Table.Sanitize())
	rows, err := q.Query(ctx, sql, strs)
	if err != nil {
		return nil, fmt.Errorf("guard: last activity from %s.%s: %w", a.Table, a.Time, err)
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
