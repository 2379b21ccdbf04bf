// Package retention reproduces a service's scheduled retention purge: how many days
// each tenant keeps of each kind, and the instant before which its rows go. The
// snapshot engine saves what lies before those instants; guard checks, after the
// purge, that nothing after them went.
package retention

import (
	"github.com/purgeguard/purgeguard/profile"

	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/purgeguard/purgeguard/internal/catalog"
)

// Options describe the purge (config's retention section, parsed).
type Options = profile.Retention

// Kind is one kind of the purge with where its days come from.
type Kind = profile.RetentionKind

// Days is call-logd's rule for one tenant and kind: the tenant's own days when set;
// else the purge job's days when they were changed and the global days were not
// (an operator who only ever configured the purge job meant them); else the global
// days, or the built-in default when the global setting is NULL or absent.
func Days(tenant, global *int, purgeDays, purgeDefaultDays, builtin int) int {
	if tenant != nil {
		return *tenant
	}
	globalDays := builtin
	if global != nil {
		globalDays = *global
	}
	if purgeDays != purgeDefaultDays && globalDays == builtin {
		return purgeDays
	}
	return globalDays
}

// Tenant is one tenant's days and cut-offs per kind.
type Tenant struct {
	Days    map[string]int
	Cutoffs map[string]time.Time
}

// ErrNegativeDays is wrapped when a table holds days below zero: the purge would
// then delete rows from the future, which is never a setting anyone meant.
var ErrNegativeDays = errors.New("negative retention days")

// Read returns, for each tenant, its days and cut-offs per kind: the database's
// now() (the purge's clock) minus the days, plus the margin. Run it in the
// transaction of the snapshot, so that days and rows are read at the same instant.
func Read(ctx context.Context, q catalog.Querier, o Options, tenants []uuid.UUID) (map[uuid.UUID]Tenant, error) {
	global := make([]*int, len(o.Kinds))
	if o.DefaultsTable != (catalog.Name{}) {
		var cols []string
		var idx []int
		for i, k := range o.Kinds {
			if k.DefaultColumn != "" {
				cols = append(cols, pgx.Identifier{k.DefaultColumn}.Sanitize()+"::int")
				idx = append(idx, i)
			}
		}
		if len(cols) > 0 {
			vals := make([]*int, len(cols))
			dest := make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			err := q.QueryRow(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+o.DefaultsTable.Sanitize()+" LIMIT 1").Scan(dest...)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return nil, fmt.Errorf("retention: global days in %s: %w", o.DefaultsTable, err)
			}
			for j, i := range idx {
				global[i] = vals[j]
			}
		}
	}
	own := map[uuid.UUID][]*int{}
	if o.Table != (catalog.Name{}) {
		cols := []string{"r." + pgx.Identifier{o.TenantColumn}.Sanitize() + "::text"}
		var idx []int
		for i, k := range o.Kinds {
			if k.DaysColumn != "" {
				cols = append(cols, "r."+pgx.Identifier{k.DaysColumn}.Sanitize()+"::int")
				idx = append(idx, i)
			}
		}
		rows, err := q.Query(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+o.Table.Sanitize()+" r")
		if err != nil {
			return nil, fmt.Errorf("retention: tenant days in %s: %w", o.Table, err)
		}
		for rows.Next() {
			var key string
			vals := make([]*int, len(idx))
			dest := []any{&key}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("retention: tenant days in %s: %w", o.Table, err)
			}
			id, err := uuid.Parse(key)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("retention: %s.%s holds %q, not a tenant UUID: %w", o.Table, o.TenantColumn, key, err)
			}
			days := make([]*int, len(o.Kinds))
			for j, i := range idx {
				days[i] = vals[j]
			}
			own[id] = days
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("retention: tenant days in %s: %w", o.Table, err)
		}
	}

	// The cut-offs come from the database's clock and calendar, as the purge's
	// `now() - interval` does (a day is a calendar day in the session's time zone).
	cuts := map[int]time.Time{}
	cutoff := func(days int) (time.Time, error) {
		if c, ok := cuts[days]; ok {
			return c, nil
		}
		var c time.Time
		if err := q.QueryRow(ctx, "SELECT now() - make_interval(days => $1)", days).Scan(&c); err != nil {
			return time.Time{}, fmt.Errorf("retention: cut-off for %d days: %w", days, err)
		}
		c = c.Add(o.Margin).UTC()
		cuts[days] = c
		return c, nil
	}
	out := make(map[uuid.UUID]Tenant, len(tenants))
	for _, t := range tenants {
		rt := Tenant{Days: map[string]int{}, Cutoffs: map[string]time.Time{}}
		for i, k := range o.Kinds {
			var mine *int
			if d, ok := own[t]; ok {
				mine = d[i]
			}
			d := Days(mine, global[i], o.PurgeDaysFor(k), o.PurgeDefaultDays, k.DefaultDays)
			if d < 0 {
				return nil, fmt.Errorf("retention: tenant %s, %s: %d days: %w", t, k.Rule.Kind, d, ErrNegativeDays)
			}
			c, err := cutoff(d)
			if err != nil {
				return nil, err
			}
			rt.Days[k.Rule.Kind] = d
			rt.Cutoffs[k.Rule.Kind] = c
		}
		out[t] = rt
	}
	return out, nil
}
