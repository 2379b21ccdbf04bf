package policy

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Rules are the limits a deletion set must stay within. The zero value is the
// strictest: no deletion at all (MaxTenants 0, MaxFraction 0); start from
// DefaultRules.
type Rules struct {
	// MaxTenants refuses more targets than this. -1 disables the rule; 0 allows no
	// deletion at all. Exactly MaxTenants targets is allowed.
	MaxTenants int
	// MaxFraction, in 0..1, refuses when targets / database tenants > MaxFraction.
	// Exactly at the fraction is allowed: 10 of 100 with 0.10 is, 11 is not. With
	// targets and an empty database the fraction is undefined, which refuses.
	MaxFraction float64
	// MinSourceRatio, in 0..1, refuses a source of truth listing fewer than this
	// fraction of the tenants it listed at the previous run, as broken (a failed
	// query, a paginated response). Exactly at the ratio is allowed; 0 disables.
	// An empty source of truth is always refused, whatever this is.
	MinSourceRatio float64
	// Protected tenants are never deleted.
	Protected []uuid.UUID
	// ActiveWithin refuses a target whose last activity is after Now-ActiveWithin.
	// Activity exactly at Now-ActiveWithin is not recent; activity after Now (a
	// skewed clock) is. 0 disables.
	ActiveWithin time.Duration
}

// DefaultRules are the rules of the call-logd profile.
func DefaultRules() Rules {
	return Rules{
		MaxTenants:     5,
		MaxFraction:    0.10,
		MinSourceRatio: 0.5,
		Protected:      []uuid.UUID{},
		ActiveWithin:   7 * 24 * time.Hour,
	}
}

// Validate reports rules outside their documented ranges. Decide refuses under
// invalid rules (rule "invalid_rules") rather than guess what was meant.
func (r Rules) Validate() error {
	if p := r.problems(); len(p) > 0 {
		return fmt.Errorf("invalid policy rules: %s", strings.Join(p, ", "))
	}
	return nil
}

func (r Rules) problems() []string {
	var p []string
	if r.MaxTenants < -1 {
		p = append(p, fmt.Sprintf("max_tenants %d is below -1", r.MaxTenants))
	}
	if !inUnitRange(r.MaxFraction) {
		p = append(p, fmt.Sprintf("max_fraction %v is outside 0..1", r.MaxFraction))
	}
	if !inUnitRange(r.MinSourceRatio) {
		p = append(p, fmt.Sprintf("min_source_ratio %v is outside 0..1", r.MinSourceRatio))
	}
	if r.ActiveWithin < 0 {
		p = append(p, fmt.Sprintf("active_within %v is negative", r.ActiveWithin))
	}
	return p
}

// inUnitRange is false for NaN too, which compares false with everything and
// would silently disable a rule.
func inUnitRange(f float64) bool { return !math.IsNaN(f) && f >= 0 && f <= 1 }
