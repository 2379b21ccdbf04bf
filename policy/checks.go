package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

func checkRules(f *facts) *Violation {
	if p := f.r.problems(); len(p) > 0 {
		return &Violation{Rule: RuleInvalidRules, Detail: strings.Join(p, ", ")}
	}
	return nil
}

func checkInput(f *facts) *Violation {
	var p []string
	// A zero Now would put the window start in year 0 and every activity in it:
	// refusing for the right reason beats refusing for a confusing one.
	if f.r.ActiveWithin > 0 && f.in.Now.IsZero() {
		p = append(p, "now is not set, and active_within needs it")
	}
	if f.in.PreviousSourceSize < 0 {
		p = append(p, fmt.Sprintf("previous_source_size %d is negative", f.in.PreviousSourceSize))
	}
	if len(p) > 0 {
		return &Violation{Rule: RuleInvalidInput, Detail: strings.Join(p, ", ")}
	}
	return nil
}

func checkNoTargets(f *facts) *Violation {
	if f.undecidable {
		return &Violation{Rule: RuleNoTargets, Detail: "no targets given and no source of truth to derive them from"}
	}
	return nil
}

// checkEmptySource refuses an empty source of truth whatever the other numbers:
// no tenants at all is what a failed query or an expired token looks like, and
// derived targets would then be the whole database.
func checkEmptySource(f *facts) *Violation {
	if f.sourceGiven && len(f.source) == 0 {
		return &Violation{Rule: RuleEmptySourceOfTruth, Detail: "the source of truth lists no tenants"}
	}
	return nil
}

func checkShrunkenSource(f *facts) *Violation {
	prev := f.in.PreviousSourceSize
	if !f.sourceGiven || prev <= 0 || !inUnitRange(f.r.MinSourceRatio) {
		return nil
	}
	// Dividing, rather than multiplying the limit, rounds both sides the same way:
	// 3 of 10 is exactly at 0.3, whereas 0.3*10 is 3.0000000000000004.
	ratio := float64(len(f.source)) / float64(prev)
	if ratio >= f.r.MinSourceRatio {
		return nil
	}
	return &Violation{
		Rule: RuleShrunkenSourceOfTruth,
		Detail: fmt.Sprintf("the source of truth lists %d tenants, %s of the %d at the previous run < min_source_ratio %s",
			len(f.source), formatRatio(ratio, f.r.MinSourceRatio), prev, formatFloat(f.r.MinSourceRatio)),
		Got: &ratio, Limit: ptr(f.r.MinSourceRatio),
	}
}

func checkListedBySource(f *facts) *Violation {
	if !f.sourceGiven {
		return nil
	}
	listed := filter(f.targets, f.source.has)
	if len(listed) == 0 {
		return nil
	}
	return &Violation{
		Rule:    RuleListedBySourceOfTruth,
		Detail:  fmt.Sprintf("%s still listed by the source of truth: %s", plural(len(listed), "target"), tenantList(listed)),
		Tenants: listed,
	}
}

// checkNilUUID refuses the nil UUID as a target: it is the zero value of an
// unset variable, never an ID a tenant service hands out.
func checkNilUUID(f *facts) *Violation {
	if !slices.Contains(f.targets, uuid.Nil) {
		return nil
	}
	return &Violation{
		Rule:    RuleNilUUID,
		Detail:  fmt.Sprintf("the nil UUID %s is a target: a zero value, not a tenant", uuid.Nil),
		Tenants: []uuid.UUID{uuid.Nil},
	}
}

func checkProtected(f *facts) *Violation {
	protected := filter(f.targets, newIDSet(f.r.Protected).has)
	if len(protected) == 0 {
		return nil
	}
	return &Violation{
		Rule:    RuleProtected,
		Detail:  fmt.Sprintf("%s protected: %s", plural(len(protected), "target"), tenantList(protected)),
		Tenants: protected,
	}
}

func checkRecentlyActive(f *facts) *Violation {
	if f.r.ActiveWithin <= 0 || f.in.Now.IsZero() {
		return nil
	}
	since := f.in.Now.Add(-f.r.ActiveWithin)
	active := filter(f.targets, func(id uuid.UUID) bool {
		last, ok := f.in.LastActivity[id]
		return ok && !last.IsZero() && last.After(since)
	})
	if len(active) == 0 {
		return nil
	}
	return &Violation{
		Rule: RuleRecentlyActive,
		Detail: fmt.Sprintf("%s active after %s (active_within %v): %s",
			plural(len(active), "target"), since.UTC().Format(time.RFC3339), f.r.ActiveWithin, tenantList(active)),
		Tenants: active,
	}
}

func checkMaxTenants(f *facts) *Violation {
	n, limit := len(f.targets), f.r.MaxTenants
	if limit < 0 || n <= limit {
		return nil // -1 disables; below -1 is reported by checkRules
	}
	return &Violation{
		Rule:   RuleMaxTenants,
		Detail: fmt.Sprintf("%s > limit %d", plural(n, "target"), limit),
		Got:    ptr(float64(n)), Limit: ptr(float64(limit)),
	}
}

func checkMaxFraction(f *facts) *Violation {
	n, total, limit := len(f.targets), len(f.database), f.r.MaxFraction
	if n == 0 || !inUnitRange(limit) {
		return nil
	}
	if total == 0 {
		// The share of nothing is undefined: refuse rather than divide by zero.
		return &Violation{
			Rule:   RuleMaxFraction,
			Detail: fmt.Sprintf("%s but the database has no tenants", plural(n, "target")),
			Limit:  ptr(limit),
		}
	}
	// See checkShrunkenSource on dividing: 10 of 100 is exactly at 0.1.
	share := float64(n) / float64(total)
	if share <= limit {
		return nil
	}
	return &Violation{
		Rule: RuleMaxFraction,
		Detail: fmt.Sprintf("%s of %d database tenants = %s > limit %s",
			plural(n, "target"), total, formatRatio(share, limit), formatFloat(limit)),
		Got: &share, Limit: ptr(limit),
	}
}

func checkAbsentFromDatabase(f *facts) *Violation {
	absent := filter(f.targets, func(id uuid.UUID) bool { return !f.database.has(id) })
	if len(absent) == 0 {
		return nil
	}
	return &Violation{
		Rule:    RuleAbsentFromDatabase,
		Detail:  fmt.Sprintf("%s not in the database (nothing to delete): %s", plural(len(absent), "target"), tenantList(absent)),
		Tenants: absent,
	}
}
