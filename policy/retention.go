package policy

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Rule names of a retention purge's decision.
const (
	RuleRetentionMaxFraction       = "retention_max_fraction"        // too large a share of every tenant's rows
	RuleRetentionMaxTenantFraction = "retention_max_tenant_fraction" // too large a share of one tenant's rows
)

// RetentionRules bound what a scheduled retention purge may take in one run. A
// nightly purge takes about one day in `days` of each kind: 0.3% at 365 days, 3% at
// 30, an eighth at 7, a third of exports at 2 (but exports are few). A purge that
// takes most of what is held is a changed setting or a mistake (days_to_keep: 0),
// which an operator confirms once by raising the limit, not a night's routine.
type RetentionRules struct {
	// MaxFraction, in 0..1, refuses when the purge would take more than this
	// fraction of all tenants' rows. Exactly at the fraction is allowed.
	MaxFraction float64
	// MaxTenantFraction, in 0..1, refuses when it would take more than this
	// fraction of one tenant's rows. Exactly at the fraction is allowed.
	MaxTenantFraction float64
	// MinRows: a purge, or a tenant's part of it, taking fewer rows than this is
	// never refused: the last days of a tenant whose traffic stopped are all it
	// has left, and a fraction of a handful of rows says nothing.
	MinRows int64
}

// DefaultRetentionRules are the retention rules of the call-logd profile.
func DefaultRetentionRules() RetentionRules {
	return RetentionRules{MaxFraction: 0.5, MaxTenantFraction: 0.9, MinRows: 100}
}

func (r RetentionRules) problems() []string {
	var p []string
	if !inUnitRange(r.MaxFraction) {
		p = append(p, fmt.Sprintf("retention max_fraction %v is outside 0..1", r.MaxFraction))
	}
	if !inUnitRange(r.MaxTenantFraction) {
		p = append(p, fmt.Sprintf("retention max_tenant_fraction %v is outside 0..1", r.MaxTenantFraction))
	}
	if r.MinRows < 0 {
		p = append(p, fmt.Sprintf("retention min_rows %d is negative", r.MinRows))
	}
	return p
}

// RetentionInput is what a retention purge would take, counted before it runs:
// per tenant and kind, the rows the kind holds and the rows the purge would take.
type RetentionInput struct {
	Tenants []RetentionTenant `json:"tenants"`
}

// RetentionTenant is one tenant's part of a retention purge.
type RetentionTenant struct {
	Tenant uuid.UUID       `json:"tenant"`
	Kinds  []RetentionKind `json:"kinds"`
}

// RetentionKind counts one kind of one tenant: Held is every row the purge of that
// kind could take (a nulling kind: the rows still holding a value), Removed those
// it would take now (older than the cut-off, or gone with another kind's rows).
type RetentionKind struct {
	Kind    string `json:"kind"`
	Days    int    `json:"days"`
	Held    int64  `json:"held"`
	Removed int64  `json:"removed"`
}

// RetentionDecision is the outcome of DecideRetention.
type RetentionDecision struct {
	Allowed    bool        `json:"allowed"`
	Tenants    int         `json:"tenants"`
	Held       int64       `json:"rows_held"`
	Removed    int64       `json:"rows_to_remove"`
	Violations []Violation `json:"violations"` // empty, not nil, when allowed
}

// Err returns nil when the decision allows the purge and a *RefusedError when it
// does not.
func (d RetentionDecision) Err() error {
	if d.Allowed {
		return nil
	}
	return &RefusedError{Decision: Decision{Targets: []uuid.UUID{}, Violations: d.Violations}}
}

// DecideRetention evaluates the retention rules on what a purge would take. A
// tenant's rows are the sum over its kinds, so that exports, few and short-lived,
// do not decide alone. Counts it cannot make sense of (negative, or more removed
// than held) refuse as invalid input, and so do rules out of range.
func DecideRetention(in RetentionInput, r RetentionRules) RetentionDecision {
	d := RetentionDecision{Violations: []Violation{}, Tenants: len(in.Tenants)}
	if p := r.problems(); len(p) > 0 {
		d.Violations = append(d.Violations, Violation{Rule: RuleInvalidRules, Detail: strings.Join(p, ", ")})
	}
	type sum struct {
		id            uuid.UUID
		held, removed int64
		kinds         []string
	}
	var bad []string
	var kinds []RetentionKind // summed over tenants, in first-seen order
	sums := make([]sum, 0, len(in.Tenants))
	for _, t := range in.Tenants {
		s := sum{id: t.Tenant}
		for _, k := range t.Kinds {
			if k.Held < 0 || k.Removed < 0 || k.Removed > k.Held {
				bad = append(bad, fmt.Sprintf("tenant %s, %s: %d removed of %d held", t.Tenant, k.Kind, k.Removed, k.Held))
				continue
			}
			s.held += k.Held
			s.removed += k.Removed
			if i := slices.IndexFunc(kinds, func(x RetentionKind) bool { return x.Kind == k.Kind }); i >= 0 {
				kinds[i].Held += k.Held
				kinds[i].Removed += k.Removed
			} else {
				kinds = append(kinds, RetentionKind{Kind: k.Kind, Held: k.Held, Removed: k.Removed})
			}
			if k.Removed > 0 {
				s.kinds = append(s.kinds, fmt.Sprintf("%s %d of %d (%d days)", k.Kind, k.Removed, k.Held, k.Days))
			}
		}
		d.Held += s.held
		d.Removed += s.removed
		sums = append(sums, s)
	}
	if len(bad) > 0 {
		d.Violations = append(d.Violations, Violation{Rule: RuleInvalidInput, Detail: strings.Join(bad, ", ")})
	}
	if len(d.Violations) > 0 {
		return d
	}
	// Dividing, rather than multiplying the limit, rounds both sides the same way.
	if d.Removed >= r.MinRows && d.Removed > 0 {
		if f := float64(d.Removed) / float64(d.Held); f > r.MaxFraction {
			per := make([]string, len(kinds))
			for i, k := range kinds {
				per[i] = fmt.Sprintf("%s %d of %d", k.Kind, k.Removed, k.Held)
			}
			d.Violations = append(d.Violations, Violation{
				Rule: RuleRetentionMaxFraction,
				Detail: fmt.Sprintf("the purge would remove %d of the %d rows of %s (%s) > retention max_fraction %s: %s",
					d.Removed, d.Held, plural(len(in.Tenants), "tenant"), formatRatio(f, r.MaxFraction), formatFloat(r.MaxFraction),
					strings.Join(per, ", ")),
				Got: &f, Limit: ptr(r.MaxFraction),
			})
		}
	}
	var over []sum
	worst := math.Inf(-1)
	for _, s := range sums {
		if s.removed < r.MinRows || s.removed == 0 {
			continue
		}
		if f := float64(s.removed) / float64(s.held); f > r.MaxTenantFraction {
			over = append(over, s)
			worst = max(worst, f)
		}
	}
	if len(over) > 0 {
		slices.SortFunc(over, func(a, b sum) int { return compareIDs(a.id, b.id) })
		ids := make([]uuid.UUID, len(over))
		parts := make([]string, 0, maxNamed)
		for i, s := range over {
			ids[i] = s.id
			if i < maxNamed {
				parts = append(parts, fmt.Sprintf("tenant %s: %d of %d rows (%s; %s)", s.id, s.removed, s.held,
					formatRatio(float64(s.removed)/float64(s.held), r.MaxTenantFraction), strings.Join(s.kinds, ", ")))
			}
		}
		detail := fmt.Sprintf("the purge would remove more than retention max_tenant_fraction %s of the rows of %s: %s",
			formatFloat(r.MaxTenantFraction), plural(len(over), "tenant"), strings.Join(parts, "; "))
		if len(over) > maxNamed {
			detail += fmt.Sprintf("; and %d more", len(over)-maxNamed)
		}
		d.Violations = append(d.Violations, Violation{Rule: RuleRetentionMaxTenantFraction, Detail: detail,
			Tenants: ids, Got: &worst, Limit: ptr(r.MaxTenantFraction)})
	}
	d.Allowed = len(d.Violations) == 0
	return d
}
